"""The product path: ``Inpainter.inpaint`` per engine, including the one-time preparation.

``bench_inference.py`` times the bare network; this times what a user of the API, ``dfnet inpaint`` or
``dfnet serve`` waits for: loading, preparing (``engine="optimized"`` folds the graph and builds an ONNX
Runtime session on CPU), and each call (reading arrays, padding/resizing by strategy, the network,
compositing). Engines are timed round-robin after warm-up; results are compared with the eager engine.

    python benchmarks/bench_inpainter.py --threads 2                        # full-width random weights, 512x512
    python benchmarks/bench_inpainter.py --model default --size 512 --strategy original
    python benchmarks/bench_inpainter.py --model default --texture auto   # + a row with exemplar detail

Without ``--texture`` both engines run the network alone (``texture=None``), so the rows time the network
path whatever the model; ``--texture auto|STRENGTH`` adds the optimized engine with exemplar detail
(:mod:`dfnet.exemplar`), the bundled default's out-of-the-box setting.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # tests/helpers.py: randomize_batchnorm

from helpers import randomize_batchnorm  # noqa: E402

from dfnet.checkpoint import save_model  # noqa: E402
from dfnet.evaluation import load_eval_image  # noqa: E402
from dfnet.inference import Inpainter  # noqa: E402
from dfnet.model import DFNet, DFNetConfig  # noqa: E402
from dfnet.optimize import cpu_flags  # noqa: E402

ENGINES = ("torch", "optimized")
TEXTURE_ROW = "optimized + exemplar detail"


def random_weights(path: Path, width: float) -> Path:
    """A seeded random DFNet (BatchNorm statistics randomised) saved as safetensors."""
    torch.manual_seed(0)
    save_model(randomize_batchnorm(DFNet(DFNetConfig(width=width))).eval(), path)
    return path


def sample_pair(size: int) -> tuple[np.ndarray, np.ndarray]:
    """A smooth random picture and a hole of about 21 % (two crossing bars)."""
    rng = np.random.default_rng(0)
    coarse = rng.random((size // 32, size // 32, 3))
    rgb = np.kron(coarse, np.ones((32, 32, 1)))
    rgb = (255 * (0.7 * rgb + 0.3 * rng.random((size, size, 3)))).astype(np.uint8)
    hole = np.zeros((size, size), dtype=bool)
    hole[size // 4 : size // 4 + size // 8, :] = True
    hole[:, size // 2 : size // 2 + size // 10] = True
    return rgb, hole


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="weights file or 'default' (default: random full-width weights)")
    parser.add_argument("--width", type=float, default=1.0, help="width of the random model")
    parser.add_argument("--size", type=int, default=512, help="square test image side")
    parser.add_argument(
        "--strategy", default="original", help="inpaint strategy (original: one network call)"
    )
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--image", help="a photo to use (fitted to --size) instead of the synthetic picture")
    parser.add_argument(
        "--texture", help="also time the optimized engine with this texture option (auto or a strength)"
    )
    parser.add_argument(
        "--also", nargs="*", default=[], help="more precisions of the optimized engine to time (int8, bf16)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = args.model or str(random_weights(Path("/tmp/bench_inpainter.safetensors"), args.width))
    rgb, hole = sample_pair(args.size)
    if args.image:
        rgb = load_eval_image(args.image, args.size)

    rows = {"torch": ("torch", None, "fp32"), "optimized fp32": ("optimized", None, "fp32")}
    rows["optimized auto (product path)"] = ("optimized", None, "auto")
    for precision in args.also:
        rows[f"optimized {precision}"] = ("optimized", None, precision)
    if args.texture:
        texture = args.texture if args.texture == "auto" else float(args.texture)
        rows[TEXTURE_ROW] = ("optimized", texture, "auto")
    inpainters, setup = {}, {}
    for row, (engine, texture, precision) in rows.items():
        started = time.perf_counter()
        inpainters[row] = Inpainter.from_pretrained(
            model, device="cpu", precision=precision, engine=engine, texture=texture
        )
        setup[row] = time.perf_counter() - started
    results = {e: p.inpaint(rgb, hole, strategy=args.strategy) for e, p in inpainters.items()}
    for _ in range(args.warmup - 1):
        for p in inpainters.values():
            p.inpaint(rgb, hole, strategy=args.strategy)
    times: dict[str, list[float]] = {row: [] for row in rows}
    for round_ in range(args.repeats):  # interleaved rounds, the order reversed every other round
        order = list(inpainters.items())
        for row, p in order if round_ % 2 == 0 else order[::-1]:
            started = time.perf_counter()
            p.inpaint(rgb, hole, strategy=args.strategy)
            times[row].append(time.perf_counter() - started)

    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(
        f"# {now}, {platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{args.threads} threads, model {args.model or f'random width {args.width}'}, "
        f"{args.size}x{args.size}, strategy {args.strategy}, image {args.image or 'synthetic'}, "
        f"texture {args.texture or 'off'}"
    )
    flags = sorted(
        f
        for f in cpu_flags()
        if f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni") or "bf16" in f or "amx" in f
    )
    print(f"# CPU: {cpu_model()}; flags: {' '.join(flags)}")
    print(
        "| engine | precision used | set-up s | median ms/call | min-max ms | ratio to torch (median of rounds) "
        "| max diff vs torch (levels) |"
    )
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        median = statistics.median(times[row])
        ratio = statistics.median(t / b for t, b in zip(times[row], times["torch"], strict=True))
        diff = int(np.abs(results[row].astype(int) - results["torch"]).max())
        print(
            f"| {row} | {inpainters[row].precision if row == 'torch' else describe_precision(inpainters[row])} "
            f"| {setup[row]:.2f} | {1000 * median:.1f} | {1000 * min(times[row]):.1f}–"
            f"{1000 * max(times[row]):.1f} | {ratio:.3f} | {diff} |"
        )


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo), else what platform knows."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def describe_precision(inpainter: Inpainter) -> str:
    """The precision the prepared (optimized) model runs in."""
    return str(inpainter._run.model.info.get("precision"))


if __name__ == "__main__":
    main()
