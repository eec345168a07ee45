"""Bad input at every entry point: the library, the command line and the web server.

Each case gets a one-line, specific error or a documented correct result, never a crash
(docs/reliability.md lists them). Cases already proven elsewhere are not repeated here:
test_imageio (EXIF orientation of PNGs, 16-bit grey, palette with transparency, grey-level threshold),
test_inference (1x1 / 7x5 / odd sizes through every strategy, mask size mismatch, empty mask),
test_checkpoint (raw malicious pickle, NaN, other architecture, garbage), test_cli (mask size mismatch,
mostly-hole warning, folders with failures) and test_web (empty, truncated PNG, non-image, size mismatch,
empty mask, byte and pixel limits, malformed multipart, arbitrary bytes, log content on success).
"""

from __future__ import annotations

import contextlib
import gc
import io
import logging
import os
import pickle
import re
import select
import socket
import struct
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from helpers import encode, handmade_png, live_server, png_declaring
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from load_test import source_address  # benchmarks/ is on sys.path (conftest.py)
from PIL import Image
from safetensors.torch import save_file

from dfnet.checkpoint import CheckpointError, load_model, save_model
from dfnet.cli import main
from dfnet.imageio import ImageLoadError, load_image, load_mask
from dfnet.inference import InpaintCancelled, Inpainter
from dfnet.model import DFNet, DFNetConfig
from dfnet.web import ServerSettings, create_app

MARKER = Path("/tmp/dfnet-reliability-pwned")


# ---------------------------------------------------------------------------------------------
# Building the inputs
# ---------------------------------------------------------------------------------------------
def png16_rgb(rgb16: np.ndarray) -> bytes:
    """A 16-bit-per-channel RGB PNG of a uint16 (H, W, 3) array."""
    rows = b"".join(b"\0" + row.astype(">u2").tobytes() for row in rgb16)
    return handmade_png(rgb16.shape[1], rgb16.shape[0], 16, 2, rows)


