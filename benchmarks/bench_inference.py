"""Inference benchmark: the released-style eager fp32 DFNet against this project's fast paths, same run.

The reference is ``ReferenceDFNet`` (benchmarks/reference_dfnet.py): the released layout, BGR input,
known mask, all six fusion blocks, eager fp32 under ``torch.no_grad`` — what the released test script
runs. It gets the same weights as the project model (``project_to_released``). Every candidate is
timed round-robin with the reference (so load from other processes hits all alike), after warm-up;
medians, inter-quartile ranges and per-round ratios to the reference are reported, and every
candidate's result is compared with the reference's.

CPU (default when no GPU):  python benchmarks/bench_inference.py --threads 2
  adds --memory (peak RSS per image, one fresh process per engine) and
  --leak-calls 1000 (RSS growth over many calls, narrow model: --leak-width/--leak-size).
GPU:  python benchmarks/bench_inference.py --device cuda [--compile] [--batches 1,8,32,64,128]

Weights are random (seeded, BatchNorm statistics randomised) unless --weights names a file.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests"))  # tests/helpers.py: randomize_batchnorm

from helpers import randomize_batchnorm  # noqa: E402
from reference_dfnet import ReferenceDFNet  # noqa: E402

from dfnet.checkpoint import load_model, project_to_released  # noqa: E402
from dfnet.model import DFNet, DFNetConfig  # noqa: E402
from dfnet.optimize import CPU_ENGINES, choose_cpu_engine, onnxruntime_available, prepare_for_inference  # noqa: E402

CPU_TOLERANCE = 1e-3  # fp32 fast paths vs the reference
HALF_TOLERANCE = 1 / 255  # bf16/fp16 vs fp32


# ---------------------------------------------------------------------------------------------
# Timing and reporting helpers (bench_train.py uses them too)
# ---------------------------------------------------------------------------------------------
@dataclass
class Timing:
    """Per-call seconds of one candidate, with robust summaries."""

    name: str
    seconds: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def iqr(self) -> tuple[float, float]:
        """(first quartile, third quartile) of the per-call times."""
        if len(self.seconds) < 2:
            return self.seconds[0], self.seconds[0]
        q = statistics.quantiles(self.seconds, n=4, method="inclusive")
        return q[0], q[2]


def synchronize(device: torch.device) -> None:
    """Wait for queued device work so wall-clock times are real."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved_timings(
    candidates: dict[str, Callable[[], object]], warmup: int, repeats: int, device: torch.device
) -> dict[str, Timing]:
    """Time every candidate ``repeats`` times round-robin, after ``warmup`` untimed calls each."""
    for fn in candidates.values():
        for _ in range(warmup):
            fn()
        synchronize(device)
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, fn in candidates.items():
            synchronize(device)
            start = time.perf_counter()
            fn()
            synchronize(device)
            times[name].append(time.perf_counter() - start)
    return {name: Timing(name, seconds) for name, seconds in times.items()}


def paired_ratio(candidate: Timing, reference: Timing) -> float:
    """Median over rounds of (candidate time / reference time in the same round)."""
    return statistics.median(c / r for c, r in zip(candidate.seconds, reference.seconds, strict=True))


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        out = ""
    names = [line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name:")]
    return names[0] if names else (platform.processor() or "unknown")


def machine_info(device: torch.device) -> dict:
    """Machine, versions, command, date and load average: recorded with every table."""
    info = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": " ".join(shlex.quote(a) for a in ["python", *sys.argv]),
        "cpu": cpu_model(),
        "nproc": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    if onnxruntime_available():
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
    info["load_average_start"] = load_average()
    return info


def print_header(info: dict) -> None:
    for key, value in info.items():
        print(f"- {key}: `{value}`" if key == "command" else f"- {key}: {value}")
    print()


def write_json(path: str | None, payload: dict) -> None:
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(payload, indent=2))
        print(f"wrote {path}")


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def timing_row(t: Timing, reference: Timing | None, extra: list[str], batch: int = 1) -> str:
    q1, q3 = t.iqr
    ratio = f"{paired_ratio(t, reference):.3f}" if reference is not None else "—"
    per_image = t.median / batch
    cells = [t.name, ms(t.median), f"{ms(q1)}–{ms(q3)}", ms(per_image), f"{1 / per_image:.1f}", ratio, *extra]
    return "| " + " | ".join(cells) + " |"


TABLE_HEAD = (
    "| path | median ms/call | IQR ms | ms/image | images/s | ratio to reference | max abs diff |\n"
    "|---|---|---|---|---|---|---|"
)


