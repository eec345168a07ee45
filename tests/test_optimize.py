"""Correctness of every inference fast path in dfnet.optimize (timings live in benchmarks/, not here)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import ROOT
from helpers import randomize_batchnorm
from torch import nn

from dfnet.model import DecoderLayer, DFNet, DFNetConfig
from dfnet.optimize import (
    CPU_ENGINES,
    ExportSameConv2d,
    Float32Fusion,
    InferenceModel,
    UpsampleFoldedDecoderLayer,
    choose_cpu_engine,
    fold_batchnorm,
    fold_conv_bn,
    fold_upsampling,
    fusion_in_float32,
    onnx_bytes,
    onnxruntime_available,
    optimize_graph,
    prepare_for_inference,
    subpixel_weight,
)

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
needs_ort = pytest.mark.skipif(not onnxruntime_available(), reason="onnxruntime is not installed")


def inputs(
    batch: int = 2, height: int = 256, width: int = 256, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    image = torch.rand(batch, 3, height, width, generator=gen)
    hole_mask = (torch.rand(batch, 1, height, width, generator=gen) > 0.6).float()
    return image, hole_mask


def decoder_features(model: DFNet, image: torch.Tensor, hole_mask: torch.Tensor) -> list[torch.Tensor]:
    """Every decoder layer's output (before any sigmoid), coarse to fine, and all fusion outputs."""
    features: list[torch.Tensor] = []
    hooks = [layer.register_forward_hook(lambda m, i, o: features.append(o)) for layer in model.decoder]
    try:
        with torch.inference_mode():
            out = model(image, hole_mask)
    finally:
        for hook in hooks:
            hook.remove()
    return features + out.results + out.alphas + out.raws


def assert_close_all(actual: list[torch.Tensor], expected: list[torch.Tensor], tolerance: float) -> None:
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected, strict=True):
        assert a.shape == e.shape
        scale = max(1.0, float(e.abs().max()))
        assert float((a - e).abs().max()) <= tolerance * scale


# ---------------------------------------------------------------------------------------------
# BatchNorm folding
# ---------------------------------------------------------------------------------------------
def test_fold_conv_bn_matches_hand_computed_values():
    conv = nn.Conv2d(1, 2, 1)
    norm = nn.BatchNorm2d(2, eps=0.0).eval()
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([2.0, -1.0]).view(2, 1, 1, 1))
        conv.bias.copy_(torch.tensor([1.0, 0.5]))
        norm.running_mean.copy_(torch.tensor([3.0, 0.0]))
        norm.running_var.copy_(torch.tensor([4.0, 0.25]))
        norm.weight.copy_(torch.tensor([1.0, 2.0]))
        norm.bias.copy_(torch.tensor([0.0, -1.0]))
    fold_conv_bn(conv, norm)
    # channel 0: (2x + 1 - 3) / 2 = x - 1; channel 1: 2 * (-x + 0.5) / 0.5 - 1 = -4x + 1
    assert conv.weight.flatten().tolist() == [1.0, -4.0]
    assert conv.bias.tolist() == [-1.0, 1.0]


def test_fold_conv_bn_refuses_training_mode():
    with pytest.raises(ValueError, match="eval-mode"):
        fold_conv_bn(nn.Conv2d(1, 1, 1), nn.BatchNorm2d(1))


def test_fold_batchnorm_removes_every_norm_and_keeps_outputs(tiny_model):
    image, hole_mask = inputs()
    folded = fold_batchnorm(tiny_model)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in tiny_model.modules())  # the original is untouched
    assert isinstance(folded, DFNet)
    assert_close_all(
        decoder_features(folded, image, hole_mask), decoder_features(tiny_model, image, hole_mask), 1e-5
    )


def test_fold_batchnorm_needs_eval_mode(tiny_model):
    with pytest.raises(ValueError, match="eval"):
        fold_batchnorm(tiny_model.train())


def test_bn_statistics_matter_so_the_folding_test_can_fail(tiny_model):
    """Guard for the test above: changing one BN statistic changes the features far beyond 1e-5."""
    image, hole_mask = inputs()
    expected = decoder_features(tiny_model, image, hole_mask)
    tiny_model.decoder[3].norm.running_var.mul_(1.5)
    changed = decoder_features(tiny_model, image, hole_mask)
    assert max(float((a - e).abs().max()) for a, e in zip(changed, expected, strict=True)) > 1e-3


