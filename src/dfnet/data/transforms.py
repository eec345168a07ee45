"""Reading training images and turning them into fixed-size crops and tensors."""

from __future__ import annotations

import math
import os
import stat
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from PIL import Image

RESIZE_MODES = ("resize_crop", "resize", "crop")


@dataclass(frozen=True)
class ImageTransform:
    """Bring a PIL image to ``size`` x ``size`` RGB uint8: resize and/or crop, random flip when training.

    Modes: ``resize_crop`` scales the short side to ``size`` then crops; ``resize`` scales the whole image
    (aspect ratio not kept); ``crop`` crops at native resolution (upscaling only images that are too small).
    Crops are random when ``train`` is set, centred otherwise; flips only happen when training.
    ``max_zoom`` > 1 (``resize_crop``, training): the short side goes to ``size * z`` with z log-uniform in
    [1, max_zoom] before the crop, so a small set of photos yields views at several scales.
    """

    size: int
    mode: str = "resize_crop"
    train: bool = True
    hflip: bool = True
    max_zoom: float = 1.0

    def __post_init__(self) -> None:
        if self.mode not in RESIZE_MODES:
            raise ValueError(f"resize mode must be one of {', '.join(RESIZE_MODES)}, got {self.mode!r}")
        if self.size < 8:
            raise ValueError(f"image size must be at least 8, got {self.size}")
        if not self.max_zoom >= 1.0:
            raise ValueError(f"max_zoom must be >= 1, got {self.max_zoom}")

    def draft_size(self) -> tuple[int, int] | None:
        """A size JPEG decoding may shrink to (DCT scaling) without losing needed detail."""
        side = math.ceil(self.size * self.max_zoom)
        return None if self.mode == "crop" else (side, side)

    def _short_side(self, rng: np.random.Generator | None) -> int:
        """The short side ``resize_crop`` scales to: ``size``, or a random zoom of it when training."""
        if self.max_zoom == 1.0 or not self.train or rng is None:
            return self.size
        return round(self.size * math.exp(rng.uniform(0.0, math.log(self.max_zoom))))

    def __call__(self, image: Image.Image, rng: np.random.Generator | None = None) -> np.ndarray:
        """The transformed image, uint8 (size, size, 3)."""
        array = np.asarray(image.convert("RGB"))
        height, width = array.shape[:2]
        if self.mode == "resize":
            array = _resize(array, self.size, self.size)
        else:
            short = min(width, height)
            target = self._short_side(rng) if self.mode == "resize_crop" else self.size
            if short != target and (self.mode == "resize_crop" or short < self.size):
                scale = target / short
                new_w, new_h = max(self.size, round(width * scale)), max(self.size, round(height * scale))
                array = _resize(array, new_w, new_h)
        array = self._crop(array, rng)
        if self.train and self.hflip and rng is not None and rng.random() < 0.5:
            array = array[:, ::-1]
        return np.require(array, requirements=["C_CONTIGUOUS", "WRITEABLE"])

    def _crop(self, array: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
        height, width = array.shape[:2]
        spare_y, spare_x = height - self.size, width - self.size
        if self.train and rng is not None:
            top, left = int(rng.integers(0, spare_y + 1)), int(rng.integers(0, spare_x + 1))
        else:
            top, left = spare_y // 2, spare_x // 2
        return array[top : top + self.size, left : left + self.size]


def _resize(array: np.ndarray, width: int, height: int) -> np.ndarray:
    """Bilinear, or area averaging when shrinking by more than 2x (where bilinear would alias)."""
    strong_shrink = 2 * width < array.shape[1] or 2 * height < array.shape[0]
    return cv2.resize(
        array, (width, height), interpolation=cv2.INTER_AREA if strong_shrink else cv2.INTER_LINEAR
    )


def read_image(path: str | os.PathLike, draft: tuple[int, int] | None = None) -> Image.Image:
    """Decode an image file fully (raising on corrupt, truncated, empty or non-image files)."""
    if not stat.S_ISREG(os.stat(path).st_mode):  # a FIFO would block the loader forever
        raise OSError(f"{path}: not a regular file")
    with Image.open(path) as image:
        if draft is not None and image.format == "JPEG":
            image.draft("RGB", draft)
        image.load()
        if image.size[0] == 0 or image.size[1] == 0:
            raise ValueError("zero-size image")
        return image.convert("RGB") if image.mode != "RGB" else image


def to_tensor(rgb: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, 3) -> float (3, H, W) in [0, 1]."""
    return torch.from_numpy(rgb).permute(2, 0, 1).float().div_(255.0)
