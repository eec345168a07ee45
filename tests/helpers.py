"""Helpers shared by tests and benchmarks (importable without pytest: no fixtures, no side effects)."""

from __future__ import annotations

import contextlib
import io
import os
import socket
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image

from dfnet.cli import main

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

# A 3-layer DFNet at 32x32 (dfnet train overrides on top of the smoke config): deterministic, no progress bar.
TINY_TRAINING = [
    "model.encoder_kernels=[7,5,5]",
    "model.fusion_layers=[0,1,2]",
    "loss.structure_scales=3",
    "loss.texture_scales=2",
    "data.image_size=32",
    "trainer.progress_bar=false",
    "trainer.max_epochs=10",
    "trainer.deterministic=true",
]


def randomize_batchnorm(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give every BatchNorm non-trivial statistics so eval-mode code (and folding) is exercised."""
    gen = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            n = module.num_features
            module.running_mean.copy_(torch.rand(n, generator=gen) * 0.4 - 0.2)
            module.running_var.copy_(torch.rand(n, generator=gen) * 1.5 + 0.5)
            module.weight.data.copy_(torch.rand(n, generator=gen) + 0.5)
            module.bias.data.copy_(torch.rand(n, generator=gen) * 0.4 - 0.2)
    return model


def encode(image: Image.Image | np.ndarray, fmt: str, **options: Any) -> bytes:
    """An image (PIL or uint8 array) encoded in ``fmt``."""
    picture = image if isinstance(image, Image.Image) else Image.fromarray(image)
    buffer = io.BytesIO()
    picture.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data and CRC."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def handmade_png(width: int, height: int, bit_depth: int, colour_type: int, rows: bytes) -> bytes:
    """A PNG written byte by byte (so 16-bit RGB and lying headers are possible)."""
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(rows))
        + png_chunk(b"IEND", b"")
    )


def png_declaring(width: int, height: int) -> bytes:
    """A 100-byte PNG whose header declares ``width`` x ``height`` RGB pixels (nothing behind it)."""
    return handmade_png(width, height, 8, 2, b"\0" * 64)


def photo_like(width: int, height: int, seed: int = 0) -> np.ndarray:
    """Smooth colour field plus sensor-like noise shared by the channels: what a camera JPEG looks like."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(40, 210, size=(height // 64 + 2, width // 64 + 2, 3)).astype(np.uint8)
    base = np.asarray(
        Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC), dtype=np.float32
    )
    luma_noise = rng.normal(0, 1.5, size=(height, width, 1))  # camera-like levels: residual std ~9
    chroma_noise = rng.normal(0, 0.4, size=(height, width, 3))
    return np.clip(base + luma_noise + chroma_noise, 0, 255).astype(np.uint8)


def gradient(width: int, height: int) -> np.ndarray:
    """A clean grey ramp rising one level per column (wrapping every 256 columns): rendered art."""
    ramp = np.broadcast_to(np.arange(width) % 256, (height, width))
    return np.stack([ramp, ramp, ramp], axis=-1).astype(np.uint8)


# A DEP-5 debian/copyright file with overlapping stanzas, for the photo data set's licence tests.
DEP5 = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: test-wallpapers

Files: *
Copyright: 2020 Everyone
License: GPL-2+

Files: 16.04/bridge_by_someone.jpg
 16.04/lake.jpg
Copyright: Some One, 2018
License: CC-BY-SA-4.0

Files: desktop/Stripes-*.png
Copyright: 2014 Stripe Maker
License: CC0-1.0

Files: debian/*
Copyright: 2021 Packager
License: Expat

License: GPL-2+
 This package is free software.
"""


@contextlib.contextmanager
def live_server(app, config=None) -> Iterator[int]:
    """``app`` (or a ready ``uvicorn.Config``) under uvicorn on a free port of 127.0.0.1 in a background thread;
    yields the port."""
    import uvicorn

    sock = socket.create_server(("127.0.0.1", 0))
    server = uvicorn.Server(config or uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def ramp_picture(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A horizontal ramp (column x has red value x, row y green value y) with a seeded blue channel."""
    rng = np.random.default_rng(seed)
    rgb = np.zeros((height, width, 3), dtype=np.uint8)
    rgb[..., 0] = (np.arange(width) % 256)[None, :]
    rgb[..., 1] = (np.arange(height) % 256)[:, None]
    rgb[..., 2] = rng.integers(0, 256, (height, width))
    return rgb


def save_picture(path: Path, width: int = 40, height: int = 30, seed: int = 0) -> Path:
    """:func:`ramp_picture` saved at ``path`` (format from the suffix), folders created."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(ramp_picture(width, height, seed)).save(path)
    return path


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


# Unusual but valid images: (encoded bytes, suffix, expected RGB after loading, expected alpha or None).
def odd_images() -> dict[str, tuple[bytes, str, np.ndarray, np.ndarray | None]]:
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


ODD_IMAGES = odd_images()


def post(client: TestClient, image: bytes, mask: bytes, **fields: str):
    files = {"image": ("upload", image, "image/png"), "mask": ("mask.png", mask, "image/png")}
    return client.post("/api/inpaint", files=files, data=fields)


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


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


def assert_nothing_half_written(folder: Path, before: dict[str, bytes]) -> None:
    after = files_in(folder)
    assert after == before, sorted(set(after) - set(before))  # no result, no temporary file, no 0-byte file


def mount_tmpfs(folder: Path, options: str) -> bool:
    import subprocess

    if os.geteuid() != 0:
        return False
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True)
    return done.returncode == 0
