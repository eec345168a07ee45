"""Stack the per-pair grids that ``dfnet eval --save-images N`` wrote into one image for the docs.

    python scripts/make_result_grid.py data/eval_report/dfnet-default/grids docs/images/default-model-grid.png \
        --rows 5 --start 2 --stride 56     # one row per photo, each in another hole-ratio bin

Each saved grid is one row (input with holes, result, ground truth); ``--stride`` skips between the
chosen pairs so that the rows show different photographs and hole sizes.

With ``--methods``, ``grids`` is a report folder (``dfnet eval --out``) and each row puts the methods'
saved results side by side between the input and the ground truth (every method run with --save-images):

    python scripts/make_result_grid.py data/texture_report docs/images/texture-grid.png \
        --methods telea ns dfnet-default default-exemplar --pairs 7 18 29 44
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image


def stack_rows(paths: list[Path]) -> Image.Image:
    """The images one above the other (they must share a width)."""
    rows = [np.asarray(Image.open(p).convert("RGB")) for p in paths]
    widths = {r.shape[1] for r in rows}
    if len(widths) != 1:
        raise SystemExit(f"the grids differ in width: {sorted(widths)}")
    return Image.fromarray(np.concatenate(rows, axis=0))


def comparison_row(report: Path, methods: list[str], pair: int) -> np.ndarray:
    """Input with holes, each method's result, ground truth: one row for saved pair number ``pair``."""
    grids = sorted((report / methods[0] / "grids").glob(f"{pair:06d}_*.png"))
    if not grids:
        raise SystemExit(f"{report / methods[0]}: pair {pair} was not saved (--save-images)")
    grid = np.asarray(Image.open(grids[0]).convert("RGB"))
    width = grid.shape[1] // 3  # input | result | truth
    results = [np.asarray(Image.open(report / m / "results" / grids[0].name).convert("RGB")) for m in methods]
    return np.concatenate([grid[:, :width], *results, grid[:, 2 * width :]], axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("grids", type=Path, help="folder of per-pair grids from dfnet eval --save-images")
    parser.add_argument("output", type=Path, help="output PNG")
    parser.add_argument("--rows", type=int, default=4, help="pairs to show")
    parser.add_argument("--start", type=int, default=0, help="index of the first saved pair to show")
    parser.add_argument("--stride", type=int, default=1, help="take every stride-th saved pair")
    parser.add_argument("--methods", nargs="+", help="report folder mode: methods to show side by side")
    parser.add_argument(
        "--pairs", type=int, nargs="+", default=[0], help="with --methods: saved pair numbers"
    )
    args = parser.parse_args()
    if args.methods:
        rows = [comparison_row(args.grids, args.methods, pair) for pair in args.pairs]
        args.output.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.concatenate(rows, axis=0)).save(args.output, optimize=True)
        return
    paths = sorted(args.grids.glob("*.png"))[args.start :: max(1, args.stride)][: args.rows]
    if not paths:
        raise SystemExit(f"{args.grids}: no grid images")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    stack_rows(paths).save(args.output, optimize=True)
    print(f"{args.output}: {len(paths)} rows")


if __name__ == "__main__":
    main()
