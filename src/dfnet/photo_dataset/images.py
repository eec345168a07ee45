"""Image conversion for the data set: sRGB, resizing, crops, contact sheets and the example mask."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

from PIL import Image, ImageCms, ImageDraw, ImageFont, ImageOps


def to_srgb(image: Image.Image) -> Image.Image:
    """RGB image in sRGB: EXIF orientation applied, embedded ICC profile converted, alpha dropped."""
    icc = image.info.get("icc_profile")
    rgb = ImageOps.exif_transpose(image).convert("RGB")
    if icc:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            rgb = ImageCms.profileToProfile(rgb, source, ImageCms.createProfile("sRGB"), outputMode="RGB")
        except (ImageCms.PyCMSError, OSError):
            pass  # a broken profile: keep the pixel values as they are
    return rgb


def resize_short_side(
    image: Image.Image, side: int, resample: Image.Resampling = Image.Resampling.LANCZOS
) -> Image.Image:
    """Resize so the shorter side is exactly ``side``, keeping the aspect ratio."""
    scale = side / min(image.size)
    size = (max(side, round(image.width * scale)), max(side, round(image.height * scale)))
    return image.resize(size, resample, reducing_gap=3.0)


def centre_crop(image: Image.Image, side: int) -> Image.Image:
    """The central side x side square of an image at least that large."""
    left, top = (image.width - side) // 2, (image.height - side) // 2
    return image.crop((left, top, left + side, top + side))


def contact_sheet(items: Sequence[tuple[Image.Image, str]], columns: int = 5, tile: int = 300) -> Image.Image:
    """Grid of thumbnails with a caption under each, for checking the photo filter by eye."""
    font = ImageFont.load_default()
    caption_h = 44
    rows = max(1, math.ceil(len(items) / columns))
    sheet = Image.new("RGB", (columns * tile, rows * (tile + caption_h)), "white")
    draw = ImageDraw.Draw(sheet)
    for k, (image, caption) in enumerate(items):
        x, y = (k % columns) * tile, (k // columns) * (tile + caption_h)
        thumb = ImageOps.contain(image, (tile - 6, tile - 6))
        sheet.paste(thumb, (x + (tile - thumb.width) // 2, y + (tile - thumb.height) // 2))
        for n, line in enumerate(caption.splitlines()[:3]):
            draw.text((x + 4, y + tile + 2 + 14 * n), line[:48], fill="black", font=font)
    return sheet


def example_mask(size: int = 512) -> Image.Image:
    """Deterministic hole mask (white = hole): two brush strokes and a blob, about 11 % of the image."""
    mask = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(mask)
    scale = size / 512
    strokes = [  # (points on a 512 grid, brush width)
        ([(60, 120), (140, 175), (220, 165), (300, 215), (350, 205)], 38),
        ([(330, 440), (365, 370), (420, 330), (450, 260)], 32),
    ]
    for points, width in strokes:
        scaled = [(x * scale, y * scale) for x, y in points]
        draw.line(scaled, fill=255, width=round(width * scale), joint="curve")
        radius = width * scale / 2
        for x, y in scaled:  # round brush ends and joints
            draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=255)
    draw.ellipse((120 * scale, 300 * scale, 235 * scale, 385 * scale), fill=255)
    return mask