def jpeg_declaring(width: int, height: int) -> bytes:
    """A small JPEG whose frame header is patched to declare ``width`` x ``height``."""
    data = bytearray(encode(np.full((16, 16, 3), 90, np.uint8), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def picture(height: int = 48, width: int = 64, seed: int = 0) -> np.ndarray:
    """Smooth colours plus noise, uint8 (H, W, 3)."""
    y, x = np.mgrid[0:height, 0:width]
    noise = np.random.default_rng(seed).integers(0, 30, (height, width, 3))
    return np.clip(np.stack([x * 3, y * 4, (x + y) * 2], axis=2) + noise, 0, 255).astype(np.uint8)


def hole_rect(height: int, width: int) -> np.ndarray:
    hole = np.zeros((height, width), bool)
    hole[height // 4 : height // 2 + 1, width // 4 : width // 2 + 1] = True
    return hole


def mask_bytes(hole: np.ndarray) -> bytes:
    return encode(hole.astype(np.uint8) * 255, "PNG")


def truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


# Files that must be refused: (bytes, suffix, phrase of the library/CLI message, HTTP status).
BAD_IMAGES: dict[str, tuple[Callable[[], bytes], str, str, int]] = {
    "zero_byte": (lambda: b"", ".png", r"empty file \(0 bytes\)", 400),
    "not_an_image": (lambda: b"%PDF-1.4 this is a document, not a picture", ".jpg", "not a recognised image", 415),
    "truncated_png": (lambda: truncated(encode(picture(), "PNG")), ".png", "(?i)truncated", 400),
    "truncated_jpeg": (lambda: truncated(encode(picture(), "JPEG")), ".jpg", "(?i)truncated", 400),
    "decompression_bomb": (lambda: png_declaring(200_000, 200_000), ".png", "decompression bomb", 413),
    "jpeg_20000x20000": (lambda: jpeg_declaring(20_000, 20_000), ".jpg", "decompression bomb", 413),
}  # fmt: skip


# Unusual but valid images: (encoded bytes, suffix, expected RGB after loading, expected alpha or None).
def _odd_images() -> dict[str, tuple[bytes, str, np.ndarray, np.ndarray | None]]:
    rgb = picture()
    gray = rgb[:, :, 1]
    deep = rgb.astype(np.uint16) * 257 + 3  # the high byte of every 16-bit sample is the 8-bit value
    palette = Image.fromarray(rgb).quantize(colors=16)
    rgba = np.dstack([rgb, np.linspace(0, 255, 64, dtype=np.uint8)[None, :].repeat(48, 0)])
    cmyk = Image.fromarray(rgb).convert("CMYK")
    cmyk_bytes = encode(cmyk, "JPEG", quality=100)
    return {
        "png_16bit_rgb": (png16_rgb(deep), ".png", rgb, None),
        "grayscale_png": (encode(gray, "PNG"), ".png", np.dstack([gray] * 3), None),
        "palette_png": (encode(palette, "PNG"), ".png", np.asarray(palette.convert("RGB")), None),
        "cmyk_jpeg": (cmyk_bytes, ".jpg", np.asarray(Image.open(io.BytesIO(cmyk_bytes)).convert("RGB")), None),
        "rgba_png": (encode(rgba, "PNG"), ".png", rgb, rgba[:, :, 3]),
        "tiny_1x1": (encode(rgb[:1, :1], "PNG"), ".png", rgb[:1, :1], None),
        "tiny_7x5": (encode(rgb[:5, :7], "PNG"), ".png", rgb[:5, :7], None),
    }  # fmt: skip


ODD_IMAGES = _odd_images()


def grey_level_mask(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """A mask picture of grey bands 0, 100, 127, 128, 200, 255 and the hole it means (> 127)."""
    levels = np.array([0, 100, 127, 128, 200, 255], np.uint8)
    grey = levels[(np.arange(width) * len(levels)) // width][None, :].repeat(height, 0)
    return grey, grey > 127


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    save_model(DFNet(DFNetConfig(width=0.125)).eval(), path, metadata={"working_size": 256})
    return path


@pytest.fixture(scope="module")
def inpainter(model_file) -> Inpainter:
    return Inpainter.from_pretrained(model_file, device="cpu")


@pytest.fixture(scope="module")
def client(inpainter):
    with TestClient(create_app(inpainter, ServerSettings(max_upload_bytes=4 * 1024 * 1024))) as test_client:
        yield test_client


def post(client: TestClient, image: bytes, mask: bytes, **fields: str):
    files = {"image": ("upload", image, "image/png"), "mask": ("mask.png", mask, "image/png")}
    return client.post("/api/inpaint", files=files, data=fields)


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def assert_failure_names(err: str, path: Path, pattern: str) -> None:
    """stderr lists the failed file with a reason matching ``pattern`` on one line, no traceback."""
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if str(path) in line]
    assert len(lines) == 1 and re.search(pattern, lines[0]), err


# ---------------------------------------------------------------------------------------------
# Image files that must be refused
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", sorted(BAD_IMAGES))
def test_bad_image_is_a_one_line_error_in_library_cli_and_server(
    case, tmp_path, capsys, inpainter, client, model_file
):
    build, suffix, phrase, status = BAD_IMAGES[case]
    data = build()
    path = tmp_path / f"input{suffix}"
    path.write_bytes(data)
    mask = tmp_path / "mask.png"
    mask.write_bytes(mask_bytes(hole_rect(48, 64)))

    with pytest.raises(ImageLoadError, match=phrase) as info:  # library: loading and inpainting
        load_image(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)
    with pytest.raises(ImageLoadError, match=phrase):
        inpainter.inpaint(path, mask)
    with pytest.raises(ImageLoadError, match=phrase):
        load_mask(path)  # the same file given as a mask

    out = tmp_path / "out.png"  # command line: exit 1, the file and the reason on stderr, nothing written
    code, _, err = run_cli(capsys, "inpaint", path, mask, "-o", out, "--model", model_file, "--no-progress")
    assert code == 1 and not out.exists()
    assert_failure_names(err, path, phrase)

    response = post(client, data, mask_bytes(hole_rect(48, 64)))  # server: the right 4xx, one-line detail
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    print(case, status, detail)
    assert "\n" not in detail


def test_pixel_limit_is_configurable_and_governs_below_the_decoders_limit(tmp_path, capsys, model_file):
    path = tmp_path / "big.png"
    path.write_bytes(png_declaring(9500, 9500))  # 90 M pixels: over Pillow's warning level, under ours
    with pytest.raises(ImageLoadError, match="9500x9500 = 90,250,000 pixels, over the limit of 80,000,000"):
        load_image(path, max_pixels=80_000_000)
    small = tmp_path / "small.png"
    small.write_bytes(encode(picture(), "PNG"))
    mask = tmp_path / "mask.png"
    mask.write_bytes(mask_bytes(hole_rect(48, 64)))
    code, _, err = run_cli(
        capsys,
        "inpaint",
        small,
        mask,
        "-o",
        tmp_path / "o.png",
        "--model",
        model_file,
        "--max-pixels",
        "1000",
    )
    assert code == 1 and "64x48 = 3,072 pixels, over the limit of 1,000" in err
    with pytest.raises(SystemExit) as info:
        main(["inpaint", str(small), str(mask), "-o", str(tmp_path / "o.png"), "--max-pixels", "0"])
    assert (
        info.value.code == 2
        and "argument --max-pixels: must be in 1..2,147,483,647, got 0" in capsys.readouterr().err
    )


def test_fifo_and_broken_link_are_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)  # opening it for reading would wait forever for a writer
    link = tmp_path / "gone.png"
    link.symlink_to(tmp_path / "nowhere.png")
    with pytest.raises(ImageLoadError, match="not a regular file"):
        load_image(fifo)
    with pytest.raises(ImageLoadError, match="no such file"):
        load_image(link)


# ---------------------------------------------------------------------------------------------
# Unusual images that must work
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", sorted(ODD_IMAGES))
def test_odd_formats_load_and_inpaint_keeping_known_pixels(case, inpainter):
    data, _, expected_rgb, expected_alpha = ODD_IMAGES[case]
    loaded = load_image(data)
    assert np.array_equal(loaded.rgb, expected_rgb)
    assert (loaded.alpha is None) == (expected_alpha is None)
    if expected_alpha is not None:
        assert np.array_equal(loaded.alpha, expected_alpha)
    height, width = expected_rgb.shape[:2]
    hole = np.zeros((height, width), bool)
    hole[height // 2, width // 2] = True  # one hole pixel even at 1x1
    result = inpainter.inpaint(data, hole)
    assert result.size == (width, height) and result.mode == ("RGBA" if expected_alpha is not None else "RGB")
    array = np.asarray(result)
    assert np.array_equal(array[:, :, :3][~hole], expected_rgb[~hole])


def test_odd_formats_through_the_command_line_folder_mode(tmp_path, capsys, model_file):
    images, masks, out = tmp_path / "images", tmp_path / "masks", tmp_path / "out"
    images.mkdir(), masks.mkdir()
    for name, (data, suffix, rgb, _) in ODD_IMAGES.items():
        (images / f"{name}{suffix}").write_bytes(data)
        hole = np.zeros(rgb.shape[:2], bool)
        hole[rgb.shape[0] // 2, rgb.shape[1] // 2] = True
        (masks / f"{name}.png").write_bytes(mask_bytes(hole))
    code, stdout, err = run_cli(
        capsys, "inpaint", images, masks, "-o", out, "--model", model_file, "--no-progress"
    )
    assert code == 0, err
    assert f"inpainted {len(ODD_IMAGES)} of {len(ODD_IMAGES)} images" in stdout
    for name, (_, suffix, rgb, alpha) in ODD_IMAGES.items():
        written = Image.open(out / f"{name}{suffix}")
        assert written.size == (rgb.shape[1], rgb.shape[0])
        assert (written.mode == "RGBA") == (alpha is not None)
        if suffix == ".png":  # lossless: known pixels are exactly the loaded ones
            hole = np.asarray(Image.open(masks / f"{name}.png")) > 127
            assert np.array_equal(np.asarray(written)[:, :, :3][~hole], rgb[~hole])


@pytest.mark.parametrize("case", sorted(ODD_IMAGES))
def test_odd_formats_through_the_server(case, client):
    data, _, rgb, alpha = ODD_IMAGES[case]
    hole = np.zeros(rgb.shape[:2], bool)
    hole[rgb.shape[0] // 2, rgb.shape[1] // 2] = True
    response = post(client, data, mask_bytes(hole))
    assert response.status_code == 200, response.text
    result = np.asarray(Image.open(io.BytesIO(response.content)))
    assert result.shape[:2] == rgb.shape[:2]
    assert np.array_equal(result[:, :, :3][~hole], rgb[~hole])
    if alpha is not None:
        assert np.array_equal(result[:, :, 3], alpha)


def test_exif_rotated_jpeg_is_upright_for_the_server(client):
    stored = picture(32, 48)
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated 90 degrees clockwise: 32 wide, 48 high
    data = encode(stored, "JPEG", quality=95, exif=exif.tobytes())
    upright = load_image(data).rgb
    assert upright.shape == (48, 32, 3)
    wrong = post(client, data, mask_bytes(hole_rect(32, 48)))  # a mask drawn on the stored pixels
    assert wrong.status_code == 400 and "mask is 48x32 but the image is 32x48" in wrong.json()["detail"]
    hole = hole_rect(48, 32)
    response = post(client, data, mask_bytes(hole))
    assert response.status_code == 200
    result = np.asarray(Image.open(io.BytesIO(response.content)))
    assert np.array_equal(result[~hole], upright[~hole])


# ---------------------------------------------------------------------------------------------
# Masks
# ---------------------------------------------------------------------------------------------
def test_grey_level_mask_means_hole_above_127_everywhere(tmp_path, capsys, inpainter, client, model_file):
    rgb = picture()
    grey, hole = grey_level_mask(48, 64)
    assert np.array_equal(load_mask(encode(grey, "PNG")), hole)
    library = inpainter.inpaint(rgb, encode(grey, "PNG"))
    assert np.array_equal(library[~hole], rgb[~hole]) and not np.array_equal(library[hole], rgb[hole])
    (tmp_path / "in.png").write_bytes(encode(rgb, "PNG"))
    (tmp_path / "grey.png").write_bytes(encode(grey, "PNG"))
    code, _, err = run_cli(capsys, "inpaint", tmp_path / "in.png", tmp_path / "grey.png", "-o", tmp_path / "o.png",
                           "--model", model_file, "--no-progress")  # fmt: skip
    assert code == 0, err
    assert np.array_equal(np.asarray(Image.open(tmp_path / "o.png")), library)
    response = post(client, encode(rgb, "PNG"), encode(grey, "PNG"))
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(response.content))), library)


def test_all_hole_mask_is_filled_everywhere(tmp_path, capsys, inpainter, client, model_file):
    rgb = picture()
    everything = np.ones((48, 64), bool)
    for strategy in ("original", "resize", "crop", "auto"):
        result = inpainter.inpaint(rgb, everything, strategy=strategy)
        assert result.shape == rgb.shape and result.dtype == np.uint8
        assert not np.array_equal(result, rgb)  # every pixel comes from the network
    response = post(client, encode(rgb, "PNG"), mask_bytes(everything))
    assert response.status_code == 200
    (tmp_path / "in.png").write_bytes(encode(rgb, "PNG"))
    (tmp_path / "all.png").write_bytes(mask_bytes(everything))
    code, _, err = run_cli(capsys, "inpaint", tmp_path / "in.png", tmp_path / "all.png", "-o", tmp_path / "o.png",
                           "--model", model_file, "--no-progress")  # fmt: skip
    assert code == 0 and "100% of the mask is hole; is it inverted?" in err


def test_mask_without_hole_returns_the_input_from_the_command_line(tmp_path, capsys, model_file):
    rgb = picture()
    (tmp_path / "in.png").write_bytes(encode(rgb, "PNG"))
    (tmp_path / "none.png").write_bytes(mask_bytes(np.zeros((48, 64), bool)))
    code, _, err = run_cli(capsys, "inpaint", tmp_path / "in.png", tmp_path / "none.png", "-o", tmp_path / "o.png",
                           "--model", model_file, "--no-progress")  # fmt: skip
    assert code == 0, err
    assert np.array_equal(np.asarray(Image.open(tmp_path / "o.png")), rgb)


# ---------------------------------------------------------------------------------------------
# Weight files
# ---------------------------------------------------------------------------------------------
class _Exploit:
    def __reduce__(self):
        return (os.system, (f"touch {MARKER}",))


def _weights(tmp_path: Path) -> dict[str, Path]:
    """Weight files that must be refused, each named for its flaw."""
    model = DFNet(DFNetConfig(width=0.125))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    files = {}
    nan = dict(state, **{"encoder.0.conv.conv.weight": state["encoder.0.conv.conv.weight"] * float("inf")})
    files["inf_weights"] = tmp_path / "inf.safetensors"
    save_file(nan, files["inf_weights"], metadata={"format": "dfnet", "config": '{"width": 0.125}'})
    files["bad_config"] = tmp_path / "bad_config.safetensors"
    save_file(state, files["bad_config"], metadata={"format": "dfnet", "config": "[1, 2"})
    files["other_architecture"] = tmp_path / "other.safetensors"
    save_file(state, files["other_architecture"], metadata={"config": '{"width": 0.25, "fusion": "mask"}'})
    files["pickle_exploit"] = tmp_path / "evil.pth"
    files["pickle_exploit"].write_bytes(pickle.dumps({"weight": _Exploit()}))
    files["zip_exploit"] = tmp_path / "evil_zip.pth"
    torch.save({"state_dict": {"model.x": _Exploit()}}, files["zip_exploit"])  # torch's zip format
    files["truncated_safetensors"] = tmp_path / "cut.safetensors"
    save_model(model, files["truncated_safetensors"])
    files["truncated_safetensors"].write_bytes(truncated(files["truncated_safetensors"].read_bytes()))
    return files


WEIGHT_ERRORS = {
    "inf_weights": "hold NaN or Inf",
    "bad_config": "invalid DFNet config",
    "other_architecture": "not this DFNet architecture",
    "pickle_exploit": "refused to load",
    "zip_exploit": "refused to load",
    "truncated_safetensors": "not a readable safetensors file",
}


@pytest.fixture(scope="module")
def weight_files(tmp_path_factory) -> dict[str, Path]:
    return _weights(tmp_path_factory.mktemp("weights"))


@pytest.mark.parametrize("case", sorted(WEIGHT_ERRORS))
def test_bad_weights_are_refused_by_library_and_every_command(
    case, weight_files, tmp_path, capsys, monkeypatch
):
    import uvicorn

    MARKER.unlink(missing_ok=True)
    path = weight_files[case]
    with pytest.raises(CheckpointError, match=WEIGHT_ERRORS[case]) as info:
        load_model(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)
    monkeypatch.setattr(uvicorn.Server, "run", lambda *a, **k: pytest.fail("served a refused model"))
    (tmp_path / "photos").mkdir()
    image, mask = tmp_path / "photos" / "in.png", tmp_path / "mask.png"
    image.write_bytes(encode(picture(), "PNG"))
    mask.write_bytes(mask_bytes(hole_rect(48, 64)))
    commands = {
        "inpaint": ["inpaint", image, mask, "-o", tmp_path / "o.png", "--model", path, "--no-progress"],
        "serve": ["serve", "--model", path, "--port", "0"],
        "export": ["export", "--model", path, "-o", tmp_path / "m.onnx"],
        "export-checkpoint": ["export-checkpoint", path, tmp_path / "m.safetensors"],
        "eval": ["eval", "--images", tmp_path / "photos", "--masks", mask, "--out", tmp_path / "e", "--method", "dfnet",
                 "--model", path, "--quiet"],
    }  # fmt: skip
    for name, args in commands.items():
        code, _, err = run_cli(capsys, *args)
        assert code == 1, name
        assert err.count("\n") == 1 and f"dfnet {name}: error: {path}" in err, err
        assert WEIGHT_ERRORS[case] in err
    assert not MARKER.exists()  # the pickle payload never ran


# ---------------------------------------------------------------------------------------------
# Properties: loading never fails other than with ImageLoadError, and keeps pixels exactly
# ---------------------------------------------------------------------------------------------
_SAMPLE_FILES = [encode(picture(9, 11), fmt) for fmt in ("PNG", "JPEG", "WEBP", "BMP", "TIFF", "GIF")]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    which=st.integers(0, len(_SAMPLE_FILES) - 1),
    cut=st.floats(0.0, 1.0),
    flips=st.lists(st.tuples(st.floats(0.0, 1.0), st.integers(1, 255)), max_size=4),
)
def test_damaged_files_load_or_raise_image_load_error(which, cut, flips):
    data = bytearray(_SAMPLE_FILES[which][: max(0, round(len(_SAMPLE_FILES[which]) * cut))])
    for where, value in flips:  # corrupt a few bytes anywhere, headers included
        if data:
            data[min(int(where * len(data)), len(data) - 1)] ^= value
    for loader in (load_image, load_mask):
        try:
            loaded = loader(bytes(data))
        except ImageLoadError as err:
            assert "\n" not in str(err)
            continue
        shape = loaded.rgb.shape if loader is load_image else loaded.shape
        assert 0 < shape[0] * shape[1] <= 9 * 11 * 64  # decoded, and no larger than a sane header says


@settings(max_examples=40, deadline=None)
@given(
    height=st.integers(1, 24),
    width=st.integers(1, 24),
    mode=st.sampled_from(["L", "RGB", "RGBA", "LA", "P"]),
    seed=st.integers(0, 2**16),
)
def test_lossless_files_load_to_exactly_their_pixels(height, width, mode, seed):
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    alpha = rng.integers(0, 256, (height, width), dtype=np.uint8)
    if mode == "P":
        source = Image.fromarray(rgb).quantize(colors=8)
        expected_rgb, expected_alpha = np.asarray(source.convert("RGB")), None
    else:
        channels = {
            "L": rgb[:, :, :1],
            "RGB": rgb,
            "RGBA": np.dstack([rgb, alpha]),
            "LA": np.dstack([rgb[:, :, :1], alpha]),
        }
        source = Image.fromarray(np.squeeze(channels[mode], axis=2) if mode == "L" else channels[mode], mode)
        expected_rgb = np.repeat(rgb[:, :, :1], 3, axis=2) if mode in ("L", "LA") else rgb
        expected_alpha = alpha if mode in ("RGBA", "LA") else None
    loaded = load_image(encode(source, "PNG"))
    assert np.array_equal(loaded.rgb, expected_rgb)
    assert (loaded.alpha is None) == (expected_alpha is None)
    if expected_alpha is not None:
        assert np.array_equal(loaded.alpha, expected_alpha)


@settings(max_examples=40, deadline=None)
@given(
    height=st.integers(1, 24),
    width=st.integers(1, 24),
    seed=st.integers(0, 2**16),
    size=st.tuples(st.integers(1, 40), st.integers(1, 40)),
    top=st.sampled_from([1, 100, 255]),  # 0/1 masks, faint masks (no hole) and grey masks
    factor=st.tuples(st.integers(1, 3), st.integers(1, 3)),
)
@pytest.mark.filterwarnings("ignore::dfnet.imageio.EmptyMaskWarning")
def test_mask_files_threshold_invert_and_resize(height, width, seed, size, top, factor):
    grey = np.random.default_rng(seed).integers(0, top + 1, (height, width), dtype=np.uint8)
    data = encode(grey, "PNG")
    hole = load_mask(data)
    expected = grey == 1 if grey.max() == 1 else grey > 127  # a mask whose largest value is 1 is a 0/1 mask
    assert hole.dtype == bool and np.array_equal(hole, expected)
    assert np.array_equal(load_mask(data, invert=True), ~hole)
    enlarged = load_mask(data, size=(width * factor[0], height * factor[1]))  # whole factors: exact copies
    assert np.array_equal(enlarged, np.repeat(np.repeat(hole, factor[1], axis=0), factor[0], axis=1))
    resized = load_mask(data, size=size)  # any size: each pixel comes from the source pixel under it
    assert resized.shape == (size[1], size[0])
    for r, c in np.ndindex(resized.shape):
        y, x = int((r + 0.5) * height / size[1]), int((c + 0.5) * width / size[0])
        assert resized[r, c] in hole[max(0, y - 1) : y + 2, max(0, x - 1) : x + 2]


# ---------------------------------------------------------------------------------------------
# Properties of the size strategies with structured masks (rectangles, border-touching, all hole)
# ---------------------------------------------------------------------------------------------
@st.composite
def rectangle_masks(draw) -> tuple[np.ndarray, np.ndarray]:
    """A batch of 1-3 images of one size with masks made of rectangles (possibly the whole image)."""
    height, width, count = draw(st.integers(1, 60)), draw(st.integers(1, 60)), draw(st.integers(1, 3))
    holes = np.zeros((count, height, width), bool)
    for i in range(count):
        for _ in range(draw(st.integers(0, 4))):
            y0, x0 = draw(st.integers(0, height - 1)), draw(st.integers(0, width - 1))
            y1, x1 = draw(st.integers(y0 + 1, height)), draw(st.integers(x0 + 1, width))
            holes[i, y0:y1, x0:x1] = True
    seed = draw(st.integers(0, 2**16))
    images = np.random.default_rng(seed).integers(0, 256, (count, height, width, 3), dtype=np.uint8)
    return images, holes


@settings(max_examples=40, deadline=None)
@given(case=rectangle_masks(), strategy=st.sampled_from(["original", "resize", "crop", "auto"]))
def test_strategies_keep_known_pixels_and_fill_every_hole(case, strategy):
    from dfnet.strategies import Filled, Network, run_strategy

    images, holes = case
    calls = []

    def fill(batch: np.ndarray, hole: np.ndarray, details: bool) -> Filled:
        calls.append(batch.shape)
        assert batch.shape[1] % 16 == 0 and batch.shape[2] % 16 == 0
        return Filled(np.where(hole[..., None], np.float32(0.8), batch).astype(np.float32))

    options = {"original": {}, "resize": {"max_side": 24}, "crop": {"min_window": 8}, "auto": {"trigger": 32}}
    done = run_strategy(strategy, images, holes, Network(fill, 16, 32), **options[strategy])
    assert done.result.shape == images.shape and done.result.dtype == np.uint8
    assert np.array_equal(done.result[~holes], images[~holes])
    if not holes.any():
        assert calls == []  # nothing to fill: the network is not run
    if strategy == "original":  # native resolution: the network's fill arrives unchanged
        assert np.all(done.result[holes] == 204)


# ---------------------------------------------------------------------------------------------
# The server keeps nothing of a request once it has answered, and logs no image content
# ---------------------------------------------------------------------------------------------
class RecordingInpainter:
    """Fills holes with grey and keeps only weak references to every array it saw or made."""

    def __init__(self) -> None:
        self.seen: list[weakref.ref] = []

    def inpaint(
        self, image, hole_mask, strategy="auto", return_details=False, *, add_texture=True, cancel=None
    ):
        result = np.where(hole_mask[:, :, None], np.uint8(128), image)
        self.seen += [weakref.ref(image), weakref.ref(hole_mask), weakref.ref(result)]
        return result

    def describe(self) -> dict:
        return {"name": "recording-fake"}


def test_no_request_data_or_upload_file_outlives_its_response():
    import psutil

    fake = RecordingInpainter()
    rgb = np.random.default_rng(4).integers(0, 256, (640, 640, 3), dtype=np.uint8)  # > 1 MB: spooled to disk
    image, mask = encode(rgb, "PNG"), mask_bytes(hole_rect(640, 640))
    assert len(image) > 1024 * 1024
    process = psutil.Process()
    with TestClient(create_app(fake, ServerSettings(max_upload_bytes=8 * 1024 * 1024))) as test_client:
        files_before = {f.path for f in process.open_files()}
        for _ in range(3):
            response = post(test_client, image, mask)
            assert response.status_code == 200
            assert post(test_client, image, mask_bytes(np.zeros((640, 640), bool))).status_code == 400
        del response
        gc.collect()
        assert len(fake.seen) == 9 and all(ref() is None for ref in fake.seen)  # arrays freed
        assert {f.path for f in process.open_files()} <= files_before  # spooled uploads closed
        assert test_client.get("/api/health").json()["in_flight"] == 0


def test_refusal_logs_carry_no_upload_content(client, caplog):
    secret = b"SECRET-PIXELS-" + os.urandom(16).hex().encode()
    uploads = [
        secret,  # not an image
        encode(picture(), "PNG")[:200] + secret,  # a truncated PNG carrying the secret
        png_declaring(200_000, 200_000) + secret,  # a bomb
    ]
    with caplog.at_level(logging.DEBUG):
        for data in uploads:
            response = post(client, data, mask_bytes(hole_rect(48, 64)))
            assert 400 <= response.status_code < 500
            assert secret.decode() not in response.text
            response = post(client, encode(picture(), "PNG"), data)  # the same as a mask
            assert 400 <= response.status_code < 500
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "inpaint refused" in logged
    assert secret.decode() not in logged and "SECRET" not in logged


# ---------------------------------------------------------------------------------------------
# Load: a reduced run of benchmarks/load_test.py (the full run's figures are in docs/reliability.md)
# ---------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_reduced_load_test_against_dfnet_serve(tmp_path):
    import json

    import load_test  # benchmarks/ is on sys.path (conftest.py)

    summary_path = tmp_path / "load.json"
    args = ["--clients", "20", "--requests", "100", "--time-limit", "120", "--summary", str(summary_path),
            "--slow-clients", "8", "--body-timeout", "2"]  # fmt: skip
    assert load_test.main(args) == 0
    summary = json.loads(summary_path.read_text())
    assert summary["slow_uploads"].get("408", 0) >= 8  # every slow upload was cut off at least once
    assert summary["passed"] and summary["failures"] == []
    assert summary["requests"] == 100 and summary["wrong_final_status"] == 0 and summary["client_errors"] == 0
    kinds = load_test.build_kinds(1024 * 1024)
    assert set(summary["by_kind"]) == {kind.name for kind in kinds}  # every kind was sent at least once
    for name, row in summary["by_kind"].items():
        assert row["final_statuses"] == {str(row["expected"]): row["count"]}, name
    assert summary["health_after"] == {"status": "ok", "in_flight": 0, "queue_size": 4}
    assert summary["server_rss_mb"]["growth"] < 300


# =============================================================================================
# Round two: slow clients, outputs that are inputs, faults of the file system,
# hostile metadata, 0/1 masks and bad option values. Each test failed on the code before it.
# =============================================================================================
def assert_one_line_error(err: str, command: str, *fragments: str) -> None:
    """stderr is one ``dfnet <command>: error: ...`` line holding every fragment, and no traceback."""
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"dfnet {command}: error: "), err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, err)


