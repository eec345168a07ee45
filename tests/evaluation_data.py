"""Test data shared by the evaluation tests: 32x32 pictures, rectangle masks, the ``dataset`` fixture (a plugin that
conftest.py loads) and a CLI runner."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dfnet.cli import main

SIZE = 32
# Hole rectangles at 32x32 and the bins their ratios fall in (None: outside the paper's bins).
MASK_RECTS = {
    "a_small": ((4, 10), (4, 12), 0),  # 6 x 8 = 48 px = 4.7 %
    "b_medium": ((8, 20), (6, 16), 1),  # 12 x 10 = 120 px = 11.7 %
    "c_large": ((2, 30), (3, 15), 3),  # 28 x 12 = 336 px = 32.8 %
    "d_huge": ((0, 32), (0, 20), None),  # 640 px = 62.5 %
    "e_empty": ((0, 0), (0, 0), None),
}


def picture(seed: int, width: int = SIZE, height: int = SIZE) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack([x * 7, y * 5, (x + y) * 3], axis=2) + rng.integers(0, 40, (height, width, 3))
    return np.clip(rgb, 0, 255).astype(np.uint8)


def mask_picture(rect: tuple) -> np.ndarray:
    (y0, y1), (x0, x1), _ = rect
    hole = np.zeros((SIZE, SIZE), np.uint8)
    hole[y0:y1, x0:x1] = 255
    return hole


def make_dataset(tmp_path: Path) -> dict[str, Path]:
    """Five 32x32 images (one in a sub-folder), the masks of MASK_RECTS and an index.csv of three of them."""
    images, masks = tmp_path / "images", tmp_path / "masks"
    (images / "sub").mkdir(parents=True)
    masks.mkdir()
    for i, name in enumerate(["b.png", "a.png", "sub/c.png", "d.jpg", "e.png"]):
        Image.fromarray(picture(i)).save(images / name, quality=95)
    for name, rect in MASK_RECTS.items():
        Image.fromarray(mask_picture(rect)).save(masks / f"{name}.png")
    rows = ["file,hole_ratio,bin"] + [f"masks/{n}.png,0,0" for n in ("b_medium", "a_small", "c_large")]
    (tmp_path / "index.csv").write_text("\n".join(rows) + "\n")  # paths are relative to the index
    return {"images": images, "masks": masks, "out": tmp_path / "report"}


@pytest.fixture
def dataset(tmp_path: Path) -> dict[str, Path]:
    """Five 32x32 images (one in a sub-folder), the masks of MASK_RECTS and an index.csv of three of them."""
    return make_dataset(tmp_path)


def run_eval(data: dict[str, Path], *extra: str) -> int:
    args = ["eval", "--images", str(data["images"]), "--masks", str(data["masks"]), "--out", str(data["out"])]
    return main([*args, "--size", str(SIZE), "--workers", "0", "--quiet", "--batch-size", "2", *extra])


def load_report(path: Path) -> dict:
    return json.loads(path.read_text())


def rows_by_bin(report: dict) -> dict:
    return {row["bin"]: row for row in report["bins"]}


def assert_table_matches(parsed: dict, report: dict) -> None:
    """Every cell equals the JSON value to the printed precision (missing values stay missing)."""
    decimals = {"l1": 2, "bpe": 2, "fid": 2, "psnr": 2, "ssim": 4, "lpips": 4, "grad_ratio": 3, "detail": 3}
    decimals["swd"] = 2
    scale = {"l1": 100, "bpe": 100, "swd": 1000}
    checked = 0
    for row in report["bins"]:
        for key, places in decimals.items():
            if (key, row["label"]) not in parsed:
                assert key == "lpips"  # the LPIPS columns only appear when some report has LPIPS
                continue
            value, shown = row[key], parsed[(key, row["label"])]
            if value is None:
                assert shown is None
            else:
                unit = 10.0**-places / scale.get(key, 1)
                assert shown == pytest.approx(value, abs=unit / 2 + 1e-12)
            checked += 1
    assert checked >= 8 * len(report["bins"])
