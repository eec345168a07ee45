"""`dfnet masks`: generate free-form mask sets by hole-ratio bin and describe masks."""

from __future__ import annotations

import argparse
from pathlib import Path

from dfnet.cli.common import CLIError, int_in


def _generate(args: argparse.Namespace) -> int:
    from dfnet.masks import (
        PAPER_STROKES,
        MaskSetExistsError,
        bin_counts,
        bin_label,
        write_mask_set,
    )

    bins = None if args.paper else args.bins
    strokes = PAPER_STROKES if args.paper else None
    try:
        records = write_mask_set(
            args.out_dir, args.count, args.size, args.seed, bins, strokes, overwrite=args.overwrite
        )
    except MaskSetExistsError as err:
        raise CLIError(f"{err}; use --overwrite") from None
    per_bin = ", ".join(
        f"{'outside' if b is None else bin_label(b)}: {n}" for b, n in bin_counts(records).items()
    )
    print(f"{args.out_dir}: wrote {len(records)} masks of {args.size}x{args.size} ({per_bin})")
    return 0


def bins_option(text: str) -> tuple[int, ...] | None:
    """An argparse type: paper bins as '0,2,4', or 'none' (no bin constraint)."""
    from dfnet.masks import parse_bins

    if text.strip().lower() == "none":
        return None
    try:
        return parse_bins(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


bins_option.__name__ = "bins"


def _describe_file(path: Path) -> str:
    from dfnet.imageio import hole_ratio, load_mask
    from dfnet.masks import bin_label, bin_of

    hole = load_mask(path)
    ratio = hole_ratio(hole)
    b = bin_of(ratio)
    where = bin_label(b) if b is not None else "outside the paper bins"
    return f"{path}: {hole.shape[1]}x{hole.shape[0]}, hole ratio {ratio:.2%}, bin {where}"


def _describe_set(path: Path) -> str:
    from dfnet.masks import bin_counts, bin_label, read_mask_index

    records = read_mask_index(path)
    if not records:
        return f"{path}: no masks"
    mean = sum(r.hole_ratio for r in records) / len(records)
    lines = [f"{path}: {len(records)} masks, mean hole ratio {mean:.2%}"]
    for b, n in bin_counts(records).items():
        lines.append(f"  {'outside' if b is None else bin_label(b):>10}  {n}")
    return "\n".join(lines)


def _info(args: argparse.Namespace) -> int:
    for name in args.paths:
        path = Path(name)
        if not path.exists():
            raise CLIError(f"{path}: no such file or directory")
        print(_describe_set(path) if path.is_dir() or path.suffix.lower() == ".csv" else _describe_file(path))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("masks", help="generate free-form mask sets by hole-ratio bin, describe masks")
    actions = p.add_subparsers(dest="masks_command", required=True)

    g = actions.add_parser(
        "generate", help="write PNG masks (white = hole) and index.csv (file,hole_ratio,bin)"
    )
    g.add_argument("out_dir", help="output folder")
    g.add_argument("--count", type=int_in(1, 10_000_000), default=1000, help="number of masks (default 1000)")
    g.add_argument("--size", type=int_in(8, 16384), default=512, help="mask side in pixels (default 512)")
    g.add_argument(
        "--seed", type=int_in(0, 2**32 - 1), default=0, help="random seed; the same seed gives the same masks"
    )
    g.add_argument(
        "--bins",
        type=bins_option,
        default="0,1,2,3,4",
        help="paper bins to fill, balanced: 0=[0,10%%) ... 4=[40,50%%); 'none' = plain DeepFill v2 masks",
    )
    g.add_argument(
        "--paper",
        action="store_true",
        help="the paper's training set: unbinned DeepFill v2 masks (4-11 segments per stroke, one angle "
        "range per stroke); overrides --bins",
    )
    g.add_argument("--overwrite", action="store_true", help="replace an existing mask set in OUT_DIR")
    g.set_defaults(func=_generate)

    i = actions.add_parser("info", help="hole ratio and bin of mask files; bin counts of mask sets")
    i.add_argument("paths", nargs="+", help="mask images, mask set folders or index.csv files")
    i.set_defaults(func=_info)
