"""The work of one request, run in a worker thread: decode the uploads, inpaint, encode the answer."""

from __future__ import annotations

import dataclasses
import threading
import time

import numpy as np

from dfnet.imageio import encode_image, hole_ratio
from dfnet.inference import InpaintCancelled
from dfnet.web.parsing import ApiError, InpaintRequest, decode_image, decode_inputs
from dfnet.web.pool import InpainterLike
from dfnet.web.responses import MEDIA_TYPES, InpaintOutcome, array_to_png, result_encoding

# The status logged for a request whose client went away while it ran (nginx's "client closed request").
CLIENT_CLOSED = 499


def run_inpaint(
    inpainter: InpainterLike,
    image_bytes: bytes,
    mask_bytes: bytes,
    strategy: str,
    request: InpaintRequest,
    max_pixels: int,
    cancel: threading.Event | None = None,
) -> InpaintOutcome:
    """Decode, inpaint and encode one request (runs in a worker thread; stops early once ``cancel`` is set)."""
    start = time.perf_counter()
    return_format = request.return_format
    loaded, hole = decode_inputs(image_bytes, mask_bytes, max_pixels)
    want_alpha = return_format == "alpha" or (return_format == "json" and request.json_alpha)
    want_raw = return_format == "raw" or (return_format == "json" and request.json_raw)
    try:
        done = inpainter.inpaint(
            loaded.rgb,
            hole,
            strategy=strategy,
            return_details=want_alpha or want_raw,
            add_texture=request.texture,
            cancel=cancel,
        )
    except InpaintCancelled:
        raise ApiError(CLIENT_CLOSED, "cancelled: the client closed the connection") from None
    except ValueError as err:
        raise ApiError(400, str(err)) from None
    except MemoryError:
        raise ApiError(503, "not enough memory for this image; try a smaller one") from None
    alpha_png = array_to_png(done.alpha) if want_alpha else None
    raw_png = array_to_png(done.raw) if want_raw else None
    if return_format in ("alpha", "raw"):
        body, media_type = (alpha_png if return_format == "alpha" else raw_png) or b"", "image/png"
    else:
        result = np.asarray(done.result if (want_alpha or want_raw) else done)
        fmt, options = (
            result_encoding(image_bytes, loaded.format) if return_format == "image" else ("PNG", {})
        )
        body, media_type = encode_image(result, fmt, like=loaded, options=options), MEDIA_TYPES[fmt]
    return InpaintOutcome(
        width=loaded.size[0],
        height=loaded.size[1],
        hole_ratio=hole_ratio(hole),
        elapsed_ms=(time.perf_counter() - start) * 1000.0,
        body=body,
        media_type=media_type,
        alpha_png=alpha_png,
        raw_png=raw_png,
    )


def display_png(image_bytes: bytes, max_pixels: int) -> bytes:
    """A picture the browser cannot decode (TIFF) as a PNG it can: the pixels the server will inpaint,
    EXIF rotation applied (so no orientation tag), alpha and colour profile kept."""
    loaded = decode_image(image_bytes, max_pixels)
    return encode_image(loaded.rgb, "PNG", like=dataclasses.replace(loaded, exif=None))
