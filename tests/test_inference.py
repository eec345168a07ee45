"""The Python API: loading, input and output kinds, sizes, batching, precision, engines, large images."""

from __future__ import annotations

import subprocess
import sys
import threading

import numpy as np
import pytest
import torch
from helpers import randomize_batchnorm
from PIL import Image

import dfnet.inference as inference
from dfnet.checkpoint import CheckpointError, save_model, save_released
from dfnet.exemplar import ExemplarDetail, add_exemplar_detail
from dfnet.inference import (
    Completion,
    InpaintCancelled,
    Inpainter,
    merge_panels,
    resolve_precision,
    resolve_texture,
)
from dfnet.model import DFNet, DFNetConfig


@pytest.fixture
def inpainter(tiny_model) -> Inpainter:
    return Inpainter(tiny_model, device="cpu", working_size=256)


@pytest.fixture
def odd_case() -> tuple[np.ndarray, np.ndarray]:
    """A 300x517 image with a 1-pixel hole, a hole on the border and a blob."""
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (300, 517, 3), dtype=np.uint8)
    hole = np.zeros((300, 517), dtype=bool)
    hole[150, 250] = True
    hole[0:20, 500:517] = True
    hole[100:160, 40:90] = True
    return rgb, hole


def known_equal(result, rgb: np.ndarray, hole: np.ndarray) -> bool:
    array = np.asarray(result)[:, :, :3]
    return array.shape == rgb.shape and np.array_equal(array[~hole], rgb[~hole])


# ---------------------------------------------------------------------------------------------
# Loading and describing
# ---------------------------------------------------------------------------------------------
def test_default_model_missing_is_a_one_line_error(monkeypatch, tmp_path):
    monkeypatch.setattr(inference, "DEFAULT_MODEL", tmp_path / "weights" / "default.safetensors")
    with pytest.raises(CheckpointError, match="default model is not bundled.*pass the path") as err:
        Inpainter.from_pretrained()
    assert "\n" not in str(err.value)


def test_default_model_is_loaded_when_bundled(monkeypatch, tmp_path, tiny_model):
    path = tmp_path / "default.safetensors"
    save_model(tiny_model, path, metadata={"working_size": 256})
    monkeypatch.setattr(inference, "DEFAULT_MODEL", path)
    info = Inpainter.from_pretrained(device="cpu").describe()
    assert info["name"] == "default" and info["source"] == str(path)
    assert info["working_size"] == 256
    assert info["config"]["width"] == 0.125
    assert (info["device"], info["precision"], info["engine"]) == ("cpu", "fp32", "torch")


def test_all_weight_formats_give_the_same_result(tmp_path, tiny_model, photo_256, hole_256):
    save_model(tiny_model, tmp_path / "m.safetensors")
    save_released(tiny_model, tmp_path / "model_places2.pth")
    checkpoint = {
        "state_dict": {f"model.{k}": v for k, v in tiny_model.state_dict().items()},
        "dfnet_config": tiny_model.config.to_dict(),
    }
    torch.save(checkpoint, tmp_path / "last.ckpt")
    results = [
        Inpainter.from_pretrained(tmp_path / name, device="cpu").inpaint(photo_256, hole_256).astype(int)
        for name in ("m.safetensors", "model_places2.pth", "last.ckpt")
    ]
    assert np.abs(results[0] - results[1]).max() <= 1
    assert np.array_equal(results[0], results[2])


def test_working_size_from_metadata_or_name(tmp_path, tiny_model):
    save_released(tiny_model, tmp_path / "model_celeba.pth")
    save_model(tiny_model, tmp_path / "plain.safetensors")
    assert Inpainter.from_pretrained(tmp_path / "model_celeba.pth", device="cpu").working_size == 256
    assert Inpainter.from_pretrained(tmp_path / "plain.safetensors", device="cpu").working_size == 512
    override = Inpainter.from_pretrained(tmp_path / "plain.safetensors", device="cpu", working_size=384)
    assert override.describe()["working_size"] == 384


def test_bad_arguments_are_value_errors(tmp_path, tiny_model):
    save_model(tiny_model, tmp_path / "m.safetensors")
    with pytest.raises(ValueError, match="precision must be one of"):
        Inpainter.from_pretrained(tmp_path / "m.safetensors", device="cpu", precision="fp8")
    with pytest.raises(ValueError, match="engine must be one of"):
        Inpainter.from_pretrained(tmp_path / "m.safetensors", engine="tensorrt")
    with pytest.raises(CheckpointError, match="engine='onnxruntime'"):
        Inpainter.from_pretrained(tmp_path / "x.onnx")
    with pytest.raises(CheckpointError, match="runs an exported .onnx file"):
        Inpainter.from_pretrained(tmp_path / "m.safetensors", engine="onnxruntime")
    with pytest.raises(ValueError, match="CPU only"):
        Inpainter.from_pretrained(tmp_path / "m.safetensors", engine="onnxruntime", device="cuda")