def files_in(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (hidden ones included) with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------------------------------------
# Slow clients: the body is read, bounded in time and per client, before a queue slot is taken
# ---------------------------------------------------------------------------------------------
def start_slow_upload(port: int, source: str, body_size: int = 4096) -> socket.socket:
    """A connection that sends the headers of a multipart upload and the first 10 bytes of its body."""
    conn = socket.create_connection(("127.0.0.1", port), timeout=15, source_address=(source, 0))
    head = (
        f"POST /api/inpaint HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=x\r\n"
        f"Content-Length: {body_size}\r\n\r\n"
    )
    conn.sendall(head.encode() + b"--x\r\nConte")
    return conn


def status_of(conn: socket.socket) -> int:
    """The status code of the answer on ``conn`` (waits for it)."""
    reply = conn.recv(4096)
    return int(reply.split(b" ", 2)[1]) if reply.startswith(b"HTTP/1.1") else 0


def post_http(port: int, image: bytes, mask: bytes) -> int:
    import httpx

    files = {"image": ("in.png", image, "image/png"), "mask": ("mask.png", mask, "image/png")}
    return httpx.post(f"http://127.0.0.1:{port}/api/inpaint", files=files, timeout=15).status_code


def test_slow_uploads_hold_no_queue_slot_and_time_out():
    sources = [source_address(3, i) for i in range(4)]
    shared = len(set(sources)) < 4  # where loopback aliases cannot be bound, every client is 127.0.0.1
    settings_ = ServerSettings(queue_size=2, body_timeout_s=4.0, requests_per_client=8 if shared else 2)
    image, mask = encode(picture(), "PNG"), mask_bytes(hole_rect(48, 64))
    with live_server(create_app(RecordingInpainter(), settings_)) as port:
        slow = [start_slow_upload(port, source) for source in sources]  # twice the queue size
        started = time.monotonic()
        try:
            time.sleep(0.3)
            statuses = [post_http(port, image, mask) for _ in range(3)]
            unanswered = select.select(slow, [], [], 0)[0] == []  # the slow uploads are still going on
            answers = [status_of(conn) for conn in slow]
            waited = time.monotonic() - started
        finally:
            for conn in slow:
                conn.close()
    assert statuses == [200, 200, 200] and unanswered  # was 503 while the slow uploads held every slot
    assert answers == [408] * 4
    assert 3.9 < waited < 12  # the body time limit, not the client, ended them


class CancellableInpainter:
    """A model that works for up to 20 s, checking its ``cancel`` event every 10 ms."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.stopped_early = threading.Event()

    def inpaint(
        self, image, hole_mask, strategy="auto", return_details=False, *, add_texture=True, cancel=None
    ):
        self.entered.set()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if cancel is not None and cancel.is_set():
                self.stopped_early.set()
                raise InpaintCancelled("inpaint cancelled")
            time.sleep(0.01)
        return image.copy()

    def describe(self) -> dict:
        return {"name": "cancellable-fake"}


def test_a_client_that_goes_away_stops_its_inpaint_and_frees_the_slot():
    """The page's Cancel (or a closed tab) closes the connection; the server stops the work at its next check."""
    import httpx

    fake = CancellableInpainter()
    request = httpx.Request(
        "POST",
        "http://127.0.0.1/api/inpaint",
        files={"image": ("in.png", encode(picture(), "PNG"), "image/png"),
               "mask": ("mask.png", mask_bytes(hole_rect(48, 64)), "image/png")},
    )  # fmt: skip
    body = request.read()
    head = "".join(f"{k}: {v}\r\n" for k, v in request.headers.items() if k.lower() != "host")
    with live_server(create_app(fake, ServerSettings(queue_size=1))) as port:
        conn = socket.create_connection(("127.0.0.1", port), timeout=15)
        conn.sendall(f"POST /api/inpaint HTTP/1.1\r\nHost: 127.0.0.1\r\n{head}\r\n".encode() + body)
        assert fake.entered.wait(15), "the request never reached the model"
        closed = time.monotonic()
        conn.close()
        assert fake.stopped_early.wait(5), "the inpaint went on after its client had gone"
        stopped = time.monotonic() - closed
        health = httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=5).json()
        assert health["in_flight"] == 0  # the one queue slot is free again
    assert stopped < 2


