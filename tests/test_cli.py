"""End-to-end runs of the ``dfnet`` command line on small files the tests write."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from dfnet.checkpoint import save_model, save_released
from dfnet.cli import main


@pytest.fixture
def files(tmp_path, tiny_model, photo_256, hole_256):
    Image.fromarray(photo_256).save(tmp_path / "photo.png")
    Image.fromarray(hole_256.astype(np.uint8) * 255).save(tmp_path / "mask.png")
    save_model(tiny_model, tmp_path / "model.safetensors")
    save_released(tiny_model, tmp_path / "model_places2.pth")
    return tmp_path


def test_inpaint_keeps_known_pixels_and_writes_details(files, photo_256, hole_256):
    out = files / "out" / "result.png"
    code = main(
        [
            "inpaint",
            str(files / "photo.png"),
            str(files / "mask.png"),
            "-o",
            str(out),
            "--model",
            str(files / "model.safetensors"),
            "--device",
            "cpu",
            "--save-raw",
            "--save-alpha",
        ]
    )
    assert code == 0
    result = np.asarray(Image.open(out))
    assert np.array_equal(result[~hole_256], photo_256[~hole_256])
    assert not np.array_equal(result[hole_256], photo_256[hole_256])
    assert np.asarray(Image.open(files / "out" / "result_raw.png")).shape == (256, 256, 3)
    assert np.asarray(Image.open(files / "out" / "result_alpha.png")).shape == (256, 256, 3)


def test_released_pth_and_inverted_mask_give_same_result(files, hole_256):
    known = Image.fromarray((~hole_256).astype(np.uint8) * 255)
    known.save(files / "known.png")
    a, b = files / "a.png", files / "b.png"
    assert (
        main(
            [
                "inpaint",
                str(files / "photo.png"),
                str(files / "mask.png"),
                "-o",
                str(a),
                "--model",
                str(files / "model.safetensors"),
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "inpaint",
                str(files / "photo.png"),
                str(files / "known.png"),
                "-o",
                str(b),
                "--invert-mask",
                "--model",
                str(files / "model_places2.pth"),
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    diff = np.abs(np.asarray(Image.open(a)).astype(int) - np.asarray(Image.open(b)).astype(int))
    assert diff.max() <= 1


def test_convert_official_command(files, tmp_path):
    out = tmp_path / "converted.safetensors"
    assert main(["convert-official", str(files / "model_places2.pth"), str(out)]) == 0
    assert out.stat().st_size > 0


def test_bad_model_file_is_one_line_error(files, capsys):
    (files / "bad.pth").write_bytes(b"garbage")
    code = main(
        [
            "inpaint",
            str(files / "photo.png"),
            str(files / "mask.png"),
            "-o",
            str(files / "o.png"),
            "--model",
            str(files / "bad.pth"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "not a PyTorch checkpoint" in err


def test_console_script_runs_as_module(files):
    proc = subprocess.run(
        [sys.executable, "-m", "dfnet.cli", "--help"], capture_output=True, text=True, check=True
    )
    assert "inpaint" in proc.stdout