# ---------------------------------------------------------------------------------------------
# Sub-pixel rewrite of "upsample, then conv"
# ---------------------------------------------------------------------------------------------
def test_subpixel_weight_hand_example():
    """A 3x3 kernel of ones: corner phase (0, 0) reads low-res taps with weights [[1, 2], [2, 4]]."""
    low = subpixel_weight(torch.ones(1, 1, 3, 3))
    assert low.shape == (4, 1, 2, 2)
    assert low[0, 0].tolist() == [[1.0, 2.0], [2.0, 4.0]]  # phase (a=0, b=0): rows {i-1, i}
    assert low[3, 0].tolist() == [[4.0, 2.0], [2.0, 1.0]]  # phase (1, 1): rows {i, i+1}
    assert low.sum().item() == 36.0  # every tap lands in exactly one low-res tap per phase


@pytest.mark.parametrize("kernel", [1, 3, 5])
def test_upsample_folded_decoder_layer_equals_decoder_layer(kernel):
    torch.manual_seed(kernel)
    layer = DecoderLayer(6, 5, 7, kernel).eval()
    randomize_batchnorm(layer, seed=kernel)
    x, skip = torch.randn(2, 6, 4, 6), torch.randn(2, 5, 8, 12)  # non-square on purpose
    folded = UpsampleFoldedDecoderLayer(layer, up_channels=6).eval()
    with torch.no_grad():
        expected, actual = layer(x, skip), folded(x, skip)
    assert torch.allclose(actual, expected, atol=1e-5), float((actual - expected).abs().max())


def test_upsample_folded_decoder_layer_rejects_even_kernels():
    layer = DecoderLayer(4, 4, 4, 2).eval()
    with pytest.raises(ValueError):
        UpsampleFoldedDecoderLayer(layer, up_channels=4)


def test_fold_upsampling_then_batchnorm_keeps_every_output(tiny_model):
    image, hole_mask = inputs(batch=1, height=256, width=512)
    expected = decoder_features(tiny_model, image, hole_mask)
    for net in (
        fold_upsampling(tiny_model),
        fold_batchnorm(fold_upsampling(tiny_model)),
        optimize_graph(tiny_model),
    ):
        assert all(isinstance(layer, UpsampleFoldedDecoderLayer) for layer in net.decoder)
        assert_close_all(decoder_features(net, image, hole_mask), expected, 1e-5)


def test_decoder_kernel_5_network_rewrites_exactly():
    torch.manual_seed(1)
    model = randomize_batchnorm(DFNet(DFNetConfig(width=0.125, decoder_kernel=5))).eval()
    image, hole_mask = inputs(batch=1)
    assert_close_all(
        decoder_features(optimize_graph(model), image, hole_mask),
        decoder_features(model, image, hole_mask),
        1e-5,
    )