def test_one_client_may_hold_only_its_share_of_open_requests():
    settings_ = ServerSettings(queue_size=4, body_timeout_s=2.0, requests_per_client=2)
    image, mask = encode(picture(), "PNG"), mask_bytes(hole_rect(48, 64))
    source = source_address(3, 0)
    with live_server(create_app(RecordingInpainter(), settings_)) as port:
        slow = [start_slow_upload(port, source) for _ in range(3)]
        try:
            third = status_of(slow[2])  # answered at once, without waiting for the time limit
            if source != "127.0.0.1":
                assert post_http(port, image, mask) == 200  # another address is not limited by this one
            first_two = [status_of(conn) for conn in slow[:2]]
        finally:
            for conn in slow:
                conn.close()
    assert third == 429 and first_two == [408, 408]


def test_upload_budget_bounds_the_bytes_of_bodies_still_arriving():
    from dfnet.web.app import ByteBudget, ClientCounts

    budget, clients = ByteBudget(10), ClientCounts(1)
    assert budget.try_take(6) and not budget.try_take(5) and budget.try_take(4)
    budget.give_back(10)
    assert budget.used == 0
    assert clients.try_enter("a") and not clients.try_enter("a") and clients.try_enter("b")
    clients.leave("a")
    assert clients.try_enter("a")
    assert ServerSettings(queue_size=3, max_upload_bytes=5).upload_budget_bytes == 15
    with pytest.raises(ValueError, match="body_timeout_s must be at least"):
        ServerSettings(body_timeout_s=float("nan"))