def test_precision_resolution():
    assert resolve_precision("auto", torch.device("cpu")) == "fp32"
    assert resolve_precision("auto", torch.device("cuda")) == "fp16"
    assert resolve_precision("bf16", torch.device("cpu")) == "bf16"


# ---------------------------------------------------------------------------------------------
# Kinds in, same kind out
# ---------------------------------------------------------------------------------------------
def test_numpy_in_numpy_out_with_details(inpainter, odd_case):
    rgb, hole = odd_case
    done = inpainter.inpaint(rgb, hole, strategy="original", return_details=True)
    assert isinstance(done, Completion)
    for array in (done.result, done.raw, done.alpha):
        assert isinstance(array, np.ndarray) and array.shape == rgb.shape and array.dtype == np.uint8
    assert known_equal(done.result, rgb, hole)
    assert not np.array_equal(done.result[hole], rgb[hole])
    assert not np.array_equal(done.raw[~hole], rgb[~hole])  # raw is the network's, not the composite


def test_pil_and_path_give_pil_and_match_numpy(inpainter, photo_256, hole_256, tmp_path):
    Image.fromarray(photo_256).save(tmp_path / "img.png")
    Image.fromarray(hole_256.astype(np.uint8) * 255).save(tmp_path / "mask.png")
    from_numpy = inpainter.inpaint(photo_256, hole_256)
    from_pil = inpainter.inpaint(Image.fromarray(photo_256), Image.fromarray(hole_256.astype(np.uint8) * 255))
    from_path = inpainter.inpaint(tmp_path / "img.png", str(tmp_path / "mask.png"), return_details=True)
    assert isinstance(from_pil, Image.Image) and from_pil.size == (256, 256)
    assert isinstance(from_path.result, Image.Image) and isinstance(from_path.alpha, Image.Image)
    assert np.array_equal(np.asarray(from_pil), from_numpy)
    assert np.array_equal(np.asarray(from_path.result), from_numpy)
    assert known_equal(from_numpy, photo_256, hole_256)


def test_mask_kinds_agree(inpainter, photo_256, hole_256):
    expected = inpainter.inpaint(photo_256, hole_256.astype(np.uint8) * 255)
    for mask in (hole_256.astype(np.uint8), Image.fromarray(hole_256)):
        assert np.array_equal(inpainter.inpaint(photo_256, mask), expected)


def test_alpha_channel_is_passed_through(inpainter, photo_256, hole_256):
    alpha = np.tile(np.arange(256, dtype=np.uint8), (256, 1))
    rgba = np.dstack([photo_256, alpha])
    out_np = inpainter.inpaint(rgba, hole_256)
    out_pil = inpainter.inpaint(Image.fromarray(rgba, "RGBA"), hole_256)
    assert out_np.shape == (256, 256, 4) and np.array_equal(out_np[:, :, 3], alpha)
    assert out_pil.mode == "RGBA" and np.array_equal(np.asarray(out_pil)[:, :, 3], alpha)
    assert known_equal(out_np, photo_256, hole_256)


def test_mask_size_mismatch_names_both_sizes(inpainter, photo_256):
    with pytest.raises(ValueError, match=r"mask size 200x100 differs from image size 256x256"):
        inpainter.inpaint(photo_256, np.zeros((100, 200), dtype=bool))


def test_empty_mask_returns_the_input(inpainter, photo_256):
    done = inpainter.inpaint(photo_256, np.zeros((256, 256), dtype=bool), return_details=True)
    assert np.array_equal(done.result, photo_256) and np.array_equal(done.raw, photo_256)
    assert not done.alpha.any()


