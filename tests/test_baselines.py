"""Baseline methods: OpenCV's and push-pull keep known pixels and fill holes as their definitions say."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from dfnet.baselines import CLASSICAL_METHODS, OpenCVInpaint, PushPullInpaint, XPhotoInpaint
from dfnet.evaluation import EvaluationError, make_method

# cv2.xphoto (shift-map, FSR) is in opencv-contrib only; machines with plain opencv-python skip those tests.
needs_xphoto = pytest.mark.skipif(not hasattr(cv2, "xphoto"), reason="needs opencv-contrib (cv2.xphoto)")
XPHOTO_KINDS = {kind for kind, factory in CLASSICAL_METHODS.items() if factory.func is XPhotoInpaint}


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
        pytest.param(XPhotoInpaint("shiftmap"), 3, marks=needs_xphoto),  # rounding through CIELab and back
        pytest.param(XPhotoInpaint("fsr-fast"), 4, marks=needs_xphoto),
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


def _stripes() -> tuple[torch.Tensor, torch.Tensor]:
    """64x64 vertical stripes 4 px wide (two colours), a 16x24 hole across six of them."""
    columns = (torch.arange(64) // 4 % 2).to(torch.uint8)  # 0 1 0 1 ... in 4-px runs
    colour = torch.where(columns.bool(), 200, 50).to(torch.uint8).expand(64, 64)
    images = torch.stack([colour, colour // 2, 255 - colour])[None]
    hole_mask = torch.zeros(1, 1, 64, 64, dtype=torch.bool)
    hole_mask[..., 24:40, 20:44] = True
    return images, hole_mask


def _hole_error(method, images: torch.Tensor, hole_mask: torch.Tensor) -> float:
    completed = method.complete(images, hole_mask)
    known = ~hole_mask.expand_as(images)
    assert completed.dtype == torch.uint8 and torch.equal(completed[known], images[known])
    return (completed.int() - images.int()).abs()[~known].float().mean().item()


@needs_xphoto
@pytest.mark.parametrize("algorithm", ["shiftmap", "fsr-fast"])
def test_texture_synthesising_methods_continue_stripes_that_diffusion_smears(algorithm):
    images, hole_mask = _stripes()
    assert _hole_error(XPhotoInpaint(algorithm), images, hole_mask) < 2.0  # grey levels, stripes continued
    assert _hole_error(OpenCVInpaint("telea"), images, hole_mask) > 30.0  # diffusion: a grey smear


@needs_xphoto
@pytest.mark.parametrize("algorithm", ["shiftmap", "fsr-fast"])
def test_xphoto_methods_never_see_the_hole_pixels(algorithm):
    images, hole_mask = _stripes()
    scrambled = images.clone()
    scrambled[hole_mask.expand_as(images)] = 255 - scrambled[hole_mask.expand_as(images)]
    method = XPhotoInpaint(algorithm)
    assert torch.equal(method.complete(images, hole_mask), method.complete(scrambled, hole_mask))


@pytest.mark.parametrize(
    "kind",
    [
        pytest.param(kind, marks=needs_xphoto) if kind in XPHOTO_KINDS else kind
        for kind in sorted(CLASSICAL_METHODS)
    ],
)
def test_an_image_without_a_hole_comes_back_unchanged(kind):
    images, hole_mask = _stripes()
    images = torch.cat([images, images.flip(-1)])
    hole_mask = torch.cat([torch.zeros_like(hole_mask), hole_mask])  # the first image has no hole
    completed = CLASSICAL_METHODS[kind]().complete(images, hole_mask)
    assert torch.equal(completed[0], images[0]) and not torch.equal(completed[1], images[1])


def test_classical_methods_are_made_by_name():
    assert list(CLASSICAL_METHODS) == ["telea", "ns", "shiftmap", "fsr-fast", "pushpull", "ring-pushpull"]
    for kind in CLASSICAL_METHODS:
        method = make_method(kind, torch.device("cpu"))
        assert method.name == kind and method.describe()["name"] == kind
    assert make_method("fsr-fast", torch.device("cpu"), name="fsr").describe() == {
        "name": "fsr",
        "algorithm": "cv2.xphoto.inpaint INPAINT_FSR_FAST",
    }
    with pytest.raises(EvaluationError, match="unknown method 'fsr-slow'"):
        make_method("fsr-slow", torch.device("cpu"))
    with pytest.raises(ValueError, match="unknown xphoto algorithm"):
        XPhotoInpaint("patchmatch")
