"""Augmentation of set masks (dfnet.masks.augment): this project's and the paper's."""

from __future__ import annotations

import numpy as np
import pytest

from dfnet.masks import (
    MaskAugmentConfig,
    augment_mask,
)


def _stripe() -> np.ndarray:
    hole = np.zeros((64, 64), dtype=bool)
    hole[10:20, 5:50] = True
    hole[30:60, 40:45] = True
    return hole


@pytest.mark.parametrize("size", [(64, 64), (32, 32), (128, 96)])
def test_augmentation_keeps_masks_binary_and_sized(size):
    rng = np.random.default_rng(0)
    for _ in range(30):
        out = augment_mask(_stripe(), rng, size)
        assert out.dtype == bool and out.shape == size
        assert out.any()
    # the uint8 path underneath never yields grey values either
    assert set(np.unique(augment_mask(_stripe(), rng, size).view(np.uint8))) <= {0, 1}


def test_flip_and_rotation_only_give_the_eight_symmetries():
    config = MaskAugmentConfig(scale=(1.0, 1.0), translate=0.0, morph=0.0)
    hole = _stripe()
    symmetries = [np.rot90(f, k) for f in (hole, hole[:, ::-1]) for k in range(4)]
    rng = np.random.default_rng(1)
    seen = set()
    for _ in range(60):
        out = augment_mask(hole, rng, None, config)
        matches = [i for i, s in enumerate(symmetries) if np.array_equal(out, s)]
        assert matches
        seen.add(matches[0])
    assert len(seen) == 8


def test_dilation_and_erosion_grow_or_shrink_the_hole():
    config = MaskAugmentConfig(flip=False, rotate90=False, scale=(1.0, 1.0), translate=0.0, morph=0.05)
    hole = _stripe()
    rng = np.random.default_rng(2)
    grew = shrank = 0
    for _ in range(40):
        out = augment_mask(hole, rng, None, config)
        if out.sum() > hole.sum():
            assert not (hole & ~out).any()  # dilation keeps every hole pixel
            grew += 1
        elif out.sum() < hole.sum():
            assert not (out & ~hole).any()  # erosion adds none
            shrank += 1
    assert grew and shrank


def test_zoom_changes_the_mask_and_resizes():
    config = MaskAugmentConfig(flip=False, rotate90=False, scale=(2.0, 2.0), translate=0.0, morph=0.0)
    hole = _stripe()
    doubled = np.repeat(np.repeat(hole, 2, axis=0), 2, axis=1)  # 128x128
    windows = set()
    for seed in range(5):
        out = augment_mask(hole, np.random.default_rng(seed), (64, 64), config)
        # zoomed 2x, then a random 64x64 crop: the output is one window of the doubled mask
        found = [
            (y, x)
            for y in range(65)
            for x in range(65)
            if np.array_equal(out, doubled[y : y + 64, x : x + 64])
        ]
        assert found
        windows.add(found[0])
    assert len(windows) > 1  # the crop position is random


def test_paper_augmentation_identity_and_known_fill():
    from dfnet.masks import PaperAugmentConfig, paper_augment_mask

    rng = np.random.default_rng(0)
    mask = np.zeros((32, 32), dtype=bool)
    mask[4:12, 20:30] = True
    identity = PaperAugmentConfig(hflip=False, degrees=0, scale=(1, 1), translate=0, shear=0)
    assert np.array_equal(paper_augment_mask(mask, rng, 32, identity), mask)
    # resized to the image first (nearest neighbour): 64x64, the hole doubled
    assert np.array_equal(paper_augment_mask(mask, rng, 64, identity), mask.repeat(2, 0).repeat(2, 1))
    # a full-hole mask shrunk to half about the centre: the border brought in is known -> the central 32x32
    full = np.ones((64, 64), dtype=bool)
    half = PaperAugmentConfig(hflip=False, degrees=0, scale=(0.5, 0.5), translate=0, shear=0)
    shrunk = paper_augment_mask(full, rng, 64, half)
    assert shrunk.sum() == 32 * 32 and shrunk[16:48, 16:48].all()
    # a vertical strip moved sideways by whole pixels, at most 20 % of the side (10 px) either way
    moved = PaperAugmentConfig(hflip=False, degrees=0, scale=(1, 1), translate=0.2, shear=0)
    strip = np.zeros((50, 50), dtype=bool)
    strip[:, 20:25] = True
    lefts = {int(np.flatnonzero(paper_augment_mask(strip, rng, 50, moved).any(0))[0]) for _ in range(400)}
    assert lefts == set(range(10, 31))
    flips = {
        paper_augment_mask(mask, rng, 32, PaperAugmentConfig(degrees=0, scale=(1, 1), translate=0, shear=0))[
            4, 0
        ]
        for _ in range(50)
    }
    assert flips == {False} and mask[4, 20]  # the flip mirrors columns 20-29 to 2-11, never column 0


def test_paper_affine_draws_inside_the_paper_ranges():
    from dfnet.masks import PaperAugmentConfig, paper_affine

    rng = np.random.default_rng(1)
    config = PaperAugmentConfig()
    for _ in range(300):
        matrix = paper_affine(rng, 100, 200, config)
        linear = matrix[:, :2]
        zoom_sq = abs(np.linalg.det(linear))  # det = zoom^2 (rotation and shear keep areas)
        assert 0.25 - 1e-9 <= zoom_sq <= 4 + 1e-9
        rotation = np.degrees(np.arctan2(linear[1, 0], linear[0, 0]))  # the first column is zoom * R e_x
        assert abs(rotation) <= 20 + 1e-9
        centre = np.array([99.5, 49.5])
        shift = linear @ centre + matrix[:, 2] - centre  # where the centre goes
        assert abs(shift[0]) <= 40 and abs(shift[1]) <= 20 and np.allclose(shift, np.round(shift))
