"""Training and validation data: image sets, transforms, per-sample hole masks and a Lightning data module.

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

from __future__ import annotations

import csv
import ctypes
import json
import logging
import math
import multiprocessing
import os
import stat
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import lightning.pytorch as pl
import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, get_worker_info

from dfnet.files import atomic_write_text
from dfnet.imageio import resize_mask
from dfnet.masks import (
    MaskConfig,
    MaskSource,
    PackedMasks,
    build_mask_source,
    generate_masks,
)

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
DATASET_KINDS = ("folder", "list", "places2", "celeba")
DEFAULT_IMAGE_SIZE = {"places2": 512, "celeba": 256}
FALLBACK_IMAGE_SIZE = 256
RESIZE_MODES = ("resize_crop", "resize", "crop")
MAX_WORKERS = 256  # data-loader processes; more is a typo that would fork the machine to a halt
CELEBA_TRAIN, CELEBA_TEST = 27_000, 3_000
_READ_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)


# --------------------------------------------------------------------------------------------------
# Image file sets


def find_images(root: str | os.PathLike) -> list[Path]:
    """All images under ``root`` (recursive; jpg, png, webp, bmp), sorted by relative path."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such image folder")
    found = []
    for directory, subdirs, names in os.walk(root, followlinks=True):
        subdirs.sort()
        found.extend(Path(directory, n) for n in sorted(names) if Path(n).suffix.lower() in IMAGE_SUFFIXES)
    return found


def _list_entry(line: str) -> str:
    """The path of a list line ``path [label]`` (a trailing integer label is dropped)."""
    parts = line.rsplit(maxsplit=1)
    if len(parts) == 2 and parts[1].lstrip("-").isdigit():
        return parts[0]
    return line


def read_image_list(list_file: str | os.PathLike, root: str | os.PathLike | None = None) -> list[Path]:
    """Image paths of a list file: one ``path [label]`` a line, blank and ``#`` lines skipped.

    Paths are relative to ``root`` (a leading '/' as in Places2 lists still means relative to ``root``);
    without ``root``, relative paths are relative to the list file's folder and absolute ones stay absolute.
    """
    list_file = Path(list_file)
    if not list_file.is_file():
        raise FileNotFoundError(f"{list_file}: no such image list")
    base = Path(root) if root is not None else list_file.parent
    paths = []
    with open(list_file, encoding="utf-8") as f:
        for raw in f:
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            entry = _list_entry(line)
            paths.append(base / entry.lstrip("/") if root is not None else base / entry)
    return paths


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


# --------------------------------------------------------------------------------------------------
# Transforms


