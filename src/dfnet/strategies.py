"""Any-resolution inpainting: named strategies around a network that only takes fixed size multiples.

Every strategy here is a pure function on numpy arrays. It receives a batch of uint8 images
``(N, H, W, 3)``, boolean hole masks ``(N, H, W)`` (True = hole) and a :class:`Network` (a function
that completes float images whose sides are multiples of ``size_multiple``), and returns a
:class:`Completion` of the input's size whose known pixels are bit-identical to the input.

Strategies (parameters are keyword options of the same name):

- ``original``: reflect-pad to the next multiple of ``size_multiple``, inpaint, crop back. The
  whole image goes through the network at its own resolution.
- ``resize`` (``max_side=512``, ``feather=None``): shrink so the longest side is at most
  ``max_side``, inpaint (padded as in ``original``), scale the answer back up and use it only for
  hole pixels. Images already small enough are not resized.
- ``crop`` (``context=2.0``, ``min_window=None``, ``max_side=None``, ``feather=None``): one
  square context window per connected hole region, ``context`` times the region's extent and at
  least ``min_window`` (default: the network's working size) on a side; overlapping windows are
  merged until none overlap, so every hole pixel is filled by exactly one window. Each window goes
  through ``resize`` with ``max_side`` (default: the working size). Memory depends on the windows,
  not on the image, so very large photos with small holes are cheap.
- ``auto`` (``trigger=1024`` plus the ``crop`` options): ``original`` when the longest side is at
  most ``trigger``, ``crop`` above it.

``feather`` (pixels; ``None`` = two shrunk pixels' worth, 0 = off) only matters where an image or
window was shrunk: the enlarged fill is shifted, in a band of that width inside the hole, by the
colour step measured along the hole's border (smoothed along it and fading to nothing at the band's
inner edge), so the fill meets the full-resolution pixels around it without a seam. Known pixels are
never changed.

An image without hole pixels is returned unchanged (``raw`` = the input, ``alpha`` = 0) and never
reaches the network. Where a strategy did not run the network over a pixel (outside every ``crop``
window) ``raw`` is the input and ``alpha`` is 0.
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from scipy import ndimage

MAX_OPTION_VALUE = 1_000_000  # pixels or factors beyond this are typos, and inf/NaN would fail deep inside

Box = tuple[int, int, int, int]  # y0, y1, x0, x1 (half-open)


@dataclass
class Completion:
    """A completed image and, when asked for, DFNet's raw completion and alpha map (same kind and size)."""

    result: Any
    raw: Any = None
    alpha: Any = None


@dataclass
class Filled:
    """What a network call returns: float32 arrays (N, H, W, 3) in [0, 1]; raw/alpha only with details."""

    result: np.ndarray
    raw: np.ndarray | None = None
    alpha: np.ndarray | None = None


NetworkFn = Callable[[np.ndarray, np.ndarray, bool], Filled]


@dataclass(frozen=True)
class Network:
    """A completion function for float images (N, H, W, 3) whose sides are multiples of ``size_multiple``.

    ``run(images, holes, details)`` must return the composited result (known pixels = input) and,
    with ``details``, the raw completion and the alpha map expanded to three channels.
    """

    run: NetworkFn
    size_multiple: int = 256
    working_size: int = 512


# ---------------------------------------------------------------------------------------------
# Array helpers
# ---------------------------------------------------------------------------------------------
def to_float(images: np.ndarray) -> np.ndarray:
    """uint8 -> float32 in [0, 1]."""
    return images.astype(np.float32) / np.float32(255.0)


def to_uint8(images: np.ndarray) -> np.ndarray:
    """float in [0, 1] -> uint8, rounded to nearest."""
    return np.clip(np.rint(images * 255.0), 0, 255).astype(np.uint8)


def pad_amounts(size: int, multiple: int) -> tuple[int, int]:
    """Padding (before, after) that brings ``size`` to the next multiple, split as evenly as possible."""
    total = -size % multiple
    return total // 2, total - total // 2


def reflect_pad(array: np.ndarray, pad_h: tuple[int, int], pad_w: tuple[int, int]) -> np.ndarray:
    """Reflect-pad axes 1 and 2 of a batch; pads longer than the side repeat the reflection.

    numpy reflects repeatedly when a pad exceeds the side and repeats the pixel of a side of 1,
    so this works down to 1x1 images.
    """
    widths = [(0, 0), pad_h, pad_w] + [(0, 0)] * (array.ndim - 3)
    return np.pad(array, widths, mode="reflect")


