"""The peers of benchmarks/bench_peers.py: shapes at a tiny size, and the published sizes at full size."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from peer_models import MIGAN, BigLama, lama_input, migan_input  # noqa: E402


def _parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_tiny_peers_map_a_picture_and_hole_to_a_picture(one_thread):
    rgb, hole = torch.rand(2, 3, 32, 32), torch.zeros(2, 1, 32, 32)
    hole[:, :, 8:20, 4:28] = 1
    lama = BigLama(ngf=8, n_blocks=2).eval()
    migan = MIGAN(32).eval()
    with torch.inference_mode():
        lama_out, migan_out = lama(lama_input(rgb, hole)), migan(migan_input(rgb, hole))
    assert lama_out.shape == migan_out.shape == (2, 3, 32, 32)
    assert float(lama_out.min()) >= 0 and float(lama_out.max()) <= 1  # sigmoid output
    # 8 -> 16 -> 32 -> 64 channels, the last 48 of them global; two blocks of 3x3 FFCs at 64 channels
    assert lama.blocks[0].first.g_in == 48 and lama.blocks[0].first.l2l.weight.shape == (16, 16, 3, 3)
    assert lama.blocks[0].first.g2g.fourier.conv.weight.shape == (
        48,
        48,
        1,
        1,
    )  # 24 channels, real + imaginary
    with pytest.raises(ValueError, match="power of two"):
        MIGAN(48)


def test_input_conventions():
    rgb, hole = torch.full((1, 3, 4, 4), 0.5), torch.zeros(1, 1, 4, 4)
    hole[..., 0, 0] = 1
    lama_x, migan_x = lama_input(rgb, hole), migan_input(rgb, hole)
    assert lama_x[0, :3, 0, 0].tolist() == [0, 0, 0] and lama_x[0, 3, 0, 0] == 1 and lama_x[0, 0, 1, 1] == 0.5
    assert migan_x[0, 0, 0, 0] == -0.5 and migan_x[0, 0, 1, 1] == 0.5 and migan_x[0, 1, 1, 1] == 0.0


def test_full_size_peers_have_the_published_parameter_counts():
    assert _parameters(BigLama()) == pytest.approx(51.0e6, rel=0.01)  # LaMa big-lama: 51 M
    assert _parameters(MIGAN(512)) == pytest.approx(5.97e6, rel=0.01)  # MI-GAN 512: about 6 M
