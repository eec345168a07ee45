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
from dfnet.distributed import SINGLE, Ranks, current_ranks, gather_to_main, rank_device
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
from dfnet.metrics import DEFAULT_BPE_BAND, BatchMeasurements, MetricTotals, measure_batch


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
    from dfnet.files import file_sha256
    from dfnet.inception import FID_WEIGHTS_ENV, FID_WEIGHTS_NAME, find_fid_weights, load_fid_inception
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


def _save_examples(dataset: PairDataset, batch: dict, composites: Tensor, out_dir: Path, first: int) -> None:
    """Write composites and input/result/ground-truth grids of the batch's pairs numbered below ``first``."""
    from dfnet.imageio import save_image

    for i, pair in enumerate(batch["pair"].tolist()):
        if pair >= first:
            continue
        name = dataset.pair_name(pair)
        truth = batch["image"][i].permute(1, 2, 0).numpy()
        result = composites[i].permute(1, 2, 0).cpu().numpy()
        hole = batch["hole"][i, 0].numpy()[:, :, None]
        shown_input = np.where(hole, np.uint8(255), truth)
        save_image(out_dir / "results" / f"{name}.png", result)
        save_image(out_dir / "grids" / f"{name}.png", np.concatenate([shown_input, result, truth], axis=1))


@dataclass
class BatchRows:
    """One batch's per-image measurements and skipped pairs, accumulated in batch order on rank 0."""

    number: int
    measured: BatchMeasurements | None
    bins: Tensor | None
    skipped: list[str]


@dataclass
class ShardResult:
    """What one rank measured, and what it lost when it stopped early (its error and the pairs' images)."""

    rank: int
    rows: list[BatchRows]
    error: str | None = None
    lost_images: list[str] = field(default_factory=list)


def numbered_batches(count: int, batch_size: int, ranks: Ranks = SINGLE) -> list[tuple[int, list[int]]]:
    """The pair indices of each batch this rank owns, with the batch's number; batch n goes to rank n mod world
    size, so every batch holds the same pairs as in a single-process run."""
    starts = range(0, count, batch_size)
    return [(n, list(range(s, min(s + batch_size, count)))) for n, s in enumerate(starts) if ranks.owns(n)]


def measure_shard(
    method: InpaintMethod,
    dataset: PairDataset,
    config: EvalConfig,
    nets: FeatureNetworks,
    device: torch.device,
    ranks: Ranks = SINGLE,
) -> ShardResult:
    """Complete and measure this rank's batches; with several ranks an error ends the shard and names the
    images of the pairs it did not measure (one process lets the error through)."""
    from tqdm import tqdm

    count = len(dataset) if config.limit is None else min(config.limit, len(dataset))
    numbered = numbered_batches(count, config.batch_size, ranks)
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_sampler=[pairs for _, pairs in numbered],
        num_workers=config.workers,
        collate_fn=collate_pairs,
    )
    first_saved = count if config.save_images < 0 else config.save_images
    show = config.progress and ranks.is_main
    result = ShardResult(ranks.rank, [])
    try:
        for (number, _), batch in zip(
            numbered, tqdm(loader, desc=method.name, unit="batch", disable=not show), strict=True
        ):
            if "image" not in batch:
                result.rows.append(BatchRows(number, None, None, batch["skipped"]))
                continue
            images_batch, holes = batch["image"].to(device), batch["hole"].to(device)
            composites = method.complete(images_batch, holes)
            measured = measure_batch(composites, images_batch, holes, config.bpe_band, nets.fid, nets.lpips)
            result.rows.append(BatchRows(number, measured, batch["bin"], batch["skipped"]))
            _save_examples(dataset, batch, composites, config.out / method.name, first_saved)
    except Exception as err:
        if ranks.world_size == 1:
            raise
        done = {rows.number for rows in result.rows}
        lost = {dataset.images[dataset.plan[k][0]] for n, pairs in numbered if n not in done for k in pairs}
        result.error = f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}"
        result.lost_images = sorted(map(str, lost))
    return result