# ---------------------------------------------------------------------------------------------
# Outputs that are inputs
# ---------------------------------------------------------------------------------------------
def test_inpaint_refuses_to_overwrite_its_image_or_masks(tmp_path, capsys, model_file):
    photo, mask = tmp_path / "a.png", tmp_path / "m.png"
    photo.write_bytes(encode(picture(), "PNG"))
    mask.write_bytes(mask_bytes(hole_rect(48, 64)))
    before = files_in(tmp_path)
    common = ["--model", model_file, "--no-progress"]
    for output in (photo, mask):
        code, _, err = run_cli(capsys, "inpaint", photo, mask, "-o", output, *common)
        assert code == 1
        assert_one_line_error(err, "inpaint", f"{output}: the output is the input file", "--overwrite")
    photos, masks = tmp_path / "photos", tmp_path / "masks"
    photos.mkdir(), masks.mkdir()
    (photos / "a.png").write_bytes(photo.read_bytes())
    (masks / "a.png").write_bytes(mask.read_bytes())
    before = files_in(tmp_path)
    for output, why in ((masks, "the output is the input folder"), (photos, "the output is the input folder"),
                        (photos / "done", "lies inside the input folder")):  # fmt: skip
        code, _, err = run_cli(capsys, "inpaint", photos, masks, "-o", output, *common)
        assert code == 1
        assert_one_line_error(err, "inpaint", why)
    assert files_in(tmp_path) == before  # nothing replaced, nothing added
    code, _, err = run_cli(capsys, "inpaint", photo, mask, "-o", photo, "--overwrite", *common)
    assert code == 0, err
    result = np.asarray(Image.open(photo))
    hole = hole_rect(48, 64)
    assert np.array_equal(result[~hole], picture()[~hole]) and not np.array_equal(result, picture())


