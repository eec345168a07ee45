"""`dfnet inpaint`: fill the holes of one image or of every image in a folder."""

from __future__ import annotations

import argparse
import functools
import sys
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dfnet.cli.common import (
    ENGINE_CHOICES,
    CLIError,
    add_download_arguments,
    add_texture_argument,
    fetch_model_if_asked,
    int_in,
    model_file_read,
    non_empty,
    positive_int,
)

if TYPE_CHECKING:
    from tqdm import tqdm

    from dfnet.distributed import Ranks
    from dfnet.imageio import LoadedImage
    from dfnet.inference import Inpainter
    from dfnet.prefetch import BackgroundWriter
    from dfnet.strategies import Completion

STRATEGY_CHOICES = ("auto", "original", "resize", "crop")
HOLE_WARNING_RATIO = 0.5


@dataclass
class Job:
    """One image to inpaint: where it comes from, its mask (None: not found) and where it goes."""

    image: Path
    mask: Path | None
    output: Path


@dataclass
class Loaded:
    """A job whose image and mask have been read."""

    job: Job
    image: LoadedImage
    hole: np.ndarray


# ---------------------------------------------------------------------------------------------
# Pairing inputs, masks and outputs
# ---------------------------------------------------------------------------------------------
def list_images(folder: Path) -> list[Path]:
    """Image files directly inside ``folder`` (no sub-folders, no hidden files), sorted by name."""
    from dfnet.imageio import IMAGE_EXTENSIONS

    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTENSIONS
    )


def unusable_entries(folder: Path) -> list[tuple[Path, str]]:
    """Entries of ``folder`` named like images that are not regular files, with why they are skipped."""
    from dfnet.imageio import IMAGE_EXTENSIONS

    found = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.suffix.lower() not in IMAGE_EXTENSIONS or path.is_file():
            continue
        if path.is_symlink() and not path.exists():
            found.append((path, "a broken link"))
        elif not path.is_dir():
            found.append((path, "not a regular file (a FIFO, socket or device)"))
    return found


def find_mask(image: Path, mask_dir: Path) -> Path | None:
    """The mask for ``image`` in ``mask_dir``: same stem (any image suffix), else STEM_mask."""
    candidates = {p.stem: p for p in list_images(mask_dir) if p != image}
    return candidates.get(image.stem) or candidates.get(image.stem + "_mask")


def output_for(image: Path, output: Path, many: bool) -> Path:
    """Where the result of ``image`` goes: inside ``output`` when it is a folder, else ``output`` itself."""
    if many or output.is_dir() or str(output).endswith(("/", "\\")):
        return output / image.name
    return output


def collect_jobs(
    image_arg: str,
    mask_arg: str,
    output_arg: str,
    overwrite: bool = False,
    extras: Sequence[str] = (),
    reads: Sequence[str | None] = (),
) -> list[Job]:
    """Pair images with masks (by file stem for a mask folder, or one mask for all) and outputs.

    No output (results and the ``extras`` written beside them) may be an input (images, masks and the
    other files the run ``reads``, such as weights) or lie inside an input folder unless ``overwrite``.
    """
    from dfnet.files import check_outputs

    image_path, mask_path, output = Path(image_arg), Path(mask_arg), Path(output_arg)
    if not image_path.exists():
        raise CLIError(f"{image_path}: no such file or folder")
    if not mask_path.exists():
        raise CLIError(f"{mask_path}: no such file or folder")
    many = image_path.is_dir()
    images = list_images(image_path) if many else [image_path]
    if mask_path.is_dir() and mask_path.resolve() == (image_path.resolve() if many else None):
        images = [p for p in images if not p.stem.endswith("_mask")]  # masks kept beside their images
    if not images:
        raise CLIError(f"{image_path}: no images found (looked for .png, .jpg, .webp, ...)")
    if many and output.exists() and not output.is_dir():
        raise CLIError(f"{output}: is a file, but a folder of images needs an output folder for -o")
    jobs = []
    for image in images:
        mask = find_mask(image, mask_path) if mask_path.is_dir() else mask_path
        jobs.append(Job(image, mask, output_for(image, output, many)))
    inputs = [image_path, mask_path, *(j.image for j in jobs), *(j.mask for j in jobs), *reads]
    outputs = [output] if many else []
    written = [p for j in jobs for p in (j.output, *(extra_path(j.output, e) for e in extras))]
    check_outputs([*outputs, *written], inputs, overwrite)
    return jobs


