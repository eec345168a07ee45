"""Bad input at every entry point: the library, the command line and the web server.

Each case of issue 10 gets a one-line, specific error or a documented correct result, never a crash
(docs/reliability.md lists them). Cases already proven elsewhere are not repeated here:
test_imageio (EXIF orientation of PNGs, 16-bit grey, palette with transparency, grey-level threshold),
test_inference (1x1 / 7x5 / odd sizes through every strategy, mask size mismatch, empty mask),
test_checkpoint (raw malicious pickle, NaN, other architecture, garbage), test_cli (mask size mismatch,
mostly-hole warning, folders with failures) and test_web (empty, truncated PNG, non-image, size mismatch,
empty mask, byte and pixel limits, malformed multipart, arbitrary bytes, log content on success).
"""

from __future__ import annotations

import gc
import io
import logging
import os
import pickle
import re
import struct
import weakref
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from helpers import encode, handmade_png, png_declaring
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from safetensors.torch import save_file

from dfnet.checkpoint import CheckpointError, load_model, save_model
from dfnet.cli import main
from dfnet.imageio import ImageLoadError, load_image, load_mask
from dfnet.inference import Inpainter
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
    code, _, err = run_cli(capsys, "inpaint", small, mask, "-o", tmp_path / "o.png", "--max-pixels", "0")
    assert code == 1 and "--max-pixels must be at least 1" in err


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
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: pytest.fail("served a refused model"))
    image, mask = tmp_path / "in.png", tmp_path / "mask.png"
    image.write_bytes(encode(picture(), "PNG"))
    mask.write_bytes(mask_bytes(hole_rect(48, 64)))
    commands = {
        "inpaint": ["inpaint", image, mask, "-o", tmp_path / "o.png", "--model", path, "--no-progress"],
        "serve": ["serve", "--model", path],
        "export": ["export", "--model", path, "-o", tmp_path / "m.onnx"],
        "export-checkpoint": ["export-checkpoint", path, tmp_path / "m.safetensors"],
        "eval": ["eval", "--images", tmp_path, "--masks", mask, "--out", tmp_path / "e", "--method", "dfnet",
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
    factor=st.tuples(st.integers(1, 3), st.integers(1, 3)),
)
def test_mask_files_threshold_invert_and_resize(height, width, seed, size, factor):
    grey = np.random.default_rng(seed).integers(0, 256, (height, width), dtype=np.uint8)
    data = encode(grey, "PNG")
    hole = load_mask(data)
    assert hole.dtype == bool and np.array_equal(hole, grey > 127)
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

    def inpaint(self, image, hole_mask, strategy="auto", return_details=False):
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
    args = ["--clients", "20", "--requests", "100", "--time-limit", "120", "--summary", str(summary_path)]
    assert load_test.main(args) == 0
    summary = json.loads(summary_path.read_text())
    assert summary["passed"] and summary["failures"] == []
    assert summary["requests"] == 100 and summary["wrong_final_status"] == 0 and summary["client_errors"] == 0
    kinds = load_test.build_kinds(1024 * 1024)
    assert set(summary["by_kind"]) == {kind.name for kind in kinds}  # every kind was sent at least once
    for name, row in summary["by_kind"].items():
        assert row["final_statuses"] == {str(row["expected"]): row["count"]}, name
    assert summary["health_after"] == {"status": "ok", "in_flight": 0, "queue_size": 4}
    assert summary["server_rss_mb"]["growth"] < 300
