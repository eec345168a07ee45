"""dfnet serve with unusual but valid images, and what its refusals log (no upload content)."""

from __future__ import annotations

import io
import logging
import os

import numpy as np
import pytest
from helpers import (
    ODD_IMAGES,
    encode,
    hole_rect,
    mask_bytes,
    picture,
    png_declaring,
    post,
)
from PIL import Image

from dfnet.imageio import load_image


@pytest.mark.parametrize("case", sorted(ODD_IMAGES))
def test_odd_formats_through_the_server(case, client):
    data, _, rgb, alpha = ODD_IMAGES[case]
    hole = np.zeros(rgb.shape[:2], bool)
    hole[rgb.shape[0] // 2, rgb.shape[1] // 2] = True
    response = post(client, data, mask_bytes(hole))
    assert response.status_code == 200, response.text
    result = np.asarray(Image.open(io.BytesIO(response.content)))
    assert result.shape[:2] == rgb.shape[:2]
    assert np.array_equal(result[:, :, :3][~hole], rgb[~hole])
    if alpha is not None:
        assert np.array_equal(result[:, :, 3], alpha)


def test_exif_rotated_jpeg_is_upright_for_the_server(client):
    stored = picture(32, 48)
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated 90 degrees clockwise: 32 wide, 48 high
    data = encode(stored, "JPEG", quality=95, exif=exif.tobytes())
    upright = load_image(data).rgb
    assert upright.shape == (48, 32, 3)
    wrong = post(client, data, mask_bytes(hole_rect(32, 48)))  # a mask drawn on the stored pixels
    assert wrong.status_code == 400 and "mask is 48x32 but the image is 32x48" in wrong.json()["detail"]
    hole = hole_rect(48, 32)
    response = post(client, data, mask_bytes(hole))
    assert response.status_code == 200
    result = np.asarray(Image.open(io.BytesIO(response.content)))
    assert np.array_equal(result[~hole], upright[~hole])


def test_refusal_logs_carry_no_upload_content(client, caplog):
    secret = b"SECRET-PIXELS-" + os.urandom(16).hex().encode()
    uploads = [
        secret,  # not an image
        encode(picture(), "PNG")[:200] + secret,  # a truncated PNG carrying the secret
        png_declaring(200_000, 200_000) + secret,  # a bomb
    ]
    with caplog.at_level(logging.DEBUG):
        for data in uploads:
            response = post(client, data, mask_bytes(hole_rect(48, 64)))
            assert 400 <= response.status_code < 500
            assert secret.decode() not in response.text
            response = post(client, encode(picture(), "PNG"), data)  # the same as a mask
            assert 400 <= response.status_code < 500
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "inpaint refused" in logged
    assert secret.decode() not in logged and "SECRET" not in logged
