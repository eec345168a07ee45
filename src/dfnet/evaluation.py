"""Scoring inpainting methods on an image folder with a fixed mask set, per hole-ratio bin.

The pieces, in the order a run uses them:

- :func:`list_images` / :func:`load_mask_set`: the inputs, each sorted by relative path; every mask's
  hole ratio is measured at the evaluation size and assigned a paper bin (``dfnet.masks``);
- :class:`PairPlan`: which image is completed with which mask (``cycle``, ``every-bin`` or ``all``);
- :class:`PairDataset`: loads one pair, resized and centre-cropped to the evaluation size;
- :func:`evaluate`: runs a method (:class:`dfnet.baselines.InpaintMethod`) over all pairs in batches,
  accumulates every metric per bin (:mod:`dfnet.metrics`) and writes the reports;
- :func:`markdown_table` / :func:`read_markdown_table` / :func:`csv_text`: the report formats; the
  Markdown table is laid out like the paper's Table 1 and parses back to the JSON numbers.

See docs/evaluation.md for the definitions and the protocol.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import math
import os
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from dfnet.baselines import METHODS, DFNetMethod, InpaintMethod
from dfnet.choices import check_choice, literal_values
from dfnet.files import atomic_write_text
from dfnet.imageio import IMAGE_EXTENSIONS, ImageLoadError, load_image, load_mask
from dfnet.inception import FEATURE_DIM
from dfnet.masks import HOLE_RATIO_BINS, bin_label, bin_of
from dfnet.metrics import DEFAULT_BPE_BAND, MetricTotals, measure_batch

REPORT_FORMAT = "dfnet-eval"
REPORT_VERSION = 1
PAIRINGS = ("cycle", "every-bin", "all")
ALL_BINS = "all"
COMPARISON_NAME = "table.md"
MASK_INDEX = "index.csv"


class EvaluationError(ValueError):
    """A problem with the evaluation inputs (one-line, user-facing message)."""


# ---------------------------------------------------------------------------------------------
# Inputs: images, masks, pairing
# ---------------------------------------------------------------------------------------------
def list_images(root: str | os.PathLike) -> list[Path]:
    """Every image file under ``root`` (recursively), sorted by relative POSIX path.

    Entries that are not regular files (broken links, FIFOs) are listed too, so that reading them
    fails and the run reports them as skipped instead of leaving them out silently.
    """
    root = Path(root)
    if not root.is_dir():
        raise EvaluationError(f"{root}: not a directory of images")
    found = [p for p in root.rglob("*") if not p.is_dir() and p.suffix.lower() in IMAGE_EXTENSIONS]
    if not found:
        raise EvaluationError(f"{root}: no images ({', '.join(IMAGE_EXTENSIONS)})")
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def fit_square(image: Image.Image, size: int, resample: Image.Resampling) -> Image.Image:
    """Resize so the short side is ``size`` (keeping the aspect ratio), then crop the centre square."""
    width, height = image.size
    if (width, height) == (size, size):
        return image
    scale = size / min(width, height)
    new_w, new_h = max(size, round(width * scale)), max(size, round(height * scale))
    if (new_w, new_h) != (width, height):
        image = image.resize((new_w, new_h), resample)
    left, top = (new_w - size) // 2, (new_h - size) // 2
    return image.crop((left, top, left + size, top + size))


# How images and masks are brought to size x size (the names of dfnet.data's resize_mode):
# resize_crop: short side to size, centre crop; resize: stretched, aspect not kept (the released test code).
EvalResize = Literal["resize_crop", "resize"]
RESIZE_CHOICES: tuple[str, ...] = literal_values(EvalResize)
RESIZE_WORDS = {"resize_crop": "short side resized + centre crop", "resize": "stretched (aspect not kept)"}


def _fit(picture: Image.Image, size: int, resize: str, resample: Image.Resampling) -> Image.Image:
    """``picture`` at size x size, by :data:`RESIZE_CHOICES` ``resize``."""
    if resize == "resize":
        return picture if picture.size == (size, size) else picture.resize((size, size), resample)
    return fit_square(picture, size, resample)


def load_eval_image(path: str | os.PathLike, size: int, resize: str = "resize_crop") -> np.ndarray:
    """An image as uint8 (size, size, 3): short side resized (bicubic) and centre-cropped, or stretched
    (bilinear, as the released test code's resize does)."""
    rgb = load_image(path).rgb
    resample = Image.Resampling.BILINEAR if resize == "resize" else Image.Resampling.BICUBIC
    return np.array(_fit(Image.fromarray(rgb), size, resize, resample))


def load_eval_mask(
    path: str | os.PathLike, size: int, resize: str = "resize_crop", invert: bool = False
) -> np.ndarray:
    """A hole mask as bool (size, size), white = hole (black = hole when ``invert``), fitted like the images
    (nearest neighbour)."""
    hole = load_mask(path, invert=invert)
    picture = Image.fromarray(hole.astype(np.uint8) * 255, "L")
    return np.asarray(_fit(picture, size, resize, Image.Resampling.NEAREST)) > 127


@dataclass(frozen=True)
class MaskEntry:
    """One evaluation mask: its file, hole ratio at the evaluation size and paper bin (None: outside)."""

    path: Path
    hole_ratio: float
    bin: int | None


def mask_files(source: str | os.PathLike) -> list[Path]:
    """Mask files of an index.csv (column ``file``, in order; a directory holding one counts as it),
    else of a directory (every image file, sorted by relative path)."""
    source = Path(source)
    if source.is_dir() and (source / MASK_INDEX).is_file():
        source = source / MASK_INDEX
    if source.is_dir():
        return list_images(source)
    if source.is_file() and source.suffix.lower() == ".csv":
        with open(source, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if not reader.fieldnames or "file" not in reader.fieldnames:
                raise EvaluationError(f"{source}: a mask index needs a 'file' column")
            files = [source.parent / row["file"] for row in reader if row.get("file")]
        if not files:
            raise EvaluationError(f"{source}: the mask index lists no files")
        return files
    raise EvaluationError(f"{source}: give a directory of mask images or an index.csv")


def load_mask_set(
    source: str | os.PathLike,
    size: int,
    progress: bool = False,
    skipped: list[str] | None = None,
    resize: str = "resize_crop",
    invert: bool = False,
) -> list[MaskEntry]:
    """Read every mask once to measure its hole ratio at the evaluation size and find its bin.

    Unreadable masks are left out; their one-line errors are appended to ``skipped`` when given,
    and raised otherwise.
    """
    from tqdm import tqdm

    entries = []
    for path in tqdm(mask_files(source), desc="masks", unit="mask", disable=not progress, leave=False):
        try:
            hole = load_eval_mask(path, size, resize, invert)
        except (ImageLoadError, OSError) as err:
            if skipped is None:
                raise
            skipped.append(str(err))
            continue
        ratio = float(hole.mean())
        entries.append(MaskEntry(path, ratio, bin_of(ratio) if hole.any() else None))
    return entries


class PairPlan(Sequence):
    """Deterministic (image index, mask index) pairs; computed on demand, never materialised.

    - ``cycle``: image i gets mask i mod M (one pair per image);
    - ``every-bin``: each image once per bin, image i with the (i mod M_b)-th mask of bin b
      (every bin sees every image: N x B pairs, image-major);
    - ``all``: each image with every mask (N x M pairs, image-major).

    Masks outside the paper's bins (empty, or 50 % hole or more) are left out beforehand.
    """

    def __init__(self, num_images: int, masks: Sequence[MaskEntry], pairing: str = "cycle") -> None:
        if pairing not in PAIRINGS:
            raise EvaluationError(f"unknown pairing {pairing!r}; choose from {', '.join(PAIRINGS)}")
        self.num_images, self.pairing = num_images, pairing
        self.usable = [i for i, m in enumerate(masks) if m.bin is not None]
        if not self.usable:
            raise EvaluationError("no mask has a hole ratio inside the paper's bins (0 % < ratio < 50 %)")
        self.by_bin = {}
        for i in self.usable:
            self.by_bin.setdefault(masks[i].bin, []).append(i)
        self.bins = sorted(self.by_bin)

    def __len__(self) -> int:
        per_image = {"cycle": 1, "every-bin": len(self.bins), "all": len(self.usable)}[self.pairing]
        return self.num_images * per_image

    def __getitem__(self, k: int) -> tuple[int, int]:
        if not 0 <= k < len(self):
            raise IndexError(k)
        if self.pairing == "cycle":
            return k, self.usable[k % len(self.usable)]
        if self.pairing == "all":
            return k // len(self.usable), self.usable[k % len(self.usable)]
        image, bin_index = divmod(k, len(self.bins))
        in_bin = self.by_bin[self.bins[bin_index]]
        return image, in_bin[image % len(in_bin)]


class PairDataset(torch.utils.data.Dataset):
    """Loads pair k of a plan: uint8 image (3, S, S), bool hole mask (1, S, S), its bin and index.

    An unreadable image gives ``{"pair": k, "error": message}`` instead; :func:`collate_pairs` sets
    such pairs aside so the run goes on and reports them.
    """

    def __init__(
        self,
        images: Sequence[Path],
        masks: Sequence[MaskEntry],
        plan: PairPlan,
        size: int,
        resize: str = "resize_crop",
        invert_mask: bool = False,
    ) -> None:
        self.images, self.masks, self.plan, self.size = images, masks, plan, size
        self.resize, self.invert_mask = resize, invert_mask

    def __len__(self) -> int:
        return len(self.plan)

    def __getitem__(self, k: int) -> dict:
        image_index, mask_index = self.plan[k]
        try:
            rgb = load_eval_image(self.images[image_index], self.size, self.resize)
            hole = load_eval_mask(self.masks[mask_index].path, self.size, self.resize, self.invert_mask)
        except (ImageLoadError, OSError) as err:
            return {"pair": k, "error": str(err).splitlines()[0]}
        return {
            "image": torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1),
            "hole": torch.from_numpy(hole)[None],
            "bin": self.masks[mask_index].bin,
            "pair": k,
        }

    def pair_name(self, k: int) -> str:
        """A file name stem for pair k: index, image stem and mask stem."""
        image_index, mask_index = self.plan[k]
        return f"{k:06d}_{self.images[image_index].stem}_{self.masks[mask_index].path.stem}"


def collate_pairs(samples: list[dict]) -> dict:
    """Default collation of the readable pairs, plus ``skipped``: the errors of the unreadable ones."""
    readable = [s for s in samples if "error" not in s]
    batch = torch.utils.data.default_collate(readable) if readable else {}
    batch["skipped"] = [s["error"] for s in samples if "error" in s]
    return batch


# ---------------------------------------------------------------------------------------------
# Methods
# ---------------------------------------------------------------------------------------------
def make_method(
    kind: str,
    device: torch.device,
    model: str | None = None,
    name: str | None = None,
    texture: str | float | None = "auto",
) -> InpaintMethod:
    """The method named ``kind`` in :data:`dfnet.baselines.METHODS` ('dfnet' needs ``model``); ``name``
    overrides the report name; ``texture`` is DFNet's exemplar detail (:func:`dfnet.inference.resolve_texture`)."""
    if kind == "dfnet" and not model:
        raise EvaluationError("--method dfnet needs --model PATH")
    if kind not in METHODS:
        raise EvaluationError(f"unknown method {kind!r}; choose from {', '.join(METHODS)}")
    return METHODS[kind](device, model, name, texture)


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EvalConfig:
    """Everything that defines an evaluation run except the method."""

    images: Path
    masks: Path
    out: Path
    size: int = 512
    resize: EvalResize = "resize_crop"  # or "resize": stretch to size x size
    invert_mask: bool = False  # mask files are white = known (the released samples), not white = hole
    pairing: str = "cycle"
    batch_size: int = 8
    workers: int = 0
    bpe_band: int = DEFAULT_BPE_BAND
    device: str = "auto"
    fid_weights: Path | None = None
    lpips_weights: Path | None = None
    vgg_weights: Path | None = None
    save_images: int = 0  # pairs whose composite and grid are saved; -1 = all
    limit: int | None = None
    force: bool = False
    progress: bool = True


@dataclass
class FeatureNetworks:
    """The optional networks of FID and LPIPS, with a note of why one is missing."""

    fid: torch.nn.Module | None = None
    lpips: torch.nn.Module | None = None
    notes: dict = field(default_factory=dict)


def load_feature_networks(config: EvalConfig, device: torch.device) -> FeatureNetworks:
    """Load the FID Inception and LPIPS networks from local files; skip each with a message if absent."""
    from dfnet.inception import (
        FID_WEIGHTS_ENV,
        FID_WEIGHTS_NAME,
        file_sha256,
        find_fid_weights,
        load_fid_inception,
    )
    from dfnet.metrics import load_lpips_vgg

    nets = FeatureNetworks()
    fid_path = find_fid_weights(config.fid_weights)
    if fid_path is None:
        nets.notes["fid"] = (
            f"FID skipped: {FID_WEIGHTS_NAME} not found (pass --fid-weights PATH, set {FID_WEIGHTS_ENV}, "
            "or run `dfnet models download fid-inception`)"
        )
    else:
        nets.fid = load_fid_inception(fid_path, device)
        nets.notes["fid"] = {"weights": str(fid_path), "sha256": file_sha256(fid_path)}
    if config.lpips_weights is None:
        nets.notes["lpips"] = "LPIPS skipped: no --lpips-weights given"
    else:
        nets.lpips = load_lpips_vgg(config.lpips_weights, config.vgg_weights).to(device)
        nets.notes["lpips"] = {"weights": str(config.lpips_weights), "network": "vgg16"}
    return nets


def report_paths(out: str | os.PathLike, method_name: str) -> dict[str, Path]:
    """Where a method's reports go inside the output directory."""
    out = Path(out)
    return {suffix: out / f"{method_name}.{suffix}" for suffix in ("json", "csv", "md")}


def _save_examples(dataset: PairDataset, batch: dict, composites: Tensor, out_dir: Path, budget: int) -> int:
    """Write composites and input/result/ground-truth grids for up to ``budget`` pairs; returns how many."""
    from dfnet.imageio import save_image

    written = 0
    for i in range(min(budget, composites.shape[0])):
        name = dataset.pair_name(int(batch["pair"][i]))
        truth = batch["image"][i].permute(1, 2, 0).numpy()
        result = composites[i].permute(1, 2, 0).cpu().numpy()
        hole = batch["hole"][i, 0].numpy()[:, :, None]
        shown_input = np.where(hole, np.uint8(255), truth)
        save_image(out_dir / "results" / f"{name}.png", result)
        save_image(out_dir / "grids" / f"{name}.png", np.concatenate([shown_input, result, truth], axis=1))
        written += 1
    return written


def run_method(method: InpaintMethod, config: EvalConfig) -> dict:
    """Complete every planned pair with ``method`` and return the report (dict) without writing it."""
    from tqdm import tqdm

    from dfnet.inference import resolve_device

    device = resolve_device(config.device)
    started = time.perf_counter()
    images = list_images(config.images)
    skipped_masks: list[str] = []
    check_choice("resize", config.resize, EvalResize, EvaluationError)
    masks = load_mask_set(
        config.masks, config.size, config.progress, skipped_masks, config.resize, config.invert_mask
    )
    if skipped_masks and all(m.bin is None for m in masks):  # say why rather than "no mask in the bins"
        total = len(skipped_masks) + len(masks)
        raise EvaluationError(
            f"{config.masks}: no usable mask: {len(skipped_masks)} of {total} could not be read "
            f"(first: {skipped_masks[0]})"
        )
    plan = PairPlan(len(images), masks, config.pairing)
    dataset = PairDataset(images, masks, plan, config.size, config.resize, config.invert_mask)
    indices = range(len(dataset) if config.limit is None else min(config.limit, len(dataset)))
    loader = torch.utils.data.DataLoader(
        torch.utils.data.Subset(dataset, indices),
        batch_size=config.batch_size,
        num_workers=config.workers,
        collate_fn=collate_pairs,
    )
    nets = load_feature_networks(config, device)
    totals = {b: MetricTotals(FEATURE_DIM if nets.fid is not None else None) for b in [*plan.bins, ALL_BINS]}
    save_budget = len(indices) if config.save_images < 0 else config.save_images
    skipped_pairs: list[str] = []
    for batch in tqdm(loader, desc=method.name, unit="batch", disable=not config.progress):
        skipped_pairs += batch["skipped"]
        if "image" not in batch:
            continue
        images_batch, holes = batch["image"].to(device), batch["hole"].to(device)
        composites = method.complete(images_batch, holes)
        measured = measure_batch(composites, images_batch, holes, config.bpe_band, nets.fid, nets.lpips)
        totals[ALL_BINS].add(measured)
        for b in plan.bins:
            totals[b].add(measured.select(batch["bin"] == b))
        if save_budget > 0:
            save_budget -= _save_examples(dataset, batch, composites, config.out / method.name, save_budget)
    if totals[ALL_BINS].count == 0:
        raise EvaluationError(
            f"no image could be read ({len(skipped_pairs)} pairs skipped, first: {skipped_pairs[0]})"
        )
    settings = {
        "images": str(config.images),
        "num_images": len(images),
        "masks": str(config.masks),
        "num_masks": len(masks),
        "masks_outside_bins": sum(m.bin is None for m in masks),
        "size": config.size,
        "resize": config.resize,
        "invert_mask": config.invert_mask,
        "pairing": config.pairing,
        "num_pairs": totals[ALL_BINS].count,
        "pairs_skipped": len(skipped_pairs),
        "skipped_images": sorted(set(skipped_pairs)),
        "skipped_masks": skipped_masks,
        "bpe_band": config.bpe_band,
        "device": str(device),
        **nets.notes,
    }
    return build_report(method, settings, totals, time.perf_counter() - started)


def bin_row(key: int | str, totals: MetricTotals) -> dict:
    """One bin's entry of a report: bounds, label, pair count and every metric."""
    low, high = HOLE_RATIO_BINS[key] if key != ALL_BINS else (0.0, HOLE_RATIO_BINS[-1][1])
    return {
        "bin": key,
        "label": _label(key),
        "low": low,
        "high": high,
        "count": totals.count,
        **totals.compute(),
    }


def bin_rows(totals: dict) -> list[dict]:
    """Every bin's row; with a single paper bin, 'all' is that bin and is not computed twice (FID is costly)."""
    rows = {key: bin_row(key, total) for key, total in totals.items() if key != ALL_BINS}
    if len(rows) == 1:
        (only,) = rows.values()
        rows[ALL_BINS] = {
            **only,
            "bin": ALL_BINS,
            "label": _label(ALL_BINS),
            "low": 0.0,
            "high": HOLE_RATIO_BINS[-1][1],
        }
    else:
        rows[ALL_BINS] = bin_row(ALL_BINS, totals[ALL_BINS])
    return list(rows.values())


def build_report(method: InpaintMethod, settings: dict, totals: dict, seconds: float) -> dict:
    """The JSON-ready report: method, settings and per-bin metrics (raw values, L1/BPE in [0, 1])."""
    from dfnet import __version__

    return {
        "format": REPORT_FORMAT,
        "version": REPORT_VERSION,
        "dfnet_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "seconds": round(seconds, 3),
        "method": method.describe(),
        "settings": settings,
        "bins": bin_rows(totals),
    }


def evaluate(method: InpaintMethod, config: EvalConfig) -> dict | None:
    """Evaluate one method and write ``<out>/<name>.json/.csv/.md`` and ``<out>/table.md``.

    Returns the report, or None when the method's report already exists and ``force`` is off (the
    comparison table is still refreshed). The JSON is written last, so a run killed while writing
    leaves no JSON and the method is computed again on the next run.
    """
    paths = report_paths(config.out, method.name)
    report = None
    if config.force or not read_reports([paths["json"]], skip_others=True):
        report = run_method(method, config)
        write_report(report, paths)
    elif config.progress:
        print(f"{paths['json']}: exists, skipping {method.name} (use --force to re-run)", file=sys.stderr)
    write_comparison(
        read_reports(sorted(Path(config.out).glob("*.json")), skip_others=True),
        Path(config.out) / COMPARISON_NAME,
    )
    return report


# ---------------------------------------------------------------------------------------------
# Report formats
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MetricColumn:
    """How a metric is shown in the Markdown table."""

    key: str
    title: str
    scale: float
    decimals: int


COLUMNS = (
    MetricColumn("l1", "L1×100", 100.0, 2),
    MetricColumn("bpe", "BPE×100", 100.0, 2),
    MetricColumn("fid", "FID", 1.0, 2),
    MetricColumn("psnr", "PSNR", 1.0, 2),
    MetricColumn("ssim", "SSIM", 1.0, 4),
    MetricColumn("lpips", "LPIPS", 1.0, 4),
    MetricColumn("grad_ratio", "GradRatio", 1.0, 3),
    MetricColumn("detail", "Detail", 1.0, 3),
    MetricColumn("swd", "SWD×1000", 1000.0, 2),
)
MISSING = "–"
CSV_FIELDS = ("method", "bin", "label", "low", "high", "count", *(c.key for c in COLUMNS))


def write_report(report: dict, paths: dict[str, Path]) -> None:
    """Write one method's report as CSV, Markdown and JSON, each atomically; the JSON, written last,
    marks the method as finished."""
    atomic_write_text(paths["csv"], csv_text([report]))
    atomic_write_text(paths["md"], markdown_table([report]))
    atomic_write_text(paths["json"], json.dumps(_json_safe(report), indent=2) + "\n")


def _json_safe(value):
    """NaN/inf become None so the JSON is standard."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def read_reports(paths: Iterable[str | os.PathLike], skip_others: bool = False) -> list[dict]:
    """Load report JSON files; other files are refused with a one-line error (or skipped if asked)."""
    reports = []
    for path in paths:
        try:
            report = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            report, problem = None, f"{path}: not a readable report ({type(err).__name__})"
        else:
            problem = f"{path}: not a dfnet evaluation report"
        if isinstance(report, dict) and report.get("format") == REPORT_FORMAT:
            reports.append(report)
        elif not skip_others:
            raise EvaluationError(problem)
    return reports


def _bin_keys(reports: Sequence[dict]) -> list:
    """Bins present in any report, paper bins in order, then 'all'."""
    keys = {row["bin"] for report in reports for row in report["bins"]}
    return sorted(k for k in keys if k != ALL_BINS) + ([ALL_BINS] if ALL_BINS in keys else [])


def _label(key) -> str:
    return ALL_BINS if key == ALL_BINS else bin_label(key)


def _columns(reports: Sequence[dict]) -> list[MetricColumn]:
    """Every metric column except LPIPS, which appears only when some report has it."""
    has_lpips = any(row.get("lpips") is not None for r in reports for row in r["bins"])
    return [c for c in COLUMNS if c.key != "lpips" or has_lpips]


def _cell(value: float | None, column: MetricColumn) -> str:
    return MISSING if value is None else f"{value * column.scale:.{column.decimals}f}"


def markdown_table(reports: Sequence[dict]) -> str:
    """Methods as rows, each metric's bins as column groups (the paper's Table 1), then pair counts."""
    bins, columns = _bin_keys(reports), _columns(reports)
    header = ["Method", *(f"{c.title} {_label(b)}" for c in columns for b in bins)]
    lines = ["| " + " | ".join(header) + " |", "|---" + "|---:" * (len(header) - 1) + "|"]
    for report in reports:
        by_bin = {row["bin"]: row for row in report["bins"]}
        cells = [_cell(by_bin.get(b, {}).get(c.key), c) for c in columns for b in bins]
        lines.append("| " + " | ".join([report["method"]["name"], *cells]) + " |")
    counts = [
        "| Method | " + " | ".join(f"pairs {_label(b)}" for b in bins) + " |",
        "|---" + "|---:" * len(bins) + "|",
    ]
    for report in reports:
        by_bin = {row["bin"]: row for row in report["bins"]}
        counts.append(
            "| "
            + " | ".join([report["method"]["name"], *(str(by_bin.get(b, {}).get("count", 0)) for b in bins)])
            + " |"
        )
    return "\n".join([_protocol_line(reports), "", *lines, "", *counts, "", *_notes(reports)]) + "\n"


def _protocol_line(reports: Sequence[dict]) -> str:
    """The table's header line: evaluation size, resize mode and BPE band width (every value seen)."""

    def values(describe) -> str:
        return " / ".join(sorted({describe(r["settings"]) for r in reports}))

    sizes = values(lambda s: f"{s['size']}×{s['size']}")
    # reports written before the resize choice existed were all short side + centre crop
    resizes = values(lambda s: RESIZE_WORDS.get(s.get("resize", "resize_crop"), str(s.get("resize"))))
    bands = values(lambda s: f"{s['bpe_band']} px")
    return f"Images at {sizes}, {resizes}; BPE band {bands}."