def scaled_size(height: int, width: int, max_side: int) -> tuple[int, int]:
    """(height, width) shrunk so the longest side is at most ``max_side`` (never enlarged)."""
    scale = max_side / max(height, width)
    if scale >= 1:
        return height, width
    return max(1, round(height * scale)), max(1, round(width * scale))


def resize_images(images: np.ndarray, height: int, width: int, shrink: bool) -> np.ndarray:
    """Resize a float batch (N, H, W, 3): area averaging to shrink, bilinear to enlarge."""
    interpolation = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    return np.stack([cv2.resize(im, (width, height), interpolation=interpolation) for im in images])


def shrink_holes(holes: np.ndarray, height: int, width: int) -> np.ndarray:
    """Shrink hole masks so a small pixel is a hole if ANY pixel it covers is one.

    This keeps every small known pixel free of hole content and makes thin holes survive the shrink.
    """
    as_float = holes.astype(np.float32)
    return np.stack([cv2.resize(h, (width, height), interpolation=cv2.INTER_AREA) > 0 for h in as_float])


def finish(images: np.ndarray, holes: np.ndarray, filled: Filled) -> Completion:
    """Quantise a float completion and copy every known pixel from the uint8 input (bit-identical)."""
    result = np.where(holes[..., None], to_uint8(filled.result), images)
    raw = None if filled.raw is None else to_uint8(filled.raw)
    alpha = None if filled.alpha is None else to_uint8(filled.alpha)
    return Completion(result, raw, alpha)


def _unchanged(images: np.ndarray, details: bool) -> Completion:
    """The completion of pixels the network never saw: the input itself, raw = input and alpha = 0."""
    return Completion(
        images.copy(),
        images.copy() if details else None,
        np.zeros_like(images) if details else None,
    )


def _write_fields(out: Completion, where: Any, done: Completion, index: Any = ()) -> None:
    """Write every array ``done`` holds (``done.<field>[index]``) into ``out.<field>[where]``."""
    for field in ("result", "raw", "alpha"):
        target = getattr(out, field)
        if target is not None:
            target[where] = getattr(done, field)[index]


def _map_filled(filled: Filled, fn: Callable[[np.ndarray], np.ndarray]) -> Filled:
    """Apply ``fn`` to every array of a :class:`Filled`."""
    return Filled(*(None if a is None else fn(a) for a in (filled.result, filled.raw, filled.alpha)))


# ---------------------------------------------------------------------------------------------
# original / resize (float pipelines; batches of one size)
# ---------------------------------------------------------------------------------------------
def padded_fill(images: np.ndarray, holes: np.ndarray, net: Network, details: bool) -> Filled:
    """Reflect-pad float images and masks to the network's multiple, run it, crop back."""
    height, width = images.shape[1:3]
    pad_h = pad_amounts(height, net.size_multiple)
    pad_w = pad_amounts(width, net.size_multiple)
    filled = net.run(reflect_pad(images, pad_h, pad_w), reflect_pad(holes, pad_h, pad_w), details)
    return _map_filled(filled, lambda a: a[:, pad_h[0] : pad_h[0] + height, pad_w[0] : pad_w[0] + width])


def resized_fill(
    images: np.ndarray, holes: np.ndarray, net: Network, details: bool, max_side: int, feather: int | None
) -> Filled:
    """Shrink to ``max_side``, fill with :func:`padded_fill`, scale back; seam-match in the holes."""
    height, width = images.shape[1:3]
    small_h, small_w = scaled_size(height, width, max_side)
    if (small_h, small_w) == (height, width):
        return padded_fill(images, holes, net, details)
    small = padded_fill(
        resize_images(images, small_h, small_w, shrink=True),
        shrink_holes(holes, small_h, small_w),
        net,
        details,
    )
    filled = _map_filled(small, lambda a: resize_images(a, height, width, shrink=False))
    band = round(2 * max(height / small_h, width / small_w)) if feather is None else feather
    for i in range(len(images)):
        filled.result[i] = match_seam(images[i], filled.result[i], holes[i], band)
    return filled


