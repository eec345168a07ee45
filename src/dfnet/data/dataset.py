"""The inpainting dataset: images with per-sample hole masks, and its seeding across workers, ranks and epochs."""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset, get_worker_info

from dfnet.data.transforms import ImageTransform, read_image, to_tensor
from dfnet.imageio import resize_mask
from dfnet.masks import MaskSource, PackedMasks

log = logging.getLogger(__name__)
_READ_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)


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