def test_every_writing_command_refuses_an_output_that_is_an_input(tmp_path, capsys, model_file):
    import shutil

    weights = tmp_path / "w.safetensors"
    shutil.copy(model_file, weights)
    released = tmp_path / "r.pth"
    from dfnet.checkpoint import save_released

    save_released(DFNet(DFNetConfig(width=0.125)), released)
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "a.png").write_bytes(encode(picture(), "PNG"))
    before = files_in(tmp_path)
    cases = {
        "convert-official": ["convert-official", released, released],
        "export-checkpoint": ["export-checkpoint", weights, weights],
        "export": ["export", "--model", weights, "-o", weights],
        "eval": [
            "eval",
            "--images",
            photos,
            "--masks",
            photos,
            "--out",
            photos / "report",
            "--method",
            "telea",
        ],
    }
    for command, args in cases.items():
        code, _, err = run_cli(capsys, *args)
        assert code == 1, command
        assert_one_line_error(err, command, "--overwrite")
    assert files_in(tmp_path) == before


# ---------------------------------------------------------------------------------------------
# A full or read-only disk: one line naming the target, nothing half-written
# ---------------------------------------------------------------------------------------------
def _mount_tmpfs(folder: Path, options: str) -> bool:
    import subprocess

    if os.geteuid() != 0:
        return False
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True)
    return done.returncode == 0


@pytest.fixture(params=["full", "read-only"])
def broken_folder(request, tmp_path, monkeypatch) -> Iterator[tuple[Path, str]]:
    """A folder whose writes fail: a small tmpfs that is full or mounted read-only where this machine
    allows mounting (root on Linux), else an injected ENOSPC / EROFS when a written file is put in place."""
    import errno
    import subprocess

    folder = tmp_path / "broken"
    folder.mkdir()
    reason = "No space left on device" if request.param == "full" else "Read-only file system"
    if _mount_tmpfs(folder, "size=256k" if request.param == "full" else "ro,size=64k"):
        if request.param == "full":
            with contextlib.suppress(OSError), open(folder / "filler", "wb") as filler:
                while True:
                    filler.write(b"\0" * 65536)
                    filler.flush()
        try:
            yield folder, reason
        finally:
            subprocess.run(["umount", "-l", str(folder)], check=False)
        return
    real_replace, real_mkdir = os.replace, Path.mkdir
    code = errno.ENOSPC if request.param == "full" else errno.EROFS

    def failing_replace(src, dst, *args, **kwargs):
        if folder in Path(dst).resolve().parents:
            raise OSError(code, os.strerror(code), str(dst))
        return real_replace(src, dst, *args, **kwargs)

    def failing_mkdir(self, *args, **kwargs):
        if folder in Path(self).resolve().parents:
            raise OSError(code, os.strerror(code), str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(os, "replace", failing_replace)
    monkeypatch.setattr(Path, "mkdir", failing_mkdir)
    yield folder, os.strerror(code)


def assert_nothing_half_written(folder: Path, before: dict[str, bytes]) -> None:
    after = files_in(folder)
    assert after == before, sorted(set(after) - set(before))  # no result, no temporary file, no 0-byte file


def test_masks_generate_on_a_broken_disk_leaves_no_half_set(broken_folder, capsys):
    folder, reason = broken_folder
    before = files_in(folder)
    code, _, err = run_cli(capsys, "masks", "generate", folder / "set", "--count", "40", "--size", "64")
    assert code == 1
    assert_one_line_error(err, "masks", reason)
    assert ".tmp" not in err
    assert_nothing_half_written(folder, before)


def test_writing_commands_on_a_broken_disk_fail_in_one_line(broken_folder, tmp_path, capsys, model_file):
    from dfnet.checkpoint import save_released

    folder, reason = broken_folder
    released = tmp_path / "r.pth"
    save_released(DFNet(DFNetConfig(width=0.125, encoder_kernels=(3, 3, 3), fusion_layers=(0, 1))), released)
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(2):
        (photos / f"p{i}.png").write_bytes(encode(picture(64, 64, seed=i), "PNG"))
    (tmp_path / "masks").mkdir()
    (tmp_path / "masks" / "m.png").write_bytes(mask_bytes(hole_rect(64, 64)))
    before = files_in(folder)
    cases = {
        "convert-official": ["convert-official", released, folder / "w.safetensors"],
        "eval": ["eval", "--images", photos, "--masks", tmp_path / "masks", "--out", folder / "report",
                 "--method", "telea", "--size", "64", "--workers", "0", "--quiet"],
        "train": ["train", "--config", "smoke", f"output.dir={folder}", "trainer.max_steps=1"],
    }  # fmt: skip
    for command, args in cases.items():
        code, _, err = run_cli(capsys, *args)
        assert code == 1, (command, err)
        assert_one_line_error(err, command, reason)
        assert ".tmp" not in err
        assert_nothing_half_written(folder, before)
    code, _, err = run_cli(capsys, "inpaint", photos / "p0.png", tmp_path / "masks" / "m.png", "-o", folder / "r.png",
                           "--model", model_file, "--no-progress")  # fmt: skip
    assert code == 1 and "Traceback" not in err and f"{photos / 'p0.png'}: " in err and reason in err
    assert_nothing_half_written(folder, before)


def test_a_write_error_names_the_target_not_the_temporary_file(tmp_path):
    import errno

    from dfnet.files import WriteError, atomic_write

    def fill_then_fail(tmp: str) -> None:
        Path(tmp).write_bytes(b"half")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), tmp)

    with pytest.raises(WriteError) as info:
        atomic_write(tmp_path / "result.png", fill_then_fail)
    assert str(info.value) == f"{tmp_path / 'result.png'}: cannot write (No space left on device)"
    assert list(tmp_path.iterdir()) == []


def test_masks_generate_into_a_file_says_so_without_suggesting_overwrite(tmp_path, capsys):
    target = tmp_path / "taken"
    target.write_text("x")
    code, _, err = run_cli(capsys, "masks", "generate", target, "--count", "2", "--size", "32")
    assert code == 1
    assert_one_line_error(err, "masks", f"{target}: exists and is not a folder")
    assert "--overwrite" not in err
    assert target.read_text() == "x"


