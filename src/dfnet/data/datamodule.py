"""The Lightning data module: the configured image sets, validation masks and loaders."""

from __future__ import annotations

import math
from pathlib import Path

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader

from dfnet.data.celeba import celeba_split
from dfnet.data.data_config import DataConfig
from dfnet.data.dataset import InpaintingDataset
from dfnet.data.image_lists import balance_kinds, find_images, manifest_kinds, read_image_list
from dfnet.data.transforms import ImageTransform
from dfnet.masks import PackedMasks, build_mask_source, generate_masks


def _need(value: str | None, what: str, kind: str) -> str:
    if not value:
        raise ValueError(f"dataset {kind!r} needs {what}")
    return value


def image_files(config: DataConfig) -> tuple[list[Path], list[Path] | None]:
    """(training files, validation files or None) for a configuration."""
    kind = config.dataset
    root = _need(config.root, "root", kind)
    if kind == "celeba":
        split = celeba_split(root, config.split_file, config.seed, config.celeba_train, config.celeba_test)
        return split.train, split.test
    if kind == "folder":
        train = find_images(root)
        if config.texture_share is not None:
            train = balance_kinds(
                train, manifest_kinds(Path(root).parent / "manifest.csv"), config.texture_share
            )
    else:
        hint = "list_file (places365_train_standard.txt)" if kind == "places2" else "list_file"
        train = read_image_list(_need(config.list_file, hint, kind), root)
    if config.val_list_file:
        val = read_image_list(config.val_list_file, config.val_root or root)
    elif config.val_root:
        val = find_images(config.val_root)
    else:
        val = None
    return train, val


def validation_masks(config: DataConfig, count: int) -> PackedMasks:
    """The fixed validation masks: ``val_mask_dir`` resized to the image size, or generated from a seed."""
    if config.val_mask_dir:
        return PackedMasks.from_dir(config.val_mask_dir, config.size)
    n = min(count, config.val_mask_count)
    generated = generate_masks(n, config.size, config.val_mask_seed, config.masks.bins, config.masks.strokes)
    return PackedMasks(m.hole_mask for m in generated)


def build_datasets(
    config: DataConfig, rank: int | None = None
) -> tuple[InpaintingDataset, InpaintingDataset | None]:
    """(training set, validation set or None) for a configuration."""
    train_files, val_files = image_files(config)
    train = InpaintingDataset(
        train_files,
        ImageTransform(
            config.size, config.resize_mode, train=True, hflip=config.hflip, max_zoom=config.max_zoom
        ),
        mask_source=build_mask_source(config.masks),
        seed=config.seed,
        rank=rank,
        repeat=config.repeat,
    )
    if not val_files:
        return train, None
    val = InpaintingDataset(
        val_files,
        ImageTransform(config.size, config.resize_mode, train=False),
        fixed_masks=validation_masks(config, len(val_files)),
        seed=config.seed,
        rank=rank,
    )
    return train, val


class InpaintingDataModule(pl.LightningDataModule):
    """Lightning data module over a :class:`DataConfig`.

    ``setup`` builds the data sets (rank from the attached trainer); ``train_dataloader`` shuffles and drops
    the last partial batch, ``val_dataloader`` is ordered (an empty list when no validation set is
    configured). No sampler is fixed here, so Lightning can inject its ``DistributedSampler`` on multi-GPU
    runs. Loaders use a generator seeded from ``config.seed``, which makes worker seeds (and so masks and
    crops) repeat for the same seed and worker count. ``skipped_images()`` counts unreadable files.
    """

    def __init__(self, config: DataConfig):
        super().__init__()
        self.config = config
        self.train_dataset: InpaintingDataset | None = None
        self.val_dataset: InpaintingDataset | None = None
        self._generators = {"train": torch.Generator(), "val": torch.Generator()}

    def setup(self, stage: str | None = None) -> None:
        """Build the data sets once (idempotent)."""
        if self.train_dataset is not None:
            return
        trainer = getattr(self, "trainer", None)
        rank = trainer.global_rank if trainer is not None else None
        self.train_dataset, self.val_dataset = build_datasets(self.config, rank)
        self._generators["train"].manual_seed(self.config.seed)
        self._generators["val"].manual_seed(self.config.seed + 1)

    def _loader(self, dataset: InpaintingDataset, batch_size: int, train: bool) -> DataLoader:
        workers = self.config.num_workers
        return DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=train,
            drop_last=train and self.config.drop_last,
            num_workers=workers,
            pin_memory=self.config.pin_memory and torch.cuda.is_available(),
            persistent_workers=self.config.persistent_workers and workers > 0,
            prefetch_factor=self.config.prefetch_factor if workers > 0 else None,
            generator=self._generators["train" if train else "val"],
        )

    def train_dataloader(self) -> DataLoader:
        """Shuffled training batches with random masks."""
        self.setup("fit")
        return self._loader(self.train_dataset, self.config.batch_size, train=True)

    def val_dataloader(self) -> DataLoader | list:
        """Ordered validation batches with the fixed masks ([] when no validation set is configured)."""
        self.setup("validate")
        if self.val_dataset is None:
            return []
        return self._loader(
            self.val_dataset, self.config.val_batch_size or self.config.batch_size, train=False
        )

    def skipped_images(self) -> int:
        """Unreadable images skipped so far in the training and validation sets."""
        return sum(d.skipped for d in (self.train_dataset, self.val_dataset) if d is not None)


def epoch_batches(dataset_size: int, batch_size: int, world_size: int = 1, drop_last: bool = True) -> int:
    """Batches per epoch and rank (as DistributedSampler + DataLoader give them); for schedules and logs."""
    per_rank = math.ceil(dataset_size / world_size)
    return per_rank // batch_size if drop_last else math.ceil(per_rank / batch_size)
