"""Reading and writing images and hole masks, with clear errors for bad files.

Conventions: images are ``uint8`` arrays of shape (H, W, 3) in RGB order; hole masks are
``bool`` arrays of shape (H, W) with ``True`` = hole (white in a mask file).
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from dfnet.files import atomic_write_bytes

DEFAULT_MAX_PIXELS = 100_000_000  # about 10,000 x 10,000; configurable everywhere it is used
MASK_THRESHOLD = 127
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")

ImageSource = str | os.PathLike | bytes | Image.Image | np.ndarray


class ImageLoadError(ValueError):
    """An input that cannot be used as an image or mask (one-line, user-facing message)."""


@dataclass
class LoadedImage:
    """An RGB image plus what is needed to save a result the way the input was stored."""

    rgb: np.ndarray
    alpha: np.ndarray | None = None
    format: str | None = None
    exif: bytes | None = None
    icc_profile: bytes | None = None
    source: str = "<array>"
    info: dict = field(default_factory=dict)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height), as PIL reports sizes."""
        return self.rgb.shape[1], self.rgb.shape[0]


def _describe(source: ImageSource) -> str:
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    if isinstance(source, bytes):
        return "<uploaded bytes>"
    return f"<{type(source).__name__}>"


def open_image(source: ImageSource, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Open and fully decode an image file, refusing empty, truncated, non-image and oversized input."""
    name = _describe(source)
    if isinstance(source, Image.Image):
        image = source
    else:
        if isinstance(source, (str, os.PathLike)):
            path = Path(source)
            if not path.exists():
                raise ImageLoadError(f"{name}: no such file")
            if not path.is_file():  # a folder, FIFO or device: opening a FIFO would block forever
                raise ImageLoadError(f"{name}: not a regular file")
            if path.stat().st_size == 0:
                raise ImageLoadError(f"{name}: empty file (0 bytes)")
            data: bytes | str = str(path)
        else:
            if len(source) == 0:
                raise ImageLoadError(f"{name}: empty file (0 bytes)")
            data = source
        try:
            with warnings.catch_warnings():
                # max_pixels, checked below before decoding, is the limit; Pillow's hard limit stays
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                image = Image.open(io.BytesIO(data) if isinstance(data, bytes) else data)
        except UnidentifiedImageError:
            raise ImageLoadError(f"{name}: not a recognised image file") from None
        except Image.DecompressionBombError:
            raise ImageLoadError(
                f"{name}: declared image size is over the decoder's limit of "
                f"{2 * (Image.MAX_IMAGE_PIXELS or 0):,} pixels (too large, or a decompression bomb)"
            ) from None
        except (OSError, SyntaxError, ValueError) as err:  # e.g. "Truncated IHDR chunk" is a ValueError
            raise ImageLoadError(f"{name}: cannot read image ({err})") from None
    width, height = image.size
    if width * height > max_pixels:
        raise ImageLoadError(
            f"{name}: image is {width}x{height} = {width * height:,} pixels, over the limit of {max_pixels:,}"
        )
    if width == 0 or height == 0:
        raise ImageLoadError(f"{name}: image has zero size")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image.load()
    except (OSError, SyntaxError, ValueError) as err:
        raise ImageLoadError(f"{name}: corrupt or truncated image ({err})") from None
    return image


def _to_uint8(image: Image.Image) -> Image.Image:
    """Bring 16/32-bit and float single-channel images to 8 bits per channel."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or arr.max() > 255 else 255.0
        return Image.fromarray(np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    if image.mode == "F":
        arr = np.asarray(image, dtype=np.float64)
        top = 1.0 if arr.max() <= 1.0 else 255.0
        return Image.fromarray(np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    return image


def load_image(source: ImageSource, max_pixels: int = DEFAULT_MAX_PIXELS) -> LoadedImage:
    """Load any image as RGB uint8 (EXIF orientation applied), keeping alpha, EXIF and ICC profile."""
    if isinstance(source, np.ndarray):
        return LoadedImage(rgb=as_rgb_array(source))
    image = open_image(source, max_pixels)
    fmt, info = image.format, dict(image.info)
    exif = image.info.get("exif")
    icc = image.info.get("icc_profile")
    image = ImageOps.exif_transpose(image)
    if exif is not None:  # the pixels are now upright: store orientation = 1 on save
        exif_obj = image.getexif()
        exif_obj[0x0112] = 1
        exif = exif_obj.tobytes()
    image = _to_uint8(image)
    alpha = None
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        alpha = np.asarray(image.getchannel("A")).copy()
    if image.mode == "CMYK" and icc is not None:
        icc = None  # a CMYK profile does not describe the RGB pixels we produce
    rgb = np.asarray(image.convert("RGB")).copy()
    return LoadedImage(rgb, alpha, fmt, exif, icc, _describe(source), info)


def as_rgb_array(array: np.ndarray) -> np.ndarray:
    """Validate a numpy image: uint8 (H, W, 3) RGB; grayscale (H, W) is expanded."""
    if array.dtype != np.uint8:
        raise ImageLoadError(f"numpy images must be uint8, got {array.dtype}")
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise ImageLoadError(f"numpy images must have shape (H, W, 3), got {array.shape}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ImageLoadError("image has zero size")
    return np.ascontiguousarray(array[:, :, :3])


class EmptyMaskWarning(UserWarning):
    """A mask with painted (non-zero) pixels of which none counts as hole after thresholding."""


def hole_from_values(values: np.ndarray, threshold: int = MASK_THRESHOLD) -> np.ndarray:
    """The one rule that turns mask values into a hole mask (True = hole), for files, bytes and arrays.

    bool: True = hole. Floats: above 0.5. Integers: a mask whose largest value is 1 is a 0/1 mask
    (1 = hole); any other is a grey mask, hole = value above ``threshold`` (127).
    """
    if values.dtype == np.bool_:
        return values.copy()
    if np.issubdtype(values.dtype, np.floating):
        return values > 0.5
    if values.size and values.max() == 1:
        return values == 1
    return values > threshold


def resize_mask(hole_mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of a boolean mask to (width, height)."""
    if (hole_mask.shape[1], hole_mask.shape[0]) == tuple(size):
        return hole_mask
    image = Image.fromarray(hole_mask.astype(np.uint8) * 255, "L").resize(size, Image.Resampling.NEAREST)
    return np.asarray(image) > MASK_THRESHOLD


def _mask_values(source: ImageSource, max_pixels: int) -> np.ndarray:
    """The (H, W) values a mask holds: one channel of an array, or the grey (or alpha) levels of a picture."""
    if isinstance(source, np.ndarray):
        arr = source
        if arr.ndim == 3:
            arr = arr[:, :, 0] if arr.shape[2] in (1, 3) else arr[:, :, 3]
        if arr.ndim != 2:
            raise ImageLoadError(f"mask arrays must be (H, W), got {source.shape}")
        return arr
    image = _to_uint8(ImageOps.exif_transpose(open_image(source, max_pixels)))
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = np.asarray(image.convert("RGBA"))
        colour, alpha = rgba[:, :, :3], rgba[:, :, 3]
        if colour.max() == colour.min() and alpha.max() != alpha.min():
            return alpha  # colour carries nothing but alpha does: the alpha channel is the mask
    return np.asarray(image.convert("L"))


def load_mask(
    source: ImageSource,
    size: tuple[int, int] | None = None,
    invert: bool = False,
    threshold: int = MASK_THRESHOLD,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """Load a hole mask (True = hole) from a file, bytes, PIL image or array; resize to ``size`` (w, h).

    Every entry point (Python API, command line, server) reads masks here, under ``hole_from_values``'s
    rule; a mask whose painted pixels all fall below the threshold gets an ``EmptyMaskWarning``.
    """
    values = _mask_values(source, max_pixels)
    hole = hole_from_values(values, threshold)
    if not hole.any() and values.size and values.max() > 0:
        warnings.warn(
            EmptyMaskWarning(
                f"{_describe(source)}: the mask has no hole: its brightest value is {values.max()}, and "
                f"hole means a value above {threshold} (or 1 in a 0/1 mask); white = hole"
            ),
            stacklevel=2,
        )
    if invert:
        hole = ~hole
    if size is not None:
        hole = resize_mask(hole, size)
    return hole


def hole_ratio(hole_mask: np.ndarray) -> float:
    """Fraction of pixels that are hole."""
    return float(np.count_nonzero(hole_mask)) / max(hole_mask.size, 1)


def mask_to_image(hole_mask: np.ndarray) -> Image.Image:
    """A white-on-black PNG-ready picture of a hole mask."""
    return Image.fromarray(hole_mask.astype(np.uint8) * 255, "L")


_FORMAT_BY_SUFFIX = {
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".png": "PNG",
    ".webp": "WEBP",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}


def encode_image(
    rgb: np.ndarray,
    fmt: str = "PNG",
    like: LoadedImage | None = None,
    quality: int = 95,
    options: dict | None = None,
) -> bytes:
    """Encode an RGB array (re-attaching the source's alpha, EXIF and ICC profile) to bytes.

    ``options`` are extra Pillow save arguments (e.g. a JPEG's ``qtables``), applied last."""
    image = Image.fromarray(rgb, "RGB")
    fmt = fmt.upper()
    if like is not None and like.alpha is not None and fmt in ("PNG", "WEBP", "TIFF"):
        image = Image.merge("RGBA", (*image.split(), Image.fromarray(like.alpha, "L")))
    kwargs: dict = {}
    if like is not None:
        if like.exif and fmt in ("JPEG", "PNG", "WEBP", "TIFF"):
            kwargs["exif"] = like.exif
        if like.icc_profile and fmt in ("JPEG", "PNG", "WEBP", "TIFF"):
            kwargs["icc_profile"] = like.icc_profile
    if fmt in ("JPEG", "WEBP"):
        kwargs["quality"] = quality
    if fmt == "JPEG":
        kwargs["subsampling"] = 0 if quality >= 90 else 2
    kwargs.update(options or {})
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def format_for_path(path: str | os.PathLike, default: str = "PNG") -> str:
    return _FORMAT_BY_SUFFIX.get(Path(path).suffix.lower(), default)


def save_image(
    path: str | os.PathLike, rgb: np.ndarray, like: LoadedImage | None = None, quality: int = 95
) -> None:
    """Write an image atomically in the format its suffix names, keeping ``like``'s metadata."""
    atomic_write_bytes(path, encode_image(rgb, format_for_path(path), like, quality))
