"""Training-step benchmark: a plain eager fp32 step against the optimised step, same run, images/s.

One step = DFNet forward (all fusion blocks) + the multi-scale loss of dfnet.losses + backward +
Adam. The batch is synthetic and already on the device, so this measures compute, not data loading.

- reference: ``ReferenceDFNet`` (released layout), NCHW fp32, eager, ``torch.optim.Adam`` defaults.
- optimised variants (each adds to the one before): channels_last; bf16 autocast (fp16 with a
  GradScaler where bf16 is unsupported); fused Adam (CUDA; on CPU where torch supports it);
  ``torch.compile`` of the model and the loss (``--compile``; on by default on CUDA); with ``--loss full``
  also the VGG16 convolutions in bf16 (``LossConfig.vgg_precision="bf16"``, losses still float32).
  cudnn.benchmark is on for CUDA.

``--loss structure``: the multi-scale L1 loss only. ``--loss full``: structure + texture (VGG16
perceptual and style on the 3 finest scales, TV) as in the paper; the VGG16 weights are random
(seeded) unless --vgg-weights is given, which does not change the cost.

With --loss full the torch.compile variant also runs the VGG16 convolutions in bf16: it is the whole fast
path (channels_last, bf16 autocast, VGG16 in bf16, fused Adam, torch.compile, cudnn.benchmark).
``--compile-mode reduce-overhead`` compiles it with CUDA graphs (torch's default mode otherwise).

On CUDA the peak memory of one step of each variant is recorded (``memory`` in --json). ``--profile PATH``
then profiles a few steps of the reference and of the fastest optimised variant with torch.profiler and writes
a text summary to PATH: wall time per step, GPU busy time and kernel count per step, GPU time by kind of
kernel, and the top operators by self CUDA time (self CPU time on a CPU).

CPU:  python benchmarks/bench_train.py --device cpu --width 0.25 --size 256 --batch 2
GPU:  python benchmarks/bench_train.py --device cuda --width 1.0 --size 512 --batch 6 --loss full \
          --json bench_train.json --profile profile.txt
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_inference import (  # noqa: E402
    Timing,
    build_model,
    build_reference,
    interleaved_timings,
    load_average,
    machine_info,
    ms,
    paired_ratio,
    print_header,
    synchronize,
    write_json,
)

from dfnet.losses import DFNetLoss, LossConfig  # noqa: E402
from dfnet.vgg import VGG16Features  # noqa: E402


def make_loss(kind: str, vgg_weights: str | None, device: torch.device) -> DFNetLoss:
    """The paper's loss ('full') or its structure part only ('structure')."""
    if kind == "structure":
        return DFNetLoss(LossConfig(texture_scales=0)).to(device)
    vgg = VGG16Features()
    if vgg_weights:
        vgg.load_weights(torch.load(vgg_weights, map_location="cpu", weights_only=True), vgg_weights)
    else:
        vgg.init_random()
    return DFNetLoss(LossConfig(), vgg.to(device)).to(device)


def adam(params, lr: float, fused: bool) -> torch.optim.Adam:
    """Adam, fused when asked and supported on the parameters' device; else torch's default."""
    if fused:
        try:
            return torch.optim.Adam(params, lr=lr, fused=True)
        except (RuntimeError, ValueError):
            pass
    return torch.optim.Adam(params, lr=lr)


def half_dtype(device: torch.device) -> torch.dtype:
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return torch.float16
    return torch.bfloat16


