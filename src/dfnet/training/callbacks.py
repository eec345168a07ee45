"""Callbacks and checkpoint I/O: atomic checkpoint writes, throughput, completion grids and ``last.ckpt``."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.plugins.io import TorchCheckpointIO
from torch import Tensor

from dfnet.files import atomic_write
from dfnet.model import DFNet, DFNetOutput, composite


class AtomicCheckpointIO(TorchCheckpointIO):
    """torch.save into a temporary file beside the target, fsync, then rename over it.

    Lightning's own writer goes through an fsspec transaction whose temporary file lives in the
    system temp folder; when that is another file system the final move is a copy, which a crash
    can leave half-written. Writing beside the target makes the rename atomic.
    """

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO does not take storage_options")

        def write(tmp: str) -> None:
            with open(tmp, "wb") as f:
                torch.save(checkpoint, f)
                f.flush()
                os.fsync(f.fileno())

        atomic_write(path, write)


class ThroughputMonitor(Callback):
    """Logs training throughput (images per second, all processes together) every ``every_n_batches``."""

    def __init__(self, every_n_batches: int) -> None:
        self.every = max(1, every_n_batches)
        self._start: float | None = None
        self._images = 0
        self._batches = 0

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if self._start is None:
            self._start, self._images, self._batches = time.perf_counter(), 0, 0

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self._images += int(batch["image"].shape[0]) * trainer.world_size
        self._batches += 1
        if self._batches >= self.every and self._start is not None:
            rate = self._images / max(time.perf_counter() - self._start, 1e-9)
            pl_module.log("train/images_per_s", rate, prog_bar=True)
            self._start = None


def _cells(images: Tensor, size: int) -> Tensor:
    """(N, C, h, w) -> (N, 3, size, size): nearest for upscaling, area for downscaling, grey for 1 channel."""
    images = images.detach().float().cpu()
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    mode = "nearest" if images.shape[-1] < size else "area"
    return F.interpolate(images, size=(size, size), mode=mode).clamp(0, 1)


def completion_grid(image: Tensor, hole_mask: Tensor, output: DFNetOutput, cell: int = 256) -> Tensor:
    """A (3, H, W) picture per sample of three rows: input / raw per scale, target / alpha per scale,
    composite / result per scale (finest scale first; holes shown white in the input)."""
    masked = image * (1 - hole_mask) + hole_mask
    final = composite(image, output.results[0].to(image.dtype), hole_mask)
    rows = []
    for first, per_scale in ((masked, output.raws), (image, output.alphas), (final, output.results)):
        rows.append(torch.cat([_cells(first, cell)] + [_cells(x, cell) for x in per_scale], dim=3))
    blocks = F.pad(torch.cat(rows, dim=2), (0, 0, 0, 4), value=0.5)  # (N, 3, 3*cell + 4, width)
    return torch.cat(list(blocks), dim=1)


class ImageGridLogger(Callback):
    """Every ``every_n_steps`` optimiser steps: completion grids of the first batch samples (eval mode)
    to TensorBoard and as ``images/step_XXXXXXXX.png`` in the run directory. Rank zero only."""

    def __init__(self, every_n_steps: int, count: int, folder: Path) -> None:
        self.every = every_n_steps
        self.count = count
        self.folder = folder
        self._last_step = -1

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        step = trainer.global_step
        if self.every <= 0 or step % self.every or step == self._last_step or not trainer.is_global_zero:
            return
        self._last_step = step
        model: DFNet = pl_module.model
        image = batch["image"][: self.count].float()
        hole_mask = batch["hole_mask"][: self.count].float()
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad(), torch.autocast(image.device.type, enabled=False):
                output = model(image, hole_mask)
        finally:
            model.train(was_training)
        grid = completion_grid(image, hole_mask, output, cell=min(256, image.shape[-1]))
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_image("train/completion", grid, step)
        rgb = (grid.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
        from PIL import Image

        atomic_write(
            self.folder / f"step_{step:08d}.png", lambda tmp: Image.fromarray(rgb).save(tmp, format="PNG")
        )


class LastCheckpoint(Callback):
    """Writes ``last.ckpt`` right after every ``every_n_steps``-th optimiser step and after the final one.

    Saving right after a step (in ``on_train_batch_end``, as the periodic checkpoints are) keeps the
    loop counters and the data position consistent. A checkpoint written when training ends (what
    Lightning's ``save_last`` does for short runs) already counts the interrupted epoch as finished,
    so continuing it with a larger ``max_steps`` would skip the rest of that epoch.
    """

    def __init__(self, path: Path, every_n_steps: int) -> None:
        self.path = path
        self.every = every_n_steps
        self._saved_step = -1

    @staticmethod
    def is_final_step(trainer: pl.Trainer) -> bool:
        """Whether the optimiser step just taken ends the run (max_steps, or the last batch of max_epochs)."""
        if 0 < trainer.max_steps <= trainer.global_step:
            return True
        last_epoch = trainer.max_epochs is not None and trainer.current_epoch + 1 >= trainer.max_epochs > 0
        return last_epoch and bool(trainer.fit_loop.epoch_loop.batch_progress.is_last_batch)

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        step = trainer.global_step
        if step == self._saved_step or not (step % self.every == 0 or self.is_final_step(trainer)):
            return
        self._saved_step = step
        trainer.save_checkpoint(self.path, weights_only=False)
