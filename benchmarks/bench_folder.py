"""Folder throughput of `dfnet inpaint`: images per second on a folder of 512x512 JPEGs.

Each round runs the command once per source tree (this checkout's ``src`` and, with ``--baseline-src``, an older
one, e.g. ``git archive COMMIT src | tar -x -C /tmp/base``), alternating, in fresh processes, and reads the time
the command itself reports (after the model is loaded). Between them the same process times the network path
alone (``Inpainter.complete_arrays`` on arrays decoded beforehand, nothing written): the speed a folder run could
reach if reading and writing cost nothing, and the reading and writing alone (what overlapping can hide). The outputs of every tree are compared byte for byte.

    python benchmarks/bench_folder.py --baseline-src /tmp/base/src --images 16 --rounds 3
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SIZE = 512


def make_folder(folder: Path, count: int) -> None:
    """``count`` photo-like 512x512 JPEGs (quality 90) and a mask each (a 10 % rectangle, moved per image)."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    (folder / "photos").mkdir(parents=True)
    (folder / "masks").mkdir()
    for i in range(count):
        base = np.stack([x * 0.3 + 40 * np.sin(y / (20 + i)), y * 0.4, (x + y) * 0.2], axis=2)
        rgb = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
        Image.fromarray(rgb).save(folder / "photos" / f"img{i:03d}.jpg", quality=90)
        hole = np.zeros((SIZE, SIZE), np.uint8)
        top, left = 40 + 12 * i % 300, 60 + 17 * i % 280
        hole[top : top + 160, left : left + 165] = 255
        Image.fromarray(hole).save(folder / "masks" / f"img{i:03d}.png")


def run_command(src: Path, folder: Path, out: Path, extra: list[str]) -> float:
    """Run `dfnet inpaint` from source tree ``src``; the seconds it reports for the folder."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    command = [sys.executable, "-m", "dfnet.cli", "inpaint", str(folder / "photos"), str(folder / "masks"),
               "-o", str(out), "--no-progress", *extra]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    match = re.search(r"inpainted (\d+) of (\d+) images? in ([\d.]+) s", done.stdout)
    if match is None or match[1] != match[2]:
        raise RuntimeError(f"unexpected output: {done.stdout} {done.stderr}")
    return float(match[3])


def network_only(folder: Path, extra: list[str]) -> float:
    """Seconds for ``Inpainter.complete_arrays`` over the folder's arrays, decoded beforehand, nothing saved."""
    sys.path.insert(0, str(ROOT / "src"))
    from dfnet.inference import Inpainter

    engine = extra[extra.index("--engine") + 1] if "--engine" in extra else "torch"
    inpainter = Inpainter.from_pretrained("default", device="cpu", engine=engine)
    photos = sorted((folder / "photos").iterdir())
    arrays = [(np.asarray(Image.open(p).convert("RGB")), np.asarray(Image.open(folder / "masks" / f"{p.stem}.png")) > 127)
              for p in photos]  # fmt: skip
    inpainter.complete_arrays(arrays[0][0][None], arrays[0][1][None])  # warm-up
    started = time.perf_counter()
    for rgb, hole in arrays:
        inpainter.complete_arrays(rgb[None], hole[None])
    return time.perf_counter() - started


def reading_and_writing(folder: Path, out: Path) -> float:
    """Seconds to read every photo and mask and write the photo back as the command would (no network): the
    most that overlapping them with the network can save."""
    sys.path.insert(0, str(ROOT / "src"))
    from dfnet.cli.inpaint import collect_jobs, load_job
    from dfnet.imageio import save_image

    started = time.perf_counter()
    for job in collect_jobs(str(folder / "photos"), str(folder / "masks"), str(out)):
        loaded = load_job(job, invert=False, resize_mask=False)
        save_image(job.output, loaded.image.rgb, like=loaded.image, quality=95)
    return time.perf_counter() - started


def differing_files(first: Path, second: Path) -> list[str]:
    """Names of the results that differ between two output folders (or exist in one only)."""
    names = {p.name for p in first.iterdir()} | {p.name for p in second.iterdir()}
    return sorted(
        n
        for n in names
        if not ((first / n).exists() and (second / n).exists())
        or (first / n).read_bytes() != (second / n).read_bytes()
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline-src", type=Path, help="an older checkout's src directory to compare with")
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--engine", default="torch", choices=("torch", "optimized"))
    args = parser.parse_args()
    extra = ["--engine", args.engine]
    trees = {"overlapped (this checkout)": ROOT / "src"}
    if args.baseline_src:
        trees = {"sequential (baseline)": args.baseline_src, **trees}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        make_folder(folder, args.images)
        rows = [*trees, "network only (same process)", "reading + writing only (same process)"]
        seconds: dict[str, list[float]] = {name: [] for name in rows}
        for r in range(args.rounds):
            for i, (name, src) in enumerate(trees.items()):
                seconds[name].append(run_command(src, folder, folder / f"out{i}_{r}", extra))
            seconds["network only (same process)"].append(network_only(folder, extra))
            seconds["reading + writing only (same process)"].append(
                reading_and_writing(folder, folder / f"io_{r}")
            )
            print(
                f"round {r + 1}: " + ", ".join(f"{n} {s[-1]:.1f} s" for n, s in seconds.items()), flush=True
            )
        runs = sorted(folder.glob("out*_*"))
        differing = {
            f"{a.name} vs {b.name}": d for a, b in itertools.pairwise(runs) if (d := differing_files(a, b))
        }
    print(f"\n{args.images} images of {SIZE}x{SIZE}, engine {args.engine}, {args.rounds} rounds")
    print("| run | images/s (median) | min-max |\n|---|---:|---:|")
    for name, values in seconds.items():
        rates = [args.images / s for s in values]
        print(f"| {name} | {statistics.median(rates):.3f} | {min(rates):.3f}-{max(rates):.3f} |")
    if args.baseline_src:
        ratios = [a / b for a, b in zip(*(seconds[n] for n in trees), strict=True)]
        print(f"speed-up per round (baseline time / this time): {', '.join(f'{r:.3f}' for r in ratios)}")
    print(f"results of every run byte-identical: {not differing} {differing or ''}")


if __name__ == "__main__":
    main()
