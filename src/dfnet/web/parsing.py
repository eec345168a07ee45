"""Reading a request: form fields and uploaded files checked and decoded, or refused with ``ApiError``."""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypeVar

import numpy as np
from fastapi import UploadFile
from fastapi.exceptions import RequestValidationError
from PIL import Image, UnidentifiedImageError

from dfnet.exemplar import TEXTURE_PRESETS
from dfnet.imageio import ImageLoadError, LoadedImage, load_image, load_mask
from dfnet.strategies import STRATEGIES

ALLOWED_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "TIFF", "GIF")
ALLOWED_PART_TYPES = ("", "application/octet-stream")  # besides image/*: what clients send for unknown files
ReturnFormat = Literal["image", "png", "json", "alpha", "raw"]
TRUE_WORDS = ("true", "1", "yes", "on")
FALSE_WORDS = ("false", "0", "no", "off")
T = TypeVar("T")


class ApiError(Exception):
    """A request the server refuses, with the HTTP status and a one-line message for the page."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class InpaintRequest:
    """What one request asks for besides its picture, mask and size strategy."""

    return_format: ReturnFormat
    json_alpha: bool = False  # json only: include the alpha map
    json_raw: bool = False  # json only: include the raw completion
    texture: bool | str = True  # the model's exemplar detail (when it has one), none, or a preset name


def sniff_upload(data: bytes, field: str, max_pixels: int) -> tuple[int, int]:
    """(width, height) of an uploaded image from its header; 415 for non-images, 413 for too many pixels."""
    if not data:
        raise ApiError(400, f"{field}: empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS) as image:
                width, height = image.size
    except UnidentifiedImageError:
        raise ApiError(415, f"{field}: not a supported image (use {', '.join(ALLOWED_FORMATS)})") from None
    except Image.DecompressionBombError:
        raise ApiError(413, f"{field}: image dimensions are too large") from None
    except (OSError, SyntaxError, ValueError) as err:
        raise ApiError(400, f"{field}: cannot read image ({err})") from None
    if width * height > max_pixels:
        raise ApiError(
            413, f"{field}: {width}x{height} = {width * height:,} pixels, over the limit of {max_pixels:,}"
        )
    return width, height


def check_part_type(upload: UploadFile, field: str) -> None:
    """Refuse (415) a form part whose declared type is not an image."""
    declared = (upload.content_type or "").split(";")[0].strip().lower()
    if not declared.startswith("image/") and declared not in ALLOWED_PART_TYPES:
        raise ApiError(415, f"{field}: expected an image file, got {declared}")


def _load(loader: Callable[..., T], data: bytes, field: str, max_pixels: int) -> T:
    """``loader(data)`` with its ``ImageLoadError`` turned into a 400 naming the form field."""
    try:
        return loader(data, max_pixels=max_pixels)
    except ImageLoadError as err:
        raise ApiError(400, str(err).replace("<uploaded bytes>", field)) from None


def decode_image(image_bytes: bytes, max_pixels: int) -> LoadedImage:
    """The uploaded picture, decoded (EXIF rotation applied); 400/413/415 for what cannot be."""
    sniff_upload(image_bytes, "image", max_pixels)
    return _load(load_image, image_bytes, "image", max_pixels)


def decode_inputs(image_bytes: bytes, mask_bytes: bytes, max_pixels: int) -> tuple[LoadedImage, np.ndarray]:
    """The decoded image and its boolean hole mask; 400/413/415 for anything that cannot be used."""
    sniff_upload(image_bytes, "image", max_pixels)
    sniff_upload(mask_bytes, "mask", max_pixels)
    loaded = _load(load_image, image_bytes, "image", max_pixels)
    hole = _load(load_mask, mask_bytes, "mask", max_pixels)
    image_size, mask_size = loaded.size, (hole.shape[1], hole.shape[0])  # after EXIF rotation
    if image_size != mask_size:
        raise ApiError(
            400,
            f"mask is {mask_size[0]}x{mask_size[1]} but the image is {image_size[0]}x{image_size[1]}: "
            "they must be the same size",
        )
    if not hole.any():
        raise ApiError(400, "mask has no hole: paint the area to fill (white = hole)")
    return loaded, hole


def validation_message(err: RequestValidationError) -> str:
    """FastAPI's list of validation errors as one line: ``field: message; field: message``."""
    parts = []
    for error in err.errors():
        where = [str(part) for part in error.get("loc", ()) if part not in ("body", "query")]
        parts.append(f"{'.'.join(where) or 'request'}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def parse_texture(value: str) -> bool | str:
    """The form field ``texture``: true / false (the model's own exemplar detail or none) or a preset name."""
    word = value.strip().lower()
    if word in TEXTURE_PRESETS:
        return word
    if word in TRUE_WORDS or word in FALSE_WORDS:
        return word in TRUE_WORDS
    raise ApiError(422, f"texture: expected true, false or {', '.join(TEXTURE_PRESETS)}, got {value!r}")


def check_strategy(strategy: str) -> None:
    """Refuse (422) a strategy the library does not have, before any work is done."""
    if strategy not in STRATEGIES:
        raise ApiError(422, f"strategy: unknown value {strategy!r} (use {', '.join(STRATEGIES)})")
