"""``dfnet.web.parsing``: form fields and uploads checked before any inference."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from dfnet.web.parsing import ApiError, check_strategy, decode_inputs, parse_texture, sniff_upload


def encoded(array: np.ndarray, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("value", "parsed"), [("true", True), ("OFF", False), (" 1 ", True), ("coarse", "coarse")]
)
def test_texture_words_and_presets(value, parsed):
    assert parse_texture(value) == parsed


def test_unknown_texture_and_strategy_are_422():
    with pytest.raises(ApiError) as texture:
        parse_texture("maybe")
    with pytest.raises(ApiError) as strategy:
        check_strategy("stretch")
    assert texture.value.status == strategy.value.status == 422
    assert "got 'maybe'" in texture.value.message and "'stretch'" in strategy.value.message


def test_sniff_reads_the_size_from_the_header_and_refuses_too_many_pixels():
    data = encoded(np.zeros((30, 40, 3), np.uint8))
    assert sniff_upload(data, "image", 1200) == (40, 30)
    with pytest.raises(ApiError) as refused:
        sniff_upload(data, "image", 1199)
    assert refused.value.status == 413 and refused.value.message == (
        "image: 40x30 = 1,200 pixels, over the limit of 1,199"
    )


def test_tiff_uploads_decode_like_png():
    photo = np.random.default_rng(0).integers(0, 256, (12, 16, 3), dtype=np.uint8)
    hole = np.zeros((12, 16), np.uint8)
    hole[2:5, 3:9] = 255
    loaded, decoded_hole = decode_inputs(encoded(photo, "TIFF"), encoded(hole, "TIFF"), 10_000)
    assert loaded.format == "TIFF" and np.array_equal(loaded.rgb, photo)
    assert np.array_equal(decoded_hole, hole > 0)


def test_mask_of_another_size_names_both_sizes():
    with pytest.raises(ApiError) as refused:
        decode_inputs(encoded(np.zeros((8, 8, 3), np.uint8)), encoded(np.full((8, 9), 255, np.uint8)), 1000)
    assert refused.value.status == 400
    assert refused.value.message.startswith("mask is 9x8 but the image is 8x8")
