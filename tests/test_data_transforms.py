"""Training image transforms (dfnet.data.transforms): resizing, crops, flips, zoom."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import ramp_picture
from PIL import Image

from dfnet.data import (
    ImageTransform,
)


def test_transform_centre_crop_after_resizing_the_short_side():
    image = Image.fromarray(ramp_picture(200, 100))
    out = ImageTransform(50, "resize_crop", train=False)(image)
    assert out.shape == (50, 50, 3) and out.dtype == np.uint8
    # scaled by 1/2 to 100x50, centre 50 columns are source columns 50..150: red ramps ~51 -> ~149
    assert abs(int(out[0, 0, 0]) - 51) <= 2 and abs(int(out[0, -1, 0]) - 149) <= 2


def test_transform_random_crop_and_flip_at_native_resolution():
    rgb = ramp_picture(120, 90)
    transform = ImageTransform(64, "crop", train=True, hflip=True)
    rng = np.random.default_rng(0)
    flipped = plain = 0
    for _ in range(20):
        out = transform(Image.fromarray(rgb), rng)
        top = int(out[0, 0, 1]) if out[0, 0, 0] < out[0, -1, 0] else int(out[0, -1, 1])
        left = int(min(out[0, 0, 0], out[0, -1, 0]))
        window = rgb[top : top + 64, left : left + 64]
        if np.array_equal(out, window):
            plain += 1
        else:
            assert np.array_equal(out, window[:, ::-1])  # a mirrored crop, pixels untouched
            flipped += 1
    assert plain and flipped


def test_transform_resize_and_upscaling_small_images():
    small = Image.fromarray(ramp_picture(20, 10))
    assert ImageTransform(32, "resize", train=False)(small).shape == (32, 32, 3)
    assert ImageTransform(32, "crop", train=False)(small).shape == (32, 32, 3)  # too small: upscaled
    with pytest.raises(ValueError):
        ImageTransform(32, "stretch")


def test_max_zoom_crops_at_several_scales():
    ramp = np.tile(np.linspace(0, 255, 96)[None, :, None], (72, 1, 3)).astype(np.uint8)  # 96x72, x ramp
    image = Image.fromarray(ramp)

    def slopes(transform: ImageTransform) -> list[float]:
        rng = np.random.default_rng(0)
        return [float(np.diff(transform(image, rng)[8, :, 0].astype(float)).mean()) for _ in range(40)]

    fixed = slopes(ImageTransform(24, hflip=False))
    zoomed = slopes(ImageTransform(24, hflip=False, max_zoom=2.0))
    # short side 24 -> width 32: about 255/31 per pixel; at zoom 2, width 64: about half that
    assert max(fixed) - min(fixed) < 0.5 and abs(np.mean(fixed) - 255 / 31) < 0.5
    assert min(zoomed) < 0.6 * max(fixed) and max(zoomed) > 0.9 * min(fixed)
    assert all(255 / 63 - 0.5 < s < 255 / 31 + 0.5 for s in zoomed)
    assert ImageTransform(24, max_zoom=2.0).draft_size() == (48, 48)
    assert slopes(ImageTransform(24, train=False, max_zoom=2.0)) == slopes(ImageTransform(24, train=False))
    with pytest.raises(ValueError, match="max_zoom"):
        ImageTransform(24, max_zoom=0.5)