def extra_path(result: Path, suffix: str) -> Path:
    """Where an extra picture of a result goes: ``NAME_raw.png``, ``NAME_alpha.png``, ``NAME_merged.png``."""
    return result.with_name(f"{result.stem}_{suffix}.png")


# ---------------------------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------------------------
def parse_options(pairs: list[str]) -> dict[str, int | float]:
    """KEY=VALUE strategy options with numeric values (e.g. max_side=768, context=2.5)."""
    options: dict[str, int | float] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CLIError(f"--set expects KEY=VALUE, got {pair!r}")
        try:
            options[key] = int(value)
        except ValueError:
            try:
                options[key] = float(value)
            except ValueError:
                raise CLIError(f"--set {key}: {value!r} is not a number") from None
    return options


def check_strategy_options(strategy: str, options: dict[str, int | float]) -> None:
    """Refuse unknown or non-finite strategy options once, before any image is read."""
    from dfnet.strategies import check_options

    try:
        check_options(strategy, options)
    except ValueError as err:
        raise CLIError(f"--set: {err}") from None


def load_job(job: Job, invert: bool, resize_mask: bool, max_pixels: int | None = None) -> Loaded:
    """Read one image and its mask; the mask must have the image's size unless ``resize_mask``."""
    from dfnet.imageio import DEFAULT_MAX_PIXELS, EmptyMaskWarning, load_image, load_mask

    if job.mask is None:
        raise ValueError(f"no mask named {job.image.stem}.* or {job.image.stem}_mask.* found")
    limit = max_pixels or DEFAULT_MAX_PIXELS
    image = load_image(job.image, max_pixels=limit)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EmptyMaskWarning)  # the caller warns about every empty mask
        hole = load_mask(job.mask, size=image.size if resize_mask else None, invert=invert, max_pixels=limit)
    if hole.shape != image.rgb.shape[:2]:
        raise ValueError(
            f"mask {job.mask.name} is {hole.shape[1]}x{hole.shape[0]} but the image is "
            f"{image.size[0]}x{image.size[1]} (use --resize-mask to scale masks)"
        )
    return Loaded(job, image, hole)


def batches(loaded: list[Loaded], size: int) -> list[list[Loaded]]:
    """Consecutive runs of same-sized images, at most ``size`` long."""
    groups: list[list[Loaded]] = []
    for item in loaded:
        if groups and len(groups[-1]) < size and groups[-1][0].image.rgb.shape == item.image.rgb.shape:
            groups[-1].append(item)
        else:
            groups.append([item])
    return groups


def save_outputs(item: Loaded, done: Completion, args: argparse.Namespace) -> None:
    """Write the result (format and metadata of the input) and any requested extras as PNG, all or none:
    on a full disk no image is left with only some of its files."""
    from dfnet.files import atomic_write_files
    from dfnet.imageio import encode_image, format_for_path
    from dfnet.inference import merge_panels

    out = item.job.output
    files = {out: encode_image(done.result, format_for_path(out), item.image, args.quality)}
    extras = {"raw": done.raw if args.save_raw else None, "alpha": done.alpha if args.save_alpha else None}
    if args.merge:
        extras["merged"] = merge_panels(item.image.rgb, item.hole, done)
    for suffix, array in extras.items():
        if array is not None:
            files[extra_path(out, suffix)] = encode_image(array)
    atomic_write_files(files)


def _error_text(err: BaseException) -> str:
    """One line for an image that failed: the user-facing message, or the class of an unexpected error."""
    from dfnet.cli import error_message

    message = error_message(err)
    if message is not None:
        return message
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def _inpaint(args: argparse.Namespace) -> int:
    from dfnet.distributed import process_group

    with process_group() as ranks:  # torchrun / SLURM: each rank inpaints its share of the images
        return _inpaint_shard(args, ranks)


