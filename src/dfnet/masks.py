"""Hole masks: the paper's hole-ratio bins (more to come: free-form stroke generator, mask sets)."""

from __future__ import annotations

# The five evaluation bins of the paper (Section 4.1), as [low, high) hole ratios.
HOLE_RATIO_BINS: tuple[tuple[float, float], ...] = (
    (0.0, 0.1),
    (0.1, 0.2),
    (0.2, 0.3),
    (0.3, 0.4),
    (0.4, 0.5),
)


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
