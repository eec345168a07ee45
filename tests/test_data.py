"""Image sets, transforms, corrupt-file skipping, per-worker mask seeding and the Lightning data module."""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from dfnet.data import (
    DataConfig,
    ImageTransform,
    InpaintingDataModule,
    InpaintingDataset,
    build_datasets,
    celeba_split,
    epoch_batches,
    find_images,
    image_files,
    read_image_list,
    split_counts,
)
from dfnet.masks import GeneratedMaskSource, PackedMasks, generate_mask, mask_rng, write_mask_set
from dfnet.structured_config import from_plain


def _picture(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A horizontal ramp (column x has red value x) with a seeded blue channel."""
    rng = np.random.default_rng(seed)
    rgb = np.zeros((height, width, 3), dtype=np.uint8)
    rgb[..., 0] = (np.arange(width) % 256)[None, :]
    rgb[..., 1] = (np.arange(height) % 256)[:, None]
    rgb[..., 2] = rng.integers(0, 256, (height, width))
    return rgb


def _save(path, width=40, height=30, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(_picture(width, height, seed)).save(path)
    return path


@pytest.fixture
def folder(tmp_path):
    """Six small images in nested folders, in several formats, plus files to ignore."""
    root = tmp_path / "images"
    for i, name in enumerate(["a.png", "sub/b.JPG", "sub/deeper/c.webp", "d.bmp", "e.jpeg", "sub/f.png"]):
        _save(root / name, 48 + 8 * i, 40, seed=i)
    (root / "notes.txt").write_text("not an image")
    (root / "sub" / "g.gif").write_bytes(b"GIF89a")
    return root


# ---------------------------------------------------------------------------------------------- file sets


def test_find_images_is_recursive_filtered_and_sorted(folder):
    found = [p.relative_to(folder).as_posix() for p in find_images(folder)]
    assert found == ["a.png", "d.bmp", "e.jpeg", "sub/b.JPG", "sub/f.png", "sub/deeper/c.webp"]
    with pytest.raises(FileNotFoundError):
        find_images(folder / "missing")


def test_read_image_list_with_labels_comments_and_roots(tmp_path):
    lists = tmp_path / "lists"
    lists.mkdir()
    text = "# places365 style\n/a/abbey/00000001.jpg 0\n\nb/bar 2.png 17\nc.png\n"
    (lists / "train.txt").write_text(text)
    with_root = read_image_list(lists / "train.txt", tmp_path / "data")
    assert with_root == [
        tmp_path / "data/a/abbey/00000001.jpg",
        tmp_path / "data/b/bar 2.png",
        tmp_path / "data/c.png",
    ]
    without_root = read_image_list(lists / "train.txt")
    assert without_root[1] == lists / "b/bar 2.png"
    assert without_root[0] == Path("/a/abbey/00000001.jpg")  # absolute without a root stays absolute


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
        _save(root / f"{i:06d}.jpg", 16, 20, seed=i)
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


# ---------------------------------------------------------------------------------------------- transforms


def test_transform_centre_crop_after_resizing_the_short_side():
    image = Image.fromarray(_picture(200, 100))
    out = ImageTransform(50, "resize_crop", train=False)(image)
    assert out.shape == (50, 50, 3) and out.dtype == np.uint8
    # scaled by 1/2 to 100x50, centre 50 columns are source columns 50..150: red ramps ~51 -> ~149
    assert abs(int(out[0, 0, 0]) - 51) <= 2 and abs(int(out[0, -1, 0]) - 149) <= 2


def test_transform_random_crop_and_flip_at_native_resolution():
    rgb = _picture(120, 90)
    transform = ImageTransform(64, "crop", train=True, hflip=True)
    rng = np.random.default_rng(0)
    flipped = plain = 0
    for _ in range(20):
        out = transform(Image.fromarray(rgb), rng)
        top = int(out[0, 0, 1]) if out[0, 0, 0] < out[0, -1, 0] else int(out[0, -1, 1])
        left = int(min(out[0, 0, 0], out[0, -1, 0]))
        window = rgb[top : top + 64, left : left + 64]
        if np.array_equal(out, window):
            plain += 1
        else:
            assert np.array_equal(out, window[:, ::-1])  # a mirrored crop, pixels untouched
            flipped += 1
    assert plain and flipped


def test_transform_resize_and_upscaling_small_images():
    small = Image.fromarray(_picture(20, 10))
    assert ImageTransform(32, "resize", train=False)(small).shape == (32, 32, 3)
    assert ImageTransform(32, "crop", train=False)(small).shape == (32, 32, 3)  # too small: upscaled
    with pytest.raises(ValueError):
        ImageTransform(32, "stretch")


# ---------------------------------------------------------------------------------------------- data set


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


# ---------------------------------------------------------------------------------------------- config and module


def test_data_config_defaults_and_round_trip():
    assert DataConfig(dataset="places2").size == 512
    assert DataConfig(dataset="celeba").size == 256
    assert DataConfig(dataset="folder", image_size=128).size == 128
    config = from_plain(
        DataConfig, {"dataset": "list", "root": "r", "list_file": "l.txt", "masks": {"bins": [3]}}
    )
    assert config.masks.bins == (3,)
    assert from_plain(DataConfig, config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown"):
        from_plain(DataConfig, {"batchsize": 3})
    with pytest.raises(ValueError):
        DataConfig(dataset="imagenet")
    with pytest.raises(ValueError, match="list_file"):
        build_datasets(DataConfig(dataset="places2", root="r"))


def test_places2_lists_and_fixed_validation_masks_from_a_mask_dir(tmp_path):
    train_root, val_root = tmp_path / "data_large", tmp_path / "val_large"
    for i in range(4):
        _save(train_root / f"a/abbey/{i:08d}.jpg", 70, 60, seed=i)
        _save(val_root / f"Places365_val_{i:08d}.jpg", 70, 60, seed=10 + i)
    (tmp_path / "train.txt").write_text("".join(f"/a/abbey/{i:08d}.jpg 0\n" for i in range(4)))
    (tmp_path / "val.txt").write_text("".join(f"Places365_val_{i:08d}.jpg 5\n" for i in range(4)))
    write_mask_set(tmp_path / "masks", count=2, size=64, seed=0, bins=(1, 3))
    config = DataConfig(
        dataset="places2",
        root=str(train_root),
        list_file=str(tmp_path / "train.txt"),
        val_root=str(val_root),
        val_list_file=str(tmp_path / "val.txt"),
        val_mask_dir=str(tmp_path / "masks"),
        image_size=32,
    )
    train, val = build_datasets(config)
    assert len(train) == 4 and len(val) == 4
    assert val.file(2) == val_root / "Places365_val_00000002.jpg"
    ratios = [float(val[i]["hole_mask"].mean()) for i in range(4)]
    assert 0.1 <= ratios[0] < 0.2 and 0.3 <= ratios[1] < 0.4 and ratios[2] == ratios[0]


def _module(root, **overrides) -> InpaintingDataModule:
    config = dict(dataset="folder", root=str(root), image_size=32, batch_size=2, num_workers=0, seed=4)
    config.update(overrides)
    return InpaintingDataModule(DataConfig(**config))


def test_data_module_loaders(folder, tmp_path):
    _save(tmp_path / "val" / "x.png", 50, 40)
    _save(tmp_path / "val" / "y.png", 50, 40, seed=1)
    module = _module(folder, val_root=str(tmp_path / "val"), val_mask_count=2)
    module.setup("fit")
    batch = next(iter(module.train_dataloader()))
    assert batch["image"].shape == (2, 3, 32, 32) and batch["hole_mask"].shape == (2, 1, 32, 32)
    assert len(module.train_dataloader()) == 3  # 6 images, batch 2, last partial batch dropped
    first = [b["hole_mask"] for b in module.val_dataloader()]
    second = [b["hole_mask"] for b in module.val_dataloader()]
    assert len(first) == 1 and torch.equal(first[0], second[0])  # fixed validation masks
    assert not torch.equal(first[0][0], first[0][1])
    assert module.skipped_images() == 0
    assert _module(folder).val_dataloader() == []  # no validation configured


def test_data_module_celeba_writes_its_split(tmp_path):
    root = tmp_path / "img_align_celeba"
    for i in range(10):
        _save(root / f"{i:06d}.jpg", 36, 44, seed=i)
    module = _module(root, dataset="celeba", split_file=str(tmp_path / "split.json"), val_mask_count=3)
    module.setup("fit")
    assert len(module.train_dataset) == 9 and len(module.val_dataset) == 1
    assert (tmp_path / "split.json").is_file()
    assert next(iter(module.val_dataloader()))["image"].shape == (1, 3, 32, 32)


def test_data_module_plugs_into_a_lightning_trainer(folder):
    import lightning.pytorch as pl

    class Probe(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.zeros(1))
            self.seen = 0

        def training_step(self, batch, batch_idx):
            self.seen += batch["image"].shape[0]
            return ((batch["image"] * batch["hole_mask"]).mean() - self.weight).pow(2)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    probe = Probe()
    trainer = pl.Trainer(
        max_epochs=1, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False
    )
    trainer.fit(probe, datamodule=_module(folder))
    assert probe.seen == 6


def test_epoch_batches():
    assert epoch_batches(10, 3) == 3
    assert epoch_batches(10, 3, drop_last=False) == 4
    assert epoch_batches(100, 6, world_size=8) == 2  # 13 per rank


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


def test_repeat_reaches_the_training_set_only(folder):
    config = DataConfig(root=str(folder), val_root=str(folder), image_size=32, val_mask_count=2, repeat=4)
    train, val = build_datasets(config)
    assert len(train) == 4 * len(find_images(folder)) and len(val) == len(find_images(folder))


def test_max_zoom_crops_at_several_scales():
    ramp = np.tile(np.linspace(0, 255, 96)[None, :, None], (72, 1, 3)).astype(np.uint8)  # 96x72, x ramp
    image = Image.fromarray(ramp)

    def slopes(transform: ImageTransform) -> list[float]:
        rng = np.random.default_rng(0)
        return [float(np.diff(transform(image, rng)[8, :, 0].astype(float)).mean()) for _ in range(40)]

    fixed = slopes(ImageTransform(24, hflip=False))
    zoomed = slopes(ImageTransform(24, hflip=False, max_zoom=2.0))
    # short side 24 -> width 32: about 255/31 per pixel; at zoom 2, width 64: about half that
    assert max(fixed) - min(fixed) < 0.5 and abs(np.mean(fixed) - 255 / 31) < 0.5
    assert min(zoomed) < 0.6 * max(fixed) and max(zoomed) > 0.9 * min(fixed)
    assert all(255 / 63 - 0.5 < s < 255 / 31 + 0.5 for s in zoomed)
    assert ImageTransform(24, max_zoom=2.0).draft_size() == (48, 48)
    assert slopes(ImageTransform(24, train=False, max_zoom=2.0)) == slopes(ImageTransform(24, train=False))
    with pytest.raises(ValueError, match="max_zoom"):
        ImageTransform(24, max_zoom=0.5)


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


def test_paper_protocol_data_config(folder, tmp_path):
    write_mask_set(tmp_path / "masks", 6, 64, bins=None)
    config = from_plain(
        DataConfig,
        {
            "dataset": "folder",
            "root": str(folder),
            "image_size": 32,
            "resize_mode": "resize",
            "masks": {"source": "paper_set", "mask_dir": str(tmp_path / "masks")},
        },
    )
    train, _ = build_datasets(config, rank=0)
    sample = train[0]
    assert sample["image"].shape == (3, 32, 32) and sample["hole_mask"].shape == (1, 32, 32)
    assert train.mask_source.augment == config.masks.paper_augment


def test_texture_share_repeats_the_rarer_kind_of_a_photo_data_set(tmp_path):
    train = tmp_path / "set" / "train"
    names = [f"scene{i}.jpg" for i in range(2)] + [f"tex{i}.jpg" for i in range(7)]
    for i, name in enumerate(names):
        _save(train / name, seed=i)
    rows = ["split,file,package,kind"] + [
        f"train,train/{n},p,{n[:3] == 'tex' and 'texture' or 'scene'}" for n in names
    ]
    (tmp_path / "set" / "manifest.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")

    def listed(share):
        files, _ = image_files(DataConfig(root=str(train), texture_share=share))
        return sorted(Counter(f.name for f in files).items())

    # 7 textures per 2 scenes; a half share repeats each scene round(7 / 2) = 4 times (8 scenes : 7 textures)
    assert listed(0.5) == [("scene0.jpg", 4), ("scene1.jpg", 4)] + [(f"tex{i}.jpg", 1) for i in range(7)]
    # a 0.9 share wants 18 textures for 2 scenes: each texture round(18 / 7) = 3 times
    assert listed(0.9) == [("scene0.jpg", 1), ("scene1.jpg", 1)] + [(f"tex{i}.jpg", 3) for i in range(7)]
    assert len(image_files(DataConfig(root=str(train)))[0]) == 9  # no share: every image once
    with pytest.raises(ValueError, match="between 0 and 1"):
        DataConfig(root=str(train), texture_share=1.0)
    (tmp_path / "set" / "manifest.csv").unlink()
    with pytest.raises(FileNotFoundError, match="manifest.csv"):
        image_files(DataConfig(root=str(train), texture_share=0.5))
