"""DFNet beside the networks users would pick instead: LaMa big-lama, MAT and MI-GAN 512 (random weights).

Inference cost does not depend on the weights, so every network is built with seeded random weights from
``benchmarks/peer_models.py`` (own minimal definitions; the source files and configurations are named there).
Rows, timed in the same process in interleaved rounds after a warm-up, one 512x512 image (batch 1):

- LaMa big-lama, eager fp32 (``FFCResNetGenerator``, 18 FFC residual blocks);
- MAT 512, eager fp32 (``Generator``: mask-aware transformer and refinement stage; a random z,
  ``noise_mode="const"``, ``truncation_psi=1``);
- MI-GAN 512, eager fp32, and the same graph on ONNX Runtime (CPU: the CPU execution provider; ``--device cuda``:
  the CUDA provider when installed);
- DFNet full width, eager (``Inpainter``, ``engine="torch"``) and the product path (``Inpainter`` prepared by
  ``dfnet.optimize.prepare_for_inference``, ``engine="optimized"``); both without exemplar detail, each call
  including the padding and compositing a user's call does.

Parameters are counted from the modules; MACs with ``torch.utils.flop_counter`` (convolutions and matrix
products; LaMa's 36 FFT pairs, element-wise operations and ONNX rewrites are not in the count).

    python benchmarks/bench_peers.py --threads 2 --rounds 5
    python benchmarks/bench_peers.py --device cuda --rounds 20
"""

from __future__ import annotations

import argparse
import datetime
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # helpers.randomize_batchnorm
sys.path.insert(0, str(ROOT / "benchmarks"))

from helpers import randomize_batchnorm  # noqa: E402
from peer_models import MAT, MIGAN, BigLama, lama_input, mat_input, migan_input  # noqa: E402

from dfnet.inference import Inpainter  # noqa: E402
from dfnet.model import DFNet, DFNetConfig  # noqa: E402

SIZE = 512


def parameters(module: nn.Module) -> int:
    """Trainable and fixed parameters of ``module`` (buffers such as BN statistics excluded)."""
    return sum(p.numel() for p in module.parameters())


def macs(forward: Callable[[], object]) -> float:
    """Multiply-accumulates of one forward pass (flop counter: 2 FLOPs per MAC)."""
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        forward()
    return counter.get_total_flops() / 2