# ---------------------------------------------------------------------------------------------
# Models and inputs
# ---------------------------------------------------------------------------------------------
def build_model(width: float, weights: str | None, seed: int = 0) -> DFNet:
    """The project model: from ``weights`` or random (seeded, BatchNorm statistics randomised)."""
    if weights:
        return load_model(weights).eval()
    torch.manual_seed(seed)
    model = DFNet(DFNetConfig(width=width))
    randomize_batchnorm(model, seed)
    return model.eval()


def build_reference(model: DFNet) -> ReferenceDFNet:
    """The released-layout eager network holding ``model``'s weights."""
    cfg = model.config
    reference = ReferenceDFNet(
        kernels=cfg.encoder_kernels,
        base=cfg.encoder_channels()[0],
        c_alpha=cfg.alpha_channels,
        fused=cfg.fusion_layers,
    )
    reference.load_state_dict(project_to_released(model.state_dict(), cfg))
    return reference.eval()


def make_inputs(
    batch: int, size: int, device: torch.device, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """A random image and a hole mask with about 30 % holes."""
    gen = torch.Generator().manual_seed(seed)
    image = torch.rand(batch, 3, size, size, generator=gen)
    hole_mask = (torch.rand(batch, 1, size, size, generator=gen) > 0.7).float()
    return image.to(device), hole_mask.to(device)


def reference_fn(
    reference: ReferenceDFNet, image: torch.Tensor, hole_mask: torch.Tensor
) -> Callable[[], torch.Tensor]:
    """The released test script's forward: BGR image times known mask, all fusion blocks; RGB result."""
    known = 1.0 - hole_mask
    bgr = image.flip(1)

    def run() -> torch.Tensor:
        with torch.no_grad():
            return reference(bgr * known, known)[0][0].flip(1)

    return run


def prepared_fn(prepared, image: torch.Tensor, hole_mask: torch.Tensor) -> Callable[[], torch.Tensor]:
    return lambda: prepared.complete(image, hole_mask)


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float().cpu() - b.float().cpu()).abs().max())


# ---------------------------------------------------------------------------------------------
# CPU
# ---------------------------------------------------------------------------------------------
REFERENCE_NAME = "reference (eager fp32, 6 fusion blocks)"


def eager_complete_fn(
    model: DFNet, image: torch.Tensor, hole_mask: torch.Tensor
) -> Callable[[], torch.Tensor]:
    """The project model as is, eager fp32, computing only the final fusion block."""

    def run() -> torch.Tensor:
        with torch.inference_mode():
            return model.complete(image, hole_mask)

    return run


def cpu_candidates(
    model: DFNet, reference: ReferenceDFNet, image, hole_mask, args
) -> tuple[dict[str, Callable], dict[str, str]]:
    """Callables to time on CPU (reference first), and the engine ``prepare_for_inference`` picks."""
    auto = choose_cpu_engine(model, args.size)
    candidates: dict[str, Callable] = {
        REFERENCE_NAME: reference_fn(reference, image, hole_mask),
        "DFNet.complete (eager fp32, final block only)": eager_complete_fn(model, image, hole_mask),
    }
    engines = [e for e in CPU_ENGINES if e != "onnxruntime" or onnxruntime_available()]
    for engine in engines:
        prepared = prepare_for_inference(model, "cpu", engine=engine, size=args.size)
        label = f"{engine}: BN+upsampling folded" + (" [auto]" if engine == auto else "")
        candidates[label] = prepared_fn(prepared, image, hole_mask)
        if args.ablation:
            plain = prepare_for_inference(model, "cpu", engine=engine, rewrite_upsampling=False)
            candidates[f"{engine}: BN folded only"] = prepared_fn(plain, image, hole_mask)
    if args.bf16:
        prepared = prepare_for_inference(model, "cpu", precision="bf16", engine="torch-channels-last")
        candidates["torch-channels-last: bf16 autocast"] = prepared_fn(prepared, image, hole_mask)
    return candidates, {"auto_engine": auto}


def run_cpu(args) -> dict:
    device = torch.device("cpu")
    model = build_model(args.width, args.weights)
    reference = build_reference(model)
    image, hole_mask = make_inputs(args.batch, args.size, device)
    candidates, extra = cpu_candidates(model, reference, image, hole_mask, args)
    ref_name = REFERENCE_NAME
    expected = candidates[ref_name]()
    diffs = {name: max_diff(fn(), expected) for name, fn in candidates.items()}
    info = machine_info(device)
    timings = interleaved_timings(candidates, args.warmup, args.repeats, device)
    info["load_average_end"] = load_average()
    title = (
        f"CPU, {args.batch}×{args.size}×{args.size}, width {args.width}, {torch.get_num_threads()} threads"
    )
    print(f"### {title}\n")
    print_header(info)
    print(TABLE_HEAD)
    ref = timings[ref_name]
    for name, t in timings.items():
        tolerance = HALF_TOLERANCE if "bf16" in name else CPU_TOLERANCE
        ok = "ok" if diffs[name] <= tolerance else "TOO LARGE"
        print(timing_row(t, None if name == ref_name else ref, [f"{diffs[name]:.1e} ({ok})"], args.batch))
    print(f"\nautomatic CPU engine (prepare_for_inference(model, 'cpu')): {extra['auto_engine']}\n")
    return {
        "info": info,
        "title": title,
        "timings": {n: t.seconds for n, t in timings.items()},
        "ratios": {n: paired_ratio(t, ref) for n, t in timings.items()},
        "diffs": diffs,
        **extra,
    }


