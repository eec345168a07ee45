"""Inference fast paths for DFNet: exact graph rewrites, layouts, precisions, compilers and engines.

Exact rewrites (same function, fp32 rounding aside; usable on any device):

- :func:`fold_batchnorm` folds every eval-mode BatchNorm into the convolution before it.
- :func:`fold_upsampling` rewrites each decoder layer's "nearest ×2 upsample, then k×k conv" as a
  (k+1)/2-sized convolution at the *low* resolution producing the four sub-pixel phases, which
  needs 16 instead of 36 multiply-adds per output pixel for the default 3×3 kernel (the
  upsampled half of every decoder convolution; about a quarter of the network's work).

:func:`prepare_for_inference` combines them with ``channels_last``, autocast (bf16/fp16),
``torch.compile`` and CUDA graphs into an :class:`InferenceModel` that answers ``complete`` and
``complete_with_details`` like :class:`~dfnet.model.DFNet` does, so callers need not care which
engine runs underneath. On CPU it can also hand the work to ONNX Runtime.
"""

from __future__ import annotations

import contextlib
import copy
import time
from collections.abc import Callable
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import skip_init

from dfnet.model import AlphaNet, DecoderLayer, DFNet, DFNetConfig, EncoderLayer, SameConv2d

Precision = Literal["fp32", "bf16", "fp16", "int8"]
DTYPES: dict[str, torch.dtype] = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
# int8: static quantisation of the convolutions, ONNX Runtime on CPU only (see int8_onnx_bytes)
PRECISIONS: tuple[str, ...] = (*DTYPES, "int8")
ONNXRUNTIME_PRECISIONS = ("fp32", "int8")


# ---------------------------------------------------------------------------------------------
# Exact rewrites
# ---------------------------------------------------------------------------------------------
def fold_conv_bn(conv: nn.Conv2d, norm: nn.BatchNorm2d) -> None:
    """Fold an eval-mode BatchNorm into ``conv`` in place: conv'(x) = norm(conv(x))."""
    if norm.training or norm.running_mean is None or norm.running_var is None:
        raise ValueError("only eval-mode BatchNorm with running statistics can be folded")
    with torch.no_grad():
        scale = norm.running_var.double().add(norm.eps).rsqrt()
        if norm.weight is not None:
            scale = scale * norm.weight.double()
        bias = conv.bias.double() if conv.bias is not None else torch.zeros_like(scale)
        bias = (bias - norm.running_mean.double()) * scale
        if norm.bias is not None:
            bias = bias + norm.bias.double()
        conv.weight.mul_(scale.view(-1, 1, 1, 1).to(conv.weight.dtype))
        if conv.bias is None:
            conv.bias = nn.Parameter(bias.to(conv.weight.dtype))
        else:
            conv.bias.copy_(bias.to(conv.bias.dtype))


def _fold_sequential(seq: nn.Sequential) -> None:
    """Fold each (SameConv2d, BatchNorm2d) pair of a Sequential, replacing the norm with Identity."""
    for i in range(1, len(seq)):
        if isinstance(seq[i], nn.BatchNorm2d) and isinstance(seq[i - 1], SameConv2d):
            fold_conv_bn(seq[i - 1].conv, seq[i])
            seq[i] = nn.Identity()


def fold_batchnorm(model: DFNet) -> DFNet:
    """A copy of an eval-mode ``model`` with every BatchNorm folded into the conv before it."""
    if model.training:
        raise ValueError("fold_batchnorm needs an eval-mode model (call model.eval() first)")
    folded = copy.deepcopy(model)
    for module in folded.modules():
        if isinstance(module, (EncoderLayer, DecoderLayer, UpsampleFoldedDecoderLayer)) and isinstance(
            module.norm, nn.BatchNorm2d
        ):
            conv = module.conv.conv if isinstance(module, (EncoderLayer, DecoderLayer)) else module.skip_conv
            fold_conv_bn(conv, module.norm)
            if isinstance(module, UpsampleFoldedDecoderLayer):
                fold_conv_bn_phases(module.up_conv, module.norm)
            module.norm = nn.Identity()
        elif isinstance(module, AlphaNet):
            _fold_sequential(module)
    return folded


