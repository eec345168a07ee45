"""dfnet.photo_dataset.images: resizing, crops, the example mask and the committed examples."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from dfnet.photo_dataset import images as wp
from dfnet.photo_dataset.sources import EXAMPLE_ID

ROOT = Path(__file__).resolve().parents[1]


def test_resize_short_side_and_centre_crop():
    image = Image.new("RGB", (1000, 400))
    assert wp.resize_short_side(image, 512).size == (1280, 512)
    assert wp.resize_short_side(image.transpose(Image.Transpose.ROTATE_90), 256).size == (256, 640)
    marked = Image.fromarray(np.arange(30 * 20, dtype=np.uint8).reshape(20, 30))
    crop = wp.centre_crop(marked, 10)
    assert crop.size == (10, 10)
    assert np.asarray(crop)[0, 0] == 5 * 30 + 10


def test_example_mask_is_binary_deterministic_and_covers_8_to_15_percent():
    mask = np.asarray(wp.example_mask())
    assert mask.shape == (512, 512)
    assert set(np.unique(mask)) == {0, 255}
    assert 0.08 <= np.mean(mask == 255) <= 0.15
    assert np.array_equal(mask, np.asarray(wp.example_mask()))


def test_committed_examples_match_the_recipe():
    mask = np.asarray(Image.open(ROOT / "examples" / "mask.png"))
    assert np.array_equal(mask, np.asarray(wp.example_mask()))
    photo = Image.open(ROOT / "examples" / "photo.png")
    assert photo.size == (512, 512) and photo.mode == "RGB"
    assert (ROOT / "examples" / "photo.png").stat().st_size < 500_000
    assert EXAMPLE_ID.replace(":", "_") + ".jpg" in (ROOT / "examples" / "LICENSE.md").read_text()
