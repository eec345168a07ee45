"""The run: complete every planned pair with a method, measure it per bin and write the reports."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from dfnet.baselines import METHODS, InpaintMethod
from dfnet.choices import check_choice
from dfnet.evaluation.inputs import EvalResize, EvaluationError, list_images, load_mask_set
from dfnet.evaluation.plan import PairDataset, PairPlan, collate_pairs
from dfnet.evaluation.report import (
    ALL_BINS,
    COMPARISON_NAME,
    build_report,
    read_reports,
    write_comparison,
    write_report,
)
from dfnet.inception import FEATURE_DIM
from dfnet.metrics import DEFAULT_BPE_BAND, MetricTotals, measure_batch


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
            "or put it in the torch hub checkpoints cache)"
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