def match_seam(image: np.ndarray, fill: np.ndarray, hole: np.ndarray, band: int) -> np.ndarray:
    """Shift a rescaled ``fill`` inside the hole so it meets the known pixels around it without a step.

    On the hole's border pixels the step is (mean of the known 8-neighbours) - fill; it is smoothed
    along the border, carried inward from the nearest border pixel and faded out linearly over
    ``band`` pixels. Known pixels are not touched; the fill deeper than ``band`` is unchanged. The work
    is done in :func:`seam_windows` around the hole regions (the same values as over the whole picture,
    at the cost of the holes, not of the picture).
    """
    if band <= 0 or not hole.any() or hole.all():
        return fill
    out = fill.copy()
    for y0, y1, x0, x1 in seam_windows(hole, band):
        region = (slice(y0, y1), slice(x0, x1))
        shifted = seam_shift(image[region], fill[region], hole[region], band)
        np.copyto(out[region], shifted, where=hole[region][..., None])
    return out


def seam_windows(hole: np.ndarray, band: int) -> list[Box]:
    """Boxes around the hole regions wide enough that :func:`seam_shift` inside each sees all it reads.

    A hole pixel's shift comes from the nearest border pixel (at most ``band`` + 2 away where the fade is
    not 0), whose value is a Gaussian (radius 4 sigma = 2 ``band``) of steps read from 3x3 neighbourhoods.
    """
    margin = 3 * band + 4
    height, width = hole.shape
    grown = [
        (max(y0 - margin, 0), min(y1 + margin, height), max(x0 - margin, 0), min(x1 + margin, width))
        for y0, y1, x0, x1 in hole_boxes(hole)
    ]
    return merge_boxes(grown)


def seam_shift(image: np.ndarray, fill: np.ndarray, hole: np.ndarray, band: int) -> np.ndarray:
    """:func:`match_seam`'s computation over a whole (window of a) picture."""
    if not hole.any() or hole.all():
        return fill
    known = ~hole
    ones = np.ones((3, 3), dtype=np.float32)
    neighbours = ndimage.convolve(known.astype(np.float32), ones, mode="constant")
    border = hole & (neighbours > 0)
    sigma = band / 2.0
    border_weight = np.maximum(ndimage.gaussian_filter(border.astype(np.float32), sigma), 1e-6)
    offset = np.empty_like(fill)
    for c in range(fill.shape[2]):
        known_values = np.where(known, image[..., c], 0.0).astype(np.float32)
        known_mean = ndimage.convolve(known_values, ones, mode="constant") / np.maximum(neighbours, 1.0)
        step = np.where(border, known_mean - fill[..., c], 0.0).astype(np.float32)
        offset[..., c] = ndimage.gaussian_filter(step, sigma) / border_weight
    _, (near_y, near_x) = ndimage.distance_transform_edt(~border, return_indices=True)
    depth = ndimage.distance_transform_edt(hole)
    fade = np.clip((band + 1 - depth) / band, 0.0, 1.0) * hole
    return np.clip(fill + offset[near_y, near_x] * fade[..., None], 0.0, 1.0)


def inpaint_original(
    images: np.ndarray, holes: np.ndarray, net: Network, details: bool = False
) -> Completion:
    """Reflect-pad to the next multiple of the network's size multiple, inpaint, crop back."""
    return finish(images, holes, padded_fill(to_float(images), holes, net, details))


def inpaint_resize(
    images: np.ndarray,
    holes: np.ndarray,
    net: Network,
    details: bool = False,
    *,
    max_side: int = 512,
    feather: int | None = None,
) -> Completion:
    """Shrink so the longest side is at most ``max_side``, inpaint, scale up, fill only the holes."""
    _check_positive(max_side=max_side)
    return finish(images, holes, resized_fill(to_float(images), holes, net, details, max_side, feather))


# ---------------------------------------------------------------------------------------------
# crop: one context window per hole region
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class HoleRegions:
    """The 8-connected hole regions of a mask: their bounding boxes, and labels over the holes' extent only
    (a large photo with small holes is labelled in the box around its holes, not over the whole picture)."""

    boxes: list[Box]  # region k (1-based) has boxes[k - 1]
    labels: np.ndarray  # over `extent`: 0 = known, k = region k
    extent: Box

    def pixels_of(self, region_numbers: list[int], window: Box) -> np.ndarray:
        """Bool mask over ``window``: the pixels of the regions numbered ``region_numbers`` (1-based)."""
        y0, y1, x0, x1 = window
        top, bottom, left, right = self.extent
        inside = np.zeros((y1 - y0, x1 - x0), bool)
        rows, cols = slice(max(y0, top), min(y1, bottom)), slice(max(x0, left), min(x1, right))
        if rows.start < rows.stop and cols.start < cols.stop:
            labels = self.labels[rows.start - top : rows.stop - top, cols.start - left : cols.stop - left]
            inside[rows.start - y0 : rows.stop - y0, cols.start - x0 : cols.stop - x0] = np.isin(
                labels, region_numbers
            )
        return inside


