"""Export a DFNet for deployment as ONNX or TorchScript, computing only the final result.

The exported graph takes ``image`` (N, 3, H, W) float RGB in [0, 1] and ``hole_mask`` (N, 1, H, W),
1 = hole, and returns ``result`` (N, 3, H, W): the finest fusion block's output with known pixels
copied from the input. Batch size is always dynamic; ONNX height and width are dynamic too unless
``dynamic_size=False`` (sides must still be multiples of the model's size multiple, 256 by default:
the graph does not check this, :class:`dfnet.inference.Inpainter` pads for you).

ONNX files carry the model's config, size multiple and working size as metadata, so
``Inpainter.from_pretrained("model.onnx", engine="onnxruntime")`` knows how to use them. The
legacy TorchScript-based ONNX exporter is used (the newer one needs ``onnxscript``).
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from dfnet.files import atomic_write
from dfnet.model import DFNet, composite

FORMATS = ("onnx", "torchscript")
DEFAULT_OPSET = 17
INPUT_NAMES = ["image", "hole_mask"]
OUTPUT_NAMES = ["result"]


class CompletionModule(nn.Module):
    """The inference path only: ``composite(image, model.complete(image, hole_mask), hole_mask)``."""

    def __init__(self, model: DFNet) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: Tensor, hole_mask: Tensor) -> Tensor:
        return composite(image, self.model.complete(image, hole_mask), hole_mask)


@dataclass(frozen=True)
class ExportInfo:
    """What was written and what it accepts."""

    path: Path
    format: str
    size: int
    dynamic_size: bool
    metadata: dict[str, str]


def example_inputs(size: int, batch: int = 1, seed: int = 0) -> tuple[Tensor, Tensor]:
    """A random image and hole mask of ``size`` x ``size`` for tracing and parity checks."""
    gen = torch.Generator().manual_seed(seed)
    image = torch.rand(batch, 3, size, size, generator=gen)
    hole_mask = (torch.rand(batch, 1, size, size, generator=gen) > 0.7).float()
    return image, hole_mask


def export_metadata(model: DFNet, working_size: int | None) -> dict[str, str]:
    """String metadata stored with an export: config, size multiple and working size."""
    from dfnet.version import __version__

    return {
        "format": "dfnet-completion",
        "dfnet_version": __version__,
        "config": json.dumps(model.config.to_dict()),
        "size_multiple": str(model.config.size_multiple),
        "working_size": str(working_size or 512),
        "inputs": "image (N,3,H,W) RGB in [0,1]; hole_mask (N,1,H,W) 1 = hole",
        "outputs": "result (N,3,H,W): completed image, known pixels copied from the input",
    }


def _check_size(model: DFNet, size: int) -> None:
    m = model.config.size_multiple
    if size < m or size % m:
        raise ValueError(f"--size must be a positive multiple of {m}, got {size}")


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the tracer's and the legacy exporter's warnings (expected for this graph)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def legacy_onnx_export(
    module: nn.Module, target: Any, output_names: list[str], size: int, opset: int, dynamic_size: bool = True
) -> None:
    """ONNX export (legacy exporter) of ``module(image, hole_mask)`` to a path or buffer, batch axis dynamic.

    ``dynamic_size`` makes height and width dynamic too; warnings expected for this graph are silenced.
    """
    axes = {0: "batch", 2: "height", 3: "width"} if dynamic_size else {0: "batch"}
    with _quiet():
        torch.onnx.export(
            module,
            example_inputs(size),
            target,
            dynamo=False,
            input_names=INPUT_NAMES,
            output_names=output_names,
            dynamic_axes={name: axes for name in INPUT_NAMES + output_names},
            opset_version=opset,
        )


def export_onnx(
    model: DFNet,
    path: str | os.PathLike,
    size: int = 512,
    dynamic_size: bool = True,
    opset: int = DEFAULT_OPSET,
    working_size: int | None = None,
) -> ExportInfo:
    """Write an ONNX model of the final result with dynamic batch (and height/width)."""
    import onnx

    _check_size(model, size)
    wrapper = CompletionModule(copy.deepcopy(model).cpu().float()).eval()
    metadata = export_metadata(model, working_size)

    def write(tmp: str) -> None:
        legacy_onnx_export(wrapper, tmp, OUTPUT_NAMES, size, opset, dynamic_size)
        proto = onnx.load(tmp)
        for key, value in metadata.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.save(proto, tmp)

    atomic_write(path, write)
    return ExportInfo(Path(path), "onnx", size, dynamic_size, metadata)


def export_torchscript(
    model: DFNet, path: str | os.PathLike, size: int = 512, working_size: int | None = None
) -> ExportInfo:
    """Write a traced TorchScript module of the final result (any batch and multiple-of-256 size)."""
    _check_size(model, size)
    wrapper = CompletionModule(copy.deepcopy(model).cpu().float()).eval()
    metadata = export_metadata(model, working_size)
    with _quiet(), torch.no_grad():
        traced = torch.jit.trace(wrapper, example_inputs(size), check_trace=False)  # parity_error checks
    extra = {"dfnet.json": json.dumps(metadata)}
    atomic_write(path, lambda tmp: torch.jit.save(traced, tmp, _extra_files=extra))
    return ExportInfo(Path(path), "torchscript", size, True, metadata)


def export_model(
    model: DFNet,
    path: str | os.PathLike,
    format: str = "onnx",
    size: int = 512,
    dynamic_size: bool = True,
    opset: int = DEFAULT_OPSET,
    working_size: int | None = None,
) -> ExportInfo:
    """Export in ``format`` ('onnx' or 'torchscript')."""
    if format == "onnx":
        return export_onnx(model, path, size, dynamic_size, opset, working_size)
    if format == "torchscript":
        return export_torchscript(model, path, size, working_size)
    raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {format!r}")


def run_exported(info_or_path: ExportInfo | str | os.PathLike, image: Tensor, hole_mask: Tensor) -> Tensor:
    """Run an exported file (ONNX on ONNX Runtime CPU, or TorchScript) on tensors; for checks and tests."""
    path = Path(info_or_path.path if isinstance(info_or_path, ExportInfo) else info_or_path)
    if path.suffix == ".onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        feed = {"image": image.numpy().astype(np.float32), "hole_mask": hole_mask.numpy().astype(np.float32)}
        return torch.from_numpy(session.run(OUTPUT_NAMES, feed)[0])
    module = torch.jit.load(str(path), map_location="cpu")
    with torch.no_grad():
        return module(image, hole_mask)


def parity_error(model: DFNet, info: ExportInfo, size: int | None = None, batch: int = 2) -> float:
    """Largest absolute difference between the export and PyTorch on a random batch."""
    image, hole_mask = example_inputs(size or info.size, batch=batch, seed=1)
    with torch.no_grad():
        expected = CompletionModule(copy.deepcopy(model).cpu().float()).eval()(image, hole_mask)
    return float((run_exported(info, image, hole_mask) - expected).abs().max())
