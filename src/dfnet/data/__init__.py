"""Training and validation data: image sets, transforms, per-sample hole masks and a Lightning data module.

One module per part (this package re-exports their public names): :mod:`~dfnet.data.image_lists`,
:mod:`~dfnet.data.celeba`, :mod:`~dfnet.data.transforms`, :mod:`~dfnet.data.dataset` (with its seeding),
:mod:`~dfnet.data.data_config` and :mod:`~dfnet.data.datamodule`.

A sample is a dict ``{"image": float (3, H, W) in [0, 1] RGB, "hole_mask": float (1, H, W) with 1 = hole,
"index": int}`` (``index`` is the file actually used: an unreadable file is replaced by the next readable one).

Image sets: a folder (recursive; jpg, png, webp, bmp), a text list (``path [label]`` per line, relative to a
root), Places2 (its standard ``places365_train_standard.txt`` / ``places365_val.txt`` lists) and CelebA
(aligned images, a seeded 27,000 / 3,000 split saved to and reused from a JSON split file).

Randomness (crops, flips, training masks) comes from one ``numpy`` generator per process, seeded from
(``seed``, global rank, DataLoader worker id, the loader's per-epoch worker seed): masks differ across
workers, ranks and epochs, and a run with the same seed and the same worker count repeats exactly.
Once a sampler has called :meth:`InpaintingDataset.set_epoch` (the trainer's resumable sampler does),
each sample gets its own generator seeded from (``seed``, rank, epoch, index) instead, so a run
resumed in the middle of an epoch draws exactly the crops and masks the uninterrupted run drew.
"""

from dfnet.data.celeba import (
    CELEBA_TEST,
    CELEBA_TRAIN,
    CelebASplit,
    celeba_split,
    split_counts,
)
from dfnet.data.data_config import (
    DATASET_KINDS,
    DEFAULT_IMAGE_SIZE,
    FALLBACK_IMAGE_SIZE,
    MAX_WORKERS,
    DataConfig,
)
from dfnet.data.datamodule import (
    InpaintingDataModule,
    build_datasets,
    epoch_batches,
    image_files,
    validation_masks,
)
from dfnet.data.dataset import (
    InpaintingDataset,
    global_rank,
    sample_rng,
)
from dfnet.data.image_lists import (
    IMAGE_SUFFIXES,
    balance_kinds,
    find_images,
    manifest_kinds,
    read_image_list,
)
from dfnet.data.transforms import (
    RESIZE_MODES,
    ImageTransform,
    read_image,
    to_tensor,
)

__all__ = [
    "CELEBA_TEST",
    "CELEBA_TRAIN",
    "CelebASplit",
    "DATASET_KINDS",
    "DEFAULT_IMAGE_SIZE",
    "DataConfig",
    "FALLBACK_IMAGE_SIZE",
    "IMAGE_SUFFIXES",
    "ImageTransform",
    "InpaintingDataModule",
    "InpaintingDataset",
    "MAX_WORKERS",
    "RESIZE_MODES",
    "balance_kinds",
    "build_datasets",
    "celeba_split",
    "epoch_batches",
    "find_images",
    "global_rank",
    "image_files",
    "manifest_kinds",
    "read_image",
    "read_image_list",
    "sample_rng",
    "split_counts",
    "to_tensor",
    "validation_masks",
]
