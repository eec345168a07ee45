"""Baseline methods: OpenCV's and push-pull keep known pixels and fill holes as their definitions say."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dfnet.baselines import OpenCVInpaint, PushPullInpaint
from dfnet.evaluation import make_method


def _two_colour_batch() -> tuple[torch.Tensor, torch.Tensor]:
    """Left half (40, 120, 200), right half (200, 10, 90), a hole inside the left half."""
    images = torch.empty(1, 3, 32, 32, dtype=torch.uint8)
    images[..., :16] = torch.tensor([40, 120, 200], dtype=torch.uint8)[:, None, None]
    images[..., 16:] = torch.tensor([200, 10, 90], dtype=torch.uint8)[:, None, None]
    hole_mask = torch.zeros(1, 1, 32, 32, dtype=torch.bool)
    hole_mask[..., 8:12, 4:8] = True
    return images, hole_mask


@pytest.mark.parametrize(
    ("method", "levels_off"),
    [
        (PushPullInpaint(), 0),
        (PushPullInpaint(ring=True), 0),
        (OpenCVInpaint("telea"), 2),
        (OpenCVInpaint("ns"), 0),
    ],
)
def test_a_hole_inside_a_flat_region_gets_that_colour(method, levels_off):
    images, hole_mask = _two_colour_batch()
    completed = method.complete(images, hole_mask)
    assert completed.dtype == torch.uint8 and completed.shape == images.shape
    assert torch.equal(completed[~hole_mask.expand_as(images)], images[~hole_mask.expand_as(images)])
    hole_pixels = completed[0, :, 8:12, 4:8].reshape(3, -1).int()
    assert (hole_pixels - torch.tensor([[40], [120], [200]])).abs().max() <= levels_off


def test_pushpull_fills_a_hole_across_an_edge_with_a_blend_of_both_sides():
    images, hole_mask = _two_colour_batch()
    hole_mask[...] = False
    hole_mask[..., 12:20, 12:20] = True
    completed = PushPullInpaint().complete(images, hole_mask)[0, 0, 12:20, 12:20].float()
    assert completed.min() >= 40 and completed.max() <= 200
    assert completed[:, 0].mean() < completed[:, -1].mean()  # darker on the left, as the red channel


def test_pushpull_array_interface_matches_the_batch_one():
    images, hole_mask = _two_colour_batch()
    hole_mask[..., 14:18, 10:22] = True
    method = PushPullInpaint()
    from_array = method.complete_array(images[0].permute(1, 2, 0).numpy(), hole_mask[0, 0].numpy())
    assert np.array_equal(from_array, method.complete(images, hole_mask)[0].permute(1, 2, 0).numpy())


def test_make_method_names_the_pushpull_baseline():
    method = make_method("pushpull", torch.device("cpu"), name="pp")
    assert isinstance(method, PushPullInpaint) and method.describe() == {
        "name": "pp",
        "algorithm": "dfnet.model.fill_hole",
        "ring": False,
    }
    assert make_method("ring-pushpull", torch.device("cpu")).describe()["ring"] is True