def make_step(
    model: torch.nn.Module,
    loss_fn: DFNetLoss,
    image: torch.Tensor,
    hole_mask: torch.Tensor,
    *,
    released_layout: bool,
    channels_last: bool,
    autocast: bool,
    fused_adam: bool,
    compile: bool,
    compile_mode: str | None = None,
) -> tuple[Callable[[], float], torch.optim.Optimizer]:
    """A closure running one full training step; returns the loss value of that step."""
    device = image.device
    model = model.to(device).train()
    layout = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=layout)
    loss_fn = loss_fn.to(memory_format=layout) if channels_last else loss_fn
    image = image.contiguous(memory_format=layout)
    hole_mask = hole_mask.contiguous(memory_format=layout)
    optimizer = adam(model.parameters(), 2e-4, fused_adam)
    dtype = half_dtype(device)
    scaler = torch.amp.GradScaler(device.type, enabled=autocast and dtype == torch.float16)
    known = 1.0 - hole_mask

    def forward_loss() -> torch.Tensor:
        with torch.autocast(device.type, dtype=dtype, enabled=autocast):
            if released_layout:
                results = model(image.flip(1) * known, known)[0]
                results = [r.flip(1) for r in results]
            else:
                results = model(image, hole_mask).results
            return loss_fn(results, image)["total"]

    forward = torch.compile(forward_loss, mode=compile_mode) if compile else forward_loss

    def step() -> float:
        optimizer.zero_grad(set_to_none=True)
        loss = forward()
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        return loss.detach()

    return step, optimizer


VARIANTS: dict[str, dict[str, bool]] = {
    "channels_last": {"channels_last": True, "autocast": False, "fused_adam": False},
    "channels_last + bf16 autocast": {"channels_last": True, "autocast": True, "fused_adam": False},
    "channels_last + bf16 autocast + fused Adam": {
        "channels_last": True,
        "autocast": True,
        "fused_adam": True,
    },
}


def run(args: argparse.Namespace) -> dict:
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    model = build_model(args.width, None)
    gen = torch.Generator().manual_seed(0)
    image = torch.rand(args.batch, 3, args.size, args.size, generator=gen).to(device)
    hole_mask = (torch.rand(args.batch, 1, args.size, args.size, generator=gen) > 0.7).float().to(device)
    loss_fn = make_loss(args.loss, args.vgg_weights, device)
    steps: dict[str, Callable[[], object]] = {}
    steps["reference (eager fp32, NCHW, Adam)"], _ = make_step(
        build_reference(model),
        loss_fn,
        image,
        hole_mask,
        released_layout=True,
        channels_last=False,
        autocast=False,
        fused_adam=False,
        compile=False,
    )
    variants = {} if args.compiled_only else dict(VARIANTS)
    if args.compile:
        vgg_bf16 = args.loss == "full"  # the whole fast path: VGG16 in bf16 too
        name = "channels_last + bf16 autocast + fused Adam" + (" + VGG16 in bf16" if vgg_bf16 else "")
        mode = f" ({args.compile_mode})" if args.compile_mode else ""
        variants[name + " + torch.compile" + mode] = {
            "channels_last": True,
            "autocast": True,
            "fused_adam": True,
            "compile": True,
            "compile_mode": args.compile_mode,
            "vgg_bf16": vgg_bf16,
        }
    if args.loss == "full" and not args.compiled_only:
        variants["channels_last + bf16 autocast + fused Adam + VGG16 in bf16"] = {
            **VARIANTS["channels_last + bf16 autocast + fused Adam"],
            "vgg_bf16": True,
        }
    for name, flags in variants.items():
        flags = {"compile": False, **flags}
        loss_copy = copy.deepcopy(loss_fn)
        if flags.pop("vgg_bf16", False):
            loss_copy.config = dataclasses.replace(loss_copy.config, vgg_precision="bf16")
        label = (
            name.replace("bf16 autocast", "fp16 autocast") if half_dtype(device) == torch.float16 else name
        )
        steps[label], _ = make_step(
            copy.deepcopy(model), loss_copy, image, hole_mask, released_layout=False, **flags
        )
    info = machine_info(device)
    if device.type == "cuda":
        info["gpu_total_bytes"] = torch.cuda.get_device_properties(device).total_memory
    first_losses, failures = {}, {}
    reference_name = next(iter(steps))
    # Same weights, same batch. A variant that fails here (a compile error, out of memory) is left out and
    # the reason recorded; a failing reference stops the run.
    for name, step in list(steps.items()):
        try:
            first_losses[name] = float(step())
        except Exception as error:
            if name == reference_name:
                raise
            failures[name] = f"{type(error).__name__}: {error}"
            print(f"left out: {name}: {failures[name][:2000]}", file=sys.stderr)
            del steps[name]
            if device.type == "cuda":
                torch.cuda.empty_cache()
    memory = (
        {name: step_memory(step, device) for name, step in steps.items()} if device.type == "cuda" else {}
    )
    timings = interleaved_timings(steps, args.warmup, args.steps, device)
    info["load_average_end"] = load_average()
    report(args, info, timings, first_losses, memory)
    result = {
        "info": info,
        "batch": args.batch,
        "size": args.size,
        "timings": {n: t.seconds for n, t in timings.items()},
        "first_losses": first_losses,
        "memory": memory,
        "failed": failures,
    }
    if args.profile:
        reference = next(iter(timings))
        fastest = min((n for n in timings if n != reference), key=lambda n: timings[n].median, default=None)
        chosen = {n: steps[n] for n in (reference, fastest) if n is not None}
        try:
            text = profile_steps(args, chosen, device)
        except Exception as error:  # the timings above are kept; say why the profile is missing
            text = f"profiling failed: {type(error).__name__}: {error}\n"
        Path(args.profile).parent.mkdir(parents=True, exist_ok=True)
        Path(args.profile).write_text(text)
        print(f"wrote {args.profile}")
        result["profile"] = {"path": args.profile, "variants": list(chosen)}
    return result