def accumulate(shards: list[ShardResult], bins: list[int], feature_dim: int | None) -> tuple[dict, list[str]]:
    """Per-bin totals and skipped pairs of every shard, added in batch order (a single run's order)."""
    totals = {b: MetricTotals(feature_dim) for b in [*bins, ALL_BINS]}
    skipped: list[str] = []
    for rows in sorted((r for shard in shards for r in shard.rows), key=lambda r: r.number):
        skipped += rows.skipped
        if rows.measured is None:
            continue
        totals[ALL_BINS].add(rows.measured)
        for b in bins:
            totals[b].add(rows.measured.select(rows.bins == b))
    return totals, skipped


def lost_work_error(shards: list[ShardResult]) -> EvaluationError | None:
    """One line naming each rank that stopped, its error and the images it lost; None when none stopped."""
    failed = [s for s in shards if s.error is not None]
    if not failed:
        return None
    parts = [
        f"rank {s.rank} stopped ({s.error}) and lost {len(s.lost_images)} images: {', '.join(s.lost_images)}"
        for s in failed
    ]
    return EvaluationError("; ".join(parts) + "; no report written")


def run_method(method: InpaintMethod, config: EvalConfig) -> dict | None:
    """Complete every planned pair with ``method`` and return the report (dict) without writing it.

    In a process group (torchrun, SLURM) each rank measures its share of the batches and rank 0, the only
    one that returns the report, gathers the rows: the report is the one a single process writes.
    """
    from dfnet.inference import resolve_device

    ranks = current_ranks()
    device = resolve_device(rank_device(config.device, ranks))
    started = time.perf_counter()
    images = list_images(config.images)
    skipped_masks: list[str] = []
    check_choice("resize", config.resize, EvalResize, EvaluationError)
    masks = load_mask_set(
        config.masks, config.size, config.progress and ranks.is_main, skipped_masks, config.resize,
        config.invert_mask,
    )  # fmt: skip
    if skipped_masks and all(m.bin is None for m in masks):  # say why rather than "no mask in the bins"
        total = len(skipped_masks) + len(masks)
        raise EvaluationError(
            f"{config.masks}: no usable mask: {len(skipped_masks)} of {total} could not be read "
            f"(first: {skipped_masks[0]})"
        )
    plan = PairPlan(len(images), masks, config.pairing)
    dataset = PairDataset(images, masks, plan, config.size, config.resize, config.invert_mask)
    nets = load_feature_networks(config, device)
    shard = measure_shard(method, dataset, config, nets, device, ranks)
    if shard.error is not None:
        print(f"rank {ranks.rank}: {lost_work_error([shard])}", file=sys.stderr)
    shards = gather_to_main(shard, ranks)
    if shards is None:
        return None
    if (lost := lost_work_error(shards)) is not None:
        raise lost
    totals, skipped_pairs = accumulate(shards, plan.bins, FEATURE_DIM if nets.fid is not None else None)
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
    comparison table is still refreshed) and on ranks other than 0, which only measure their share. The JSON is written last, so a run killed while writing
    leaves no JSON and the method is computed again on the next run.
    """
    paths = report_paths(config.out, method.name)
    report = None
    is_main = current_ranks().is_main
    if config.force or not read_reports([paths["json"]], skip_others=True):
        report = run_method(method, config)
        if report is None:  # a rank other than 0: rank 0 writes the report
            return None
        write_report(report, paths)
    elif config.progress and is_main:
        print(f"{paths['json']}: exists, skipping {method.name} (use --force to re-run)", file=sys.stderr)
    if is_main:
        write_comparison(
            read_reports(sorted(Path(config.out).glob("*.json")), skip_others=True),
            Path(config.out) / COMPARISON_NAME,
        )
    return report
