"""Shared fixtures: small models and images so the suite stays fast on two CPU cores."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))  # benchmarks/reference_dfnet.py: the released-layout reference

torch.set_num_threads(min(2, torch.get_num_threads()))


def randomize_batchnorm(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give every BatchNorm non-trivial statistics so eval-mode tests exercise them."""
    gen = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            n = module.num_features
            module.running_mean.copy_(torch.rand(n, generator=gen) * 0.4 - 0.2)
            module.running_var.copy_(torch.rand(n, generator=gen) * 1.5 + 0.5)
            module.weight.data.copy_(torch.rand(n, generator=gen) + 0.5)
            module.bias.data.copy_(torch.rand(n, generator=gen) * 0.4 - 0.2)
    return model


@pytest.fixture
def tiny_model():
    """A narrow (width 1/8) DFNet in eval mode with randomised BatchNorm statistics."""
    from dfnet.model import DFNet, DFNetConfig

    torch.manual_seed(0)
    return randomize_batchnorm(DFNet(DFNetConfig(width=0.125))).eval()


@pytest.fixture
def photo_256() -> np.ndarray:
    """A smooth synthetic 256x256 RGB uint8 picture with some texture."""
    y, x = np.mgrid[0:256, 0:256].astype(np.float32)
    rgb = np.stack([x, y, (x + y) / 2], axis=2) + 20 * np.sin(x / 7)[..., None]
    return np.clip(rgb, 0, 255).astype(np.uint8)


@pytest.fixture
def hole_256() -> np.ndarray:
    """A 256x256 hole mask (True = hole): a rectangle and a disc."""
    hole = np.zeros((256, 256), dtype=bool)
    hole[40:90, 60:140] = True
    yy, xx = np.mgrid[0:256, 0:256]
    hole |= (yy - 180) ** 2 + (xx - 180) ** 2 < 30**2
    return hole
