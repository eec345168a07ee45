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

CPU:  python benchmarks/bench_train.py --device cpu --width 0.25 --size 256 --batch 2
GPU:  python benchmarks/bench_train.py --device cuda --width 1.0 --size 512 --batch 6 --loss full
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import sys
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

    forward = torch.compile(forward_loss) if compile else forward_loss

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
        variants["channels_last + bf16 autocast + fused Adam + torch.compile"] = {
            "channels_last": True,
            "autocast": True,
            "fused_adam": True,
            "compile": True,
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
    first_losses = {name: float(step()) for name, step in steps.items()}  # same weights, same batch
    timings = interleaved_timings(steps, args.warmup, args.steps, device)
    info["load_average_end"] = load_average()
    report(args, info, timings, first_losses)
    return {"info": info, "timings": {n: t.seconds for n, t in timings.items()}, "first_losses": first_losses}


def report(
    args: argparse.Namespace, info: dict, timings: dict[str, Timing], losses: dict[str, float]
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
    parser.add_argument("--json", help="write raw results here")
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