def step_memory(step: Callable[[], object], device: torch.device) -> dict[str, int]:
    """Peak CUDA memory of one step: allocated before it, the peak during it and their difference."""
    synchronize(device)
    before = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    step()
    synchronize(device)
    peak = torch.cuda.max_memory_allocated(device)
    return {"allocated_before": before, "peak": peak, "step": peak - before}


# Kernel-name fragments -> kind, first match wins (a heuristic: cuDNN / CUTLASS / Triton naming).
KERNEL_KINDS = (
    ("torch.compile (Triton)", ("triton",)),
    ("layout change (NCHW<->NHWC)", ("nchwtonhwc", "nhwctonchw", "transpose")),
    (
        "convolution (cuDNN/CUTLASS)",
        ("conv", "cudnn", "xmma", "implicit", "wgrad", "dgrad", "fprop", "winograd"),
    ),
    ("matmul (GEMM)", ("gemm", "cutlass", "cublas", "matmul")),
    ("optimizer (Adam)", ("adam", "multi_tensor")),
    ("memory copy / set", ("memcpy", "memset", "copy_kernel")),
    ("batch norm", ("batch_norm", "batchnorm", "bn_")),
    ("reduction", ("reduce",)),
    ("elementwise", ("elementwise", "vectorized", "unrolled")),
)


def kernel_kind(name: str) -> str:
    lowered = name.lower()
    for kind, fragments in KERNEL_KINDS:
        if any(f in lowered for f in fragments):
            return kind
    return "other"