# ---------------------------------------------------------------------------------------------
# Sizes and strategies with the real (tiny) network
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("strategy", ["original", "resize", "crop", "auto"])
@pytest.mark.parametrize("size", [(300, 517), (1, 1), (7, 5)])
def test_every_strategy_on_odd_and_tiny_sizes(inpainter, strategy, size):
    height, width = size
    rng = np.random.default_rng(height * width)
    rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    hole = np.zeros((height, width), dtype=bool)
    hole[height // 2, width // 2] = True  # a 1-pixel hole (the whole image when 1x1)
    hole[0, :] = True  # touching the border
    done = inpainter.inpaint(
        rgb,
        hole,
        strategy=strategy,
        return_details=True,
        **({"max_side": 128} if strategy == "resize" else {}),
    )
    assert done.result.shape == done.raw.shape == done.alpha.shape == rgb.shape
    assert known_equal(done.result, rgb, hole)


def test_resize_runs_the_network_below_the_limit(inpainter, odd_case, monkeypatch):
    rgb, hole = odd_case
    shapes = []
    run = inpainter._run
    monkeypatch.setattr(inpainter, "_run", lambda i, h, d: shapes.append(i.shape) or run(i, h, d))
    done = inpainter.inpaint(rgb, hole, strategy="resize", max_side=256)
    assert shapes == [(1, 256, 256, 3)]  # 149x256 padded to 256x256
    assert known_equal(done, rgb, hole)


def test_large_image_is_processed_window_by_window(inpainter, monkeypatch):
    rgb = np.full((2000, 3000, 3), 90, dtype=np.uint8)
    rgb[:, :, 1] = np.linspace(0, 255, 3000, dtype=np.uint8)
    hole = np.zeros((2000, 3000), dtype=bool)
    hole[100:140, 200:260] = True
    hole[1500:1900, 2000:2100] = True  # 400 px tall: an 800 px window shrunk to 256
    hole[1999, 0:3] = True  # on the border
    shapes = []
    run = inpainter._run
    monkeypatch.setattr(inpainter, "_run", lambda i, h, d: shapes.append(i.shape) or run(i, h, d))
    done = inpainter.inpaint(Image.fromarray(rgb), hole)  # auto -> crop above 1024 px
    assert all(s[1] * s[2] <= 256 * 256 for s in shapes) and len(shapes) == 3
    assert known_equal(done, rgb, hole)


LARGE_PHOTO_SCRIPT = """
import resource, sys
import numpy as np, torch
from dfnet.inference import Inpainter
from dfnet.model import DFNet, DFNetConfig
torch.set_num_threads(2)
inpainter = Inpainter(DFNet(DFNetConfig(width=0.125)).eval(), device="cpu")
rgb = np.random.default_rng(0).integers(0, 256, (4000, 6000, 3), dtype=np.uint8)
hole = np.zeros((4000, 6000), dtype=bool)
for y, x in [(300, 400), (2000, 3000), (3900, 5900), (1000, 5000)]:
    hole[y : y + 80, x : x + 100] = True
done = inpainter.inpaint(rgb, hole)
assert done.shape == rgb.shape and np.array_equal(done[~hole], rgb[~hole])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)

"""


@pytest.mark.slow
def test_6000x4000_photo_with_a_few_holes_stays_small():
    """In a fresh process: peak memory well below what whole-image processing would need."""
    proc = subprocess.run(
        [sys.executable, "-c", LARGE_PHOTO_SCRIPT], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    peak_mib = int(proc.stdout.split()[-1])
    assert peak_mib < 2048  # torch itself ~400 MiB, the image and result ~150 MiB


# ---------------------------------------------------------------------------------------------
# Batching, precision, ONNX engine, panels
# ---------------------------------------------------------------------------------------------
def test_batch_matches_single_images(inpainter, photo_256, hole_256):
    others = [np.roll(photo_256, 40 * k, axis=1) for k in range(3)]  # batches of 2 and 1
    batched = inpainter.inpaint_batch(others, hole_256, batch_size=2)
    for image, result in zip(others, batched, strict=True):
        assert np.abs(result.astype(int) - inpainter.inpaint(image, hole_256)).max() <= 1
    with pytest.raises(ValueError, match="one size"):
        inpainter.inpaint_batch([photo_256, photo_256[:100]], [hole_256, hole_256[:100]])


def test_bf16_autocast_on_cpu_keeps_known_pixels(tiny_model, photo_256, hole_256):
    fp32 = Inpainter(tiny_model, device="cpu", precision="fp32").inpaint(photo_256, hole_256)
    bf16 = Inpainter(tiny_model, device="cpu", precision="bf16").inpaint(photo_256, hole_256)
    assert known_equal(bf16, photo_256, hole_256)
    assert np.abs(bf16.astype(int) - fp32)[hole_256].mean() < 8


def test_onnxruntime_engine_matches_torch(tmp_path, tiny_model, photo_256, hole_256):
    from dfnet.onnx_export import export_onnx

    export_onnx(tiny_model, tmp_path / "m.onnx", size=256, working_size=256)
    ort_inpainter = Inpainter.from_pretrained(tmp_path / "m.onnx", engine="onnxruntime")
    info = ort_inpainter.describe()
    assert (
        info["engine"] == "onnxruntime" and info["config"]["width"] == 0.125 and info["working_size"] == 256
    )
    rgb, hole = photo_256[:200, :230], hole_256[:200, :230]
    expected = Inpainter(tiny_model, device="cpu").inpaint(rgb, hole)
    assert np.abs(ort_inpainter.inpaint(rgb, hole).astype(int) - expected).max() <= 1
    with pytest.raises(ValueError, match="only the result"):
        ort_inpainter.inpaint(rgb, hole, return_details=True)


@pytest.mark.parametrize("fusion", ["learned", "mask"])
def test_optimized_engine_matches_eager(tmp_path, fusion, photo_256, hole_256):
    torch.manual_seed(0)
    model = randomize_batchnorm(DFNet(DFNetConfig(width=0.125, fusion=fusion))).eval()
    save_model(model, tmp_path / "m.safetensors")
    fast = Inpainter.from_pretrained(
        tmp_path / "m.safetensors", device="cpu", engine="optimized", precision="fp32"
    )
    assert fast.describe()["engine"] == "optimized"
    rgb, hole = photo_256[:200, :230], hole_256[:200, :230]
    expected = Inpainter(model, device="cpu").inpaint(rgb, hole, return_details=True)
    got = fast.inpaint(rgb, hole, return_details=True)
    for name in ("result", "raw", "alpha"):  # uint8 outputs: at most one level of rounding apart
        assert np.abs(getattr(got, name).astype(int) - getattr(expected, name)).max() <= 1, name
    assert known_equal(got.result, rgb, hole)


def test_merge_panels_by_hand():
    rgb = np.zeros((2, 2, 3), dtype=np.uint8)
    hole = np.array([[True, False], [False, False]])
    filled = np.full((2, 2, 3), 9, dtype=np.uint8)
    panels = merge_panels(rgb, hole, Completion(filled, filled + 1, filled + 2))
    assert panels.shape == (2, 8, 3)
    assert panels[0, 0, 0] == 255 and panels[1, 1, 0] == 0  # holes shown white
    assert [panels[0, 2, 0], panels[0, 4, 0], panels[0, 6, 0]] == [10, 11, 9]


def test_bundled_default_model_inpaints_the_example():
    """The shipped model loads offline, is small fp16 safetensors, and fills only the hole of the example."""
    from dfnet.inference import DEFAULT_MODEL, working_size_of

    assert DEFAULT_MODEL.stat().st_size < 40 * 2**20
    assert working_size_of(DEFAULT_MODEL) == 256
    inpainter = Inpainter.from_pretrained("default", device="cpu")
    assert inpainter.describe()["name"] == "default"
    photo = np.asarray(Image.open("examples/photo.png").convert("RGB"))
    hole = np.asarray(Image.open("examples/mask.png").convert("L")) > 127
    result = inpainter.inpaint(photo, hole)
    assert np.array_equal(result[~hole], photo[~hole])
    assert np.abs(result[hole].astype(int) - photo[hole].astype(int)).mean() < 60  # a fill, not noise


# ---------------------------------------------------------------------------------------------
# Exemplar detail (texture)
# ---------------------------------------------------------------------------------------------
def test_texture_auto_is_on_for_the_bundled_model_only(monkeypatch, tmp_path, tiny_model):
    path = tmp_path / "default.safetensors"
    save_model(tiny_model, path, metadata={"working_size": 256})
    monkeypatch.setattr(inference, "DEFAULT_MODEL", path)
    bundled = Inpainter.from_pretrained(device="cpu")
    assert bundled.texture == ExemplarDetail() and bundled.describe()["texture"]["strength"] == 1.0
    same_file_by_path = Inpainter.from_pretrained(path, device="cpu")  # a checkpoint: its own output
    assert same_file_by_path.texture is None and same_file_by_path.describe()["texture"] is None
    assert Inpainter.from_pretrained(device="cpu", texture=0).texture is None
    assert Inpainter.from_pretrained(path, device="cpu", texture=0.5).texture == ExemplarDetail(strength=0.5)


def test_texture_presets_apply_to_any_model():
    assert resolve_texture("fine", bundled=False) == ExemplarDetail()
    assert resolve_texture("coarse", bundled=False) == ExemplarDetail(sigma=4.0)
    assert resolve_texture("auto", bundled=True) == resolve_texture("fine", bundled=True)
    assert resolve_texture("auto", bundled=False) is None


def test_add_texture_takes_a_preset_per_call(tiny_model, photo_256, hole_256):
    plain = Inpainter(tiny_model, device="cpu")
    fine = plain.inpaint(photo_256, hole_256, add_texture="fine")
    assert np.array_equal(
        fine, Inpainter(tiny_model, device="cpu", texture=ExemplarDetail()).inpaint(photo_256, hole_256)
    )
    assert np.array_equal(
        plain.inpaint(photo_256, hole_256, add_texture=True), plain.inpaint(photo_256, hole_256)
    )
    assert not np.array_equal(fine, plain.inpaint(photo_256, hole_256))
    with pytest.raises(ValueError, match="add_texture"):
        plain.inpaint(photo_256, hole_256, add_texture="rough")


@pytest.mark.parametrize("bad", ["on", "Fine", True, 3.0, [1]])
def test_bad_texture_values_are_refused(bad):
    with pytest.raises(ValueError, match="texture|exemplar"):
        resolve_texture(bad, bundled=True)


def test_texture_changes_only_hole_pixels(tiny_model):
    rng = np.random.default_rng(5)
    rgb = np.clip(120 + rng.normal(0, 30, (64, 80, 3)), 0, 255).astype(np.uint8)  # noisy: detail to copy
    hole = np.zeros((64, 80), bool)
    hole[20:44, 30:60] = True
    plain = Inpainter(tiny_model, device="cpu", working_size=256).inpaint(rgb, hole, strategy="original")
    textured = Inpainter(tiny_model, device="cpu", working_size=256, texture=ExemplarDetail())
    detailed = textured.inpaint(rgb, hole, strategy="original")
    assert np.array_equal(detailed[~hole], rgb[~hole])
    assert np.array_equal(
        detailed, add_exemplar_detail(rgb, hole, plain, ExemplarDetail())
    )  # the network's result, then the detail
    assert not np.array_equal(detailed[hole], plain[hole])
    # add_texture=False: this call gets the network's own completion, the next one the detail again
    assert np.array_equal(textured.inpaint(rgb, hole, strategy="original", add_texture=False), plain)
    assert np.array_equal(textured.inpaint_batch([rgb], hole, strategy="original")[0], detailed)


# ---------------------------------------------------------------------------------------------
# Cancellation
# ---------------------------------------------------------------------------------------------
def counting_network_calls(inpainter: Inpainter, after_call=None) -> list[int]:
    """Wrap the model's engine: count its calls (one per batch chunk) and run ``after_call`` after each."""
    calls: list[int] = []
    engine = inpainter._run

    def counted(images, holes, details):
        calls.append(len(images))
        filled = engine(images, holes, details)
        if after_call is not None:
            after_call()
        return filled

    inpainter._run = counted
    return calls


def test_a_set_cancel_stops_before_the_network_runs(tiny_model, photo_256, hole_256):
    inpainter = Inpainter(tiny_model, device="cpu")
    calls = counting_network_calls(inpainter)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(InpaintCancelled):
        inpainter.inpaint(photo_256, hole_256, cancel=cancel)
    assert calls == []
    assert inpainter.inpaint(photo_256, hole_256, cancel=threading.Event()).shape == photo_256.shape


def test_cancel_stops_between_chunks_and_before_the_texture(tiny_model, photo_256, hole_256, monkeypatch):
    cancel = threading.Event()
    inpainter = Inpainter(tiny_model, device="cpu", texture=ExemplarDetail())
    calls = counting_network_calls(inpainter, after_call=cancel.set)  # the caller gives up during call 1
    with pytest.raises(InpaintCancelled):
        inpainter.inpaint_batch([photo_256] * 3, hole_256, batch_size=1, cancel=cancel)
    assert calls == [1]  # chunks 2 and 3 never ran

    detail_steps: list[int] = []
    monkeypatch.setattr(inference, "add_exemplar_detail_batch", lambda *a: detail_steps.append(1) or a[2])
    cancel.clear()
    with pytest.raises(InpaintCancelled):
        inpainter.inpaint(photo_256, hole_256, cancel=cancel)  # the network ran, then cancel was set
    assert detail_steps == []


def centred_scene(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """A textured picture whose content is a function of the offset from its centre, with three holes at
    fixed offsets (one large enough to be shrunk for the network, so the seam is matched): the same
    surroundings and holes at any picture size."""
    y, x = np.mgrid[0:height, 0:width]
    y, x = y - height // 2, x - width // 2
    grain = ((x * 7919 + y * 104729) % 61).astype(np.float32)
    rgb = np.stack([120 + 50 * np.sin(x / 23.0), 110 + 40 * np.cos(y / 17.0), 90 + grain], axis=2)
    hole = np.zeros((height, width), bool)
    for dy, dx, side in ((-300, -400, 40), (0, 0, 200), (250, 350, 24)):
        hole[height // 2 + dy : height // 2 + dy + side, width // 2 + dx : width // 2 + dx + side] = True
    return np.clip(rgb, 0, 255).astype(np.uint8), hole


def test_work_after_decoding_does_not_grow_with_the_picture(tiny_model, monkeypatch):
    """The same holes in a picture four times as large: every step after decoding (network, seam matching,
    exemplar detail) gets arrays of the same sizes, and the holes get the same pixels."""
    from dfnet import exemplar, strategies

    seen: list[tuple[str, tuple[int, ...]]] = []

    def recording(name, fn):
        def record(*arrays, **options):
            seen.append((name, tuple(a.shape for a in arrays if isinstance(a, np.ndarray))))
            return fn(*arrays, **options)

        return record

    monkeypatch.setattr(strategies, "seam_shift", recording("seam", strategies.seam_shift))
    monkeypatch.setattr(exemplar, "exemplar_detail_band", recording("detail", exemplar.exemplar_detail_band))
    inpainter = Inpainter(tiny_model, device="cpu", working_size=256, texture=ExemplarDetail())
    inpainter._run = recording("network", inpainter._run)
    results, logs = [], []
    for height, width in ((1100, 1500), (2200, 3000)):
        rgb, hole = centred_scene(height, width)
        seen.clear()
        result = inpainter.inpaint(rgb, hole)
        assert np.array_equal(result[~hole], rgb[~hole])
        around = (slice(height // 2 - 320, height // 2 + 300), slice(width // 2 - 420, width // 2 + 400))
        results.append(result[around])
        logs.append(list(seen))
    assert {name for name, _ in logs[0]} == {"network", "seam", "detail"}
    assert logs[0] == logs[1]  # the same steps on arrays of the same sizes
    assert max(max(s[1:3]) if len(s) == 4 else max(s[:2]) for _, shapes in logs[0] for s in shapes) <= 512
    assert np.array_equal(results[0], results[1])  # and the same pixels in and around the holes


def test_auto_precision_of_the_optimized_cpu_engine_follows_the_cpu_flags(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(inference, "onnxruntime_available", lambda: True)
    for flags, expected in (
        ({"avx512f", "avx512_vnni"}, "int8"),
        ({"avx2", "fma"}, "int8"),
        ({"sse4_2"}, "fp32"),
    ):
        monkeypatch.setattr(inference, "cpu_flags", lambda flags=flags: frozenset(flags))
        assert resolve_precision("auto", cpu, optimized=True) == expected
        assert resolve_precision("auto", cpu) == "fp32"  # the eager engine stays exact
    monkeypatch.setattr(inference, "onnxruntime_available", lambda: False)
    assert resolve_precision("auto", cpu, optimized=True) == "fp32"
    with pytest.raises(ValueError, match="int8 needs"):
        resolve_precision("int8", cpu)
    with pytest.raises(ValueError, match="int8 needs"):
        resolve_precision("int8", torch.device("cuda"), optimized=True)


@pytest.mark.skipif(not inference.onnxruntime_available(), reason="needs onnxruntime")
def test_int8_keeps_known_pixels_and_stays_close_to_fp32(tmp_path, photo_256, hole_256):
    torch.manual_seed(0)
    save_model(randomize_batchnorm(DFNet(DFNetConfig(width=0.125))).eval(), tmp_path / "m.safetensors")
    results = {}
    for precision in ("fp32", "int8"):
        model = Inpainter.from_pretrained(tmp_path / "m.safetensors", "cpu", precision, engine="optimized")
        assert model.describe()["precision"] == precision
        results[precision] = model.inpaint(photo_256, hole_256)
    assert known_equal(results["int8"], photo_256, hole_256)
    difference = np.abs(results["int8"].astype(int) - results["fp32"])[hole_256]
    assert 0 < difference.mean() < 8  # quantised (not the fp32 graph), yet the same completion
