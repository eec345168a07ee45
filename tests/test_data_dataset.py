"""The inpainting dataset (dfnet.data.dataset): samples, unreadable files, seeding across workers and ranks."""

from __future__ import annotations

import logging

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from dfnet.data import (
    DataConfig,
    ImageTransform,
    InpaintingDataset,
    find_images,
)
from dfnet.masks import GeneratedMaskSource, PackedMasks, generate_mask, mask_rng


def test_samples_have_the_documented_layout(folder):
    dataset = InpaintingDataset(
        find_images(folder), ImageTransform(32), GeneratedMaskSource(), seed=0, rank=0
    )
    sample = dataset[2]
    assert set(sample) == {"image", "hole_mask", "index"}
    image, hole = sample["image"], sample["hole_mask"]
    assert image.shape == (3, 32, 32) and image.dtype == torch.float32
    assert image.min() >= 0.0 and image.max() <= 1.0 and image.max() > 0.5
    assert hole.shape == (1, 32, 32) and hole.dtype == torch.float32
    assert set(hole.unique().tolist()) <= {0.0, 1.0} and hole.sum() > 0
    assert sample["index"] == 2


def test_unreadable_images_are_skipped_counted_and_reported_once(folder, caplog):
    (folder / "zero.png").write_bytes(b"")
    (folder / "garbage.jpg").write_bytes(b"this is not a jpeg at all")
    data = (folder / "a.png").read_bytes()
    (folder / "sub" / "truncated.png").write_bytes(data[: len(data) // 2])
    files = find_images(folder)
    assert len(files) == 9
    dataset = InpaintingDataset(files, ImageTransform(32), GeneratedMaskSource(), seed=0, rank=0)
    with caplog.at_level(logging.WARNING, logger="dfnet.data"):
        for _ in range(2):  # two epochs: bad files are counted once
            batches = list(DataLoader(dataset, batch_size=3, num_workers=0))
    assert sum(len(b["index"]) for b in batches) == 9  # the epoch completes with replacements
    used = {files[i].name for b in batches for i in b["index"].tolist()}
    assert used.isdisjoint({"zero.png", "garbage.jpg", "truncated.png"})
    assert dataset.skipped == 3
    assert {p.name for p in dataset.skipped_files()} == {"zero.png", "garbage.jpg", "truncated.png"}
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "skipping unreadable image" in warnings[0].getMessage()
    # worker processes share one count
    fresh = InpaintingDataset(files, ImageTransform(32), GeneratedMaskSource(), seed=0, rank=0)
    assert sum(len(b["index"]) for b in DataLoader(fresh, batch_size=2, num_workers=2)) == 9
    assert fresh.skipped == 3


def test_a_set_of_only_bad_images_fails_clearly(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"nope")
    dataset = InpaintingDataset([tmp_path / "bad.png"], ImageTransform(32), GeneratedMaskSource())
    with pytest.raises(RuntimeError, match="no readable image"):
        dataset[0]


def _masks_by_worker(dataset, workers: int, seed: int = 0) -> dict[int, list[torch.Tensor]]:
    loader = DataLoader(
        dataset, batch_size=2, num_workers=workers, generator=torch.Generator().manual_seed(seed)
    )
    return [batch["hole_mask"] for batch in loader]


@pytest.mark.timeout(120)
def test_two_workers_draw_different_masks_and_runs_repeat(folder):
    # Start OpenCV's thread pool in this process first: forked workers must not touch it (they used to hang).
    big = np.zeros((1024, 1024, 3), np.uint8)
    cv2.warpAffine(big, np.eye(2, 3), (1024, 1024))
    cv2.resize(big, (700, 700))
    image = find_images(folder)[0]
    dataset = InpaintingDataset([image] * 4, ImageTransform(32), GeneratedMaskSource(), seed=5, rank=0)
    batches = _masks_by_worker(dataset, workers=2)
    # batch 0 comes from worker 0, batch 1 from worker 1; each is its worker's first draw
    assert len(batches) == 2 and not torch.equal(batches[0][0], batches[1][0])
    again = _masks_by_worker(dataset, workers=2)
    assert all(torch.equal(a, b) for a, b in zip(batches, again, strict=True))  # same loader seed: same masks
    other_epoch = _masks_by_worker(dataset, workers=2, seed=1)
    assert not torch.equal(batches[0], other_epoch[0])  # a new worker seed (next epoch) draws new masks


def test_ranks_draw_different_masks(folder, monkeypatch):
    files = find_images(folder)[:2]

    def first_mask(rank: int | None) -> torch.Tensor:
        dataset = InpaintingDataset(files, ImageTransform(32), GeneratedMaskSource(), seed=1, rank=rank)
        return dataset[0]["hole_mask"]

    assert torch.equal(first_mask(0), first_mask(0))
    assert not torch.equal(first_mask(0), first_mask(1))
    monkeypatch.setenv("RANK", "1")  # without an explicit rank, the launcher's RANK is used
    assert torch.equal(first_mask(None), first_mask(1))


def test_fixed_masks_pair_by_index_and_resize(folder):
    masks = PackedMasks([generate_mask(16, mask_rng(0, i), i) for i in range(3)])
    dataset = InpaintingDataset(find_images(folder), ImageTransform(32, train=False), fixed_masks=masks)
    for index in (0, 4):
        expected = np.repeat(np.repeat(masks[index % 3], 2, axis=0), 2, axis=1)
        assert np.array_equal(dataset[index]["hole_mask"][0].numpy().astype(bool), expected)
    assert torch.equal(dataset[1]["image"], dataset[1]["image"])  # validation crops are not random
    with pytest.raises(ValueError):
        InpaintingDataset(find_images(folder), ImageTransform(32))


def test_repeat_lists_each_image_several_times_with_its_own_crop_and_mask(folder):
    files = find_images(folder)
    once = InpaintingDataset(files, ImageTransform(32), GeneratedMaskSource(), seed=3, rank=0)
    thrice = InpaintingDataset(files, ImageTransform(32), GeneratedMaskSource(), seed=3, rank=0, repeat=3)
    assert len(thrice) == 3 * len(once) and thrice.image_count == len(once) == len(files)
    assert thrice.files == once.files
    n = len(files)
    once.set_epoch(0), thrice.set_epoch(0)
    for index in (0, n - 1):
        first, again = thrice[index], thrice[index + n]
        assert first["index"] == again["index"] == index  # the same file ...
        assert not torch.equal(first["hole_mask"], again["hole_mask"])  # ... with a new mask
        assert torch.equal(first["hole_mask"], once[index]["hole_mask"])  # first pass = repeat 1
    with pytest.raises(ValueError, match="repeat"):
        InpaintingDataset(files, ImageTransform(32), GeneratedMaskSource(), repeat=0)
    with pytest.raises(ValueError, match="repeat"):
        DataConfig(root=str(folder), repeat=0)


def test_images_smaller_than_the_working_size_warn_once(folder, caplog):
    dataset = InpaintingDataset(
        find_images(folder), ImageTransform(64, "resize"), GeneratedMaskSource(), rank=0
    )
    with caplog.at_level(logging.WARNING, logger="dfnet.data"):
        samples = [dataset[i] for i in range(len(dataset))]
    assert all(s["image"].shape == (3, 64, 64) for s in samples)  # stretched, aspect not kept
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "is 48x40, smaller than the working size 64: it is upscaled" in warnings[0]
    caplog.clear()
    fine = InpaintingDataset(find_images(folder), ImageTransform(40, "resize"), GeneratedMaskSource(), rank=0)
    with caplog.at_level(logging.WARNING, logger="dfnet.data"):
        fine[0]
    assert not caplog.records
