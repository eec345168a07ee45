"""The evaluation's inputs: image folders and mask sets, fitted to the evaluation size, each mask with its bin."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from dfnet.choices import literal_values
from dfnet.imageio import IMAGE_EXTENSIONS, ImageLoadError, load_image, load_mask
from dfnet.masks import bin_of

MASK_INDEX = "index.csv"


class EvaluationError(ValueError):
    """A problem with the evaluation inputs (one-line, user-facing message)."""


def list_images(root: str | os.PathLike) -> list[Path]:
    """Every image file under ``root`` (recursively), sorted by relative POSIX path.

    Entries that are not regular files (broken links, FIFOs) are listed too, so that reading them
    fails and the run reports them as skipped instead of leaving them out silently.
    """
    root = Path(root)
    if not root.is_dir():
        raise EvaluationError(f"{root}: not a directory of images")
    found = [p for p in root.rglob("*") if not p.is_dir() and p.suffix.lower() in IMAGE_EXTENSIONS]
    if not found:
        raise EvaluationError(f"{root}: no images ({', '.join(IMAGE_EXTENSIONS)})")
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def fit_square(image: Image.Image, size: int, resample: Image.Resampling) -> Image.Image:
    """Resize so the short side is ``size`` (keeping the aspect ratio), then crop the centre square."""
    width, height = image.size
    if (width, height) == (size, size):
        return image
    scale = size / min(width, height)
    new_w, new_h = max(size, round(width * scale)), max(size, round(height * scale))
    if (new_w, new_h) != (width, height):
        image = image.resize((new_w, new_h), resample)
    left, top = (new_w - size) // 2, (new_h - size) // 2
    return image.crop((left, top, left + size, top + size))


# How images and masks are brought to size x size (the names of dfnet.data's resize_mode):
# resize_crop: short side to size, centre crop; resize: stretched, aspect not kept (the released test code).
EvalResize = Literal["resize_crop", "resize"]
RESIZE_CHOICES: tuple[str, ...] = literal_values(EvalResize)
RESIZE_WORDS = {"resize_crop": "short side resized + centre crop", "resize": "stretched (aspect not kept)"}


def _fit(picture: Image.Image, size: int, resize: str, resample: Image.Resampling) -> Image.Image:
    """``picture`` at size x size, by :data:`RESIZE_CHOICES` ``resize``."""
    if resize == "resize":
        return picture if picture.size == (size, size) else picture.resize((size, size), resample)
    return fit_square(picture, size, resample)


def load_eval_image(path: str | os.PathLike, size: int, resize: str = "resize_crop") -> np.ndarray:
    """An image as uint8 (size, size, 3): short side resized (bicubic) and centre-cropped, or stretched
    (bilinear, as the released test code's resize does)."""
    rgb = load_image(path).rgb
    resample = Image.Resampling.BILINEAR if resize == "resize" else Image.Resampling.BICUBIC
    return np.array(_fit(Image.fromarray(rgb), size, resize, resample))


def load_eval_mask(
    path: str | os.PathLike, size: int, resize: str = "resize_crop", invert: bool = False
) -> np.ndarray:
    """A hole mask as bool (size, size), white = hole (black = hole when ``invert``), fitted like the images
    (nearest neighbour)."""
    hole = load_mask(path, invert=invert)
    picture = Image.fromarray(hole.astype(np.uint8) * 255, "L")
    return np.asarray(_fit(picture, size, resize, Image.Resampling.NEAREST)) > 127


@dataclass(frozen=True)
class MaskEntry:
    """One evaluation mask: its file, hole ratio at the evaluation size and paper bin (None: outside)."""

    path: Path
    hole_ratio: float
    bin: int | None


def mask_files(source: str | os.PathLike) -> list[Path]:
    """Mask files of an index.csv (column ``file``, in order; a directory holding one counts as it),
    else of a directory (every image file, sorted by relative path)."""
    source = Path(source)
    if source.is_dir() and (source / MASK_INDEX).is_file():
        source = source / MASK_INDEX
    if source.is_dir():
        return list_images(source)
    if source.is_file() and source.suffix.lower() == ".csv":
        with open(source, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if not reader.fieldnames or "file" not in reader.fieldnames:
                raise EvaluationError(f"{source}: a mask index needs a 'file' column")
            files = [source.parent / row["file"] for row in reader if row.get("file")]
        if not files:
            raise EvaluationError(f"{source}: the mask index lists no files")
        return files
    raise EvaluationError(f"{source}: give a directory of mask images or an index.csv")


def load_mask_set(
    source: str | os.PathLike,
    size: int,
    progress: bool = False,
    skipped: list[str] | None = None,
    resize: str = "resize_crop",
    invert: bool = False,
) -> list[MaskEntry]:
    """Read every mask once to measure its hole ratio at the evaluation size and find its bin.

    Unreadable masks are left out; their one-line errors are appended to ``skipped`` when given,
    and raised otherwise.
    """
    from tqdm import tqdm

    entries = []
    for path in tqdm(mask_files(source), desc="masks", unit="mask", disable=not progress, leave=False):
        try:
            hole = load_eval_mask(path, size, resize, invert)
        except (ImageLoadError, OSError) as err:
            if skipped is None:
                raise
            skipped.append(str(err))
            continue
        ratio = float(hole.mean())
        entries.append(MaskEntry(path, ratio, bin_of(ratio) if hole.any() else None))
    return entries
