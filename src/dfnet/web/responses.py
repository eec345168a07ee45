"""What the server sends back: JSON errors, encoded results in the input's format, headers."""

from __future__ import annotations

import base64
import io
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
from fastapi.responses import JSONResponse, Response
from PIL import Image, JpegImagePlugin

PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' blob: data:; script-src 'self'; style-src 'self'; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}
NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
MEDIA_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
WEBP_QUALITY = 95  # a lossy WebP does not record its quality; lossless inputs come back lossless

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "Unreadable image, size mismatch (both sizes given) or a mask with no hole"},
    408: {"description": "The request body did not arrive within the time limit"},
    413: {"description": "Upload larger than the byte limit, or image over the pixel limit"},
    415: {"description": "Not multipart/form-data, or a part that is not a supported image"},
    422: {"description": "A missing field or an invalid option value; same {'detail': message} shape"},
    429: {"description": "Too many requests open from this client address (see Retry-After)"},
    503: {
        "description": "Queue full: too many requests in flight, or too many uploads arriving (see Retry-After)"
    },
}


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """The JSON error body every endpoint uses: ``{"detail": message}``."""
    return JSONResponse({"detail": message}, status_code=status, headers={**NO_STORE, **(headers or {})})


def array_to_png(array: np.ndarray) -> bytes:
    """PNG bytes of a uint8 or [0, 1] float picture shaped (H, W), (H, W, 1) or (H, W, 3)."""
    array = np.asarray(array)
    if array.dtype != np.uint8:
        array = (np.clip(array.astype(np.float64), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    buffer = io.BytesIO()
    Image.fromarray(array, "L" if array.ndim == 2 else "RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def webp_is_lossless(data: bytes) -> bool:
    """Whether a WebP file holds a lossless (VP8L) bitstream, read from its RIFF chunks."""
    offset = 12
    while offset + 8 <= len(data):
        chunk, size = data[offset : offset + 4], int.from_bytes(data[offset + 4 : offset + 8], "little")
        if chunk in (b"VP8L", b"VP8 "):
            return chunk == b"VP8L"
        offset += 8 + size + (size & 1)
    return False


def result_encoding(image_bytes: bytes, source_format: str | None) -> tuple[str, dict[str, Any]]:
    """(Pillow format, save options) that store a result the way the input was stored.

    JPEG inputs keep their quantization tables and chroma subsampling (the same quality), WebP keeps
    lossless or lossy, everything else becomes PNG (lossless, keeps alpha)."""
    if source_format == "JPEG":
        with Image.open(io.BytesIO(image_bytes), formats=("JPEG",)) as jpeg:
            tables = getattr(jpeg, "quantization", None)
            sampling = JpegImagePlugin.get_sampling(jpeg)
        options: dict[str, Any] = {}
        if tables:  # quality -1: use the tables as they are, not scaled to a quality setting
            options.update(qtables=tables, quality=-1)
        if sampling >= 0:
            options["subsampling"] = sampling
        return "JPEG", options
    if source_format == "WEBP":
        lossless = webp_is_lossless(image_bytes)
        return "WEBP", {"lossless": True, "quality": 100} if lossless else {"quality": WEBP_QUALITY}
    return "PNG", {}


@dataclass
class InpaintOutcome:
    """The encoded answer to one request plus what the log and the JSON answer report about it."""

    width: int
    height: int
    hole_ratio: float
    elapsed_ms: float
    body: bytes  # the result, or the alpha map / raw completion when that is what was asked for
    media_type: str
    alpha_png: bytes | None = None
    raw_png: bytes | None = None


def outcome_response(outcome: InpaintOutcome, as_json: bool, strategy: str, model: str) -> Response:
    """The picture itself, or JSON with base64 PNGs (``result`` and, when asked for, ``alpha`` / ``raw``)."""
    headers = {
        **NO_STORE,
        "X-DFNet-Elapsed-Ms": f"{outcome.elapsed_ms:.0f}",
        "X-DFNet-Hole-Ratio": f"{outcome.hole_ratio:.6f}",
    }
    if not as_json:
        return Response(outcome.body, media_type=outcome.media_type, headers=headers)
    body: dict[str, Any] = {
        "width": outcome.width,
        "height": outcome.height,
        "hole_ratio": outcome.hole_ratio,
        "strategy": strategy,
        "model": model,
        "elapsed_ms": round(outcome.elapsed_ms, 1),
        "media_type": "image/png",
        "result": base64.b64encode(outcome.body).decode("ascii"),
    }
    for name, png in (("alpha", outcome.alpha_png), ("raw", outcome.raw_png)):
        if png is not None:
            body[name] = base64.b64encode(png).decode("ascii")
    return JSONResponse(body, headers=headers)


def to_json_safe(value: Any) -> Any:
    """``describe()`` output made JSON-safe (devices, dtypes and paths become strings)."""
    return json.loads(json.dumps(value, default=str))