def _inpaint_shard(args: argparse.Namespace, ranks: Ranks) -> int:
    from tqdm import tqdm

    from dfnet.distributed import gather_to_main, rank_device
    from dfnet.inference import Inpainter
    from dfnet.prefetch import BackgroundWriter

    options = parse_options(args.set)
    check_strategy_options(args.strategy, options)
    details = args.save_raw or args.save_alpha or args.merge
    if details and args.engine == "onnxruntime":
        raise CLIError(
            "--save-raw, --save-alpha and --merge need --engine torch (ONNX models output the result only)"
        )
    extras = [
        name
        for name, wanted in (("raw", args.save_raw), ("alpha", args.save_alpha), ("merged", args.merge))
        if wanted
    ]
    every_job = collect_jobs(
        args.image, args.mask, args.output, args.overwrite, extras, [model_file_read(args.model)]
    )
    if Path(args.image).is_dir() and ranks.is_main:
        for path, why in unusable_entries(Path(args.image)):
            print(f"warning: skipped {path}: {why}", file=sys.stderr)
    fetch_model_if_asked(args)
    jobs = ranks.shard(every_job)
    precision = "fp16" if args.half else args.precision
    inpainter = Inpainter.from_pretrained(
        args.model,
        device=rank_device(args.device, ranks),
        precision=precision,
        engine=args.engine,
        texture=args.texture,
    )
    failures: list[tuple[Path, str]] = []
    finished: set[Path] = set()
    lock = threading.Lock()
    started = time.perf_counter()
    bar = tqdm(total=len(jobs), unit="image", file=sys.stderr, disable=args.no_progress or not ranks.is_main)

    def done(job: Job, err: BaseException | None = None) -> None:
        with lock:  # called by the writer thread too
            if err is not None:
                failures.append((job.image, _error_text(err).removeprefix(f"{job.image}: ")))  # named once
            finished.add(job.image)
            bar.update(1)

    writer = BackgroundWriter(depth=max(2, args.batch_size))
    try:
        _pipeline(inpainter, jobs, args, options, details, writer, done, bar)
        writer.close()
    except Exception as err:
        writer.close()  # the results already computed are written
        if ranks.world_size == 1:
            raise
        reason = f"lost: rank {ranks.rank} stopped ({_error_text(err)})"
        lost = [(job.image, reason) for job in jobs if job.image not in finished]
        print(f"rank {ranks.rank}: {reason}; {len(lost)} images not inpainted:", file=sys.stderr)
        for path, _ in lost:
            print(f"  {path}", file=sys.stderr)
        failures += lost
    except BaseException:  # Ctrl-C: the results already computed are written (atomically), nothing else
        writer.close()
        raise
    finally:
        bar.close()
    shards = gather_to_main((len(jobs), failures), ranks)
    if shards is None:
        return 0  # rank 0 reports every rank's failures and sets the exit status
    every_failure = sorted((f for _, fs in shards for f in fs), key=lambda f: str(f[0]))
    return _summary(len(every_job), every_failure, time.perf_counter() - started, args.output)


def _pipeline(
    inpainter: Inpainter,
    jobs: list[Job],
    args: argparse.Namespace,
    options: dict[str, Any],
    details: bool,
    writer: BackgroundWriter,
    done: Callable[..., None],
    bar: tqdm,
) -> None:
    """Read ahead, inpaint in batches of ``--batch-size`` loaded images, and queue the results for writing."""
    from dfnet.prefetch import read_ahead

    load = functools.partial(
        load_job, invert=args.invert_mask, resize_mask=args.resize_mask, max_pixels=args.max_pixels
    )
    pending: list[Loaded] = []
    for loaded in read_ahead(jobs, load, depth=2 * args.batch_size, errors=(ValueError, OSError)):
        if loaded.error is not None:
            done(loaded.item, loaded.error)
            continue
        _warn_about_hole(loaded.value, bar)
        pending.append(loaded.value)
        if len(pending) >= args.batch_size:
            _run_batches(inpainter, pending, args, options, details, writer, done)
            pending = []
    _run_batches(inpainter, pending, args, options, details, writer, done)


def _warn_about_hole(item: Loaded, bar: tqdm) -> None:
    """Warn when a mask has no hole (the image is written unchanged) or is mostly hole (inverted?)."""
    from dfnet.imageio import hole_ratio

    ratio = hole_ratio(item.hole)
    name = item.job.image.name
    if ratio == 0:
        bar.write(
            f"warning: {name}: the mask has no hole (hole = white, above grey level 127, or 1 "
            "in a 0/1 mask); the image is written unchanged",
            file=sys.stderr,
        )
    if ratio > HOLE_WARNING_RATIO:
        bar.write(
            f"warning: {name}: {ratio:.0%} of the mask is hole; is it inverted? (--invert-mask)",
            file=sys.stderr,
        )


