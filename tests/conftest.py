"""Shared fixtures: small models and images so the suite stays fast on two CPU cores."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import mount_tmpfs, randomize_batchnorm, save_picture

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))  # benchmarks/reference_dfnet.py: the released-layout reference
pytest_plugins = ("evaluation_data",)  # tests/evaluation_data.py: the evaluation tests' `dataset` fixture

torch.set_num_threads(min(2, torch.get_num_threads()))


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run the body with ``count`` torch threads, restoring the previous number afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture
def one_thread() -> Iterator[None]:
    """One torch thread for a test: tiny convolutions crawl with two threads on a busy 2-core machine."""
    with torch_threads(1):
        yield


@pytest.fixture(scope="module")
def one_thread_per_module() -> Iterator[None]:
    """One torch thread for a whole module, module-scoped fixtures included (use with pytestmark)."""
    with torch_threads(1):
        yield


@pytest.fixture
def tiny_model():
    """A narrow (width 1/8) DFNet in eval mode with randomised BatchNorm statistics."""
    from dfnet.model import DFNet, DFNetConfig

    torch.manual_seed(0)
    return randomize_batchnorm(DFNet(DFNetConfig(width=0.125))).eval()


@pytest.fixture
def photo_256() -> np.ndarray:
    """A smooth synthetic 256x256 RGB uint8 picture with some texture."""
    y, x = np.mgrid[0:256, 0:256].astype(np.float32)
    rgb = np.stack([x, y, (x + y) / 2], axis=2) + 20 * np.sin(x / 7)[..., None]
    return np.clip(rgb, 0, 255).astype(np.uint8)


@pytest.fixture
def hole_256() -> np.ndarray:
    """A 256x256 hole mask (True = hole): a rectangle and a disc."""
    hole = np.zeros((256, 256), dtype=bool)
    hole[40:90, 60:140] = True
    yy, xx = np.mgrid[0:256, 0:256]
    hole |= (yy - 180) ** 2 + (xx - 180) ** 2 < 30**2
    return hole


@pytest.fixture
def loopback():
    """A LoopbackServer on 127.0.0.1 (tests/loopback.py), shut down after the test."""
    from loopback import LoopbackServer

    server = LoopbackServer()
    yield server
    server.close()


# A closed port on this machine: a download that a test did not point at its own loopback server fails at once
# instead of reaching the internet.
UNREACHABLE_MIRROR = "http://127.0.0.1:9/"


@pytest.fixture(autouse=True)
def _isolated_model_cache(tmp_path_factory, monkeypatch):
    """Every test sees an empty model cache (DFNET_HOME), no licence acceptance and downloads that can only go to
    the loopback server a test names (the mirrors default to a closed loopback port), whatever the machine has."""
    monkeypatch.setenv("DFNET_HOME", str(tmp_path_factory.mktemp("dfnet_home")))
    monkeypatch.delenv("DFNET_ACCEPT_LICENSE", raising=False)
    for name in ("DFNET_MODELS_MIRROR", "DFNET_DATA_MIRROR"):
        monkeypatch.setenv(name, UNREACHABLE_MIRROR)


@pytest.fixture
def folder(tmp_path):
    """Six small training images in nested folders, in several formats, plus files to ignore."""
    root = tmp_path / "images"
    for i, name in enumerate(["a.png", "sub/b.JPG", "sub/deeper/c.webp", "d.bmp", "e.jpeg", "sub/f.png"]):
        save_picture(root / name, 48 + 8 * i, 40, seed=i)
    (root / "notes.txt").write_text("not an image")
    (root / "sub" / "g.gif").write_bytes(b"GIF89a")
    return root


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    """A narrow (width 1/8) DFNet saved as safetensors, for commands that take --model."""
    from dfnet.checkpoint import save_model
    from dfnet.model import DFNet, DFNetConfig

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    save_model(DFNet(DFNetConfig(width=0.125)).eval(), path, metadata={"working_size": 256})
    return path


@pytest.fixture(scope="module")
def inpainter(model_file):
    """The Inpainter of ``model_file`` on the CPU."""
    from dfnet.inference import Inpainter

    return Inpainter.from_pretrained(model_file, device="cpu")


@pytest.fixture(scope="module")
def client(inpainter):
    """A test client of ``dfnet serve``'s app around ``inpainter`` (4 MB upload limit)."""
    from fastapi.testclient import TestClient

    from dfnet.web import ServerSettings, create_app

    with TestClient(create_app(inpainter, ServerSettings(max_upload_bytes=4 * 1024 * 1024))) as test_client:
        yield test_client


@pytest.fixture(params=["full", "read-only"])
def broken_folder(request, tmp_path, monkeypatch) -> Iterator[tuple[Path, str]]:
    """A folder whose writes fail: a small tmpfs that is full or mounted read-only where this machine
    allows mounting (root on Linux), else an injected ENOSPC / EROFS when a written file is put in place."""
    import errno
    import subprocess

    folder = tmp_path / "broken"
    folder.mkdir()
    reason = "No space left on device" if request.param == "full" else "Read-only file system"
    if mount_tmpfs(folder, "size=256k" if request.param == "full" else "ro,size=64k"):
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