# ---------------------------------------------------------------------------------------------
# Tracebacks on user errors
# ---------------------------------------------------------------------------------------------
@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_a_device_this_machine_lacks_is_one_line_everywhere(tmp_path, capsys, model_file):
    with pytest.raises(ValueError, match="CUDA is not available on this machine"):
        Inpainter.from_pretrained(model_file, device="cuda")
    with pytest.raises(ValueError, match="unknown device 'gpu0'"):
        Inpainter.from_pretrained(model_file, device="gpu0")
    photo, mask = tmp_path / "a.png", tmp_path / "m.png"
    photo.write_bytes(encode(picture(), "PNG"))
    mask.write_bytes(mask_bytes(hole_rect(48, 64)))
    code, _, err = run_cli(capsys, "inpaint", photo, mask, "-o", tmp_path / "o.png", "--model", model_file,
                           "--device", "cuda", "--no-progress")  # fmt: skip
    assert code == 1
    assert_one_line_error(err, "inpaint", "CUDA is not available")
    for device, fragment in (("cuda", "CUDA is not available"), ("tpu", "unknown device 'tpu'")):
        code, _, err = run_cli(capsys, "serve", "--model", model_file, "--device", device, "--port", "0")
        assert code == 1
        assert_one_line_error(err, "serve", fragment)


def test_serve_on_a_port_in_use_or_out_of_range_is_one_line(capsys, model_file):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        code, _, err = run_cli(capsys, "serve", "--model", model_file, "--port", port)
    assert code == 1
    assert_one_line_error(err, "serve", f"cannot listen on 127.0.0.1:{port}", "in use")
    for port in ("70000", "-1", "http"):
        with pytest.raises(SystemExit) as info:
            main(["serve", "--port", port])
        assert info.value.code == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err and "argument --port:" in err.splitlines()[-1]


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "1e300"])
def test_a_non_finite_strategy_option_is_one_line(value, tmp_path, capsys, model_file, inpainter):
    photo, mask = tmp_path / "a.png", tmp_path / "m.png"
    photo.write_bytes(encode(picture(), "PNG"))
    mask.write_bytes(mask_bytes(hole_rect(48, 64)))
    code, _, err = run_cli(capsys, "inpaint", photo, mask, "-o", tmp_path / "o.png", "--model", model_file,
                           "--strategy", "resize", "--set", f"max_side={value}", "--no-progress")  # fmt: skip
    assert code == 1
    assert_one_line_error(err, "inpaint", "max_side")
    assert not (tmp_path / "o.png").exists()
    with pytest.raises(ValueError, match="strategy option max_side must be"):
        inpainter.inpaint(picture(), hole_rect(48, 64), strategy="resize", max_side=float(value))


def test_a_released_pth_with_missing_keys_is_one_line(tmp_path, capsys):
    from dfnet.checkpoint import save_released

    released = tmp_path / "r.pth"
    save_released(DFNet(DFNetConfig(width=0.125, encoder_kernels=(3, 3, 3), fusion_layers=(0, 1))), released)
    state = torch.load(released, weights_only=True)
    for missing in [k for k in state if k.endswith("weight")]:
        torch.save({k: v for k, v in state.items() if k != missing}, tmp_path / "cut.pth")
        with pytest.raises(CheckpointError) as info:
            load_model(tmp_path / "cut.pth")
        assert "\n" not in str(info.value)
    code, _, err = run_cli(capsys, "convert-official", tmp_path / "cut.pth", tmp_path / "out.safetensors")
    assert code == 1
    assert_one_line_error(err, "convert-official")
    assert not (tmp_path / "out.safetensors").exists()


# ---------------------------------------------------------------------------------------------
# Hostile metadata: architecture bounds checked before anything is allocated
# ---------------------------------------------------------------------------------------------
HOSTILE_CONFIGS = {
    "channels": ({"base_channels": 10**9}, "base_channels must be an integer in 1..4096"),
    "layers": ({"encoder_kernels": [3] * 40, "fusion_layers": [0]}, "at most 12 layers"),
    "kernel": ({"encoder_kernels": [99999, 3, 3], "fusion_layers": [0]}, "kernel sizes must be integers"),
    "blend": ({"blend_channels": 10**12}, "blend_channels must be an integer in 1..4096"),
    # within every bound but terabytes of weights: refused by comparing with the file before building
    "huge_within_bounds": ({"base_channels": 4096, "max_channels": 4096, "width": 4},
                           "not this DFNet architecture"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(HOSTILE_CONFIGS))
def test_hostile_metadata_is_refused_before_anything_is_allocated(case, tmp_path, capsys):
    import json
    import resource

    config, message = HOSTILE_CONFIGS[case]
    path = tmp_path / "hostile.safetensors"
    save_file({"encoder.0.conv.conv.weight": torch.zeros(2, 4, 3, 3)}, path,
              metadata={"format": "dfnet", "config": json.dumps(config)})  # fmt: skip
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    with pytest.raises(CheckpointError, match=message):
        load_model(path)
    assert time.monotonic() - started < 5
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before < 200 * 1024  # KiB: < 200 MB
    code, _, err = run_cli(capsys, "export-checkpoint", path, tmp_path / "o.safetensors")
    assert code == 1
    assert_one_line_error(err, "export-checkpoint", message.split(" must")[0])


# ---------------------------------------------------------------------------------------------
# One mask rule everywhere: a mask whose largest value is 1 is a 0/1 mask
# ---------------------------------------------------------------------------------------------
def test_a_zero_one_mask_file_means_the_same_everywhere(tmp_path, capsys, model_file, inpainter, client):
    rgb, hole = picture(), hole_rect(48, 64)
    photo, mask = tmp_path / "a.png", tmp_path / "m01.png"
    photo.write_bytes(encode(rgb, "PNG"))
    mask.write_bytes(encode(hole.astype(np.uint8), "PNG"))  # pixel values 0 and 1
    assert np.array_equal(load_mask(mask), hole)
    assert np.array_equal(load_mask(hole.astype(np.uint8)), hole)  # the numpy API, same rule
    code, _, err = run_cli(capsys, "inpaint", photo, mask, "-o", tmp_path / "o.png", "--model", model_file,
                           "--no-progress")  # fmt: skip
    assert code == 0, err
    by_cli = np.asarray(Image.open(tmp_path / "o.png"))
    assert not np.array_equal(by_cli[hole], rgb[hole]) and np.array_equal(by_cli[~hole], rgb[~hole])
    by_api = inpainter.inpaint(rgb, hole.astype(np.uint8))
    assert np.array_equal(by_api, by_cli)
    response = post(client, encode(rgb, "PNG"), mask.read_bytes())
    assert response.status_code == 200
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(response.content)))[..., :3], by_cli)


def test_a_mask_empty_after_thresholding_warns(tmp_path, capsys, model_file):
    from dfnet.imageio import EmptyMaskWarning

    faint = hole_rect(48, 64).astype(np.uint8) * 100  # painted, but no value above 127
    with pytest.warns(EmptyMaskWarning, match="brightest value is 100"):
        assert not load_mask(faint).any()
    photo, mask = tmp_path / "a.png", tmp_path / "faint.png"
    photo.write_bytes(encode(picture(), "PNG"))
    mask.write_bytes(encode(faint, "PNG"))
    code, _, err = run_cli(capsys, "inpaint", photo, mask, "-o", tmp_path / "o.png", "--model", model_file,
                           "--no-progress")  # fmt: skip
    assert code == 0
    assert "warning: a.png: the mask has no hole" in err and "Traceback" not in err


