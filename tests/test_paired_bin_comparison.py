"""scripts/paired_bin_comparison.py: per-bin statistics, the paired bootstrap, and a run on saved grids."""

from __future__ import annotations

import csv
import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "paired_bin_comparison.py"
spec = importlib.util.spec_from_file_location("paired_bin_comparison", SCRIPT)
paired = importlib.util.module_from_spec(spec)
spec.loader.exec_module(paired)


def test_bin_statistics_mean_l1_and_pooled_bpe():
    rows = np.array([[0.1, 2.0, 4.0], [0.3, 6.0, 4.0], [0.2, 1.0, 2.0]])
    l1, bpe = paired.bin_statistics(rows)
    assert l1 == pytest.approx(0.2) and bpe == pytest.approx(
        9.0 / 10.0
    )  # pooled, not the mean of 0.5/1.5/0.5


def test_compare_a_constant_shift():
    rng = np.random.default_rng(0)
    a = np.column_stack([rng.uniform(0, 0.1, 30), rng.uniform(1, 2, 30), np.full(30, 10.0)])
    b = a + np.array([0.01, 0.5, 0.0])  # B worse by 0.01 in L1 and by 0.05 in band error per pixel everywhere
    l1, bpe = paired.compare(a, b, resamples=200, seed=0)
    assert l1["diff"] == pytest.approx(0.01) and l1["low"] == pytest.approx(0.01) and l1["a_lower"] == 1.0
    assert bpe["diff"] == pytest.approx(0.05) and bpe["high"] == pytest.approx(0.05)


def _write_run(folder: Path, truths: list[np.ndarray], results: list[np.ndarray], names: list[str]) -> None:
    (folder / "grids").mkdir(parents=True)
    for name, truth, result in zip(names, truths, results, strict=True):
        grid = np.concatenate([truth, result, truth], axis=1)
        Image.fromarray(grid).save(folder / "grids" / f"{name}.png")


def test_script_on_saved_grids(tmp_path: Path):
    rng = np.random.default_rng(1)
    masks = tmp_path / "masks"
    masks.mkdir()
    hole = np.zeros((16, 16), np.uint8)
    hole[4:12, 4:12] = 255
    Image.fromarray(hole).save(masks / "00000.png")
    with open(masks / "index.csv", "w", newline="") as f:
        csv.writer(f).writerows([["file", "hole_ratio", "bin"], ["00000.png", 0.25, 2]])
    truths = [rng.integers(0, 200, (16, 16, 3), dtype=np.uint8) for _ in range(3)]
    names = [f"{i:06d}_photo{i}_00000" for i in range(3)]
    _write_run(tmp_path / "exact", truths, truths, names)
    _write_run(tmp_path / "off", truths, [t + 20 for t in truths], names)  # 20/255 off everywhere
    out = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            str(tmp_path / "exact"),
            str(tmp_path / "off"),
            "--masks",
            str(masks),
            "--resamples",
            "100",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rows = [line for line in out.splitlines() if line.startswith("| 2 |")]
    assert len(rows) == 2
    for row in rows:  # L1 and BPE: A = 0, B = 20/255 = 7.843 x100, A lower in every resample
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[1] == "3" and cells[3] == "0.000" and cells[4] == "7.843" and cells[7] == "1.000"
