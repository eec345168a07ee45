"""Large photos with small holes: time and memory of ``Inpainter.inpaint`` should follow the holes.

A synthetic photo (smooth colour field plus grain, written as a JPEG and decoded, as a user's file would be)
gets three small holes at fixed positions near its centre; the same holes are placed in a 3000x2000 and a
6000x4000 picture, so the work after decoding should be the same. Each case runs in a fresh subprocess
(peak memory is per process) with the bundled default model, texture on (the default) and off; the
subprocesses of one round alternate so that load from other processes hits both sizes alike.

    python benchmarks/bench_large_photo.py --rounds 3

Peak memory is the process's peak resident set (``ru_maxrss``) minus its resident set just before the call
(image and mask already decoded, model loaded, one warm-up call on a small picture done).
"""

from __future__ import annotations

import argparse
import datetime
import io
import json
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SIZES = ((3000, 2000), (6000, 4000))
HOLE_SIDE = 180  # three holes of 180x180 px (about 0.8 % of 3000x2000, 0.2 % of 6000x4000)


def synthetic_jpeg(width: int, height: int) -> bytes:
    """JPEG bytes of a smooth colour field with grain; the region around the centre is the same at any size."""
    from PIL import Image

    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    y -= height / 2
    x -= width / 2
    rgb = np.empty((height, width, 3), np.uint8)
    for c, (fy, fx) in enumerate(((0.011, 0.007), (0.005, 0.013), (0.009, 0.004))):
        field = 128 + 60 * np.sin(fy * y + c) * np.cos(fx * x) + rng.normal(0, 8, (height, width))
        rgb[..., c] = np.clip(field, 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def centre_holes(width: int, height: int) -> np.ndarray:
    """Three square holes at fixed offsets from the picture's centre."""
    hole = np.zeros((height, width), bool)
    cy, cx = height // 2, width // 2
    for dy, dx in ((-400, -600), (0, 0), (300, 500)):
        hole[cy + dy : cy + dy + HOLE_SIDE, cx + dx : cx + dx + HOLE_SIDE] = True
    return hole


def rss_mb() -> float:
    """Current resident set of this process in MB."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() / 1e6


def reset_peak() -> None:
    """Reset the kernel's peak resident set (VmHWM) to the current one (Linux: clear_refs 5)."""
    Path("/proc/self/clear_refs").write_text("5")


def peak_mb() -> float:
    """Peak resident set (VmHWM) since the last :func:`reset_peak`, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1e3
    raise RuntimeError("no VmHWM in /proc/self/status")


def one_case(jpeg_path: Path, texture: bool) -> dict:
    """Decode, warm up, then time one inpaint and measure its peak memory above the pre-call baseline."""
    import torch

    from dfnet.imageio import load_image
    from dfnet.inference import Inpainter

    torch.set_num_threads(2)
    rgb = load_image(jpeg_path).rgb
    hole = centre_holes(rgb.shape[1], rgb.shape[0])
    inpainter = Inpainter.from_pretrained("default", device="cpu")
    inpainter.inpaint(rgb[:600, :600].copy(), hole[:600, :600].copy(), add_texture=texture)
    before = rss_mb()
    reset_peak()
    start = time.perf_counter()
    result = inpainter.inpaint(rgb, hole, add_texture=texture)
    seconds = time.perf_counter() - start
    peak = peak_mb()
    assert (result[~hole] == rgb[~hole]).all()
    return {"seconds": seconds, "peak_above_mb": max(0.0, peak - before), "before_mb": before}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--case", help=argparse.SUPPRESS)  # internal: JPEG:texture, one subprocess
    args = parser.parse_args(argv)
    if args.case:
        path, texture = args.case.rsplit(":", 1)
        print(json.dumps(one_case(Path(path), texture == "1")))
        return
    rows: dict[tuple, list[dict]] = {}
    folder = Path(tempfile.mkdtemp(prefix="dfnet-large-"))
    for width, height in SIZES:
        (folder / f"{width}x{height}.jpg").write_bytes(synthetic_jpeg(width, height))
    for _ in range(args.rounds):
        for texture in (True, False):
            for width, height in SIZES:
                case = f"{folder / f'{width}x{height}.jpg'}:{int(texture)}"
                out = subprocess.run(
                    [sys.executable, __file__, "--case", case], capture_output=True, text=True, check=True
                )
                rows.setdefault((width, height, texture), []).append(json.loads(out.stdout.splitlines()[-1]))
    print(f"# {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.processor()}")
    print("| picture | texture | time s (median, min-max) | peak above baseline MB (median) |")
    print("|---|---|---|---|")
    for (width, height, texture), runs in rows.items():
        times = [r["seconds"] for r in runs]
        peaks = [r["peak_above_mb"] for r in runs]
        print(
            f"| {width}x{height} | {'on' if texture else 'off'} | {statistics.median(times):.2f} "
            f"({min(times):.2f}-{max(times):.2f}) | {statistics.median(peaks):.0f} |"
        )


if __name__ == "__main__":
    main()