def profile_steps(
    args: argparse.Namespace,
    steps: dict[str, Callable[[], object]],
    device: torch.device,
    warmup: int = 2,
    profiled: int = 3,
) -> str:
    """torch.profiler over ``profiled`` steps (after ``warmup``) of each step function, as a text summary."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    cuda = device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    sort_by = "self_cuda_time_total" if cuda else "self_cpu_time_total"
    lines = [
        f"# torch.profiler: training step, {args.device}, batch {args.batch}×{args.size}×{args.size}, "
        f"width {args.width}, loss {args.loss}",
        f"# {warmup} warm-up steps, then {profiled} profiled steps per variant; times per step unless said",
        "",
    ]
    for name, step in steps.items():
        for _ in range(warmup):
            step()
        synchronize(device)
        with profile(activities=activities, record_shapes=False) as prof:
            start = time.perf_counter()
            for _ in range(profiled):
                step()
            synchronize(device)
            wall = (time.perf_counter() - start) / profiled
        events = prof.key_averages()
        lines.append(f"## {name}")
        lines.append(
            f"wall time: {wall * 1000:.1f} ms/step ({args.batch / wall:.1f} images/s, under the profiler)"
        )
        lines.append(
            f"self CPU time: {sum(e.self_cpu_time_total for e in events) / profiled / 1000:.1f} ms/step"
        )
        if cuda:
            kernels = [
                e
                for e in events
                if e.device_type == DeviceType.CUDA and not getattr(e, "is_user_annotation", False)
            ]
            busy = sum(e.self_device_time_total for e in kernels) / profiled / 1e6  # µs -> s
            count = sum(e.count for e in kernels) / profiled
            lines.append(
                f"GPU busy: {busy * 1000:.1f} ms/step = {busy / wall:.0%} of the wall time; "
                f"{count:.0f} kernels/step, mean {busy / max(count, 1) * 1e6:.1f} µs per kernel"
            )
            by_kind: dict[str, float] = {}
            for e in kernels:
                kind = kernel_kind(e.key)
                by_kind[kind] = by_kind.get(kind, 0.0) + e.self_device_time_total
            lines.append("GPU time by kind of kernel (by kernel name, a heuristic):")
            for kind, us in sorted(by_kind.items(), key=lambda kv: -kv[1]):
                share = us / profiled / 1e6 / busy if busy else 0.0
                lines.append(f"  {kind:30s} {us / profiled / 1000:8.1f} ms/step  {share:6.1%}")
        lines.append("")
        lines.append(events.table(sort_by=sort_by, row_limit=25, max_name_column_width=70))
        lines.append("")
    return "\n".join(lines)


def report(
    args: argparse.Namespace,
    info: dict,
    timings: dict[str, Timing],
    losses: dict[str, float],
    memory: dict[str, dict[str, int]] | None = None,
) -> None:
    title = (
        f"Training step, {args.device}, batch {args.batch}×{args.size}×{args.size}, width {args.width}, "
        f"loss: {args.loss}"
    )
    print(f"### {title}\n")
    print_header(info)
    print("| step | median ms/step | IQR ms | images/s | speed-up vs reference | first-step loss |")
    print("|---|---|---|---|---|---|")
    reference = next(iter(timings.values()))
    for name, t in timings.items():
        q1, q3 = t.iqr
        speedup = "—" if t is reference else f"{1 / paired_ratio(t, reference):.2f}×"
        cells = [
            name,
            ms(t.median),
            f"{ms(q1)}–{ms(q3)}",
            f"{args.batch / t.median:.2f}",
            speedup,
            f"{losses[name]:.5f}",
        ]
        print("| " + " | ".join(cells) + " |")
    print()
    if memory:
        mib = 2**20
        print(
            "peak GPU memory of one step, MiB (allocated before → peak; step = the difference): "
            + "; ".join(
                f"{n}: {m['allocated_before'] / mib:.0f} → {m['peak'] / mib:.0f} (step {m['step'] / mib:.0f})"
                for n, m in memory.items()
            )
        )
        print()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--loss", choices=("structure", "full"), default="structure")
    parser.add_argument("--vgg-weights", help="VGG16 weight file (default: random weights, same cost)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per variant")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (CPU)")
    parser.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="default: on for CUDA, off for CPU",
    )
    parser.add_argument(
        "--compiled-only", action="store_true", help="time only the reference and the torch.compile variant"
    )
    parser.add_argument(
        "--compile-mode",
        help="torch.compile mode, e.g. reduce-overhead (CUDA graphs) or max-autotune (default: torch's default)",
    )
    parser.add_argument("--json", help="write raw results here")
    parser.add_argument(
        "--profile",
        metavar="PATH",
        help="after the timings, profile the reference and the fastest optimised variant (torch.profiler) "
        "and write a text summary here",
    )
    args = parser.parse_args(argv)
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.compile is None:
        args.compile = args.device.startswith("cuda") or args.compiled_only
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    sys.stdout.reconfigure(line_buffering=True)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("--device cuda: no CUDA device is available", file=sys.stderr)
        return 1
    write_json(args.json, {"train": run(args)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
