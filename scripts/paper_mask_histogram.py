"""Hole-ratio histogram of the paper's training masks: a mask set drawn with the paper's augmentation.

Prints a Markdown table: how many of DRAWS augmented masks fall in each paper bin (and outside them), for
the set itself (no augmentation) and for the training draws. The table in docs/reproduce.md came from

    dfnet masks generate data/masks/paper --paper --count 1000 --size 512
    python scripts/paper_mask_histogram.py data/masks/paper --size 512 --draws 10000
"""

from __future__ import annotations

import argparse

import numpy as np

from dfnet.masks import (
    HOLE_RATIO_BINS,
    MaskSetSource,
    PaperAugmentConfig,
    bin_label,
    read_mask_index,
    sample_hole_ratios,
)


def histogram_rows(ratios: np.ndarray) -> list[tuple[str, int]]:
    """(label, count) for: no hole, each paper bin (0 excluded from the first), 50 % or more."""
    rows = [("no hole (0 %)", int((ratios == 0).sum()))]
    for i, (low, high) in enumerate(HOLE_RATIO_BINS):
        rows.append((bin_label(i), int(((ratios >= low) & (ratios < high) & (ratios > 0)).sum())))
    rows.append(("≥ 50 %", int((ratios >= HOLE_RATIO_BINS[-1][1]).sum())))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("mask_dir", help="a mask set (index.csv or mask images)")
    parser.add_argument("--size", type=int, default=512, help="training image side (default 512)")
    parser.add_argument("--draws", type=int, default=10_000, help="augmented masks to draw (default 10000)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    stored = np.array([r.hole_ratio for r in read_mask_index(args.mask_dir)])
    source = MaskSetSource.from_dir(args.mask_dir, PaperAugmentConfig())
    drawn = sample_hole_ratios(source, args.size, args.draws, args.seed)
    print(f"| hole ratio | set ({len(stored)} masks) | training draws ({len(drawn)}, augmented) |")
    print("|---|---:|---:|")
    for (label, n_set), (_, n_drawn) in zip(histogram_rows(stored), histogram_rows(drawn), strict=True):
        print(f"| {label} | {n_set} ({n_set / len(stored):.1%}) | {n_drawn} ({n_drawn / len(drawn):.1%}) |")
    print(f"| mean | {stored.mean():.1%} | {drawn.mean():.1%} |")


if __name__ == "__main__":
    main()