def _run_batches(
    inpainter: Inpainter,
    pending: list[Loaded],
    args: argparse.Namespace,
    options: dict[str, Any],
    details: bool,
    writer: BackgroundWriter,
    done: Callable[..., None],
) -> None:
    """Inpaint loaded jobs in same-size batches and queue their saving; a failing batch fails only its images."""
    for group in batches(pending, args.batch_size):
        try:
            completed = inpainter.complete_arrays(
                np.stack([g.image.rgb for g in group]),
                np.stack([g.hole for g in group]),
                args.strategy,
                details,
                args.batch_size,
                **options,
            )
        except (ValueError, RuntimeError, MemoryError) as err:
            for g in group:
                done(g.job, err)
            continue
        for i, item in enumerate(group):
            writer.submit(functools.partial(_save_one, item, _pick(completed, i), args, done))


def _save_one(
    item: Loaded, completed: Completion, args: argparse.Namespace, done: Callable[..., None]
) -> None:
    """Save one result (in the writer thread) and mark its job done, or failed with the write error."""
    try:
        save_outputs(item, completed, args)
    except (ValueError, OSError) as err:
        done(item.job, err)
    else:
        done(item.job)


def _pick(done: Completion, i: int) -> Completion:
    """The i-th image of a batched completion."""
    return type(done)(*(None if a is None else a[i] for a in (done.result, done.raw, done.alpha)))


def _summary(total: int, failures: list[tuple[Path, str]], seconds: float, output: str) -> int:
    """Print what happened; non-zero exit when any image failed."""
    ok = total - len(failures)
    rate = f", {seconds / ok:.2f} s per image" if ok else ""
    print(f"inpainted {ok} of {total} image{'s' if total != 1 else ''} in {seconds:.1f} s{rate} -> {output}")
    if not failures:
        return 0
    print(f"{len(failures)} failed:", file=sys.stderr)
    for path, reason in failures:
        print(f"  {path}: {reason}", file=sys.stderr)
    return 1


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "inpaint",
        help="fill the holes of an image or of a folder of images",
        description="Fill the holes (white in the mask) of IMAGE, or of every image in a folder. Masks of a "
        "folder are matched by file stem (photo.jpg <- masks/photo.png or photo_mask.png); a single mask "
        "file serves every image. Results keep the input's format, EXIF, ICC profile and alpha channel.",
    )
    p.add_argument("image", help="input image or folder of images")
    p.add_argument("mask", help="mask image (white = hole) or folder of masks")
    p.add_argument(
        "-o",
        "--output",
        required=True,
        type=non_empty,
        help="output file, or folder (for a folder of inputs)",
    )
    p.add_argument(
        "--model",
        type=non_empty,
        default="default",
        help="'default' (bundled), places2, celeba (dfnet models), hf://OWNER/REPO, .safetensors, checkpoint, .pth or .onnx",
    )
    add_download_arguments(p)
    p.add_argument(
        "--engine",
        choices=ENGINE_CHOICES,
        default="torch",
        help="torch: eager; optimized: folded graph (ONNX Runtime on CPU), a few seconds of set-up that "
        "pays off on folders; onnxruntime: runs a .onnx",
    )
    p.add_argument(
        "--strategy", choices=STRATEGY_CHOICES, default="auto", help="how to handle the image size"
    )
    add_texture_argument(p)
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="strategy option, e.g. max_side=768 (resize), context=3 (crop), trigger=2048 (auto); repeatable",
    )
    p.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto", help="where to run")
    p.add_argument(
        "--precision",
        choices=("auto", "fp32", "fp16", "bf16", "int8"),
        default="auto",
        help="autocast dtype; int8: quantised convolutions (--engine optimized on CPU; auto picks it there when "
        "the CPU has fast int8)",
    )
    p.add_argument("--half", action="store_true", help="same as --precision fp16")
    p.add_argument(
        "--batch-size", type=int_in(1, 4096), default=1, help="images of one size per network call"
    )
    p.add_argument("--invert-mask", action="store_true", help="the mask is white = known (released samples)")
    p.add_argument(
        "--resize-mask", action="store_true", help="scale masks to the image size instead of failing"
    )
    p.add_argument("--save-raw", action="store_true", help="also write DFNet's raw completion (OUT_raw.png)")
    p.add_argument("--save-alpha", action="store_true", help="also write the alpha map (OUT_alpha.png)")
    p.add_argument(
        "--merge", action="store_true", help="also write input / raw / alpha / result side by side"
    )
    p.add_argument(
        "--max-pixels",
        type=positive_int,
        help="refuse images larger than this many pixels, width x height (default 100,000,000)",
    )
    p.add_argument(
        "--quality", type=int_in(1, 100), default=95, help="JPEG/WebP quality of the results (1-100)"
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="allow an output that is an input (or inside an input folder): the input is replaced",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_inpaint)
