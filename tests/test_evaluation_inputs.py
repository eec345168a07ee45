"""Evaluation inputs: image listing, fitting to size, mask sets and their bins."""

from __future__ import annotations

import numpy as np
import pytest
from evaluation_data import (
    MASK_RECTS,
    SIZE,
    mask_picture,
    picture,
)
from PIL import Image

from dfnet.evaluation import (
    fit_square,
    list_images,
    load_mask_set,
)


def test_images_are_sorted_by_relative_path(dataset):
    names = [p.relative_to(dataset["images"]).as_posix() for p in list_images(dataset["images"])]
    assert names == ["a.png", "b.png", "d.jpg", "e.png", "sub/c.png"]


def test_fit_square_resizes_the_short_side_and_crops_the_centre():
    wide = np.zeros((40, 80, 3), np.uint8)
    wide[:, 20:60] = 255  # the centre square of the 40x80 picture is white
    fitted = np.asarray(fit_square(Image.fromarray(wide), 20, Image.Resampling.NEAREST))
    assert fitted.shape == (20, 20, 3) and (fitted == 255).all()
    same = Image.fromarray(picture(0))
    assert fit_square(same, SIZE, Image.Resampling.BICUBIC) is same


def test_masks_get_their_measured_ratio_and_bin(dataset):
    entries = {e.path.stem: e for e in load_mask_set(dataset["masks"], SIZE)}
    assert set(entries) == set(MASK_RECTS)
    for name, rect in MASK_RECTS.items():
        (y0, y1), (x0, x1), expected_bin = rect
        assert entries[name].hole_ratio == pytest.approx((y1 - y0) * (x1 - x0) / SIZE**2)
        assert entries[name].bin == expected_bin


def test_mask_index_lists_files_in_its_order(dataset):
    index = dataset["masks"].parent / "index.csv"
    entries = load_mask_set(index, SIZE)
    assert [e.path.stem for e in entries] == ["b_medium", "a_small", "c_large"]
    assert [e.bin for e in entries] == [1, 0, 3]  # measured at the evaluation size, not read from the file
    folder = dataset["masks"].parent / "indexed"
    folder.mkdir()
    (folder / "index.csv").write_text(index.read_text().replace("masks/", "../masks/"))
    (folder / "stray.png").write_bytes((dataset["masks"] / "d_huge.png").read_bytes())
    assert [e.path.stem for e in load_mask_set(folder, SIZE)] == ["b_medium", "a_small", "c_large"]


def test_masks_are_resized_with_the_images(dataset):
    # a 64x64 mask with the same rectangle scaled by 2 measures the same ratio at 32x32
    Image.fromarray(np.kron(mask_picture(MASK_RECTS["b_medium"]), np.ones((2, 2), np.uint8))).save(
        dataset["masks"] / "f_big.png"
    )
    entries = {e.path.stem: e for e in load_mask_set(dataset["masks"], SIZE)}
    assert entries["f_big"].hole_ratio == entries["b_medium"].hole_ratio
