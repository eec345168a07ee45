"""`dfnet eval` (score a method per hole-ratio bin) and `dfnet eval-compare` (merge reports)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from dfnet.cli.common import (
    CLIError,
    add_download_arguments,
    add_texture_argument,
    fetch_model_if_asked,
    file_name,
    int_in,
    model_file_read,
    non_empty,
    positive_int,
)


def _inputs(args: argparse.Namespace) -> list[str | Path | None]:
    """Every path eval reads: images, masks (an index's folder too: its masks lie there), weights."""
    masks = Path(args.masks)
    mask_set = masks.parent if masks.suffix.lower() == ".csv" else masks
    weights = [model_file_read(args.model), args.fid_weights, args.lpips_weights, args.vgg_weights]
    return [args.images, masks, mask_set, *weights]


def _check_weight_files(args: argparse.Namespace) -> None:
    """Refuse a named FID, LPIPS or VGG16 weights file that is not there, before any work is done."""
    for option in ("fid_weights", "lpips_weights", "vgg_weights"):
        path = getattr(args, option)
        if path is not None and not path.is_file():
            what = "is not a file" if path.exists() else "no such file"
            raise CLIError(f"--{option.replace('_', '-')} {path}: {what}")


if TYPE_CHECKING:
    from dfnet.distributed import Ranks


def _eval(args: argparse.Namespace) -> int:
    from dfnet.distributed import process_group

    with process_group() as ranks:  # torchrun / SLURM: each rank measures a share, rank 0 writes the report
        code = _eval_ranks(args, ranks)
    return code


def _eval_ranks(args: argparse.Namespace, ranks: Ranks) -> int:
    from dfnet.distributed import rank_device
    from dfnet.evaluation import COMPARISON_NAME, EvalConfig, evaluate, make_method, report_paths
    from dfnet.files import check_outputs
    from dfnet.inference import resolve_device

    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise CLIError(f"--out {args.out}: is a file, but reports need a folder")
    inputs = _inputs(args)
    check_outputs([args.out], inputs, args.overwrite)
    fetch_model_if_asked(args)
    config = EvalConfig(
        images=Path(args.images),
        masks=Path(args.masks),
        out=Path(args.out),
        size=args.size,
        resize=args.resize,
        invert_mask=args.invert_mask,
        pairing=args.pairing,
        batch_size=args.batch_size,
        workers=args.workers,
        bpe_band=args.bpe_band,
        device=args.device,
        fid_weights=args.fid_weights,
        lpips_weights=args.lpips_weights,
        vgg_weights=args.vgg_weights,
        save_images=args.save_images,
        limit=args.limit,
        force=args.force,
        progress=not args.quiet,
    )
    device = resolve_device(rank_device(args.device, ranks))
    method = make_method(args.method, device, args.model, args.name, args.texture)
    multiple = getattr(getattr(method, "model", None), "config", None)
    if multiple is not None and args.size % multiple.size_multiple:
        raise CLIError(f"--size {args.size} is not a multiple of {multiple.size_multiple}, which DFNet needs")
    _check_weight_files(args)
    paths = report_paths(config.out, method.name)
    written = [*paths.values(), config.out / COMPARISON_NAME, config.out / method.name]
    check_outputs(written, inputs, args.overwrite)
    report = evaluate(method, config)
    if not ranks.is_main:
        return 0
    if report is not None:
        fid = report["settings"].get("fid")
        if isinstance(fid, str):
            print(f"warning: {fid}", file=sys.stderr)
        for problem in report["settings"]["skipped_masks"] + report["settings"]["skipped_images"]:
            print(f"warning: skipped {problem}", file=sys.stderr)
        print(f"{paths['md']}: {method.name} on {report['settings']['num_pairs']} pairs")
    print(f"{config.out / 'table.md'}: comparison of every report in {config.out}")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from dfnet.evaluation import markdown_table, read_reports, write_comparison

    reports = read_reports(args.reports)
    names = [r["method"]["name"] for r in reports]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        print(f"warning: several reports are named {', '.join(duplicates)}", file=sys.stderr)
    if args.out:
        write_comparison(reports, args.out)
        print(f"{args.out}: {len(reports)} methods")
    else:
        sys.stdout.write(markdown_table(reports))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    from dfnet.baselines import METHODS
    from dfnet.evaluation import RESIZE_CHOICES

    p = sub.add_parser(
        "eval",
        help="score an inpainting method per hole-ratio bin (L1, BPE, FID, PSNR, SSIM, hole texture)",
        description="Complete every image/mask pair with a method and write Table-1-style reports to --out.",
    )
    p.add_argument(
        "--images",
        required=True,
        type=non_empty,
        help="directory of ground-truth images (searched recursively)",
    )
    p.add_argument(
        "--masks",
        required=True,
        type=non_empty,
        help="directory of mask images (white = hole) or a mask index.csv",
    )
    p.add_argument(
        "--method",
        required=True,
        choices=list(METHODS),
        help="method to evaluate",
    )
    p.add_argument(
        "--model",
        type=non_empty,
        help="DFNet weights: places2, celeba (dfnet models), hf://..., .safetensors, checkpoint or .pth",
    )
    add_download_arguments(p)
    p.add_argument(
        "--name", type=file_name, help="name of the method in reports (default: the --method value)"
    )
    add_texture_argument(p)
    p.add_argument(
        "--out", required=True, type=non_empty, help="report directory (NAME.json/.csv/.md and table.md)"
    )
    p.add_argument("--size", type=int_in(1, 16384), default=512, help="evaluation size (default 512)")
    p.add_argument(
        "--resize",
        choices=list(RESIZE_CHOICES),
        default="resize_crop",
        help="resize_crop: short side to --size, centre crop (default); resize: stretch to --size x --size, "
        "aspect not kept (the released test code)",
    )
    p.add_argument(
        "--invert-mask",
        action="store_true",
        help="mask files are white = known, black = hole (the released sample masks)",
    )
    p.add_argument(
        "--pairing",
        choices=["cycle", "every-bin", "all"],
        default="cycle",
        help="cycle: image i with mask i mod M; every-bin: each image once per bin; all: every image x mask",
    )
    p.add_argument("--batch-size", type=int_in(1, 4096), default=8)
    p.add_argument(
        "--workers", type=int_in(0, 256), default=2, help="image-loading processes (0 = in the main process)"
    )
    p.add_argument("--bpe-band", type=int_in(1, 1024), default=3, help="BPE band width in pixels (default 3)")
    p.add_argument("--device", type=non_empty, default="auto", help="cpu, cuda, mps or auto")
    p.add_argument(
        "--fid-weights",
        type=Path,
        help="pt_inception-2015-12-05-6726825d.pth (else $DFNET_FID_WEIGHTS)",
    )
    p.add_argument("--lpips-weights", type=Path, help="LPIPS v0.1 VGG lin weights (vgg.pth); enables LPIPS")
    p.add_argument(
        "--vgg-weights",
        type=Path,
        help="ImageNet VGG16 weights for LPIPS (else $DFNET_VGG16_WEIGHTS)",
    )
    p.add_argument(
        "--save-images",
        type=int_in(-1),
        nargs="?",
        const=-1,
        default=0,
        metavar="N",
        help="save composites and input/result/truth grids under OUT/NAME/ (all pairs, or the first N)",
    )
    p.add_argument("--limit", type=positive_int, help="evaluate only the first N pairs (a quick look)")
    p.add_argument("--force", action="store_true", help="re-run even if OUT/NAME.json exists")
    p.add_argument(
        "--overwrite", action="store_true", help="allow --out to be, or lie inside, an input folder"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_eval)

    c = sub.add_parser("eval-compare", help="merge evaluation reports into one Table-1-style Markdown table")
    c.add_argument("reports", nargs="+", help="report JSON files written by dfnet eval")
    c.add_argument("--out", type=non_empty, help="Markdown file to write (default: print)")
    c.set_defaults(func=_compare)
