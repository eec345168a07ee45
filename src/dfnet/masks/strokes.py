"""DeepFill v2 style free-form stroke masks, optionally inside one of the paper's hole-ratio bins.

Everything random comes from the ``numpy.random.Generator`` passed in; vertices are rounded to whole pixels and
drawn with OpenCV's integer line/circle rasteriser, so a seed gives the same masks on any machine.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from dfnet.masks.bins import (
    ALL_BINS,
    HOLE_RATIO_BINS,
    bin_label,
    bin_of,
    hole_fraction,
    mask_shape,
    parse_bins,
)

REFERENCE_SIDE = 256  # stroke widths in StrokeConfig are pixels at this side and scale with the mask


@dataclass(frozen=True)
class StrokeConfig:
    """DeepFill v2 stroke parameters; widths are pixels at a 256-pixel short side and scale with the mask."""

    min_strokes: int = (
        1  # strokes per mask without a target bin (with one, strokes are added until it is met)
    )
    max_strokes: int = 3
    min_vertices: int = 4  # vertices per stroke, inclusive range
    max_vertices: int = 11
    mean_angle: float = 2 * math.pi / 5  # segment direction; reflected (2*pi - angle) on alternate vertices
    angle_range: float = 2 * math.pi / 15
    # False: each turn in mean_angle ± angle_range; True (DeepFill v2): each stroke draws its own interval
    # [mean_angle - U(0, angle_range), mean_angle + U(0, angle_range)] once and every turn is drawn from it.
    angle_per_stroke: bool = False
    min_width: float = 12.0
    max_width: float = 40.0
    segment_length: float = 1 / 8  # mean segment length as a fraction of the diagonal (sigma = half of it)
    flip: bool = True  # random horizontal and vertical flips of the whole mask
    # Brush width multiplier per target bin, so small bins get thin strokes and [40%, 50%) needs few strokes.
    bin_width_scale: tuple[float, ...] = (0.5, 0.75, 1.0, 1.25, 1.5)
    min_hole_ratio: float = 0.01  # bin 0 masks hold at least this much hole

    def __post_init__(self) -> None:
        if not 1 <= self.min_strokes <= self.max_strokes:
            raise ValueError("need 1 <= min_strokes <= max_strokes")
        if not 2 <= self.min_vertices <= self.max_vertices:
            raise ValueError("need 2 <= min_vertices <= max_vertices")
        if not 0 < self.min_width <= self.max_width:
            raise ValueError("need 0 < min_width <= max_width")
        if len(self.bin_width_scale) != len(HOLE_RATIO_BINS) or min(self.bin_width_scale) <= 0:
            raise ValueError(f"bin_width_scale needs {len(HOLE_RATIO_BINS)} positive values")
        if self.segment_length <= 0 or self.angle_range < 0:
            raise ValueError("need segment_length > 0 and angle_range >= 0")
        if not 0 <= self.min_hole_ratio < HOLE_RATIO_BINS[0][1]:
            raise ValueError("min_hole_ratio must lie inside the first bin")


# The paper's training masks (Section 4.1: "1000 masks according to the method in [35]"): DeepFill v2 free-form
# strokes, 1-3 per mask, 4-11 segments each (5-12 vertices), one turning-angle interval per stroke, no bins.
PAPER_STROKES = StrokeConfig(min_vertices=5, max_vertices=12, angle_per_stroke=True)
PAPER_MASK_COUNT = 1000


class _Stroke:
    """One free-form stroke being drawn segment by segment (vertices rounded to whole pixels)."""

    def __init__(self, rng: np.random.Generator, height: int, width: int, brush: int, config: StrokeConfig):
        self.brush = brush
        self.points = [(int(rng.integers(0, width)), int(rng.integers(0, height)))]
        n_vertices = int(rng.integers(config.min_vertices, config.max_vertices + 1))
        mean_length = math.hypot(height, width) * config.segment_length
        x, y = self.points[0]
        if config.angle_per_stroke:
            low = config.mean_angle - float(rng.uniform(0, config.angle_range))
            high = config.mean_angle + float(rng.uniform(0, config.angle_range))
        for i in range(n_vertices - 1):
            if config.angle_per_stroke:
                angle = float(rng.uniform(low, high))
            else:
                angle = config.mean_angle + float(rng.uniform(-config.angle_range, config.angle_range))
            if i % 2 == 0:
                angle = 2 * math.pi - angle
            length = min(max(float(rng.normal(mean_length, mean_length / 2)), 0.0), 2 * mean_length)
            x = min(max(round(x + length * math.cos(angle)), 0), width - 1)
            y = min(max(round(y + length * math.sin(angle)), 0), height - 1)
            self.points.append((x, y))

    @property
    def n_segments(self) -> int:
        return len(self.points) - 1

    def draw_segment(self, canvas: np.ndarray, i: int) -> None:
        """Draw segment ``i`` with round joints (a filled circle at both ends) onto a uint8 canvas."""
        start, end = self.points[i], self.points[i + 1]
        cv2.line(canvas, start, end, 1, thickness=self.brush, lineType=cv2.LINE_8)
        for point in (start, end):
            cv2.circle(canvas, point, self.brush // 2, 1, thickness=-1, lineType=cv2.LINE_8)


def _brush(rng: np.random.Generator, height: int, width: int, scale: float, config: StrokeConfig) -> int:
    side = min(height, width) / REFERENCE_SIDE
    return max(1, int(rng.uniform(config.min_width, config.max_width) * side * scale))


def _flip(canvas: np.ndarray, rng: np.random.Generator, config: StrokeConfig) -> np.ndarray:
    if config.flip:
        if rng.random() < 0.5:
            canvas = canvas[:, ::-1]
        if rng.random() < 0.5:
            canvas = canvas[::-1, :]
    return np.ascontiguousarray(canvas, dtype=bool)


def _free_form(rng: np.random.Generator, height: int, width: int, config: StrokeConfig) -> np.ndarray:
    canvas = np.zeros((height, width), dtype=np.uint8)
    for _ in range(int(rng.integers(config.min_strokes, config.max_strokes + 1))):
        stroke = _Stroke(rng, height, width, _brush(rng, height, width, 1.0, config), config)
        for i in range(stroke.n_segments):
            stroke.draw_segment(canvas, i)
    return canvas


def _free_form_in_bin(
    rng: np.random.Generator, height: int, width: int, target_bin: int, config: StrokeConfig
) -> np.ndarray:
    """Add stroke segments until a random target ratio inside the bin is reached, never overshooting it.

    A segment that would push the mask past the bin's upper edge is dropped and a new stroke begins (or, if
    the mask is already inside the bin, the mask is finished), so every bin is reached without rejections.
    """
    low, high = HOLE_RATIO_BINS[target_bin]
    low = max(low, config.min_hole_ratio)
    target = float(rng.uniform(low, high))
    scale = config.bin_width_scale[target_bin]
    canvas = np.zeros((height, width), dtype=np.uint8)
    trial = canvas.copy()
    ratio = 0.0
    for _ in range(10_000):
        stroke = _Stroke(rng, height, width, _brush(rng, height, width, scale, config), config)
        for i in range(stroke.n_segments):
            np.copyto(trial, canvas)
            stroke.draw_segment(trial, i)
            trial_ratio = hole_fraction(trial)
            if trial_ratio >= high:
                if ratio >= low:
                    return canvas
                break  # too big a step: start another (random width) stroke
            canvas, trial, ratio = trial, canvas, trial_ratio
            if ratio >= target:
                return canvas
    raise RuntimeError(f"could not reach hole ratio bin {bin_label(target_bin)} at {width}x{height}")


def generate_mask(
    size: int | Sequence[int],
    rng: np.random.Generator,
    target_bin: int | None = None,
    config: StrokeConfig | None = None,
) -> np.ndarray:
    """One free-form hole mask, bool (H, W); ``size`` is a side or (height, width); optionally inside a bin.

    Without ``target_bin`` it is a plain DeepFill v2 mask (1-3 strokes); with one, strokes (widths scaled by
    ``config.bin_width_scale``) are added until the hole ratio lies in ``HOLE_RATIO_BINS[target_bin]``.
    """
    config = config or StrokeConfig()
    height, width = mask_shape(size)
    if target_bin is None:
        canvas = _free_form(rng, height, width, config)
    else:
        if target_bin not in ALL_BINS:
            raise ValueError(f"target_bin must lie in 0..{len(HOLE_RATIO_BINS) - 1}, got {target_bin}")
        canvas = _free_form_in_bin(rng, height, width, target_bin, config)
    return _flip(canvas, rng, config)


def mask_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of mask ``index`` in a set made from ``seed`` (independent streams, order-free)."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(index,))))


@dataclass(frozen=True)
class GeneratedMask:
    """A generated mask with its hole ratio and paper bin (None only for unbinned masks over 50%)."""

    index: int
    hole_mask: np.ndarray
    hole_ratio: float
    bin: int | None


def generate_masks(
    count: int,
    size: int | Sequence[int],
    seed: int = 0,
    bins: Sequence[int] | None = ALL_BINS,
    config: StrokeConfig | None = None,
) -> Iterator[GeneratedMask]:
    """Yield ``count`` masks balanced across ``bins`` (mask i goes to bins[i % len(bins)]); None = unbinned.

    Mask i depends only on (seed, i, its bin, size, config), so a longer set starts with the shorter one.
    """
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    bins = parse_bins(bins) if bins is not None else None
    for i in range(count):
        target = bins[i % len(bins)] if bins else None
        hole = generate_mask(size, mask_rng(seed, i), target, config)
        ratio = hole_fraction(hole.view(np.uint8))
        yield GeneratedMask(i, hole, ratio, bin_of(ratio))