# ---------------------------------------------------------------------------------------------
# Memory: peak RSS per image (one process per engine) and growth over many calls
# ---------------------------------------------------------------------------------------------
def rss_bytes() -> int:
    import psutil

    return psutil.Process().memory_info().rss


class PeakSampler:
    """Samples this process's RSS every few milliseconds in a thread; ``peak`` is the maximum seen."""

    def __init__(self, interval: float = 0.002) -> None:
        self.interval = interval
        self.peak = rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            time.sleep(self.interval)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())


def engine_callable(name: str, model: DFNet, image, hole_mask) -> Callable[[], object]:
    if name == "reference":
        return reference_fn(build_reference(model), image, hole_mask)
    return prepared_fn(prepare_for_inference(model, "cpu", engine=name), image, hole_mask)


def memory_child(args) -> None:
    """In a fresh process: RSS before the first call and peak RSS during ``--calls`` calls of one engine."""
    model = build_model(args.width, args.weights)
    image, hole_mask = make_inputs(1, args.size, torch.device("cpu"))
    run = engine_callable(args.memory_child, model, image, hole_mask)
    before = rss_bytes()
    with PeakSampler() as sampler:
        for _ in range(3):
            run()
    print(json.dumps({"engine": args.memory_child, "rss_ready": before, "peak_rss": sampler.peak}))


def run_memory(args) -> dict:
    names = ["reference", *(e for e in CPU_ENGINES if e != "onnxruntime" or onnxruntime_available())]
    rows = {}
    print(f"### Peak memory, CPU, 1×{args.size}×{args.size}, width {args.width}\n")
    print("| path | RSS when ready MiB | peak RSS during calls MiB | peak − ready MiB |\n|---|---|---|---|")
    for name in names:
        cmd = [
            sys.executable,
            __file__,
            "--memory-child",
            name,
            "--size",
            str(args.size),
            "--width",
            str(args.width),
        ]
        cmd += ["--threads", str(args.threads)] + (["--weights", args.weights] if args.weights else [])
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
        row = json.loads(out)
        rows[name] = row
        mib = 2**20
        ready, peak = row["rss_ready"] / mib, row["peak_rss"] / mib
        print(f"| {name} | {ready:.0f} | {peak:.0f} | {peak - ready:.0f} |")
    print()
    return rows