def _phase_windows(kernel_size: int) -> tuple[int, list[int], int, int]:
    """Geometry of the sub-pixel rewrite of a same-padded odd k×k conv on a ×2 nearest upsample.

    Returns (low-resolution window size, per-phase window start, pad before, pad after): output
    phase ``a`` (row or column parity) reads low-resolution offsets ``start[a] .. start[a]+window-1``.
    """
    if kernel_size % 2 != 1:
        raise ValueError(f"fold_upsampling needs an odd decoder kernel, got {kernel_size}")
    p = kernel_size // 2
    starts = [(a - p) // 2 for a in (0, 1)]
    window = p + 1
    return window, starts, -starts[0], starts[1] + p


def subpixel_weight(weight: Tensor) -> Tensor:
    """(Cout, Cin, k, k) weight on upsampled input -> (4·Cout, Cin, w, w) low-resolution phase weights.

    Output channel ``(2a + b)·Cout + c`` holds phase (row parity a, column parity b) of channel c.
    """
    c_out, c_in, k, _ = weight.shape
    window, starts, _, _ = _phase_windows(k)
    p = k // 2
    # taps[a, l, d] = 1 when high-resolution tap d of phase a reads low-resolution offset l
    taps = weight.new_zeros(2, window, k)
    for a in (0, 1):
        for d in range(k):
            taps[a, (a + d - p) // 2 - starts[a], d] = 1.0
    low = torch.einsum("ayk,bxl,oikl->aboiyx", taps, taps, weight)
    return low.reshape(4 * c_out, c_in, window, window)


def fold_conv_bn_phases(up_conv: nn.Conv2d, norm: nn.BatchNorm2d) -> None:
    """Scale a phase conv (no bias, channel c·4 + phase) by a BatchNorm's per-channel factor."""
    with torch.no_grad():
        scale = norm.running_var.double().add(norm.eps).rsqrt()
        if norm.weight is not None:
            scale = scale * norm.weight.double()
        up_conv.weight.mul_(scale.repeat_interleave(4).view(-1, 1, 1, 1).to(up_conv.weight.dtype))


class UpsampleFoldedDecoderLayer(nn.Module):
    """A :class:`DecoderLayer` computed without materialising the upsampled tensor (exact rewrite).

    conv(cat[up(x), skip]) = shuffle(phase_conv(x)) + skip_conv(skip), where phase_conv runs at
    the low resolution and ``pixel_shuffle`` interleaves its four sub-pixel phases. For kernels
    whose half-width is odd (3×3) the two row phases of one low-resolution row read different
    windows, but high-resolution rows 2i−1 and 2i read the same one; so the phase conv is padded
    one pixel further, produces the pairs (2i−1, 2i), and the shuffled result is cropped by one
    pixel on each side: one convolution, one shuffle, one crop.
    """

    def __init__(self, layer: DecoderLayer, up_channels: int) -> None:
        super().__init__()
        conv = layer.conv.conv
        k = conv.kernel_size[0]
        if conv.kernel_size != (k, k) or conv.stride != (1, 1) or layer.conv.padding != (k // 2,) * 4:
            raise ValueError("fold_upsampling supports square, stride-1, symmetric same-padded decoder convs")
        window, starts, before, after = _phase_windows(k)
        assert before == after, "the phase windows of an odd kernel are padded symmetrically"
        self.shifted = starts[0] != starts[1]
        c_out = conv.out_channels
        low = subpixel_weight(conv.weight[:, :up_channels]).unflatten(0, (2, 2, c_out))  # (a, b, c, ...)
        if self.shifted:  # output pair (2i−1, 2i) = (phase 1 of row i−1, phase 0 of row i)
            low = low.flip(0, 1)
        # skip_init: the weights are overwritten below, so do not pay for a random initialisation
        self.up_conv = skip_init(nn.Conv2d, up_channels, 4 * c_out, window, padding=before, bias=False)
        self.skip_conv = skip_init(nn.Conv2d, conv.in_channels - up_channels, c_out, k, padding=k // 2)
        with torch.no_grad():
            # pixel_shuffle wants channel c·4 + 2a + b for sub-pixel (a, b) of channel c
            self.up_conv.weight.copy_(low.permute(2, 0, 1, 3, 4, 5).flatten(0, 2))
            self.skip_conv.weight.copy_(conv.weight[:, up_channels:])
            self.skip_conv.bias.copy_(conv.bias)
        self.norm = layer.norm
        self.act = layer.act

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        up = F.pixel_shuffle(self.up_conv(x), 2)
        if self.shifted:
            up = up[..., 1:-1, 1:-1]
        out = self.skip_conv(skip)
        out += up  # in place: the conv output is a fresh tensor (saves one pass over it)
        return self.act(self.norm(out))


def fold_upsampling(model: DFNet) -> DFNet:
    """A copy of ``model`` whose decoder layers use :class:`UpsampleFoldedDecoderLayer`."""
    folded = copy.deepcopy(model)
    for i, layer in enumerate(folded.decoder):
        if isinstance(layer, DecoderLayer):
            skip_channels = folded.encoder[i].conv.conv.in_channels
            up_channels = layer.conv.conv.in_channels - skip_channels
            folded.decoder[i] = UpsampleFoldedDecoderLayer(layer, up_channels)
    return folded


class Float32Fusion(nn.Module):
    """Runs a fusion block in float32 with autocast off: its sigmoid and blend decide the output's
    last bits, and a bf16 result alone would be off by up to 1/512 (the cost is tiny)."""

    def __init__(self, block: nn.Module) -> None:
        super().__init__()
        self.block = block

    def forward(
        self, features: Tensor, masked_image: Tensor, hole_mask: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        with torch.autocast(features.device.type, enabled=False):
            return self.block(features.float(), masked_image.float(), hole_mask.float())


def fusion_in_float32(model: DFNet) -> DFNet:
    """``model`` (modified in place) with every fusion block wrapped in :class:`Float32Fusion`."""
    for key, block in model.fusion.items():
        if not isinstance(block, Float32Fusion):
            model.fusion[key] = Float32Fusion(block)
    return model


def activations_in_place(model: nn.Module) -> nn.Module:
    """``model`` (modified in place) with ReLU and LeakyReLU computed in place: after BatchNorm
    folding each one follows a convolution whose fresh output nothing else reads."""
    for module in model.modules():
        if isinstance(module, (nn.ReLU, nn.LeakyReLU)):
            module.inplace = True
    return model


def optimize_graph(model: DFNet, upsampling: bool = True) -> DFNet:
    """Eval-mode copy of ``model`` with BatchNorm folded and, optionally, the upsampling folded."""
    model = activations_in_place(fold_batchnorm(model))
    return fold_upsampling(model) if upsampling else model


# ---------------------------------------------------------------------------------------------
# Engines behind one interface
# ---------------------------------------------------------------------------------------------
DetailsFn = Callable[[Tensor, Tensor], tuple[Tensor, Tensor, Tensor]]


class DetailsModule(nn.Module):
    """``complete_with_details`` as ``forward``, for export and compilation."""

    def __init__(self, net: DFNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, image: Tensor, hole_mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return self.net.complete_with_details(image, hole_mask)


class InferenceModel(nn.Module):
    """A prepared DFNet: ``complete`` and ``complete_with_details`` as on :class:`DFNet`, fp32 out.

    Inputs are ordinary (N, 3, H, W) / (N, 1, H, W) float tensors on ``device``; layout and precision
    conversions happen inside. Training is not supported (the graph is rewritten for inference).
    """

    def __init__(
        self, config: DFNetConfig, run: DetailsFn, device: torch.device, engine: str, **info: object
    ) -> None:
        super().__init__()
        self.config = config
        self._run = run
        self.device = device
        self.engine = engine
        self.info = {"engine": engine, "device": str(device), **info}

    def complete_with_details(self, image: Tensor, hole_mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Final result, alpha map and raw completion of the finest fusion block (float32)."""
        with torch.inference_mode():
            return tuple(t.float() for t in self._run(image, hole_mask))  # type: ignore[return-value]

    def complete(self, image: Tensor, hole_mask: Tensor) -> Tensor:
        """Only the final result (float32)."""
        return self.complete_with_details(image, hole_mask)[0]

    def forward(self, image: Tensor, hole_mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return self.complete_with_details(image, hole_mask)

    def train(self, mode: bool = True) -> InferenceModel:
        if mode:
            raise RuntimeError("an InferenceModel cannot be trained; train the original DFNet")
        return super().train(False)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.info.items())


def _autocast(device: torch.device, precision: Precision, cache: bool = True) -> torch.autocast:
    """Autocast context for ``precision`` (a no-op for fp32)."""
    if precision == "fp32":
        return torch.autocast(device.type, enabled=False)
    return torch.autocast(device.type, dtype=DTYPES[precision], cache_enabled=cache)


def torch_runner(
    net: DFNet, device: torch.device, precision: Precision, channels_last: bool, cache: bool = True
) -> DetailsFn:
    """Eager runner: layout conversion, autocast and inference mode around ``complete_with_details``."""
    layout = torch.channels_last if channels_last else torch.contiguous_format

    def run(image: Tensor, hole_mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        image = image.to(device).contiguous(memory_format=layout)
        hole_mask = hole_mask.to(device).contiguous(memory_format=layout)
        with _autocast(device, precision, cache):
            return net.complete_with_details(image, hole_mask)

    return run


class CUDAGraphRunner:
    """Replays one captured CUDA graph per input shape (static shapes; inputs copied in, outputs cloned)."""

    def __init__(self, run: DetailsFn, warmup: int = 3) -> None:
        self.run = run
        self.warmup = warmup
        self.graphs: dict[tuple, tuple[torch.cuda.CUDAGraph, tuple[Tensor, Tensor], tuple[Tensor, ...]]] = {}

    def capture(self, image: Tensor, hole_mask: Tensor) -> None:
        """Warm up on a side stream and capture ``run`` for these shapes."""
        static = (image.clone(), hole_mask.clone())
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream), torch.inference_mode():
            for _ in range(self.warmup):
                self.run(*static)
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph), torch.inference_mode():
            outputs = self.run(*static)
        self.graphs[self._key(image, hole_mask)] = (graph, static, tuple(outputs))

    @staticmethod
    def _key(image: Tensor, hole_mask: Tensor) -> tuple:
        return tuple(image.shape), tuple(hole_mask.shape), image.dtype, image.device

    def __call__(self, image: Tensor, hole_mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        key = self._key(image, hole_mask)
        if key not in self.graphs:
            self.capture(image, hole_mask)
        graph, (static_image, static_hole), outputs = self.graphs[key]
        static_image.copy_(image)
        static_hole.copy_(hole_mask)
        graph.replay()
        return tuple(o.clone() for o in outputs)  # type: ignore[return-value]


class _PaddedConv(torch.autograd.Function):
    """conv2d on a zero-padded input, exported to ONNX as one Conv with asymmetric ``pads``.

    The legacy exporter writes ``F.pad`` with pads computed from the input's rank at run time, which
    ONNX Runtime cannot fold into the convolution (17 Pad nodes, about 5 % of the run time at 512).
    """

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor, pads: tuple[int, ...], stride: int) -> Tensor:
        return F.conv2d(F.pad(x, pads), weight, bias, stride)

    @staticmethod
    def symbolic(g, x, weight, bias, pads, stride):  # g: the ONNX graph context
        left, right, top, bottom = pads
        return g.op("Conv", x, weight, bias, pads_i=[top, left, bottom, right], strides_i=[stride, stride])


class ExportSameConv2d(nn.Module):
    """A :class:`SameConv2d` whose padding becomes part of the ONNX Conv (same eager result)."""

    def __init__(self, same: SameConv2d) -> None:
        super().__init__()
        self.conv = same.conv
        self.padding = same.padding

    def forward(self, x: Tensor) -> Tensor:
        conv = self.conv
        bias = conv.bias if conv.bias is not None else conv.weight.new_zeros(conv.out_channels)
        return _PaddedConv.apply(x, conv.weight, bias, self.padding, conv.stride[0])


def export_friendly(net: DFNet) -> DFNet:
    """``net`` (modified in place) with every padded :class:`SameConv2d` replaced for ONNX export."""
    for module in list(net.modules()):
        for name, child in module.named_children():
            if isinstance(child, SameConv2d) and child.explicit_pad:  # padded by F.pad, not by the conv
                setattr(module, name, ExportSameConv2d(child))
    return net


def onnx_bytes(net: DFNet, size: int = 256, opset: int = 17) -> bytes:
    """ONNX model of ``complete_with_details`` with dynamic batch, height and width (legacy exporter)."""
    import io

    from dfnet.onnx_export import legacy_onnx_export

    module = DetailsModule(export_friendly(copy.deepcopy(net).cpu().float().eval()))
    buffer = io.BytesIO()
    with torch.no_grad():
        legacy_onnx_export(module, buffer, ["result", "alpha", "raw"], size, opset)
    return buffer.getvalue()


def release_freed_memory() -> None:
    """Hand memory freed by graph rewriting and export back to the OS (glibc only; else a no-op)."""
    import ctypes
    import gc

    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def onnxruntime_runner(net: DFNet, threads: int | None = None, precision: str = "fp32") -> DetailsFn:
    """ONNX Runtime (CPU) runner for an already rewritten ``net``; tensors in, CPU tensors out; ``precision``
    "int8" quantises the convolutions first (:func:`int8_onnx_bytes`)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if precision == "int8":
        graph = int8_onnx_bytes(net, reduce_range=not cpu_flags() & VNNI_FLAGS)
    else:
        graph = onnx_bytes(net)
    session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
    release_freed_memory()  # the exported bytes and the exporter's copies (about 0.5 GB at full width)

    def run(image: Tensor, hole_mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        feed = {
            "image": image.detach().cpu().float().contiguous().numpy(),
            "hole_mask": hole_mask.detach().cpu().float().contiguous().numpy(),
        }
        return tuple(torch.from_numpy(o) for o in session.run(None, feed))  # type: ignore[return-value]

    return run


# ---------------------------------------------------------------------------------------------
# int8: ONNX Runtime static quantisation (QDQ, per-channel weights)
# ---------------------------------------------------------------------------------------------
INT8_CALIBRATION_SIZE = 256  # calibration images' side (the graph has dynamic sizes; ranges carry over)
INT8_CALIBRATION_IMAGES = 6
VNNI_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8"})  # int8 dot products without saturation


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where it cannot be read, e.g. not Linux)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def int8_suited(flags: frozenset[str]) -> bool:
    """Whether int8 convolutions beat fp32 here: VNNI/AMX int8 dot products, or AVX2 (7-bit weights)."""
    return bool(flags & VNNI_FLAGS) or "avx2" in flags


def calibration_feeds(size: int = INT8_CALIBRATION_SIZE, count: int = INT8_CALIBRATION_IMAGES) -> list[dict]:
    """Seeded photo-like inputs for calibration: smooth colour fields with grain and edges over the full
    [0, 1] range, holes from :func:`dfnet.masks.generate_mask` in every hole-ratio bin, zeroed as DFNet sees them."""
    from dfnet.masks import HOLE_RATIO_BINS, generate_mask

    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    feeds = []
    for k in range(count):
        phase = rng.uniform(0, 2 * np.pi, (3, 2))
        freq = rng.uniform(1, 8, (3, 2))
        image = np.stack(
            [
                0.5
                + 0.45
                * np.sin(freq[c, 0] * 2 * np.pi * y + phase[c, 0])
                * np.cos(freq[c, 1] * 2 * np.pi * x + phase[c, 1])
                for c in range(3)
            ]
        )
        image += rng.normal(0, 0.05 * (k % 3), image.shape).astype(np.float32)  # grain: none, light, strong
        image[:, : size // 2] *= 0.5 + 0.5 * (k % 2)  # a hard edge on every other image
        image = np.clip(image, 0, 1).astype(np.float32)
        hole = generate_mask(size, rng, target_bin=k % len(HOLE_RATIO_BINS)).astype(np.float32)
        feeds.append({"image": (image * (1 - hole))[None], "hole_mask": hole[None, None]})
    return feeds


def int8_onnx_bytes(net: DFNet, reduce_range: bool) -> bytes:
    """The rewritten graph with its convolutions quantised to int8 (static QDQ: per-channel int8 weights,
    uint8 activations calibrated by min/max on :func:`calibration_feeds`); ``reduce_range`` keeps weights to
    7 bits so that AVX2 without VNNI cannot saturate its 16-bit intermediate sums."""
    import tempfile
    from pathlib import Path

    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Feeds(CalibrationDataReader):
        def __init__(self) -> None:
            self.feeds = iter(calibration_feeds())

        def get_next(self) -> dict | None:
            return next(self.feeds, None)

    with tempfile.TemporaryDirectory() as folder:
        source, target = Path(folder) / "fp32.onnx", Path(folder) / "int8.onnx"
        source.write_bytes(onnx_bytes(net))
        quantize_static(
            str(source),
            str(target),
            Feeds(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            reduce_range=reduce_range,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=["Conv"],
        )
        return target.read_bytes()


# ---------------------------------------------------------------------------------------------
# Choosing and preparing
# ---------------------------------------------------------------------------------------------
def onnxruntime_available() -> bool:
    """Whether ONNX Runtime (and the ONNX exporter's dependency ``onnx``) can be imported."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def _median_seconds(run: DetailsFn, image: Tensor, hole_mask: Tensor, repeats: int) -> float:
    with torch.inference_mode():
        run(image, hole_mask)  # warm-up (first-call allocations, weight packing)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            run(image, hole_mask)
            times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


CPU_ENGINES: tuple[str, ...] = ("torch", "torch-channels-last", "onnxruntime")
_ENGINE_CHOICES: dict[tuple, str] = {}


def cpu_runner(net: DFNet, engine: str, precision: Precision = "fp32") -> DetailsFn:
    """Runner for one of :data:`CPU_ENGINES` on an already rewritten ``net`` (moved to CPU)."""
    cpu = torch.device("cpu")
    if engine == "onnxruntime":
        if precision not in ONNXRUNTIME_PRECISIONS:
            raise ValueError(f"the onnxruntime engine runs in fp32 or int8, got precision={precision!r}")
        return onnxruntime_runner(net, precision=precision)
    if precision == "int8":
        raise ValueError(f"int8 runs on the onnxruntime engine only, not {engine!r}")
    if engine not in ("torch", "torch-channels-last"):
        raise ValueError(f"CPU engine must be one of {', '.join(CPU_ENGINES)}, got {engine!r}")
    channels_last = engine == "torch-channels-last"
    net = net.to(cpu, memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    return torch_runner(net, cpu, precision, channels_last)


def choose_cpu_engine(model: DFNet, size: int = 512, measure: bool = False, repeats: int = 3) -> str:
    """The fastest CPU engine for ``size`` x ``size`` images: by rule, or by a one-time micro-benchmark.

    The rule (from ``benchmarks/bench_inference.py`` on a 2-core AVX-512 machine, see
    docs/benchmarks.md): ONNX Runtime when it is installed (as fast as torch channels_last at
    512×512, faster on small inputs and much steadier when other processes load the CPU), else
    torch channels_last. ``measure=True`` times every engine on this machine instead (cached per
    config, size and thread count).
    """
    candidates = [e for e in CPU_ENGINES if e != "onnxruntime" or onnxruntime_available()]
    if not measure:
        return "onnxruntime" if "onnxruntime" in candidates else "torch-channels-last"
    key = (_config_key(model.config), size, torch.get_num_threads())
    if key not in _ENGINE_CHOICES:
        net = rewritten(model).cpu()
        image = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0))
        hole_mask = (torch.rand(1, 1, size, size, generator=torch.Generator().manual_seed(1)) > 0.7).float()
        times = {e: _median_seconds(cpu_runner(net, e), image, hole_mask, repeats) for e in candidates}
        _ENGINE_CHOICES[key] = min(times, key=times.__getitem__)
    return _ENGINE_CHOICES[key]


def _config_key(config: DFNetConfig) -> str:
    """A hashable, stable key for a config."""
    import json

    return json.dumps(config.to_dict(), sort_keys=True)


def prepare_for_inference(
    model: DFNet,
    device: str | torch.device = "cpu",
    precision: Precision = "fp32",
    channels_last: bool | None = None,
    compile: bool | str = False,
    cuda_graphs: bool = False,
    engine: str = "auto",
    rewrite_upsampling: bool = True,
    size: int = 512,
) -> InferenceModel:
    """The fastest way to run ``model`` for inference on ``device``, as a :class:`InferenceModel`.

    - Always: an eval copy with BatchNorm folded, the upsampling folded (``rewrite_upsampling``),
      only the finest fusion block computed, under ``torch.inference_mode``.
    - CPU, ``engine="auto"``: :func:`choose_cpu_engine` (ONNX Runtime when installed, else torch);
      ``channels_last=True`` or an explicit ``engine`` overrides it.
    - CUDA: ``channels_last`` (default on), autocast to ``precision`` ("bf16"/"fp16"), cudnn
      benchmark, ``torch.compile`` when ``compile`` is True or a mode name (e.g. "max-autotune",
      "reduce-overhead", which uses CUDA graphs itself), and ``cuda_graphs=True`` for a captured
      graph per input shape without compiling.
    """
    device = torch.device(device)
    check_options(device, precision, compile, cuda_graphs, engine)
    net = rewritten(model, rewrite_upsampling)
    if precision in ("bf16", "fp16"):
        net = fusion_in_float32(net)
    info: dict[str, object] = {"precision": precision, "compile": compile, "cuda_graphs": cuda_graphs}
    if device.type == "cpu":
        if precision == "int8":
            engine = "onnxruntime"
        if engine == "auto":
            low_precision = precision != "fp32"  # ONNX Runtime runs fp32 (and int8) only
            engine = (
                "torch-channels-last"
                if channels_last or low_precision or compile
                else choose_cpu_engine(model, size)
            )
        run = cpu_runner(net, engine, precision)
    else:
        engine = "torch"
        channels_last = device.type == "cuda" if channels_last is None else channels_last
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        layout = torch.channels_last if channels_last else torch.contiguous_format
        net = net.to(device, memory_format=layout)
        run = torch_runner(net, device, precision, channels_last, cache=not cuda_graphs)
        info["channels_last"] = channels_last
    if compile:
        if engine == "onnxruntime":
            raise ValueError("torch.compile does not apply to the onnxruntime engine")
        run = torch.compile(run, mode=compile if isinstance(compile, str) else None, dynamic=False)
    if cuda_graphs:
        run = CUDAGraphRunner(run)
    del net
    release_freed_memory()  # the rewrite's intermediate copies of the weights
    return InferenceModel(model.config, run, device, engine, **info)


def rewritten(model: DFNet, upsampling: bool = True) -> DFNet:
    """:func:`optimize_graph` of ``model`` as in eval mode, leaving the caller's model as it was."""
    was_training = model.training
    try:
        return optimize_graph(model.eval(), upsampling=upsampling)
    finally:
        model.train(was_training)


def check_options(
    device: torch.device, precision: str, compile: bool | str, cuda_graphs: bool, engine: str
) -> None:
    """Raise ValueError for combinations :func:`prepare_for_inference` cannot honour."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "int8" and (device.type != "cpu" or engine not in ("auto", "onnxruntime")):
        raise ValueError("precision int8 runs on the CPU with the onnxruntime engine only")
    if device.type == "cpu" and engine not in ("auto", *CPU_ENGINES):
        raise ValueError(f"CPU engine must be auto or one of {', '.join(CPU_ENGINES)}, got {engine!r}")
    if device.type != "cpu" and engine not in ("auto", "torch"):
        raise ValueError(f"on {device.type} the engine is torch, got {engine!r}")
    if engine == "onnxruntime" and precision not in ONNXRUNTIME_PRECISIONS:
        raise ValueError(f"the onnxruntime engine runs in fp32 or int8, got precision={precision!r}")
    if cuda_graphs and device.type != "cuda":
        raise ValueError("cuda_graphs needs a CUDA device")
    if cuda_graphs and compile in ("reduce-overhead", "max-autotune"):
        raise ValueError(f"torch.compile mode {compile!r} captures CUDA graphs itself; drop cuda_graphs")
