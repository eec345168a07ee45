"""Texture metrics: hand-computed small cases, and the controls (truth 0; blurred and noisy truth worse)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from dfnet.metrics import MetricTotals, measure_batch
from dfnet.texture_metrics import (
    ENERGY_FLOOR,
    HolePyramids,
    _patches_at,
    bandpass_pyramid,
    blur,
    detail_scores,
    gradient_magnitude,
    hole_weights,
    luminance,
    per_image_detail,
    per_image_gradient_sums,
    per_image_swd,
    sliced_wasserstein,
    swd_directions,
)

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


# ---------------------------------------------------------------------------------------------
# Gradient ratio
# ---------------------------------------------------------------------------------------------
def test_luminance_uses_bt601_weights():
    image = torch.tensor([1.0, 0.5, 0.0])[None, :, None, None]
    assert luminance(image).item() == pytest.approx(0.299 + 0.587 * 0.5)


def test_gradient_magnitude_uses_forward_differences():
    luma = torch.tensor([[0.0, 0.3, 0.3], [0.4, 0.3, 0.3], [0.4, 0.3, 1.0]])[None, None]
    expected = [
        [math.hypot(0.3, 0.4), 0.0, 0.0],  # dx = I[0,1] - I[0,0], dy = I[1,0] - I[0,0]
        [math.hypot(-0.1, 0.0), 0.0, 0.7],  # the last column has dx = 0, dy = 1.0 - 0.3
        [0.1, 0.7, 0.0],  # the last row has dy = 0
    ]
    assert torch.allclose(gradient_magnitude(luma)[0, 0], torch.tensor(expected))


def test_gradient_sums_count_hole_pixels_of_result_and_truth():
    target = torch.zeros(1, 3, 4, 4)
    target[..., 2:] = 1.0  # a vertical edge between columns 1 and 2: |grad| = 1 at column 1
    result = target.clone()
    result[..., 1:3, :] = 0.5  # rows 1-2 flat grey; row 0 -> 1 and 2 -> 3 steps of 0.5 in y
    hole = torch.zeros(1, 1, 4, 4, dtype=torch.bool)
    hole[..., 1:3, 0:2] = True  # columns 0-1 of rows 1-2
    grad_result, grad_target = per_image_gradient_sums(result, target, hole)
    assert grad_target.item() == pytest.approx(2.0)  # (1, 1) and (2, 1): the truth's edge
    # result rows 1-2 are 0.5 everywhere: dx = 0; dy from row 1 to 2 is 0, from row 2 to row 3 is -0.5
    assert grad_result.item() == pytest.approx(2 * 0.5)


def test_gradient_ratio_of_a_group_is_the_ratio_of_summed_gradients():
    target = torch.zeros(2, 3, 8, 8)
    target[0, :, :, 4:] = 1.0  # image 0: an edge; image 1: flat (no gradient at all)
    hole = torch.zeros(2, 1, 8, 8, dtype=torch.bool)
    hole[..., 2:6, 2:6] = True
    result = target.clone()
    result[0, :, 2:6, 2:6] = 0.5  # image 0: the edge filled flat -> only the hole border has gradients
    result[1, :, 3, 3] = 0.2  # image 1: one bright dot where the truth is flat
    measured = measure_batch(result, target, hole)
    sums_r = [float(gradient_magnitude(luminance(result))[i, :, 2:6, 2:6].sum()) for i in range(2)]
    totals = MetricTotals()
    totals.add(measured)
    assert measured.grad_target.tolist() == pytest.approx([4.0, 0.0])  # 4 rows x column 3
    assert totals.compute()["grad_ratio"] == pytest.approx(sum(sums_r) / 4.0)
    flat = MetricTotals()
    flat.add(measured.select(torch.tensor([False, True])))
    assert flat.compute()["grad_ratio"] is None  # no gradient in the truth: no ratio


# ---------------------------------------------------------------------------------------------
# Pyramid and detail measure
# ---------------------------------------------------------------------------------------------
def test_blur_spreads_an_impulse_as_the_binomial_outer_product_and_keeps_constants():
    impulse = torch.zeros(1, 1, 9, 9)
    impulse[..., 4, 4] = 1.0
    taps = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16
    expected = torch.zeros(9, 9)
    expected[2:7, 2:7] = torch.outer(taps, taps)
    assert torch.allclose(blur(impulse)[0, 0], expected)
    assert torch.allclose(blur(torch.full((1, 3, 5, 3), 0.7)), torch.full((1, 3, 5, 3), 0.7))


def test_bandpass_pyramid_halves_each_level_and_is_zero_on_constants():
    image = torch.rand(2, 3, 20, 13, generator=torch.Generator().manual_seed(0))
    bands = bandpass_pyramid(image, 4)
    assert [tuple(b.shape[-2:]) for b in bands] == [(20, 13), (10, 7), (5, 4), (3, 2)]
    assert torch.allclose(bands[0], image - blur(image))
    assert torch.allclose(bands[1], blur(image)[..., ::2, ::2] - blur(blur(image)[..., ::2, ::2]))
    assert all(b.abs().max() < 1e-6 for b in bandpass_pyramid(torch.full((1, 3, 16, 16), 0.3)))


def test_hole_weights_are_the_hole_fraction_of_each_block():
    hole = torch.zeros(1, 1, 4, 5, dtype=torch.bool)
    hole[..., 0, 0] = True
    hole[..., 3, 4] = True
    level1, level2 = hole_weights(hole, 3)[1:]
    assert level1[0, 0].tolist() == [[0.25, 0.0, 0.0], [0.0, 0.0, 0.5]]  # the last block is 2x1 pixels
    assert level2[0, 0].tolist() == [[0.25 / 4, 0.5 / 2]]  # a 2x2 block, then a 2x1 one


def test_detail_of_a_scaled_texture_is_the_log_of_the_scale():
    target = 0.5 + 0.1 * torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    hole = torch.ones(1, 1, 32, 32, dtype=torch.bool)  # uniform weights: E = mean band energy
    result = 0.5 + 2.0 * (target - 0.5)  # every band doubled, energies x4
    energies = [luminance(b).square().mean().item() for b in bandpass_pyramid(target, 4)]
    doubled = np.mean([0.5 * math.log((4 * e + ENERGY_FLOOR) / (e + ENERGY_FLOOR)) for e in energies])
    halved = np.mean([0.5 * math.log((e + ENERGY_FLOOR) / (4 * e + ENERGY_FLOOR)) for e in energies])
    assert per_image_detail(result, target, hole).item() == pytest.approx(doubled, rel=1e-5)
    assert per_image_detail(target, result, hole).item() == pytest.approx(-halved, rel=1e-5)  # |log|
    assert 0 < doubled < math.log(2)  # the floor pulls low-energy (coarse) bands towards 0


def test_detail_uses_only_the_hole():
    target = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    hole = torch.zeros(1, 1, 32, 32, dtype=torch.bool)
    hole[..., 8:24, 8:24] = True
    far_away = target.clone()
    far_away[..., :2, :2] = 0.0  # a change at least 6 px from the hole, beyond the level-0 kernel
    pyramids = HolePyramids.build(far_away, target, hole, levels=1)
    assert detail_scores(pyramids).item() == 0.0
    assert per_image_detail(target, target, torch.zeros_like(hole)).item() == 0.0  # no hole: nothing to judge


# ---------------------------------------------------------------------------------------------
# Sliced Wasserstein distance
# ---------------------------------------------------------------------------------------------
def test_sliced_wasserstein_of_shifted_and_permuted_sets():
    a = torch.tensor([[0.0, 5.0], [1.0, 7.0], [2.0, 6.0]])
    shifted = a[[2, 0, 1]] + torch.tensor([1.0, 0.0])  # every point one to the right, order mixed
    along_x = torch.tensor([[1.0], [0.0]])
    along_y = torch.tensor([[0.0], [1.0]])
    diagonal = torch.tensor([[1.0], [1.0]]) / math.sqrt(2)
    assert sliced_wasserstein(a, shifted, along_x).item() == pytest.approx(1.0)
    assert sliced_wasserstein(a, shifted, along_y).item() == pytest.approx(0.0)
    # projections x + y: a -> 5, 8, 8; shifted -> 6, 9, 9 (sorted), each 1 apart, / sqrt(2)
    assert sliced_wasserstein(a, shifted, diagonal).item() == pytest.approx(1 / math.sqrt(2))
    both = torch.cat([along_x, along_y], 1)
    assert sliced_wasserstein(a, shifted, both).item() == pytest.approx(0.5)


def test_swd_directions_are_seeded_unit_vectors():
    directions = swd_directions(147)
    assert directions.shape == (147, 128)
    assert torch.allclose(directions.norm(dim=0), torch.ones(128, dtype=torch.float64))
    assert torch.equal(directions, swd_directions(147)) and not torch.equal(
        directions, swd_directions(147, seed=1)
    )


def test_patches_are_gathered_around_their_centres_with_replicated_edges():
    band = torch.arange(16.0).reshape(1, 4, 4)
    patches = _patches_at(band, torch.tensor([0, 2]), torch.tensor([0, 1]), 3)
    assert patches[0].tolist() == [0, 0, 1, 0, 0, 1, 4, 4, 5]  # corner: row/column 0 repeated
    assert patches[1].tolist() == [4, 5, 6, 8, 9, 10, 12, 13, 14]


def test_swd_is_zero_for_the_truth_and_does_not_depend_on_the_batch():
    images = torch.rand(3, 3, 48, 48, generator=torch.Generator().manual_seed(3))
    hole = torch.zeros(3, 1, 48, 48, dtype=torch.bool)
    hole[0, :, 2:46, 2:46] = True  # 1936 centres at level 0: a seeded sample of 1024
    hole[1, :, 10:14, 10:30] = True
    hole[2, :, 0:3, 0:3] = True
    result = torch.where(hole, 1.0 - images, images)
    assert per_image_swd(images, images, hole).tolist() == [0.0, 0.0, 0.0]
    together = per_image_swd(result, images, hole)
    alone = torch.cat(
        [per_image_swd(result[i : i + 1], images[i : i + 1], hole[i : i + 1]) for i in range(3)]
    )
    assert torch.equal(together, alone) and (together > 0).all()


# ---------------------------------------------------------------------------------------------
# Controls on a real photograph: truth 0 (ratio 1), blurred and noisy truth worse on every measure
# ---------------------------------------------------------------------------------------------
def _gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = int(3 * sigma)
    t = torch.arange(-radius, radius + 1, dtype=images.dtype)
    kernel = torch.exp(-(t**2) / (2 * sigma**2))
    kernel = (kernel / kernel.sum()).expand(3, 1, -1)
    padded = F.pad(images, (radius,) * 4, mode="reflect")
    rows = F.conv2d(padded, kernel[:, :, None, :], groups=3)
    return F.conv2d(rows, kernel[:, :, :, None], groups=3)


@pytest.fixture(scope="module")
def photo_controls() -> dict:
    photo = np.asarray(Image.open(EXAMPLES / "photo.png").convert("RGB"))[192:320, 192:320]
    truth = torch.from_numpy(photo.copy()).permute(2, 0, 1)[None].float() / 255
    hole = torch.zeros(1, 1, 128, 128, dtype=torch.bool)
    hole[..., 32:96, 40:88] = True
    noise = 0.05 * torch.randn(truth.shape, generator=torch.Generator().manual_seed(0))
    candidates = {"truth": truth, "blurred": _gaussian_blur(truth, 3.0), "noisy": (truth + noise).clamp(0, 1)}
    return {
        name: measure_batch(torch.where(hole, image, truth), truth, hole)
        for name, image in candidates.items()
    }


def test_the_truth_scores_perfectly(photo_controls):
    truth = photo_controls["truth"]
    assert truth.detail.item() == 0.0 and truth.swd.item() == 0.0
    assert truth.grad_result.item() == truth.grad_target.item() > 0


def test_blur_and_noise_score_worse_than_the_truth(photo_controls):
    blurred, noisy = photo_controls["blurred"], photo_controls["noisy"]
    assert (blurred.grad_result / blurred.grad_target).item() < 0.6  # too smooth
    assert (noisy.grad_result / noisy.grad_target).item() > 1.3  # too busy
    for measured in (blurred, noisy):
        assert measured.detail.item() > 0.05 and measured.swd.item() > 1e-3
