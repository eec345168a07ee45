"""The CelebA split: a seeded 27,000 / 3,000 train/test split, saved to and reused from a JSON file."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dfnet.data.image_lists import find_images
from dfnet.files import atomic_write_text

CELEBA_TRAIN, CELEBA_TEST = 27_000, 3_000


@dataclass(frozen=True)
class CelebASplit:
    """The train and test images of a CelebA split."""

    train: list[Path]
    test: list[Path]


def split_counts(n_images: int, train: int = CELEBA_TRAIN, test: int = CELEBA_TEST) -> tuple[int, int]:
    """(train, test) sizes: the paper's 27,000 / 3,000 when there are enough images, else 90 % / 10 %."""
    if n_images >= train + test:
        return train, test
    if n_images < 2:
        raise ValueError(f"a train/test split needs at least 2 images, found {n_images}")
    n_test = min(max(1, round(n_images * test / (train + test))), n_images - 1)
    return n_images - n_test, n_test


def celeba_split(
    root: str | os.PathLike,
    split_file: str | os.PathLike | None = None,
    seed: int = 0,
    train: int = CELEBA_TRAIN,
    test: int = CELEBA_TEST,
) -> CelebASplit:
    """Read the split from ``split_file`` if it exists, else draw it (seeded) from ``root`` and write it there.

    The file is JSON ``{"seed", "train": [...], "test": [...]}`` with paths relative to ``root``, so the
    same split is reused by every later run (and can be shared). Default file: ``root/dfnet_split.json``.
    """
    root = Path(root)
    path = Path(split_file) if split_file is not None else root / "dfnet_split.json"
    if path.is_file():
        data = json.loads(path.read_text(encoding="utf-8"))
        return CelebASplit([root / p for p in data["train"]], [root / p for p in data["test"]])
    images = [p.relative_to(root).as_posix() for p in find_images(root)]
    n_train, n_test = split_counts(len(images), train, test)
    order = np.random.Generator(np.random.PCG64(seed)).permutation(len(images))
    chosen = {
        "train": [images[i] for i in order[:n_train]],
        "test": [images[i] for i in order[n_train : n_train + n_test]],
    }
    try:
        atomic_write_text(path, json.dumps({"seed": seed, "root": str(root), **chosen}, indent=0) + "\n")
    except OSError as err:
        raise OSError(f"cannot write the CelebA split file {path} ({err.strerror}); set split_file") from None
    return CelebASplit([root / p for p in chosen["train"]], [root / p for p in chosen["test"]])
