"""Throughput of the data side, per worker process: masks per second and training samples per second.

Measured in one process (that is what one DataLoader worker does), at 256 and 512:

* masks/s of the free-form generator (bins drawn uniformly from the five paper bins), of each single bin,
  and of a 1000-mask set with augmentation (flip, 90-degree turns, zoom/crop/shift, dilate/erode);
* samples/s of ``InpaintingDataset.__getitem__`` (JPEG decode, resize + random crop + flip, mask, tensors)
  on synthetic 4:3 JPEG photos whose short side is 1.25x the training size, with masks generated on the
  fly or drawn from the mask set.

Each case runs a warm-up, then ``--repeats`` timed rounds; the table gives the median rate and the spread
(min-max over rounds), plus the median rate per CPU second (less sensitive to a busy, shared machine). Usage: ``python benchmarks/bench_data.py [--repeats 5] [--sizes 256 512]``.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image

from dfnet.data import ImageTransform, InpaintingDataset
from dfnet.masks import (
    ALL_BINS,
    GeneratedMaskSource,
    MaskSetSource,
    MaskSource,
    PackedMasks,
    generate_mask,
    generate_masks,
)


def rate(step: Callable[[int], object], per_round: int, repeats: int, warmup: int) -> tuple[float, ...]:
    """(median, min, max) calls per wall-clock second and median calls per CPU second of ``step(i)``."""
    for i in range(warmup):
        step(i)
    rates, cpu_rates = [], []
    for r in range(repeats):
        start, cpu_start = time.perf_counter(), time.process_time()
        for i in range(per_round):
            step(warmup + r * per_round + i)
        rates.append(per_round / (time.perf_counter() - start))
        cpu_rates.append(per_round / max(time.process_time() - cpu_start, 1e-9))
    return statistics.median(rates), min(rates), max(rates), statistics.median(cpu_rates)


def photo(width: int, height: int, seed: int) -> np.ndarray:
    """A photo-like RGB picture: smooth colour fields plus fine noise (so JPEG sizes are realistic)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (height // 32 + 2, width // 32 + 2, 3), dtype=np.uint8)
    smooth = np.asarray(Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC), np.int16)
    noise = rng.integers(-12, 13, (height, width, 3), dtype=np.int16)
    return np.clip(smooth + noise, 0, 255).astype(np.uint8)


def write_photos(folder: Path, size: int, count: int) -> list[Path]:
    """``count`` 4:3 JPEGs (quality 90) with short side 1.25 x ``size``."""
    short = round(size * 1.25)
    paths = []
    for i in range(count):
        path = folder / f"{size}_{i:03d}.jpg"
        Image.fromarray(photo(short * 4 // 3, short, i)).save(path, quality=90)
        paths.append(path)
    return paths


def bench_masks(size: int, mask_set: MaskSource, args: argparse.Namespace) -> list[tuple[str, tuple]]:
    """Rows for the mask generator (all bins, each bin) and the augmented mask set at one size."""
    rows = []
    all_bins = GeneratedMaskSource(ALL_BINS)
    rng = np.random.default_rng(0)
    rows.append(
        ("generated, bins 0-4", rate(lambda i: all_bins.sample(rng, (size, size)), args.n, args.repeats, 5))
    )
    for b in ALL_BINS:
        rows.append(
            (f"generated, bin {b}", rate(lambda i, b=b: generate_mask(size, rng, b), args.n, args.repeats, 5))
        )
    rows.append(
        (
            "mask set + augmentation",
            rate(lambda i: mask_set.sample(rng, (size, size)), args.n, args.repeats, 5),
        )
    )
    return rows


def bench_samples(size: int, files: list[Path], sources: dict[str, MaskSource], args: argparse.Namespace):
    """Rows for dataset samples at one size, one per mask source."""
    rows = []
    for name, source in sources.items():
        dataset = InpaintingDataset(files, ImageTransform(size), source, seed=0, rank=0)
        per_round = max(args.n // 4, 8)
        rows.append(
            (f"samples, masks {name}", rate(lambda i, d=dataset: d[i % len(d)], per_round, args.repeats, 4))
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds per case")
    parser.add_argument("-n", type=int, default=100, help="calls per round for masks (samples: n/4)")
    parser.add_argument("--images", type=int, default=32, help="synthetic JPEGs per size")
    args = parser.parse_args()
    torch.set_num_threads(1)  # as in a DataLoader worker (OpenCV too, to count one core's work)
    cv2.setNumThreads(1)

    print(f"python {platform.python_version()}, torch {torch.__version__}, numpy {np.__version__}")
    print(f"{args.repeats} rounds after warm-up; median and min-max over rounds; one process (= one worker)")
    print("per CPU second = calls / process CPU time: the rate of a worker with a core of its own\n")
    print("| size | case | per second (median) | spread (min-max) | per CPU second (median) |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            mask_set = MaskSetSource(PackedMasks(m.hole_mask for m in generate_masks(1000, size, seed=0)))
            rows = bench_masks(size, mask_set, args)
            files = write_photos(Path(tmp), size, args.images)
            rows += bench_samples(
                size, files, {"generated": GeneratedMaskSource(ALL_BINS), "set": mask_set}, args
            )
            for name, (median, low, high, cpu) in rows:
                print(
                    f"| {size} | {name} | {median:,.0f} | {low:,.0f}-{high:,.0f} | {cpu:,.0f} |", flush=True
                )


if __name__ == "__main__":
    main()