def run_leak(args) -> dict:
    """RSS after warm-up and every ``calls/10`` calls for each engine (narrow model, small images)."""
    model = build_model(args.leak_width, None)
    image, hole_mask = make_inputs(1, args.leak_size, torch.device("cpu"))
    names = ["reference", *(e for e in CPU_ENGINES if e != "onnxruntime" or onnxruntime_available())]
    results = {}
    print(
        f"### RSS over {args.leak_calls} calls, CPU, 1×{args.leak_size}×{args.leak_size}, width {args.leak_width}\n"
    )
    print(
        "| path | RSS after 20 warm-up calls MiB | RSS range over 10 checkpoints MiB | end − start MiB | ms/call |"
    )
    print("|---|---|---|---|---|")
    for name in names:
        run = engine_callable(name, model, image, hole_mask)
        for _ in range(20):
            run()
        start_rss, samples, start = rss_bytes(), [], time.perf_counter()
        for i in range(args.leak_calls):
            run()
            if (i + 1) % max(1, args.leak_calls // 10) == 0:
                samples.append(rss_bytes())
        elapsed = time.perf_counter() - start
        mib = 2**20
        results[name] = {"start": start_rss, "samples": samples, "seconds": elapsed}
        print(
            f"| {name} | {start_rss / mib:.1f} | {min(samples) / mib:.1f}–{max(samples) / mib:.1f} | "
            f"{(samples[-1] - start_rss) / mib:+.1f} | {ms(elapsed / args.leak_calls)} |"
        )
    print()
    return results


# ---------------------------------------------------------------------------------------------
# CUDA
# ---------------------------------------------------------------------------------------------
def cuda_configs(args) -> dict[str, dict]:
    """prepare_for_inference settings to time on a GPU (fp32 first: it is the accuracy baseline)."""
    configs = {
        "fp32, channels_last": {"precision": "fp32"},
        "bf16 autocast, channels_last": {"precision": "bf16"},
        "fp16 autocast, channels_last": {"precision": "fp16"},
        "fp16, channels_last, CUDA graph": {"precision": "fp16", "cuda_graphs": True},
        "bf16, channels_last, CUDA graph": {"precision": "bf16", "cuda_graphs": True},
    }
    if args.compile:
        mode = args.compile_mode
        configs[f"fp16, channels_last, torch.compile {mode}"] = {"precision": "fp16", "compile": mode}
    return configs


def run_cuda(args) -> dict:
    device = torch.device(args.device)
    model = build_model(args.width, args.weights)
    info = machine_info(device)
    configs = cuda_configs(args)
    prepared = {name: prepare_for_inference(model, device, **cfg) for name, cfg in configs.items()}
    reference = build_reference(model).to(device)
    results: dict = {"info": info, "latency": {}, "throughput": {}}
    print(f"### GPU, {args.size}×{args.size}, width {args.width}\n")
    print_header(info)
    for batch in args.batches:
        image, hole_mask = make_inputs(batch, args.size, device)
        ref_name = REFERENCE_NAME
        candidates = {ref_name: reference_fn(reference, image, hole_mask)}
        candidates.update({name: prepared_fn(p, image, hole_mask) for name, p in prepared.items()})
        expected = candidates[ref_name]()
        diffs = {name: max_diff(fn(), expected) for name, fn in candidates.items()}
        timings = interleaved_timings(candidates, args.warmup, args.repeats, device)
        print(f"#### batch {batch}\n\n{TABLE_HEAD}")
        for name, t in timings.items():
            ok = "ok" if diffs[name] <= HALF_TOLERANCE else "TOO LARGE"
            print(
                timing_row(
                    t, None if name == ref_name else timings[ref_name], [f"{diffs[name]:.1e} ({ok})"], batch
                )
            )
        peak = {}
        for name, fn in candidates.items():
            torch.cuda.reset_peak_memory_stats(device)
            fn()
            synchronize(device)
            peak[name] = torch.cuda.max_memory_allocated(device) / batch
        print(
            "\npeak GPU memory per image (MiB): "
            + ", ".join(f"{n}: {v / 2**20:.0f}" for n, v in peak.items())
        )
        print()
        results["throughput"][batch] = {
            "timings": {n: t.seconds for n, t in timings.items()},
            "diffs": diffs,
            "peak_bytes_per_image": peak,
        }
    info["load_average_end"] = load_average()
    return results


# ---------------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto (default: cuda when available)")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--width", type=float, default=1.0, help="DFNetConfig.width (1.0 = released network)")
    parser.add_argument("--weights", help="a weights file (default: random weights, seeded)")
    parser.add_argument("--batch", type=int, default=1, help="CPU batch size")
    parser.add_argument("--batches", default="1,8,32,64", help="GPU batch sizes, comma-separated")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (CPU)")
    parser.add_argument(
        "--ablation", action="store_true", help="also time BN folding without the upsampling rewrite"
    )
    parser.add_argument("--bf16", action="store_true", help="also time bf16 autocast on CPU")
    parser.add_argument("--compile", action="store_true", help="GPU: also time torch.compile (slow to build)")
    parser.add_argument(
        "--compile-mode",
        default="reduce-overhead",
        help="torch.compile mode for --compile (reduce-overhead uses CUDA graphs; max-autotune tunes kernels "
        "per shape and takes minutes for each batch size)",
    )
    parser.add_argument(
        "--memory", action="store_true", help="CPU: peak RSS per image, one process per engine"
    )
    parser.add_argument("--leak-calls", type=int, default=0, help="CPU: RSS over this many calls per engine")
    parser.add_argument("--leak-width", type=float, default=0.25)
    parser.add_argument("--leak-size", type=int, default=256)
    parser.add_argument("--skip-latency", action="store_true", help="only the memory / leak parts")
    parser.add_argument("--json", help="write raw results here")
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.batches = [int(b) for b in args.batches.split(",")]
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    sys.stdout.reconfigure(line_buffering=True)  # rows appear as they are measured, also in a log file
    if args.memory_child:
        memory_child(args)
        return 0
    payload: dict = {}
    if args.device.startswith("cuda"):
        if not torch.cuda.is_available():
            print("--device cuda: no CUDA device is available", file=sys.stderr)
            return 1
        payload["cuda"] = run_cuda(args)
    elif not args.skip_latency:
        payload["cpu"] = run_cpu(args)
    else:
        print_header(machine_info(torch.device("cpu")))
    if args.memory:
        payload["memory"] = run_memory(args)
    if args.leak_calls:
        payload["leak"] = run_leak(args)
    write_json(args.json, payload)
    return 0


if __name__ == "__main__":
    sys.exit(main())
