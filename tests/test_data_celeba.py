"""The CelebA split (dfnet.data.celeba)."""

from __future__ import annotations

import json

import pytest
from helpers import save_picture

from dfnet.data import (
    celeba_split,
    find_images,
    split_counts,
)


def test_split_counts_follow_the_paper_and_scale_down():
    assert split_counts(202_599) == (27_000, 3_000)
    assert split_counts(30_000) == (27_000, 3_000)
    assert split_counts(20) == (18, 2)
    assert split_counts(3) == (2, 1)
    with pytest.raises(ValueError):
        split_counts(1)


def test_celeba_split_is_seeded_written_and_reused(tmp_path):
    root = tmp_path / "celeba"
    for i in range(20):
        save_picture(root / f"{i:06d}.jpg", 16, 20, seed=i)
    split_file = tmp_path / "split.json"
    split = celeba_split(root, split_file, seed=3)
    assert len(split.train) == 18 and len(split.test) == 2
    assert set(split.train).isdisjoint(split.test)
    assert set(split.train) | set(split.test) == set(find_images(root))
    saved = json.loads(split_file.read_text())
    assert saved["seed"] == 3 and sorted(saved["test"]) == sorted(p.name for p in split.test)
    # reused: a different seed does not redraw an existing split
    assert celeba_split(root, split_file, seed=99) == split
    # the same seed draws the same split afresh; another seed draws another one
    assert celeba_split(root, tmp_path / "again.json", seed=3) == split
    others = [celeba_split(root, tmp_path / f"s{s}.json", seed=s).test for s in range(4, 8)]
    assert any(t != split.test for t in others)