def _notes(reports: Sequence[dict]) -> list[str]:
    """One line per report: the protocol it was run with, and why a metric is missing."""
    lines = []
    for report in reports:
        s = report["settings"]
        skipped = [v for k in ("fid", "lpips") if isinstance(v := s.get(k), str)]
        lines.append(
            f"- {report['method']['name']}: {s['num_pairs']} pairs, {s['num_images']} images from {s['images']}, "
            f"{s['num_masks']} masks from {s['masks']}{' (inverted: white = known)' if s.get('invert_mask') else ''}, "
            f"{s['size']}×{s['size']} {s.get('resize', 'resize_crop')}, pairing {s['pairing']}, "
            f"BPE band {s['bpe_band']} px" + "".join(f"; {note}" for note in skipped) + _skip_note(s)
        )
    return lines


def _skip_note(settings: dict) -> str:
    """'; 2 pairs skipped (unreadable images), 1 unreadable mask' or '' when nothing was skipped."""
    pairs, masks = settings.get("pairs_skipped", 0), len(settings.get("skipped_masks", []))
    parts = [f"{pairs} pairs skipped (unreadable images)"] if pairs else []
    parts += [f"{masks} unreadable masks left out"] if masks else []
    return "".join(f"; {part}" for part in parts)


def read_markdown_table(text: str) -> dict[str, dict[tuple[str, str], float | None]]:
    """Parse the metric table of :func:`markdown_table` back: method -> {(metric key, bin label): value}.

    Values are unscaled to the JSON's units (L1 and BPE divided by 100).
    """
    by_title = {c.title: c for c in COLUMNS}
    rows = [line for line in text.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in rows[0].strip("|").split("|")]
    keys = []
    for title in header[1:]:
        metric, label = title.split(" ", 1)
        keys.append((by_title[metric], label))
    table: dict[str, dict[tuple[str, str], float | None]] = {}
    for line in rows[2:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if cells[0] == "Method":  # the counts table starts
            break
        table[cells[0]] = {
            (column.key, label): None if cell == MISSING else float(cell) / column.scale
            for (column, label), cell in zip(keys, cells[1:], strict=True)
        }
    return table


def csv_text(reports: Sequence[dict]) -> str:
    """One row per method and bin with the raw values (L1 and BPE in [0, 1]) and the pair count."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for report in reports:
        for row in report["bins"]:
            writer.writerow({"method": report["method"]["name"], **{k: row.get(k) for k in CSV_FIELDS[1:]}})
    return buffer.getvalue()


def write_comparison(reports: Sequence[dict], path: str | os.PathLike) -> None:
    """Write one Markdown table comparing all ``reports`` (atomically); nothing when there are none."""
    if reports:
        atomic_write_text(path, markdown_table(reports))


__all__ = [
    "COLUMNS",
    "PAIRINGS",
    "RESIZE_CHOICES",
    "DFNetMethod",
    "EvalConfig",
    "EvaluationError",
    "MaskEntry",
    "PairDataset",
    "PairPlan",
    "csv_text",
    "evaluate",
    "fit_square",
    "list_images",
    "load_mask_set",
    "make_method",
    "markdown_table",
    "read_markdown_table",
    "read_reports",
    "write_comparison",
]
