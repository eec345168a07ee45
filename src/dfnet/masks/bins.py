"""The paper's five hole-ratio bins (Section 4.1) and the shape and hole-fraction helpers every mask module uses."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

# The five evaluation bins of the paper (Section 4.1), as [low, high) hole ratios.
HOLE_RATIO_BINS: tuple[tuple[float, float], ...] = (
    (0.0, 0.1),
    (0.1, 0.2),
    (0.2, 0.3),
    (0.3, 0.4),
    (0.4, 0.5),
)
ALL_BINS: tuple[int, ...] = tuple(range(len(HOLE_RATIO_BINS)))


def bin_label(index: int) -> str:
    """'[10%, 20%)' style label of a bin."""
    low, high = HOLE_RATIO_BINS[index]
    return f"[{low:.0%}, {high:.0%})"


def bin_of(ratio: float) -> int | None:
    """Index of the paper bin holding ``ratio``, or None when it lies outside [0, 50%)."""
    for i, (low, high) in enumerate(HOLE_RATIO_BINS):
        if low <= ratio < high:
            return i
    return None


def parse_bins(text: str | Sequence[int] | None) -> tuple[int, ...] | None:
    """Validate bins given as '0,2,4' or a sequence of ints; None stays None (no bin constraint)."""
    if text is None:
        return None
    if isinstance(text, str):
        try:
            values = [int(part) for part in text.replace(" ", "").split(",") if part]
        except ValueError:
            raise ValueError(f"bins must be comma-separated integers 0..4, got {text!r}") from None
    else:
        values = [int(v) for v in text]
    if not values:
        raise ValueError("at least one bin is needed")
    bad = [v for v in values if v not in ALL_BINS]
    if bad:
        raise ValueError(f"bins must lie in 0..{len(HOLE_RATIO_BINS) - 1}, got {bad}")
    if len(set(values)) != len(values):
        raise ValueError(f"bins must not repeat, got {values}")
    return tuple(values)


def hole_fraction(hole_mask: np.ndarray) -> float:
    """Share of hole pixels of a uint8 view of a mask (OpenCV's count: fast on large masks)."""
    return cv2.countNonZero(hole_mask) / hole_mask.size


def mask_shape(size: int | Sequence[int]) -> tuple[int, int]:
    """(height, width) from a side or an (height, width) pair, as numpy shapes are written."""
    if isinstance(size, (int, np.integer)):
        height = width = int(size)
    else:
        height, width = (int(v) for v in size)
    if height < 8 or width < 8:
        raise ValueError(f"masks need at least 8x8 pixels, got {width}x{height}")
    return height, width
