"""Per hole-ratio bin, how sure is "method A beats method B"? A paired bootstrap over the evaluated pairs.

`dfnet eval` reports one number per bin; when two methods differ by a fraction of a per cent, that number
alone cannot say whether the pairs of that bin agree. This reads the grids two `dfnet eval ... --save-images`
runs wrote (input | result | ground truth, same pairs), recomputes each pair's L1 and boundary-band
sums with `dfnet.metrics`, and resamples the pairs of each bin (the same resample for both methods) to give
the difference B - A with a 95 % interval and how often A came out lower.

    python scripts/paired_bin_comparison.py data/eval_report/dfnet-default data/eval_report/ns-images \
        --masks data/eval_masks_256
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
import torch

from dfnet.imageio import load_image, load_mask
from dfnet.metrics import DEFAULT_BPE_BAND, per_image_bpe_sums, per_image_l1


def split_grid(grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(result, ground truth) from an evaluation grid: three equal panels side by side."""
    width = grid.shape[1] // 3
    return grid[:, width : 2 * width], grid[:, 2 * width :]


def to_batch(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].double() / 255


def pair_measures(result: np.ndarray, truth: np.ndarray, hole: np.ndarray, band: int) -> np.ndarray:
    """[L1, band error sum, band pixel count] of one completed image."""
    result_t, truth_t = to_batch(result), to_batch(truth)
    hole_t = torch.from_numpy(hole)[None, None]
    error, pixels = per_image_bpe_sums(result_t, truth_t, hole_t, band)
    return np.array([float(per_image_l1(result_t, truth_t)), float(error), float(pixels)])


def mask_bins(mask_dir: Path) -> dict[str, int]:
    """Mask file stem -> hole-ratio bin, from the mask set's index.csv."""
    with open(mask_dir / "index.csv", newline="") as f:
        return {Path(row["file"]).stem: int(row["bin"]) for row in csv.DictReader(f)}


def read_pairs(
    run_a: Path, run_b: Path, mask_dir: Path, band: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per pair: measures of A, measures of B (N, 3) and the bin (N,), over the grids both runs saved."""
    bins = mask_bins(mask_dir)
    names = sorted(p.name for p in (run_a / "grids").glob("*.png"))
    if not names:
        raise SystemExit(f"{run_a / 'grids'}: no grids (run dfnet eval with --save-images)")
    rows_a, rows_b, pair_bins = [], [], []
    for name in names:
        mask_stem = Path(name).stem.rsplit("_", 1)[1]
        hole = load_mask(mask_dir / f"{mask_stem}.png")
        result_a, truth = split_grid(load_image(run_a / "grids" / name).rgb)
        result_b, truth_b = split_grid(load_image(run_b / "grids" / name).rgb)
        if not np.array_equal(truth, truth_b):
            raise SystemExit(f"{name}: the two runs have different ground truth; not the same pairs")
        rows_a.append(pair_measures(result_a, truth, hole, band))
        rows_b.append(pair_measures(result_b, truth, hole, band))
        pair_bins.append(bins[mask_stem])
    return np.array(rows_a), np.array(rows_b), np.array(pair_bins)


def bin_statistics(rows: np.ndarray) -> np.ndarray:
    """(L1 mean, pooled BPE) of a set of pairs; works on (..., N, 3) stacks of resamples too."""
    l1 = rows[..., 0].mean(-1)
    bpe = rows[..., 1].sum(-1) / rows[..., 2].sum(-1)
    return np.stack([l1, bpe], -1)


def compare(rows_a: np.ndarray, rows_b: np.ndarray, resamples: int, seed: int) -> list[dict]:
    """For L1 and BPE: A, B, B - A, its 95 % bootstrap interval and the share of resamples with A < B."""
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(rows_a), (resamples, len(rows_a)))
    stat_a, stat_b = bin_statistics(rows_a), bin_statistics(rows_b)
    boot = bin_statistics(rows_b[picks]) - bin_statistics(rows_a[picks])
    out = []
    for k, metric in enumerate(("L1", "BPE")):
        low, high = np.percentile(boot[:, k], [2.5, 97.5])
        out.append(
            {
                "metric": metric,
                "a": stat_a[k],
                "b": stat_b[k],
                "diff": stat_b[k] - stat_a[k],
                "low": low,
                "high": high,
                "a_lower": float((boot[:, k] > 0).mean()),
            }
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_a", type=Path, help="dfnet eval output folder of method A (with grids/)")
    parser.add_argument("run_b", type=Path, help="the same for method B")
    parser.add_argument("--masks", type=Path, required=True, help="the mask set both runs used (index.csv)")
    parser.add_argument("--band", type=int, default=DEFAULT_BPE_BAND, help="BPE band width in pixels")
    parser.add_argument("--resamples", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rows_a, rows_b, bins = read_pairs(args.run_a, args.run_b, args.masks, args.band)
    print(
        f"A = {args.run_a.name}, B = {args.run_b.name}; values x100; {args.resamples} paired resamples per bin\n"
    )
    print("| bin | pairs | metric | A | B | B - A | 95 % interval | share of resamples with A < B |")
    print("|---|---:|---|---:|---:|---:|---|---:|")
    for b in sorted(set(bins.tolist())):
        chosen = bins == b
        for row in compare(rows_a[chosen], rows_b[chosen], args.resamples, args.seed):
            print(
                f"| {b} | {int(chosen.sum())} | {row['metric']} | {100 * row['a']:.3f} | {100 * row['b']:.3f} | "
                f"{100 * row['diff']:+.3f} | [{100 * row['low']:+.3f}, {100 * row['high']:+.3f}] | "
                f"{row['a_lower']:.3f} |"
            )


if __name__ == "__main__":
    main()
