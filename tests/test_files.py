"""Atomic writes: complete files only, usual permissions, nothing left behind on failure."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import numpy as np
import pytest
from helpers import (
    assert_one_line_error,
    encode,
    files_in,
    hole_rect,
    mask_bytes,
    picture,
    run_cli,
)
from PIL import Image

from dfnet.files import atomic_write, atomic_write_bytes, atomic_write_text, file_sha256
from dfnet.model import DFNet, DFNetConfig


def test_atomic_write_bytes_and_text(tmp_path):
    atomic_write_bytes(tmp_path / "a" / "b.bin", b"\x00\x01")
    atomic_write_text(tmp_path / "c.txt", "héllo")
    assert (tmp_path / "a" / "b.bin").read_bytes() == b"\x00\x01"
    assert (tmp_path / "c.txt").read_text(encoding="utf-8") == "héllo"


def test_atomic_write_uses_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_bytes(tmp_path / "f", b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "f").stat().st_mode) == 0o644


def test_failed_write_keeps_old_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "keep.txt"
    target.write_text("old")

    def broken(tmp: str) -> None:
        with open(tmp, "w") as f:
            f.write("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(target, broken)
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


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


def test_file_sha256_reads_in_chunks(tmp_path: Path) -> None:
    (tmp_path / "abc").write_bytes(b"abc")
    assert file_sha256(tmp_path / "abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    big = bytes(range(256)) * 5000  # 1.28 MB: more than one 1 MiB chunk
    (tmp_path / "big").write_bytes(big)
    assert file_sha256(tmp_path / "big") == hashlib.sha256(big).hexdigest()