def hole_extent(hole: np.ndarray) -> Box | None:
    """Bounding box (y0, y1, x0, x1) of the set pixels of a bool mask, None when it has none."""
    x, y, width, height = cv2.boundingRect(np.ascontiguousarray(hole, dtype=bool).view(np.uint8))
    return (y, y + height, x, x + width) if width else None


def hole_regions(hole: np.ndarray) -> HoleRegions:
    """The 8-connected regions of a bool hole mask (boxes in label order; see :class:`HoleRegions`)."""
    extent = hole_extent(hole)
    if extent is None:
        return HoleRegions([], np.zeros((0, 0), np.int32), (0, 0, 0, 0))
    top, _, left, _ = extent
    crop = np.ascontiguousarray(hole[extent[0] : extent[1], extent[2] : extent[3]], dtype=bool)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(crop.view(np.uint8), connectivity=8)
    boxes = [
        (int(top + y), int(top + y + h), int(left + x), int(left + x + w)) for x, y, w, h, _ in stats[1:count]
    ]
    return HoleRegions(boxes, labels, extent)


def hole_boxes(hole: np.ndarray) -> list[Box]:
    """Bounding boxes of the 8-connected hole regions of one mask."""
    return hole_regions(hole).boxes


def _window_axis(start: int, stop: int, side: int, size: int) -> tuple[int, int]:
    """A span of ``side`` around [start, stop) on an axis of ``size``, shifted to fit (clipped if too long)."""
    if side >= size:
        return 0, size
    begin = min(max(start - (side - (stop - start)) // 2, 0), size - side)
    return begin, begin + side


def context_window(box: Box, shape: tuple[int, int], context: float, min_window: int) -> Box:
    """A square window ``context`` times the box's extent (at least ``min_window``) around it, in the image."""
    y0, y1, x0, x1 = box
    side = max(math.ceil(context * max(y1 - y0, x1 - x0)), min_window)
    return (*_window_axis(y0, y1, side, shape[0]), *_window_axis(x0, x1, side, shape[1]))


def boxes_overlap(a: Box, b: Box) -> bool:
    """True when two half-open boxes share at least one pixel."""
    return a[0] < b[1] and b[0] < a[1] and a[2] < b[3] and b[2] < a[3]


def merge_boxes(boxes: list[Box]) -> list[Box]:
    """Replace overlapping boxes by their union until no two boxes overlap."""
    merged: list[Box] = []
    for box in boxes:
        k = 0
        while k < len(merged):
            if boxes_overlap(box, merged[k]):
                other = merged.pop(k)
                box = (
                    min(box[0], other[0]),
                    max(box[1], other[1]),
                    min(box[2], other[2]),
                    max(box[3], other[3]),
                )
                k = 0  # the grown box may now overlap boxes already passed
            else:
                k += 1
        merged.append(box)
    return merged


def crop_windows(hole: np.ndarray, context: float, min_window: int) -> list[Box]:
    """Non-overlapping windows such that every hole region lies wholly inside exactly one of them."""
    shape = hole.shape[:2]
    return merge_boxes([context_window(b, shape, context, min_window) for b in hole_boxes(hole)])


def _crop_one(
    image: np.ndarray,
    hole: np.ndarray,
    net: Network,
    details: bool,
    windows: list[Box],
    max_side: int,
    feather: int | None,
) -> Completion:
    """Fill one image window by window; only hole pixels of each window are written."""
    out = _unchanged(image, details)
    for y0, y1, x0, x1 in windows:
        sub, sub_hole = image[None, y0:y1, x0:x1], hole[None, y0:y1, x0:x1]
        done = finish(sub, sub_hole, resized_fill(to_float(sub), sub_hole, net, details, max_side, feather))
        _write_fields(out, (slice(y0, y1), slice(x0, x1)), done, index=0)
    return out


def inpaint_crop(
    images: np.ndarray,
    holes: np.ndarray,
    net: Network,
    details: bool = False,
    *,
    context: float = 2.0,
    min_window: int | None = None,
    max_side: int | None = None,
    feather: int | None = None,
) -> Completion:
    """Inpaint each hole region in its own context window at the network's working size."""
    if context < 1:
        raise ValueError(
            f"crop: context must be at least 1 (the window must contain its hole), got {context}"
        )
    min_window = net.working_size if min_window is None else min_window
    max_side = net.working_size if max_side is None else max_side
    _check_positive(min_window=min_window, max_side=max_side)
    done = [
        _crop_one(im, h, net, details, crop_windows(h, context, min_window), max_side, feather)
        for im, h in zip(images, holes, strict=True)
    ]
    return stack_completions(done)


def inpaint_auto(
    images: np.ndarray,
    holes: np.ndarray,
    net: Network,
    details: bool = False,
    *,
    trigger: int = 1024,
    **crop_options: Any,
) -> Completion:
    """``original`` up to ``trigger`` pixels on the longest side, ``crop`` above."""
    check_options("crop", crop_options)
    if max(images.shape[1:3]) <= trigger:
        return inpaint_original(images, holes, net, details)
    return inpaint_crop(images, holes, net, details, **crop_options)


# ---------------------------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------------------------
STRATEGIES: dict[str, Callable[..., Completion]] = {
    "auto": inpaint_auto,
    "original": inpaint_original,
    "resize": inpaint_resize,
    "crop": inpaint_crop,
}


# Every strategy option: (smallest value, whole numbers only); the largest is MAX_OPTION_VALUE.
# context >= 1: a crop window holds its whole hole region; feather 0 turns seam matching off.
OPTION_RANGES: dict[str, tuple[int, bool]] = {
    "max_side": (1, True),
    "min_window": (1, True),
    "trigger": (1, True),
    "feather": (0, True),
    "context": (1, False),
}


def strategy_options(name: str) -> list[str]:
    """The keyword options a strategy accepts (``auto`` also accepts those of ``crop``)."""
    params = inspect.signature(STRATEGIES[name]).parameters.values()
    own = [p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY]
    return own + (strategy_options("crop") if name == "auto" else [])


def check_options(name: str, options: dict[str, Any]) -> None:
    """Refuse an option ``name`` does not take, or a value outside its range (None: the default)."""
    allowed = strategy_options(name)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(
            f"strategy {name!r} has no option {unknown[0]!r} (options: {', '.join(allowed) or 'none'})"
        )
    for key, value in options.items():
        if value is not None:
            check_option(key, value)


def check_option(key: str, value: Any) -> None:
    """Refuse a strategy option value outside :data:`OPTION_RANGES`, naming the option and its range."""
    low, whole = OPTION_RANGES[key]
    kind = "a whole number" if whole else "a number"
    is_number = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if (
        not is_number
        or not math.isfinite(value)
        or not low <= value <= MAX_OPTION_VALUE
        or (whole and value != int(value))
    ):
        shown = f"{value:g}" if is_number else repr(value)
        raise ValueError(f"strategy option {key} must be {kind} in {low}..{MAX_OPTION_VALUE:,}, got {shown}")


def _check_positive(**values: int) -> None:
    for key, value in values.items():
        if value < 1:
            raise ValueError(f"{key} must be a positive number of pixels, got {value}")


def stack_arrays(arrays: list[np.ndarray]) -> np.ndarray:
    """Stack into a batch; a single array becomes a view, not a copy (a large photo is one image)."""
    return arrays[0][None] if len(arrays) == 1 else np.stack(arrays)


def stack_completions(parts: list[Completion]) -> Completion:
    """Stack single-image completions (no leading axis) into one batch."""

    def stack(field: str) -> np.ndarray | None:
        arrays = [getattr(p, field) for p in parts]
        return None if arrays[0] is None else stack_arrays(arrays)

    return Completion(stack("result"), stack("raw"), stack("alpha"))


def run_strategy(
    name: str,
    images: np.ndarray,
    holes: np.ndarray,
    net: Network,
    details: bool = False,
    **options: Any,
) -> Completion:
    """Run a named strategy on a batch; images without holes are returned unchanged, unseen by the net."""
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r} (choose from {', '.join(STRATEGIES)})")
    check_options(name, options)
    if images.ndim != 4 or images.shape[3] != 3 or images.dtype != np.uint8:
        raise ValueError(f"images must be uint8 (N, H, W, 3), got {images.dtype} {images.shape}")
    if holes.shape != images.shape[:3]:
        raise ValueError(f"hole masks {holes.shape} do not match images {images.shape[:3]}")
    holes = holes.astype(bool, copy=False)
    todo = np.flatnonzero(holes.reshape(len(holes), -1).any(axis=1))
    if len(todo) == len(images):  # the common case: no copies of (possibly huge) inputs
        return STRATEGIES[name](images, holes, net, details, **options)
    out = _unchanged(images, details)
    if len(todo) == 0:
        return out
    _write_fields(out, todo, STRATEGIES[name](images[todo], holes[todo], net, details, **options))
    return out
