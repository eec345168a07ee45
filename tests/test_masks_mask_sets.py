"""Mask sets on disk and in memory (dfnet.masks.mask_sets), and `dfnet masks generate/info`."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from PIL import Image

from dfnet.cli import main
from dfnet.imageio import hole_ratio, load_mask
from dfnet.masks import (
    PackedMasks,
    bin_counts,
    bin_of,
    generate_mask,
    generate_masks,
    mask_rng,
    read_mask_index,
    write_mask_set,
)


def test_write_and_read_mask_set_round_trip(tmp_path):
    records = write_mask_set(tmp_path / "set", count=7, size=64, seed=11, bins=(1, 3))
    with open(tmp_path / "set" / "index.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["file", "hole_ratio", "bin"]
    assert [int(r[2]) for r in rows[1:]] == [1, 3, 1, 3, 1, 3, 1]
    read = read_mask_index(tmp_path / "set")
    assert read == records == read_mask_index(tmp_path / "set" / "index.csv")
    generated = list(generate_masks(7, 64, seed=11, bins=(1, 3)))
    for record, mask in zip(read, generated, strict=True):
        from_file = load_mask(record.path)
        assert np.array_equal(from_file, mask.hole_mask)  # PNG white = hole, lossless
        assert record.hole_ratio == pytest.approx(hole_ratio(from_file), abs=1e-6)
        assert record.bin == bin_of(hole_ratio(from_file))
    assert bin_counts(read) == {1: 4, 3: 3}
    with pytest.raises(FileExistsError):
        write_mask_set(tmp_path / "set", count=1, size=64)


def test_read_mask_index_scans_a_folder_without_index(tmp_path):
    hole = np.zeros((20, 20), dtype=bool)
    hole[:5, :8] = True  # 10 %
    Image.fromarray(hole.astype(np.uint8) * 255).save(tmp_path / "b.png")
    Image.fromarray(np.full((10, 10), 255, np.uint8)).save(tmp_path / "a.png")  # 100 %: outside the bins
    (tmp_path / "notes.txt").write_text("not a mask")
    records = read_mask_index(tmp_path)
    assert [r.file for r in records] == ["a.png", "b.png"]
    assert [r.bin for r in records] == [None, 1]
    assert records[1].hole_ratio == pytest.approx(0.1)


def test_read_mask_index_reports_bad_files(tmp_path):
    (tmp_path / "index.csv").write_text("file,ratio\nx.png,0.1\n")
    with pytest.raises(ValueError, match="missing column"):
        read_mask_index(tmp_path)
    with pytest.raises(FileNotFoundError):
        read_mask_index(tmp_path / "nothing.csv")


def test_packed_masks_round_trip():
    masks = [generate_mask((33, 70), mask_rng(1, i), i) for i in range(5)]
    packed = PackedMasks(masks)
    assert len(packed) == 5
    for original, unpacked in zip(masks, packed, strict=True):
        assert unpacked.dtype == bool and np.array_equal(original, unpacked)


def test_cli_generate_and_info(tmp_path, capsys):
    out = tmp_path / "masks"
    code = main(
        ["masks", "generate", str(out), "--count", "10", "--size", "64", "--seed", "3", "--bins", "0,4"]
    )
    assert code == 0
    records = read_mask_index(out)
    assert len(records) == 10 and bin_counts(records) == {0: 5, 4: 5}
    assert all(Image.open(r.path).size == (64, 64) for r in records)
    assert main(["masks", "generate", str(out), "--count", "2", "--size", "64"]) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert main(["masks", "generate", str(out), "--count", "2", "--size", "64", "--overwrite"]) == 0
    records = read_mask_index(out)
    assert len(records) == 2
    assert sorted(p.name for p in out.iterdir()) == ["00000.png", "00001.png", "index.csv"]  # old masks gone
    capsys.readouterr()
    assert main(["masks", "info", str(out), str(records[0].path)]) == 0
    text = capsys.readouterr().out
    assert "2 masks" in text
    assert f"hole ratio {records[0].hole_ratio:.2%}" in text and "64x64" in text
    with pytest.raises(SystemExit) as refused:  # refused by the parser, before anything is written
        main(["masks", "generate", str(tmp_path / "x"), "--bins", "7"])
    assert refused.value.code == 2 and not (tmp_path / "x").exists()


def test_write_mask_set_is_atomic(tmp_path, monkeypatch):
    import dfnet.masks.mask_sets as masks_module

    write_mask_set(tmp_path / "set", 4, 32, seed=0)
    calls = []

    def failing_png(hole_mask, path):
        calls.append(path)
        if len(calls) == 3:
            raise OSError("disk full")
        return real_png(hole_mask, path)

    real_png = masks_module._write_png
    monkeypatch.setattr(masks_module, "_write_png", failing_png)
    with pytest.raises(OSError, match="disk full"):
        write_mask_set(tmp_path / "set", 4, 32, seed=1, overwrite=True)
    names = sorted(p.name for p in (tmp_path / "set").iterdir())
    assert names == []  # a complete set or none: no index, no half set, no temp files
    assert calls[0].startswith(str(tmp_path / "set" / ".00000.png."))  # written under a temporary name
