"""The Lightning data module (dfnet.data.datamodule): image sets, validation masks and loaders."""

from __future__ import annotations

from collections import Counter

import pytest
import torch
from helpers import save_picture

from dfnet.data import (
    DataConfig,
    InpaintingDataModule,
    build_datasets,
    epoch_batches,
    find_images,
    image_files,
)
from dfnet.masks import write_mask_set


def test_places2_lists_and_fixed_validation_masks_from_a_mask_dir(tmp_path):
    train_root, val_root = tmp_path / "data_large", tmp_path / "val_large"
    for i in range(4):
        save_picture(train_root / f"a/abbey/{i:08d}.jpg", 70, 60, seed=i)
        save_picture(val_root / f"Places365_val_{i:08d}.jpg", 70, 60, seed=10 + i)
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
    save_picture(tmp_path / "val" / "x.png", 50, 40)
    save_picture(tmp_path / "val" / "y.png", 50, 40, seed=1)
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
        save_picture(root / f"{i:06d}.jpg", 36, 44, seed=i)
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


def test_repeat_reaches_the_training_set_only(folder):
    config = DataConfig(root=str(folder), val_root=str(folder), image_size=32, val_mask_count=2, repeat=4)
    train, val = build_datasets(config)
    assert len(train) == 4 * len(find_images(folder)) and len(val) == len(find_images(folder))


def test_texture_share_repeats_the_rarer_kind_of_a_photo_data_set(tmp_path):
    train = tmp_path / "set" / "train"
    names = [f"scene{i}.jpg" for i in range(2)] + [f"tex{i}.jpg" for i in range(7)]
    for i, name in enumerate(names):
        save_picture(train / name, seed=i)
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