@dataclass(frozen=True)
class ImageTransform:
    """Bring a PIL image to ``size`` x ``size`` RGB uint8: resize and/or crop, random flip when training.

    Modes: ``resize_crop`` scales the short side to ``size`` then crops; ``resize`` scales the whole image
    (aspect ratio not kept); ``crop`` crops at native resolution (upscaling only images that are too small).
    Crops are random when ``train`` is set, centred otherwise; flips only happen when training.
    ``max_zoom`` > 1 (``resize_crop``, training): the short side goes to ``size * z`` with z log-uniform in
    [1, max_zoom] before the crop, so a small set of photos yields views at several scales.
    """

    size: int
    mode: str = "resize_crop"
    train: bool = True
    hflip: bool = True
    max_zoom: float = 1.0

    def __post_init__(self) -> None:
        if self.mode not in RESIZE_MODES:
            raise ValueError(f"resize mode must be one of {', '.join(RESIZE_MODES)}, got {self.mode!r}")
        if self.size < 8:
            raise ValueError(f"image size must be at least 8, got {self.size}")
        if not self.max_zoom >= 1.0:
            raise ValueError(f"max_zoom must be >= 1, got {self.max_zoom}")

    def draft_size(self) -> tuple[int, int] | None:
        """A size JPEG decoding may shrink to (DCT scaling) without losing needed detail."""
        side = math.ceil(self.size * self.max_zoom)
        return None if self.mode == "crop" else (side, side)

    def _short_side(self, rng: np.random.Generator | None) -> int:
        """The short side ``resize_crop`` scales to: ``size``, or a random zoom of it when training."""
        if self.max_zoom == 1.0 or not self.train or rng is None:
            return self.size
        return round(self.size * math.exp(rng.uniform(0.0, math.log(self.max_zoom))))

    def __call__(self, image: Image.Image, rng: np.random.Generator | None = None) -> np.ndarray:
        """The transformed image, uint8 (size, size, 3)."""
        array = np.asarray(image.convert("RGB"))
        height, width = array.shape[:2]
        if self.mode == "resize":
            array = _resize(array, self.size, self.size)
        else:
            short = min(width, height)
            target = self._short_side(rng) if self.mode == "resize_crop" else self.size
            if short != target and (self.mode == "resize_crop" or short < self.size):
                scale = target / short
                new_w, new_h = max(self.size, round(width * scale)), max(self.size, round(height * scale))
                array = _resize(array, new_w, new_h)
        array = self._crop(array, rng)
        if self.train and self.hflip and rng is not None and rng.random() < 0.5:
            array = array[:, ::-1]
        return np.require(array, requirements=["C_CONTIGUOUS", "WRITEABLE"])

    def _crop(self, array: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
        height, width = array.shape[:2]
        spare_y, spare_x = height - self.size, width - self.size
        if self.train and rng is not None:
            top, left = int(rng.integers(0, spare_y + 1)), int(rng.integers(0, spare_x + 1))
        else:
            top, left = spare_y // 2, spare_x // 2
        return array[top : top + self.size, left : left + self.size]


def _resize(array: np.ndarray, width: int, height: int) -> np.ndarray:
    """Bilinear, or area averaging when shrinking by more than 2x (where bilinear would alias)."""
    strong_shrink = 2 * width < array.shape[1] or 2 * height < array.shape[0]
    return cv2.resize(
        array, (width, height), interpolation=cv2.INTER_AREA if strong_shrink else cv2.INTER_LINEAR
    )


def read_image(path: str | os.PathLike, draft: tuple[int, int] | None = None) -> Image.Image:
    """Decode an image file fully (raising on corrupt, truncated, empty or non-image files)."""
    if not stat.S_ISREG(os.stat(path).st_mode):  # a FIFO would block the loader forever
        raise OSError(f"{path}: not a regular file")
    with Image.open(path) as image:
        if draft is not None and image.format == "JPEG":
            image.draft("RGB", draft)
        image.load()
        if image.size[0] == 0 or image.size[1] == 0:
            raise ValueError("zero-size image")
        return image.convert("RGB") if image.mode != "RGB" else image


def to_tensor(rgb: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, 3) -> float (3, H, W) in [0, 1]."""
    return torch.from_numpy(rgb).permute(2, 0, 1).float().div_(255.0)


# --------------------------------------------------------------------------------------------------
# Seeding


def global_rank() -> int:
    """This process's rank: torch.distributed if initialised, else the RANK environment variable, else 0."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank()
    return int(os.environ.get("RANK", "0"))


def sample_rng(seed: int, rank: int) -> np.random.Generator:
    """The generator of the calling process: distinct per rank, DataLoader worker and worker incarnation."""
    info = get_worker_info()
    worker_id, worker_seed = (info.id, info.seed) if info is not None else (0, 0)
    entropy = [int(seed), int(rank), int(worker_id), int(worker_seed) % 2**64]
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy)))


# --------------------------------------------------------------------------------------------------
# The dataset


