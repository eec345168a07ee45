"""The peers of benchmarks/bench_peers.py: shapes at a tiny size, and the published sizes at full size."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from peer_models import (  # noqa: E402
    MAT,
    MIGAN,
    BigLama,
    PartialConv,
    _shift_attention_bias,
    lama_input,
    mat_input,
    migan_input,
)


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


def test_full_size_mat_has_the_parameters_and_macs_of_its_source():
    """Built and run on the meta device (shapes only; a tensor made on another device inside would fail):
    fenglinglwb/MAT @ d273d89, Generator(z_dim=512, c_dim=0, w_dim=512, img_resolution=512, img_channels=3),
    has 61,562,518 parameters and does 287,373,042,656 multiply-accumulates per 512x512 image (their module
    summed and run under torch.utils.flop_counter)."""
    with torch.device("meta"):
        mat = MAT(512).eval()
        inputs = torch.empty(1, 3, 512, 512), torch.empty(1, 1, 512, 512), torch.empty(1, 512)
    assert _parameters(mat) == 61_562_518
    assert _parameters(mat.mapping) == 8 * (512 * 512 + 512)  # 8 fully connected 512 -> 512 layers
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        out = mat(*inputs)
    assert out.shape == (1, 3, 512, 512) and out.device.type == "meta"
    assert counter.get_total_flops() == 2 * 287_373_042_656


def test_mat_fills_the_hole_from_the_known_pixels_only(one_thread):
    """MAT at 128 (its smallest size): known pixels come back bit-identical, the hole's content is never read
    (mask 1 = known), and the known pixels do shape the fill."""
    torch.manual_seed(0)
    mat = MAT(128).eval()
    rgb, hole = torch.rand(1, 3, 128, 128), torch.zeros(1, 1, 128, 128)
    hole[..., 40:90, 20:100] = 1
    image, known = mat_input(rgb, hole)
    z = torch.randn(1, mat.z_dim)
    scribbled = torch.where(hole.bool(), torch.rand_like(image) * 2 - 1, image)
    outputs = []
    for picture in (image, scribbled, image.flip(-1) * known + image * hole):
        torch.manual_seed(1)  # MAT's feature dropout stays on at inference
        with torch.inference_mode():
            outputs.append(mat(picture, known, z))
    out = outputs[0]
    assert out.shape == (1, 3, 128, 128) and bool(torch.isfinite(out).all())
    assert torch.equal(out * known, image * known)
    assert torch.equal(outputs[1], out)  # the hole's own pixels are ignored
    assert not torch.allclose(outputs[2] * hole, out * hole)  # other known pixels, another fill
    with pytest.raises(ValueError, match="power of two >= 128"):
        MAT(64)


def test_mat_mask_bookkeeping_by_hand():
    """Partial convolution: 9 / (known pixels under the 3x3 kernel), the mask grows by one pixel; shifted
    windows: tokens from different regions of the rolled map may not attend to each other."""
    conv = PartialConv(1, 1)
    with torch.no_grad():
        conv.conv.weight.fill_(1.0)  # equalised lr gain 1/3: each output is (sum of 9 inputs) / 3, then lrelu
    known = torch.zeros(1, 1, 5, 5)
    known[..., 2, 2] = 1
    out, updated = conv(known, known)
    assert updated[0, 0].tolist() == [[0] * 5, [0, 1, 1, 1, 0], [0, 1, 1, 1, 0], [0, 1, 1, 1, 0], [0] * 5]
    # each covered pixel sees the one known pixel: (1 / 3) * sqrt(2) * 9 / 1
    assert out[0, 0, 1, 1].item() == pytest.approx(9 / 3 * 2**0.5, rel=1e-5) and out[0, 0, 0, 0] == 0

    bias = _shift_attention_bias(resolution=4, window=2, shift=1)  # rows/columns: regions 0 0 1 2
    assert bias.shape == (4, 2 * 2, 2 * 2)
    assert torch.equal(bias[0], torch.zeros(4, 4))  # top-left window lies in one region
    assert torch.equal(bias[3], torch.full((4, 4), -100.0).fill_diagonal_(0))  # four regions, one token each
    assert bias[1].tolist() == [
        [0, -100, 0, -100],
        [-100, 0, -100, 0],
        [0, -100, 0, -100],
        [-100, 0, -100, 0],
    ]
