"""Inpainting with a trained DFNet: numpy/PIL in, numpy/PIL out, known pixels untouched.

``Inpainter`` wraps a model, a device and a precision. It converts between uint8 RGB arrays and
tensors and guarantees that every known pixel of the result is bit-identical to the input.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from dfnet.checkpoint import load_model
from dfnet.model import DFNet, composite


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """'auto' picks CUDA, then MPS, then CPU; anything else is passed to torch.device."""
    if str(device) != "auto":
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def image_to_tensor(rgb: np.ndarray, device: torch.device) -> Tensor:
    """uint8 (H, W, 3) -> float (1, 3, H, W) in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(rgb)).to(device).permute(2, 0, 1)[None].float() / 255.0


def mask_to_tensor(hole_mask: np.ndarray, device: torch.device) -> Tensor:
    """bool (H, W) -> float (1, 1, H, W), 1 = hole."""
    return torch.from_numpy(np.ascontiguousarray(hole_mask)).to(device)[None, None].float()


def tensor_to_image(x: Tensor) -> np.ndarray:
    """float (1, C, H, W) in [0, 1] -> uint8 (H, W, C), rounded to nearest."""
    return (x[0].float().clamp(0, 1) * 255.0).round().byte().permute(1, 2, 0).cpu().numpy()


@dataclass
class Completion:
    """A completed image and, when asked for, DFNet's alpha map and raw completion."""

    result: np.ndarray
    raw: np.ndarray | None = None
    alpha: np.ndarray | None = None


def paste_known(result: np.ndarray, rgb: np.ndarray, hole_mask: np.ndarray) -> np.ndarray:
    """Copy every known pixel of ``rgb`` into ``result`` so known pixels are bit-identical."""
    return np.where(hole_mask[:, :, None], result, rgb)


class Inpainter:
    """A DFNet ready to inpaint images."""

    def __init__(self, model: DFNet, device: str | torch.device = "auto") -> None:
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, device: str | torch.device = "auto") -> Inpainter:
        """Load weights from safetensors, a project checkpoint or a released ``.pth``."""
        return cls(load_model(path), device)

    @property
    def size_multiple(self) -> int:
        return self.model.config.size_multiple

    @torch.inference_mode()
    def complete_array(self, rgb: np.ndarray, hole_mask: np.ndarray, details: bool = False) -> Completion:
        """Inpaint one uint8 RGB array whose sides are multiples of ``size_multiple``."""
        image = image_to_tensor(rgb, self.device)
        hole = mask_to_tensor(hole_mask, self.device)
        result, alpha, raw = self.model.complete_with_details(image, hole)
        out = paste_known(tensor_to_image(composite(image, result, hole)), rgb, hole_mask)
        if not details:
            return Completion(out)
        return Completion(out, tensor_to_image(raw), tensor_to_image(alpha.expand(-1, 3, -1, -1)))