class InpaintingDataset(Dataset):
    """Images plus hole masks: random masks from ``mask_source`` (training) or ``fixed_masks`` (validation).

    With ``fixed_masks``, image i always gets mask ``i % len(fixed_masks)`` (resized to the image size with
    nearest neighbour), so validation numbers are comparable across runs. ``repeat`` lists every image that
    many times per epoch, each time with its own crop and mask (small data sets on fast GPUs: fewer epoch
    boundaries, where the loader's workers drain and restart). An unreadable image is replaced
    by the next readable file; each bad file is counted once across all workers (``skipped``) and the first
    one is logged as a warning. File names are kept in one numpy bytes array so forked workers share them.
    """

    def __init__(
        self,
        files: Sequence[str | os.PathLike],
        transform: ImageTransform,
        mask_source: MaskSource | None = None,
        fixed_masks: PackedMasks | None = None,
        seed: int = 0,
        rank: int | None = None,
        max_skips: int = 100,
        repeat: int = 1,
    ):
        if (mask_source is None) == (fixed_masks is None):
            raise ValueError("give exactly one of mask_source and fixed_masks")
        if fixed_masks is not None and len(fixed_masks) == 0:
            raise ValueError("the fixed mask set is empty")
        if len(files) == 0:
            raise ValueError("the image set is empty")
        if repeat < 1:
            raise ValueError(f"repeat must be >= 1, got {repeat}")
        self._files = np.array([os.fsencode(str(f)) for f in files], dtype=np.bytes_)
        self.transform = transform
        self.mask_source = mask_source
        self.fixed_masks = fixed_masks
        self.seed = seed
        self.rank = rank
        self.max_skips = max_skips
        self.repeat = repeat
        self._bad = multiprocessing.RawArray(ctypes.c_uint8, len(files))
        self._warned = multiprocessing.RawValue(ctypes.c_uint8, 0)  # lock-free: works with any start method
        self._warned_small = multiprocessing.RawValue(ctypes.c_uint8, 0)
        self._rng: np.random.Generator | None = None
        self._rng_key: tuple[int, int | None] | None = None
        self._epoch = multiprocessing.RawValue(ctypes.c_int64, -1)  # -1: no sampler has set an epoch

    def __len__(self) -> int:
        return len(self._files) * self.repeat

    @property
    def image_count(self) -> int:
        """Distinct image files (``len`` counts each ``repeat`` times)."""
        return len(self._files)

    def file(self, index: int) -> Path:
        """Path of image ``index``."""
        return Path(os.fsdecode(self._files[index]))

    @property
    def files(self) -> list[Path]:
        """All image paths, in index order."""
        return [self.file(i) for i in range(self.image_count)]

    @property
    def skipped(self) -> int:
        """How many distinct files were found unreadable so far (by any worker)."""
        return int(np.frombuffer(self._bad, dtype=np.uint8).sum())

    def skipped_files(self) -> list[Path]:
        """The unreadable files found so far."""
        return [self.file(int(i)) for i in np.flatnonzero(np.frombuffer(self._bad, dtype=np.uint8))]

    def rng(self) -> np.random.Generator:
        """This process's generator (re-made in each new worker process / worker incarnation)."""
        info = get_worker_info()
        key = (os.getpid(), info.seed if info is not None else None)
        if self._rng is None or key != self._rng_key:
            rank = self.rank if self.rank is not None else global_rank()
            self._rng, self._rng_key = sample_rng(self.seed, rank), key
        return self._rng

    def set_epoch(self, epoch: int) -> None:
        """From now on seed every sample from (seed, rank, ``epoch``, index); seen by worker processes too."""
        self._epoch.value = int(epoch)

    def sample_rng(self, index: int) -> np.random.Generator:
        """The generator for sample ``index``: its own once an epoch is set, else the process's stream."""
        if self._epoch.value < 0:
            return self.rng()
        rank = self.rank if self.rank is not None else global_rank()
        entropy = [int(self.seed), int(rank), int(self._epoch.value), int(index)]
        return np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy)))

    def _mark_bad(self, index: int, err: Exception) -> None:
        self._bad[index] = 1
        if not self._warned.value:  # two workers failing at the same instant may both warn; harmless
            self._warned.value = 1
            log.warning(
                "skipping unreadable image %s (%s); further unreadable images are skipped and counted silently",
                self.file(index),
                err,
            )

    def _load(self, index: int) -> tuple[int, Image.Image]:
        """The first readable image at or after file ``index`` (wrapping), with its file index."""
        for step in range(min(self.max_skips, self.image_count)):
            i = (index + step) % self.image_count
            if self._bad[i]:
                continue
            try:
                return i, read_image(self.file(i), self.transform.draft_size())
            except _READ_ERRORS as err:
                self._mark_bad(i, err)
        raise RuntimeError(
            f"no readable image among {self.max_skips} files from index {index} ({self.file(index)})"
        )

    def _check_size(self, index: int, image: Image.Image) -> None:
        """Warn once (across workers) when an image is smaller than the working size and gets upscaled."""
        width, height = image.size
        if min(width, height) >= self.transform.size or self._warned_small.value:
            return
        self._warned_small.value = 1
        log.warning(
            "image %s is %dx%d, smaller than the working size %d: it is upscaled (Places2 'small' 256x256 "
            "images with a 512 config are; use the high-resolution images or data.image_size=%d). Further "
            "small images are not reported",
            self.file(index),
            width,
            height,
            self.transform.size,
            min(width, height),
        )

    def _hole_mask(self, index: int, rng: np.random.Generator) -> np.ndarray:
        size = self.transform.size
        if self.fixed_masks is not None:
            return resize_mask(self.fixed_masks[index % len(self.fixed_masks)], (size, size))
        return self.mask_source.sample(rng, (size, size))

    def __getitem__(self, index: int) -> dict[str, Any]:
        """{"image": (3, S, S) float, "hole_mask": (1, S, S) float, "index": int}."""
        rng = self.sample_rng(int(index))
        i, image = self._load(int(index) % self.image_count)
        self._check_size(i, image)
        rgb = self.transform(image, rng)
        hole = np.ascontiguousarray(self._hole_mask(i, rng), dtype=np.float32)
        return {"image": to_tensor(rgb), "hole_mask": torch.from_numpy(hole)[None], "index": i}


# --------------------------------------------------------------------------------------------------
# Configuration and the Lightning data module