# ---------------------------------------------------------------------------------------------
# Prepared models
# ---------------------------------------------------------------------------------------------
def expected_details(model: DFNet, image: torch.Tensor, hole_mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
    with torch.inference_mode():
        return model.complete_with_details(image, hole_mask)


@pytest.mark.parametrize("engine", ["torch", "torch-channels-last"])
def test_torch_cpu_engines_match_the_model(tiny_model, engine):
    image, hole_mask = inputs()
    prepared = prepare_for_inference(tiny_model, "cpu", engine=engine)
    assert isinstance(prepared, InferenceModel) and prepared.engine == engine
    actual = prepared.complete_with_details(image, hole_mask)
    for a, e in zip(actual, expected_details(tiny_model, image, hole_mask), strict=True):
        assert a.dtype == torch.float32
        assert torch.allclose(a, e, atol=1e-5)
    assert torch.equal(prepared.complete(image, hole_mask), actual[0])


def test_optimized_engine_keeps_a_pushpull_network_exact():
    torch.manual_seed(2)
    model = randomize_batchnorm(DFNet(DFNetConfig(width=0.125, hole_fill="pushpull"))).eval()
    image, hole_mask = inputs()
    actual = prepare_for_inference(model, "cpu", engine="torch-channels-last").complete_with_details(
        image, hole_mask
    )
    for a, e in zip(actual, expected_details(model, image, hole_mask), strict=True):
        assert torch.allclose(a, e, atol=1e-5)


def test_channels_last_equals_contiguous(tiny_model):
    image, hole_mask = inputs(batch=1)
    plain = prepare_for_inference(tiny_model, "cpu", engine="torch").complete(image, hole_mask)
    channels_last = prepare_for_inference(tiny_model, "cpu", channels_last=True).complete(image, hole_mask)
    assert torch.allclose(plain, channels_last, atol=1e-6)


@needs_ort
def test_onnxruntime_engine_matches_at_another_size_and_batch(tiny_model):
    """Exported once with dynamic axes; run on a batch of 3 non-square images."""
    prepared = prepare_for_inference(tiny_model, "cpu", engine="onnxruntime")
    for image, hole_mask in (inputs(batch=1), inputs(batch=3, height=256, width=512, seed=1)):
        actual = prepared.complete_with_details(image, hole_mask)
        for a, e in zip(actual, expected_details(tiny_model, image, hole_mask), strict=True):
            assert a.shape == e.shape
            assert float((a - e).abs().max()) <= 1e-4


@needs_ort
def test_onnx_graph_pads_inside_the_convolutions(tiny_model):
    """No separate Pad nodes: the encoder's asymmetric padding is the Conv's own ``pads`` attribute."""
    import onnx

    graph = onnx.load_from_string(onnx_bytes(optimize_graph(tiny_model))).graph
    assert not [n for n in graph.node if n.op_type == "Pad"]
    pads = [list(a.ints) for n in graph.node if n.op_type == "Conv" for a in n.attribute if a.name == "pads"]
    assert [2, 2, 3, 3] in pads  # the 7x7 stride-2 first encoder layer: 2 before, 3 after


def test_export_same_conv_matches_eager(tiny_model):
    layer = tiny_model.encoder[1].conv
    x = torch.randn(1, layer.conv.in_channels, 32, 32)
    with torch.no_grad():
        assert torch.equal(ExportSameConv2d(layer)(x), layer(x))


def test_bf16_autocast_on_cpu_is_within_one_level(tiny_model):
    image, hole_mask = inputs()
    prepared = prepare_for_inference(tiny_model, "cpu", precision="bf16", engine="torch-channels-last")
    actual = prepared.complete_with_details(image, hole_mask)
    expected = expected_details(tiny_model, image, hole_mask)
    for a, e in zip(actual, expected, strict=True):
        assert a.dtype == torch.float32
        assert float((a - e).abs().max()) <= 1 / 255


def test_fusion_in_float32_runs_the_head_in_float32_under_autocast(tiny_model):
    image, hole_mask = inputs(batch=1)
    net = fusion_in_float32(optimize_graph(tiny_model))
    assert all(isinstance(block, Float32Fusion) for block in net.fusion.values())
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        plain = optimize_graph(tiny_model).complete_with_details(image, hole_mask)
        wrapped = net.complete_with_details(image, hole_mask)
    assert plain[1].dtype == plain[2].dtype == torch.bfloat16  # alpha and raw, unwrapped
    assert all(t.dtype == torch.float32 for t in wrapped)


def test_auto_engine_follows_the_documented_rule(tiny_model):
    rule = "onnxruntime" if onnxruntime_available() else "torch-channels-last"
    assert choose_cpu_engine(tiny_model, 256) == rule


@pytest.mark.slow
def test_measured_engine_choice_is_a_cpu_engine(tiny_model):
    assert choose_cpu_engine(tiny_model, 256, measure=True, repeats=1) in CPU_ENGINES


def test_prepare_rejects_bad_arguments(tiny_model):
    with pytest.raises(ValueError, match="precision"):
        prepare_for_inference(tiny_model, "cpu", precision="int4")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="int8 runs on the CPU"):
        prepare_for_inference(tiny_model, "cpu", precision="int8", engine="torch")
    with pytest.raises(ValueError, match="engine"):
        prepare_for_inference(tiny_model, "cpu", engine="tensorrt")
    with pytest.raises(ValueError, match="CUDA"):
        prepare_for_inference(tiny_model, "cpu", engine="torch", cuda_graphs=True)
    with pytest.raises(ValueError, match="engine is torch"):
        prepare_for_inference(tiny_model, "cuda", engine="onnxruntime")
    if onnxruntime_available():
        with pytest.raises(ValueError, match="fp32"):
            prepare_for_inference(tiny_model, "cpu", precision="bf16", engine="onnxruntime")


def test_inference_model_cannot_be_trained(tiny_model):
    prepared = prepare_for_inference(tiny_model, "cpu", engine="torch")
    assert prepared.eval() is prepared
    with pytest.raises(RuntimeError, match="cannot be trained"):
        prepared.train()
    assert prepared.config == tiny_model.config


