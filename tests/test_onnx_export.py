"""ONNX and TorchScript exports: parity with PyTorch, dynamic batch and size, metadata, the CLI."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch
from helpers import randomize_batchnorm

from dfnet.checkpoint import save_model
from dfnet.cli import main
from dfnet.inference import Inpainter
from dfnet.model import composite
from dfnet.onnx_export import CompletionModule, example_inputs, export_onnx, export_torchscript, run_exported

TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def model():
    from dfnet.model import DFNet, DFNetConfig

    torch.manual_seed(0)
    return randomize_batchnorm(DFNet(DFNetConfig(width=0.125))).eval()


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory, model):
    path = tmp_path_factory.mktemp("export") / "model.onnx"
    export_onnx(model, path, size=256, working_size=256)
    return path


def expected(model, image, hole_mask):
    with torch.no_grad():
        return composite(image, model.complete(image, hole_mask), hole_mask)


@pytest.mark.parametrize(("batch", "height", "width"), [(1, 256, 256), (3, 256, 256), (2, 256, 512)])
def test_onnx_parity_with_dynamic_batch_and_size(model, onnx_file, batch, height, width):
    gen = torch.Generator().manual_seed(batch + height + width)
    image = torch.rand(batch, 3, height, width, generator=gen)
    hole_mask = (torch.rand(batch, 1, height, width, generator=gen) > 0.6).float()
    error = (run_exported(onnx_file, image, hole_mask) - expected(model, image, hole_mask)).abs().max()
    assert error < TOLERANCE


def test_onnx_graph_declares_dynamic_axes_and_metadata(onnx_file):
    proto = onnx.load(str(onnx_file))
    dims = [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 3, "height", "width"]
    assert [i.name for i in proto.graph.input] == ["image", "hole_mask"]
    assert [o.name for o in proto.graph.output] == ["result"]
    meta = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(meta["config"])["width"] == 0.125
    assert meta["size_multiple"] == "256" and meta["working_size"] == "256"


def test_pushpull_network_exports_with_parity_at_a_larger_size(tmp_path):
    from dfnet.model import DFNet, DFNetConfig

    torch.manual_seed(1)
    pushpull = randomize_batchnorm(DFNet(DFNetConfig(width=0.125, hole_fill="ring_pushpull"))).eval()
    path = tmp_path / "pushpull.onnx"
    export_onnx(pushpull, path, size=256, working_size=256)
    image = torch.rand(1, 3, 512, 768)
    hole_mask = torch.zeros(1, 1, 512, 768)
    hole_mask[..., :300, :400] = 1  # a hole larger than a 256-pixel cell: the coarse levels matter
    error = (run_exported(path, image, hole_mask) - expected(pushpull, image, hole_mask)).abs().max()
    assert error < TOLERANCE


def test_static_onnx_fixes_the_size(model, tmp_path):
    path = tmp_path / "static.onnx"
    export_onnx(model, path, size=256, dynamic_size=False)
    dims = [
        d.dim_param or d.dim_value for d in onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim
    ]
    assert dims == ["batch", 3, 256, 256]
    inpainter = Inpainter.from_pretrained(path, engine="onnxruntime")
    rgb = np.zeros((300, 300, 3), dtype=np.uint8)
    hole = np.zeros((300, 300), dtype=bool)
    hole[5, 5] = True
    with pytest.raises(ValueError, match="only 256x256 inputs"):
        inpainter.inpaint(rgb, hole, strategy="original")
    assert inpainter.inpaint(rgb[:256, :256], hole[:256, :256]).shape == (256, 256, 3)


def test_torchscript_parity_at_other_sizes(model, tmp_path):
    path = tmp_path / "model.pt"
    export_torchscript(model, path, size=256)
    for batch, height, width in [(1, 256, 256), (2, 512, 256)]:
        image, hole_mask = example_inputs(height, batch=batch, seed=3)
        image, hole_mask = image[..., :width], hole_mask[..., :width]
        error = (run_exported(path, image, hole_mask) - expected(model, image, hole_mask)).abs().max()
        assert error < TOLERANCE
    extra = {"dfnet.json": ""}
    torch.jit.load(str(path), _extra_files=extra)
    assert json.loads(extra["dfnet.json"])["size_multiple"] == "256"


def test_export_leaves_the_source_model_untouched(model, tmp_path):
    before = {k: v.clone() for k, v in model.state_dict().items()}
    export_onnx(model, tmp_path / "m.onnx", size=256)
    assert not model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_wrapper_computes_only_the_final_result(model):
    image, hole_mask = example_inputs(256)
    with torch.no_grad():
        out = CompletionModule(model).eval()(image, hole_mask)
    assert out.shape == image.shape
    known = hole_mask.expand_as(image) < 0.5
    assert torch.equal(out[known], image[known])


def test_bad_size_is_rejected(model, tmp_path):
    with pytest.raises(ValueError, match="multiple of 256"):
        export_onnx(model, tmp_path / "x.onnx", size=300)


@pytest.mark.parametrize(("fmt", "name"), [("onnx", "m.onnx"), ("torchscript", "m.pt")])
def test_export_command(model, tmp_path, capsys, fmt, name):
    save_model(model, tmp_path / "m.safetensors", metadata={"working_size": 256})
    out = tmp_path / name
    code = main(
        [
            "export",
            "--model",
            str(tmp_path / "m.safetensors"),
            "--format",
            fmt,
            "--size",
            "256",
            "-o",
            str(out),
        ]
    )
    assert code == 0 and out.stat().st_size > 0
    printed = capsys.readouterr().out
    error = float(printed.split("batch of 2: ")[1].split()[0])
    assert error < TOLERANCE