# ---------------------------------------------------------------------------------------------
# Bad option values: every value-taking flag, and every training option
# ---------------------------------------------------------------------------------------------
# (command line before the flag, flag, smallest and largest accepted integer; None: not a number)
NUMERIC_FLAGS = [
    (["inpaint", "a.png", "m.png", "-o", "o.png"], "--batch-size", 1, 4096),
    (["inpaint", "a.png", "m.png", "-o", "o.png"], "--max-pixels", 1, 2**31 - 1),
    (["inpaint", "a.png", "m.png", "-o", "o.png"], "--quality", 1, 100),
    (["export", "-o", "m.onnx"], "--size", 1, 16384),
    (["export", "-o", "m.onnx"], "--opset", 9, 99),
    (["eval", "--images", "i", "--masks", "m", "--out", "o", "--method", "telea"], "--size", 1, 16384),
    (["eval", "--images", "i", "--masks", "m", "--out", "o", "--method", "telea"], "--batch-size", 1, 4096),
    (["eval", "--images", "i", "--masks", "m", "--out", "o", "--method", "telea"], "--workers", 0, 256),
    (["eval", "--images", "i", "--masks", "m", "--out", "o", "--method", "telea"], "--bpe-band", 1, 1024),
    (["eval", "--images", "i", "--masks", "m", "--out", "o", "--method", "telea"], "--limit", 1, 2**31 - 1),
    (
        ["eval", "--images", "i", "--masks", "m", "--out", "o", "--method", "telea"],
        "--save-images",
        -1,
        2**31 - 1,
    ),
    (["serve"], "--port", 0, 65535),
    (["serve"], "--max-pixels", 1, 2**31 - 1),
    (["serve"], "--queue-size", 1, 1024),
    (["serve"], "--workers", 1, 256),
    (["serve"], "--requests-per-client", 1, 1024),
    (["masks", "generate", "out"], "--count", 1, 10_000_000),
    (["masks", "generate", "out"], "--size", 8, 16384),
    (["masks", "generate", "out"], "--seed", 0, 2**32 - 1),
    (["export-checkpoint", "a.ckpt", "b.safetensors"], "--working-size", 1, 16384),
]
FLOAT_FLAGS = [
    (["serve"], "--max-upload-mb", 4096.0),
    (["serve"], "--body-timeout", 3600.0),
    (["serve"], "--header-timeout", 3600.0),
]
NOT_NUMBERS = st.sampled_from(["", " ", "abc", "nan", "inf", "-inf", "1e400", "0x10", "1,5", "½"])


@st.composite
def bad_numeric_option(draw) -> tuple[list[str], str]:
    before, flag, low, high = draw(st.sampled_from(NUMERIC_FLAGS))
    outside = st.one_of(st.integers(max_value=low - 1), st.integers(min_value=high + 1))
    value = draw(st.one_of(NOT_NUMBERS, outside.map(str), st.floats(allow_nan=False).map(lambda f: f"{f}.5")))
    return [*before, f"{flag}={value}"], flag


@st.composite
def bad_float_option(draw) -> tuple[list[str], str]:
    before, flag, high = draw(st.sampled_from(FLOAT_FLAGS))
    outside = st.one_of(st.floats(max_value=0.0), st.floats(min_value=high, exclude_min=True))
    value = draw(st.one_of(NOT_NUMBERS, outside.map(repr)))
    return [*before, f"{flag}={value}"], flag


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=st.one_of(bad_numeric_option(), bad_float_option()))
def test_a_bad_value_of_any_numeric_flag_is_refused_before_anything_runs(case, capsys):
    argv, flag = case
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.splitlines()[-1].startswith(f"dfnet {argv[0]}") or "error" in err
    assert f"argument {flag}:" in err.splitlines()[-1], err


def _training_fields() -> list[tuple[str, Any]]:
    """(section.field, annotation) of every training option."""
    import dataclasses
    import typing

    from dfnet.training import TrainConfig

    found = []
    for section, section_type in typing.get_type_hints(TrainConfig).items():
        if dataclasses.is_dataclass(section_type):
            found += [(f"{section}.{name}", t) for name, t in typing.get_type_hints(section_type).items()
                      if not dataclasses.is_dataclass(t)]  # fmt: skip
        else:
            found.append((section, section_type))
    return found


TRAINING_FIELDS = _training_fields()


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(TRAINING_FIELDS), value=st.sampled_from(["{a: 1}", "[[1], 2]", "abc", ".inf"]))
def test_a_training_option_of_the_wrong_type_names_its_field_before_training(field, value, capsys):
    import typing

    name, annotation = field
    takes_text = str in (annotation, *typing.get_args(annotation))
    assume(not (takes_text and value in ("abc", ".inf")))  # any scalar is valid text
    code, out, err = run_cli(capsys, "train", "--config", "smoke", f"{name}={value}", "--print-config")
    assert code == 1 and out == ""
    assert_one_line_error(err, "train", f"{name} must be")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("trainer.max_epochs=-5", "max_epochs, max_steps and num_sanity_val_steps >= -1"),
        ("data.num_workers=100000", "num_workers is at most 256"),  # was: 100,000 loader processes forked
        ("trainer.precision=64", "trainer.precision must be one of"),
    ],
)
def test_a_training_option_out_of_range_is_refused_before_training(override, message, capsys):
    code, out, err = run_cli(capsys, "train", "--config", "smoke", override, "--print-config")
    assert code == 1 and out == ""
    assert_one_line_error(err, "train", message)


def test_a_trainer_setting_lightning_refuses_is_one_line(tmp_path, capsys):
    code, _, err = run_cli(
        capsys, "train", "--config", "smoke", f"output.dir={tmp_path}", "trainer.accelerator=abacus"
    )
    assert code == 1
    lines = [line for line in err.splitlines() if line.startswith("dfnet train")]
    assert "Traceback" not in err and lines == [lines[-1]] and "invalid accelerator name" in lines[-1]


def test_a_run_directory_inside_the_training_data_is_refused(tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "a.png").write_bytes(encode(picture(64, 64), "PNG"))
    before = files_in(tmp_path)
    code, _, err = run_cli(
        capsys, "train", "--config", "smoke", f"data.root={photos}", f"output.dir={photos}"
    )
    assert code == 1
    assert_one_line_error(err, "train", "lies inside the input folder", "--overwrite")
    assert files_in(tmp_path) == before


def test_every_numeric_flag_is_range_checked_and_covered_by_the_property_test():
    import argparse

    from dfnet.cli import build_parser

    def commands(
        parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()
    ) -> Iterator[tuple[tuple, Any]]:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield from commands(sub, (*prefix, name))
            else:
                yield prefix, action

    covered = {(before[0], flag) for before, flag, *_ in NUMERIC_FLAGS + FLOAT_FLAGS}
    covered |= {
        ("masks generate" if b[:2] == ["masks", "generate"] else b[0], f) for b, f, *_ in NUMERIC_FLAGS
    }
    numeric = []
    for path, action in commands(build_parser()):
        assert action.type not in (int, float), f"{' '.join(path)} {action.option_strings}: unchecked number"
        if getattr(action.type, "__name__", "") in ("integer", "number") and action.option_strings:
            numeric.append((" ".join(path), action.option_strings[-1]))
    assert numeric and all(entry in covered for entry in numeric), sorted(set(numeric) - covered)