def test_prepare_leaves_the_callers_model_as_it_was(tiny_model):
    image, hole_mask = inputs(batch=1)
    before = {k: v.clone() for k, v in tiny_model.state_dict().items()}
    tiny_model.train()
    prepared = prepare_for_inference(tiny_model, "cpu", engine="torch")
    assert tiny_model.training  # restored
    assert all(torch.equal(v, before[k]) for k, v in tiny_model.state_dict().items())
    tiny_model.eval()
    assert torch.allclose(
        prepared.complete(image, hole_mask), expected_details(tiny_model, image, hole_mask)[0], atol=1e-5
    )


@pytest.mark.slow
@pytest.mark.skipif(bool(os.environ.get("DFNET_SKIP_COMPILE")), reason="DFNET_SKIP_COMPILE is set")
def test_torch_compile_on_cpu_matches(tiny_model):
    """Compiling takes about a minute cold on two loaded cores (11 s with a warm inductor cache)."""
    image, hole_mask = inputs(batch=1)
    prepared = prepare_for_inference(tiny_model, "cpu", engine="torch", compile=True)
    for a, e in zip(
        prepared.complete_with_details(image, hole_mask),
        expected_details(tiny_model, image, hole_mask),
        strict=True,
    ):
        assert torch.allclose(a, e, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# CUDA (skipped without a GPU)
# ---------------------------------------------------------------------------------------------
@needs_cuda
@pytest.mark.parametrize("precision", ["fp32", "fp16", "bf16"])
@pytest.mark.parametrize("cuda_graphs", [False, True])
def test_cuda_paths_match_fp32(tiny_model, precision, cuda_graphs):
    image, hole_mask = inputs()
    expected = expected_details(tiny_model, image, hole_mask)
    prepared = prepare_for_inference(tiny_model, "cuda", precision=precision, cuda_graphs=cuda_graphs)
    tolerance = 1e-4 if precision == "fp32" else 1 / 255
    for _ in range(2):  # the second call replays the captured graph
        actual = prepared.complete_with_details(image.cuda(), hole_mask.cuda())
        for a, e in zip(actual, expected, strict=True):
            assert a.dtype == torch.float32 and a.is_cuda
            assert float((a.cpu() - e).abs().max()) <= tolerance


@needs_cuda
@pytest.mark.slow
def test_cuda_compile_matches(tiny_model):
    image, hole_mask = inputs()
    prepared = prepare_for_inference(tiny_model, "cuda", precision="fp16", compile=True)
    actual = prepared.complete(image.cuda(), hole_mask.cuda())
    assert float((actual.cpu() - expected_details(tiny_model, image, hole_mask)[0]).abs().max()) <= 1 / 255


# ---------------------------------------------------------------------------------------------
# The benchmark script runs end to end (no timing assertions)
# ---------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_inference_benchmark_script_runs_and_compares_outputs(tmp_path):
    out = tmp_path / "bench.json"
    cmd = [
        sys.executable,
        str(ROOT / "benchmarks" / "bench_inference.py"),
        "--device",
        "cpu",
        "--width",
        "0.125",
    ]
    cmd += ["--size", "256", "--warmup", "0", "--repeats", "1", "--json", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "TOO LARGE" not in done.stdout
    import json

    payload = json.loads(out.read_text())["cpu"]
    assert max(payload["diffs"].values()) <= 1e-3
    assert len(payload["timings"]) >= 4


def test_int8_calibration_covers_every_hole_bin_and_the_value_range():
    from dfnet.masks import bin_of
    from dfnet.optimize import calibration_feeds

    feeds = calibration_feeds(size=64, count=5)
    assert sorted(bin_of(float(f["hole_mask"].mean())) for f in feeds) == [0, 1, 2, 3, 4]
    images = np.concatenate([f["image"] for f in feeds])
    assert images.dtype == np.float32 and images.min() == 0.0 and images.max() > 0.9
    for feed in feeds:  # zero in the hole, as DFNet sees its input
        assert not (feed["image"] * feed["hole_mask"]).any()


def test_int8_is_suited_to_vnni_amx_and_avx2_cpus():
    from dfnet.optimize import VNNI_FLAGS, int8_suited

    assert int8_suited(frozenset({"avx512f", "avx512_vnni"})) and int8_suited(frozenset({"amx_int8"}))
    assert int8_suited(frozenset({"avx2"}))  # weights kept to 7 bits there (no VNNI: 16-bit sums)
    assert not int8_suited(frozenset({"sse4_2"})) and not frozenset({"avx2"}) & VNNI_FLAGS