def sample(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """A smooth random picture in [0, 1] (1, 3, S, S) and a hole (1, 1, S, S) of about 20 %."""
    generator = torch.Generator().manual_seed(0)
    rgb = torch.nn.functional.interpolate(
        torch.rand(1, 3, SIZE // 16, SIZE // 16, generator=generator), size=SIZE
    )
    hole = torch.zeros(1, 1, SIZE, SIZE)
    hole[..., SIZE // 4 : SIZE // 4 + SIZE // 8, :] = 1
    hole[..., SIZE // 2 : SIZE // 2 + SIZE // 10] = 1
    return rgb.to(device), hole.to(device)


def synchronised(call: Callable[[], object], device: torch.device) -> Callable[[], object]:
    """``call`` that waits for the GPU to finish, so wall time is the work's time."""

    def run() -> object:
        out = call()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return out

    return run


def eager(module: nn.Module, *inputs: torch.Tensor) -> Callable[[], object]:
    def run() -> torch.Tensor:
        with torch.inference_mode():
            return module(*inputs)

    return run


def onnxruntime_call(
    module: nn.Module, x: torch.Tensor, device: torch.device, folder: Path
) -> Callable[[], object]:
    """``module`` exported to ONNX (opset 17, fixed shape) and run by ONNX Runtime."""
    import onnxruntime as ort

    path = folder / f"{type(module).__name__}.onnx"
    torch.onnx.export(module.cpu(), (x.cpu(),), str(path), dynamo=False, input_names=["x"], opset_version=17)
    module.to(device)
    providers = ["CPUExecutionProvider"]
    if device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    session = ort.InferenceSession(str(path), providers=providers)
    feed = {"x": x.cpu().numpy()}
    return lambda: session.run(None, feed)


def dfnet_calls(
    device: torch.device, rgb: torch.Tensor, hole: torch.Tensor
) -> dict[str, Callable[[], object]]:
    """DFNet full width, random weights: eager and the product path, as ``Inpainter`` runs them."""
    torch.manual_seed(0)
    model = randomize_batchnorm(DFNet(DFNetConfig())).eval()
    image = (rgb[0].permute(1, 2, 0).cpu().numpy() * 255).astype(np.uint8)[None]
    holes = hole[0, 0].cpu().numpy().astype(bool)[None]
    calls = {}
    for name, optimized in (
        ("DFNet eager (Inpainter, torch)", False),
        ("DFNet product path (optimized)", True),
    ):
        inpainter = Inpainter(model, device=device, precision="fp32", optimized=optimized, texture=None)
        calls[name] = lambda inpainter=inpainter: inpainter.complete_arrays(image, holes, "original")
    return calls


def build(
    device: torch.device, folder: Path
) -> tuple[dict[str, Callable[[], object]], dict[str, tuple[int, float]]]:
    """Every row's call, and (parameters, MACs) per network."""
    rgb, hole = sample(device)
    torch.manual_seed(0)
    lama = randomize_batchnorm(BigLama()).eval().to(device)
    torch.manual_seed(0)
    migan = MIGAN(SIZE).eval().to(device)
    torch.manual_seed(0)
    mat = MAT(SIZE).eval().to(device)
    lama_x, migan_x = lama_input(rgb, hole), migan_input(rgb, hole)
    mat_x = (
        *mat_input(rgb, hole),
        torch.randn(1, mat.z_dim, generator=torch.Generator().manual_seed(0)).to(device),
    )
    dfnet = DFNet(DFNetConfig()).eval().to(device)
    sizes = {
        "LaMa big-lama": (parameters(lama), macs(lambda: lama(lama_x))),
        "MAT 512": (parameters(mat), macs(lambda: mat(*mat_x))),
        "MI-GAN 512": (parameters(migan), macs(lambda: migan(migan_x))),
        "DFNet": (parameters(dfnet), macs(lambda: dfnet.complete(rgb, hole))),  # the finest fusion block
    }
    calls = {
        "LaMa big-lama eager": eager(lama, lama_x),
        "MAT 512 eager": eager(mat, *mat_x),
        "MI-GAN 512 eager": eager(migan, migan_x),
        "MI-GAN 512 ONNX Runtime": onnxruntime_call(migan, migan_x, device, folder),
        **dfnet_calls(device, rgb, hole),
    }
    return {name: synchronised(call, device) for name, call in calls.items()}, sizes


def time_rounds(calls: dict[str, Callable[[], object]], rounds: int) -> dict[str, list[float]]:
    """Seconds per call, one call of each row per round, rows in turn (a warm-up call first)."""
    for call in calls.values():
        call()
    seconds: dict[str, list[float]] = {name: [] for name in calls}
    for r in range(rounds):
        for name, call in calls.items():
            started = time.perf_counter()
            call()
            seconds[name].append(time.perf_counter() - started)
        print(
            f"round {r + 1}: " + ", ".join(f"{n} {s[-1] * 1000:.0f} ms" for n, s in seconds.items()),
            flush=True,
        )
    return seconds


def table(seconds: dict[str, list[float]], sizes: dict[str, tuple[int, float]], reference: str) -> str:
    """Markdown rows: median and range in ms, ratio to ``reference`` (median of per-round ratios), size."""
    lines = [
        "| network | median ms | min-max ms | × DFNet product path | parameters | GMAC |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, values in seconds.items():
        ratio = statistics.median(v / r for v, r in zip(values, seconds[reference], strict=True))
        size = next((s for key, s in sizes.items() if name.startswith(key)), None)
        params, gmac = (f"{size[0] / 1e6:.1f} M", f"{size[1] / 1e9:.0f}") if size else ("", "")
        lines.append(
            f"| {name} | {statistics.median(values) * 1000:,.0f} | {min(values) * 1000:,.0f}-{max(values) * 1000:,.0f} "
            f"| {ratio:.2f} | {params} | {gmac} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        calls, sizes = build(device, Path(tmp))
        seconds = time_rounds(calls, args.rounds)
    print(f"\n{platform.processor() or platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"device {device}, {args.rounds} rounds, {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC")  # fmt: skip
    print(table(seconds, sizes, "DFNet product path (optimized)"))


if __name__ == "__main__":
    main()
