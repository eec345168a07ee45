"""`dfnet inpaint` on a folder with reading, the network and writing overlapped: the same files as one step at a
time, errors per image, and Ctrl-C leaving only whole files."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dfnet.cli import main
from dfnet.cli.inpaint import _pick, batches, collect_jobs, load_job, save_outputs

BATCH = 2


@pytest.fixture
def folder(tmp_path: Path, tiny_model) -> Path:
    """Seven photos of two sizes (JPEG and PNG), one unreadable and one without a mask, and a tiny DFNet."""
    from dfnet.checkpoint import save_model

    rng = np.random.default_rng(1)
    (tmp_path / "photos").mkdir()
    (tmp_path / "masks").mkdir()
    for i in range(7):
        height, width = (64, 96) if i in (2, 3) else (80, 64)
        rgb = rng.integers(0, 256, (height, width, 3), np.uint8)
        Image.fromarray(rgb).save(tmp_path / "photos" / f"p{i}.{'jpg' if i % 2 else 'png'}", quality=90)
        hole = np.zeros((height, width), np.uint8)
        hole[10 : 20 + i, 12:40] = 255
        if i != 5:
            Image.fromarray(hole).save(tmp_path / "masks" / f"p{i}.png")
    (tmp_path / "photos" / "p4.png").write_bytes(b"broken")
    save_model(tiny_model, tmp_path / "tiny.safetensors")
    return tmp_path


def _args(folder: Path, out: str) -> list[str]:
    return ["inpaint", str(folder / "photos"), str(folder / "masks"), "-o", str(folder / out), "--model",
            str(folder / "tiny.safetensors"), "--device", "cpu", "--texture", "0", "--batch-size", str(BATCH),
            "--no-progress", "--quality", "90"]  # fmt: skip


def _one_step_at_a_time(folder: Path, out: str) -> None:
    """The folder run without overlap: load, complete and save in turn, in the command's batches."""
    from dfnet.inference import Inpainter

    inpainter = Inpainter.from_pretrained(str(folder / "tiny.safetensors"), device="cpu", texture=None)
    settings = argparse.Namespace(quality=90, save_raw=False, save_alpha=False, merge=False)
    loaded = []
    for job in collect_jobs(str(folder / "photos"), str(folder / "masks"), str(folder / out)):
        try:
            loaded.append(load_job(job, invert=False, resize_mask=False))
        except (ValueError, OSError):
            continue
    pending = [loaded[i : i + BATCH] for i in range(0, len(loaded), BATCH)]
    for group in (g for chunk in pending for g in batches(chunk, BATCH)):
        done = inpainter.complete_arrays(
            np.stack([g.image.rgb for g in group]), np.stack([g.hole for g in group]), "auto", False, BATCH
        )
        for i, item in enumerate(group):
            save_outputs(item, _pick(done, i), settings)


def test_overlapped_folder_run_writes_the_same_files_and_reports_each_failure(folder, capsys):
    _one_step_at_a_time(folder, "reference")
    assert main(_args(folder, "out")) == 1
    err = capsys.readouterr().err
    assert "2 failed" in err and "p4.png: not a recognised image file" in err and "p5.jpg: no mask" in err
    names = sorted(p.name for p in (folder / "out").iterdir())
    assert names == sorted(p.name for p in (folder / "reference").iterdir())
    assert names == ["p0.png", "p1.jpg", "p2.png", "p3.jpg", "p6.png"]
    for name in names:
        assert (folder / "out" / name).read_bytes() == (folder / "reference" / name).read_bytes(), name


def test_ctrl_c_leaves_only_whole_results(folder, monkeypatch):
    from dfnet.inference import Inpainter

    _one_step_at_a_time(folder, "reference")
    real = Inpainter.complete_arrays
    calls = []

    def interrupted_at_the_third_batch(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Inpainter, "complete_arrays", interrupted_at_the_third_batch)
    assert main(_args(folder, "out")) == 130
    written = sorted(p.name for p in (folder / "out").iterdir())
    assert written == ["p0.png", "p1.jpg", "p2.png", "p3.jpg"]  # two batches, whole; no temporary file
    for name in written:
        assert (folder / "out" / name).read_bytes() == (folder / "reference" / name).read_bytes()


def test_two_runs_write_byte_identical_files_first_one_included(tmp_path, tiny_model):
    """Exemplar detail is seeded: two fresh processes inpainting the same folder write the same bytes for every
    image, the first included (a process's first texture step once took another code path of torch's vector
    math and came out a grey level off in places)."""
    from dfnet.checkpoint import save_model

    rng = np.random.default_rng(4)
    for name in ("photos", "masks"):
        (tmp_path / name).mkdir()
    for i in range(2):
        y, x = np.mgrid[0:256, 0:256]
        rgb = np.stack([x, y, (x + y) // 2], axis=2) + rng.integers(0, 40, (256, 256, 3))
        Image.fromarray(rgb.clip(0, 255).astype(np.uint8)).save(tmp_path / "photos" / f"p{i}.png")
        hole = np.zeros((256, 256), np.uint8)
        hole[60 + 20 * i : 180, 40:200] = 255
        Image.fromarray(hole).save(tmp_path / "masks" / f"p{i}.png")
    save_model(tiny_model, tmp_path / "tiny.safetensors")
    for out in ("run1", "run2"):
        subprocess.run(
            [sys.executable, "-m", "dfnet.cli", "inpaint", str(tmp_path / "photos"), str(tmp_path / "masks"),
             "-o", str(tmp_path / out), "--model", str(tmp_path / "tiny.safetensors"), "--device", "cpu",
             "--engine", "torch", "--texture", "fine", "--no-progress"],
            check=True, capture_output=True,
        )  # fmt: skip
    for i in range(2):
        first, second = (np.asarray(Image.open(tmp_path / out / f"p{i}.png")) for out in ("run1", "run2"))
        assert not np.array_equal(first, np.asarray(Image.open(tmp_path / "photos" / f"p{i}.png")))
        assert (tmp_path / "run1" / f"p{i}.png").read_bytes() == (
            tmp_path / "run2" / f"p{i}.png"
        ).read_bytes()
