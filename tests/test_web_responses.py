"""``dfnet.web.responses``: PNG encoding of float maps, the input's own encoding and the JSON answer."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
from PIL import Image

from dfnet.web.responses import InpaintOutcome, array_to_png, outcome_response, result_encoding


def test_float_maps_round_to_the_nearest_grey_level():
    png = array_to_png(np.array([[0.0, 0.5, 1.0, 2.0]], np.float32)[..., None])
    assert np.asarray(Image.open(io.BytesIO(png))).tolist() == [[0, 128, 255, 255]]


def test_lossless_webp_stays_lossless_and_other_formats_become_png():
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 20, 30)).save(buffer, format="WEBP", lossless=True)
    assert result_encoding(buffer.getvalue(), "WEBP") == ("WEBP", {"lossless": True, "quality": 100})
    assert result_encoding(b"", "TIFF") == ("PNG", {})


def test_json_answer_names_the_model_and_carries_base64_pngs():
    outcome = InpaintOutcome(4, 3, 0.25, 12.34, b"result", "image/png", alpha_png=b"alpha")
    response = outcome_response(outcome, True, "auto", "places2")
    body = json.loads(response.body)
    assert body["model"] == "places2" and body["elapsed_ms"] == 12.3 and "raw" not in body
    assert base64.b64decode(body["alpha"]) == b"alpha" and base64.b64decode(body["result"]) == b"result"
    assert response.headers["x-dfnet-hole-ratio"] == "0.250000"
