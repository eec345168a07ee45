"""Random changes to masks drawn from a fixed set during training: this project's augmentation
(:func:`augment_mask`) and the paper's (:func:`paper_augment_mask`); both keep masks binary."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from dfnet.imageio import resize_mask
from dfnet.masks.bins import mask_shape


@dataclass(frozen=True)
class MaskAugmentConfig:
    """Random changes applied to masks drawn from a fixed set during training (all keep masks binary)."""

    flip: bool = True  # random horizontal and vertical flips
    rotate90: bool = True  # random multiple of 90 degrees
    scale: tuple[float, float] = (0.8, 1.25)  # log-uniform zoom relative to covering the output
    translate: float = 0.1  # extra random shift, fraction of the output side (borders are reflected)
    morph: float = 0.008  # max dilation/erosion radius as a fraction of the output's short side

    def __post_init__(self) -> None:
        if not 0 < self.scale[0] <= self.scale[1]:
            raise ValueError("need 0 < scale[0] <= scale[1]")
        if not 0 <= self.translate <= 1 or not 0 <= self.morph < 0.1:
            raise ValueError("translate must lie in [0, 1] and morph in [0, 0.1)")

    def apply(self, hole_mask: np.ndarray, rng: np.random.Generator, size: int | Sequence[int]) -> np.ndarray:
        """:func:`augment_mask` with this configuration."""
        return augment_mask(hole_mask, rng, size, self)


def _warp(mask: np.ndarray, rng: np.random.Generator, height: int, width: int, config: MaskAugmentConfig):
    """Random zoom + crop/shift of a uint8 mask onto a (height, width) output, nearest neighbour."""
    src_h, src_w = mask.shape
    cover = max(height / src_h, width / src_w)
    zoom = cover * math.exp(rng.uniform(math.log(config.scale[0]), math.log(config.scale[1])))
    slack_x = max(src_w * zoom - width, 0) / 2 + config.translate * width
    slack_y = max(src_h * zoom - height, 0) / 2 + config.translate * height
    shift_x, shift_y = rng.uniform(-1, 1) * slack_x, rng.uniform(-1, 1) * slack_y
    matrix = np.array(
        [
            [zoom, 0, width / 2 - zoom * src_w / 2 + shift_x],
            [0, zoom, height / 2 - zoom * src_h / 2 + shift_y],
        ]
    )
    return cv2.warpAffine(
        mask, matrix, (width, height), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_REFLECT_101
    )


def _morph(mask: np.ndarray, rng: np.random.Generator, config: MaskAugmentConfig) -> np.ndarray:
    """Dilate or erode by a random radius up to ``config.morph`` of the side; never erode to nothing."""
    max_radius = round(config.morph * min(mask.shape))
    radius = int(rng.integers(-max_radius, max_radius + 1)) if max_radius > 0 else 0
    if radius == 0:
        return mask
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * abs(radius) + 1, 2 * abs(radius) + 1))
    changed = cv2.dilate(mask, kernel) if radius > 0 else cv2.erode(mask, kernel)
    return changed if cv2.countNonZero(changed) else mask


def augment_mask(
    hole_mask: np.ndarray,
    rng: np.random.Generator,
    size: int | Sequence[int] | None = None,
    config: MaskAugmentConfig | None = None,
) -> np.ndarray:
    """A randomly flipped/rotated/zoomed/shifted/dilated-or-eroded copy of a mask, bool (height, width)."""
    config = config or MaskAugmentConfig()
    height, width = mask_shape(size if size is not None else hole_mask.shape)
    mask = np.asarray(hole_mask, dtype=bool)
    if config.rotate90:
        mask = np.rot90(mask, int(rng.integers(0, 4)))
    if config.flip:
        if rng.random() < 0.5:
            mask = mask[:, ::-1]
        if rng.random() < 0.5:
            mask = mask[::-1, :]
    warped = _warp(np.ascontiguousarray(mask, dtype=np.uint8), rng, height, width, config)
    return _morph(warped, rng, config).astype(bool)


@dataclass(frozen=True)
class PaperAugmentConfig:
    """The paper's augmentation of set masks, as the released training code applies it to each mask it loads.

    The mask is resized to the image (nearest neighbour: masks stay binary), flipped left-right with
    probability 1/2, then warped by one random affine map about the image centre: rotation uniform in
    ±``degrees``, scale uniform in ``scale``, translation uniform in ±``translate`` of each side (whole
    pixels), horizontal shear uniform in ±``shear`` degrees. Pixels the warp brings in from outside the
    mask are known (no hole).
    """

    hflip: bool = True
    degrees: float = 20.0
    scale: tuple[float, float] = (0.5, 2.0)
    translate: float = 0.2
    shear: float = 20.0

    def __post_init__(self) -> None:
        if not 0 < self.scale[0] <= self.scale[1]:
            raise ValueError("need 0 < scale[0] <= scale[1]")
        if not 0 <= self.translate <= 1 or not 0 <= self.degrees <= 180 or not 0 <= self.shear < 90:
            raise ValueError("need translate in [0, 1], degrees in [0, 180] and shear in [0, 90)")

    def apply(self, hole_mask: np.ndarray, rng: np.random.Generator, size: int | Sequence[int]) -> np.ndarray:
        """:func:`paper_augment_mask` with this configuration."""
        return paper_augment_mask(hole_mask, rng, size, self)


def paper_affine(rng: np.random.Generator, height: int, width: int, config: PaperAugmentConfig) -> np.ndarray:
    """A random 2x3 affine matrix (output from input pixel coordinates) drawn as :class:`PaperAugmentConfig` says."""
    angle = math.radians(rng.uniform(-config.degrees, config.degrees))
    shift_x = round(rng.uniform(-config.translate * width, config.translate * width))
    shift_y = round(rng.uniform(-config.translate * height, config.translate * height))
    zoom = rng.uniform(config.scale[0], config.scale[1])
    shear = math.radians(rng.uniform(-config.shear, config.shear))
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    linear = zoom * rotation @ np.array([[1.0, -math.tan(shear)], [0.0, 1.0]])
    centre = np.array([(width - 1) / 2, (height - 1) / 2])
    offset = centre + np.array([shift_x, shift_y]) - linear @ centre
    return np.hstack([linear, offset[:, None]])


def paper_augment_mask(
    hole_mask: np.ndarray,
    rng: np.random.Generator,
    size: int | Sequence[int],
    config: PaperAugmentConfig | None = None,
) -> np.ndarray:
    """The paper's augmentation of one set mask (see :class:`PaperAugmentConfig`), bool (height, width)."""

    config = config or PaperAugmentConfig()
    height, width = mask_shape(size)
    mask = resize_mask(np.asarray(hole_mask, dtype=bool), (width, height)).view(np.uint8)
    if config.hflip and rng.random() < 0.5:
        mask = mask[:, ::-1]
    matrix = paper_affine(rng, height, width, config)
    warped = cv2.warpAffine(
        np.ascontiguousarray(mask),
        matrix,
        (width, height),
        flags=cv2.INTER_NEAREST,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
    return warped.astype(bool)
