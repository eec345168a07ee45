"""``dfnet.web.jobs``: one request's work, and TIFF pictures turned into PNGs the page can show."""

from __future__ import annotations

import io

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from dfnet.web import create_app
from dfnet.web.jobs import CLIENT_CLOSED, display_png, run_inpaint
from dfnet.web.parsing import ApiError, InpaintRequest


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def test_display_png_applies_the_exif_rotation_and_drops_the_tag():
    pixels = np.random.default_rng(1).integers(0, 256, (6, 10, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    tiff = encoded(Image.fromarray(pixels), "TIFF", exif=exif)
    with Image.open(io.BytesIO(display_png(tiff, 1000))) as shown:
        assert shown.format == "PNG" and shown.size == (6, 10)
        assert np.array_equal(np.asarray(shown.convert("RGB")), np.rot90(pixels, k=-1))
        assert 0x0112 not in shown.getexif()


def test_display_keeps_alpha():
    rgba = np.zeros((4, 5, 4), np.uint8)
    rgba[..., 3] = 77
    with Image.open(io.BytesIO(display_png(encoded(Image.fromarray(rgba, "RGBA"), "TIFF"), 100))) as shown:
        assert shown.mode == "RGBA" and np.asarray(shown)[..., 3].max() == 77


def test_display_route_answers_png(tiny_model):
    from dfnet.inference import Inpainter

    tiff = encoded(Image.new("RGB", (9, 7), (1, 2, 3)), "TIFF")
    with TestClient(create_app(Inpainter(tiny_model, device="cpu"))) as client:
        answer = client.post("/api/display", files={"image": ("a.tif", tiff, "image/tiff")})
        junk = client.post("/api/display", files={"image": ("a.tif", b"nonsense", "image/tiff")})
    assert answer.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(answer.content)).getpixel((8, 6)) == (1, 2, 3)
    assert junk.status_code == 415


class CancelledInpainter:
    def inpaint(self, *args, **kwargs):
        from dfnet.inference import InpaintCancelled

        raise InpaintCancelled()

    def describe(self) -> dict:
        return {}


def test_a_cancelled_inpaint_is_the_client_closed_status():
    picture = encoded(Image.new("RGB", (4, 4)), "PNG")
    mask = encoded(Image.new("L", (4, 4), 255), "PNG")
    with pytest.raises(ApiError) as refused:
        run_inpaint(CancelledInpainter(), picture, mask, "auto", InpaintRequest("png"), 100)
    assert refused.value.status == CLIENT_CLOSED == 499