@dataclass
class DataConfig:
    """Everything the data side of training needs; ``image_size=None`` means 512 (Places2) or 256 (others).

    Kinds: ``folder`` (``root``; validation from ``val_root``), ``list`` and ``places2`` (``list_file``
    relative to ``root``; validation from ``val_list_file`` relative to ``val_root`` or ``root``, or a
    ``val_root`` folder), ``celeba`` (``root`` of aligned images; validation = the test part of the split in
    ``split_file``, default ``root/dfnet_split.json``). Validation masks are fixed: the masks of
    ``val_mask_dir`` (index.csv or mask images), else ``val_mask_count`` masks generated from
    ``val_mask_seed`` across ``masks.bins``.
    """

    dataset: str = "folder"
    root: str | None = None
    list_file: str | None = None
    split_file: str | None = None
    val_root: str | None = None
    val_list_file: str | None = None
    val_mask_dir: str | None = None
    val_mask_count: int = 1000
    val_mask_seed: int = 0
    image_size: int | None = None
    # resize_crop: short side to image_size, then crop; resize: stretch to image_size x image_size (aspect not
    # kept, as the released training and test code do); crop: native resolution
    resize_mode: str = "resize_crop"
    hflip: bool = True
    max_zoom: float = 1.0  # training crops: short side scaled to image_size x [1, max_zoom] (resize_crop)
    batch_size: int = 6
    val_batch_size: int | None = None
    num_workers: int = 4
    pin_memory: bool = True
    persistent_workers: bool = True
    prefetch_factor: int | None = 2
    drop_last: bool = True
    repeat: int = 1  # training epochs list every image this many times (small folders on fast GPUs)
    texture_share: float | None = None  # folder of a photo data set: repeat images so textures are this share
    seed: int = 0
    celeba_train: int = CELEBA_TRAIN
    celeba_test: int = CELEBA_TEST
    masks: MaskConfig = field(default_factory=MaskConfig)

    def __post_init__(self) -> None:
        if self.dataset not in DATASET_KINDS:
            raise ValueError(f"dataset must be one of {', '.join(DATASET_KINDS)}, got {self.dataset!r}")
        if self.resize_mode not in RESIZE_MODES:
            raise ValueError(
                f"resize_mode must be one of {', '.join(RESIZE_MODES)}, got {self.resize_mode!r}"
            )
        if self.batch_size < 1 or self.num_workers < 0 or self.val_mask_count < 1 or self.repeat < 1:
            raise ValueError("need batch_size >= 1, num_workers >= 0, val_mask_count >= 1 and repeat >= 1")
        if self.texture_share is not None and not 0 < self.texture_share < 1:
            raise ValueError(f"texture_share must be between 0 and 1 (exclusive), got {self.texture_share}")
        if self.num_workers > MAX_WORKERS:
            raise ValueError(
                f"num_workers is at most {MAX_WORKERS} (each is a process), got {self.num_workers}"
            )

    @property
    def size(self) -> int:
        """The training image side."""
        return self.image_size or DEFAULT_IMAGE_SIZE.get(self.dataset, FALLBACK_IMAGE_SIZE)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (for YAML/JSON and checkpoints)."""
        return asdict(self)


def _need(value: str | None, what: str, kind: str) -> str:
    if not value:
        raise ValueError(f"dataset {kind!r} needs {what}")
    return value


def manifest_kinds(manifest: Path) -> dict[str, str]:
    """{file name: kind ("scene" or "texture")} from a photo data set's manifest.csv (dfnet.photo_dataset)."""
    if not manifest.is_file():
        raise FileNotFoundError(f"{manifest}: texture_share needs the photo data set's manifest.csv")
    with manifest.open(newline="", encoding="utf-8") as f:
        return {Path(row["file"]).name: row.get("kind") or "scene" for row in csv.DictReader(f)}


def balance_kinds(files: list[Path], kinds: dict[str, str], texture_share: float) -> list[Path]:
    """Scenes and textures (by file name; unlisted files are scenes), the rarer kind repeated a whole
    number of times so that textures are about ``texture_share`` of the list."""
    textures = [f for f in files if kinds.get(f.name) == "texture"]
    scenes = [f for f in files if kinds.get(f.name) != "texture"]
    if not textures or not scenes:
        raise ValueError(f"texture_share needs scenes and textures; found {len(scenes)} and {len(textures)}")
    wanted_ratio = texture_share / (1 - texture_share)  # textures per scene
    if len(textures) / len(scenes) > wanted_ratio:
        return scenes * max(1, round(len(textures) / (wanted_ratio * len(scenes)))) + textures
    return scenes + textures * max(1, round(wanted_ratio * len(scenes) / len(textures)))


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
