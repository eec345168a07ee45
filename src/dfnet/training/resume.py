"""Resuming a run: a training loader that continues mid-epoch, and finding the checkpoint to continue from.

Resuming restores model, optimiser, LR scheduler, step, epoch and the position inside the epoch (the
training sampler skips the batches already seen).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import pickle
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, DistributedSampler

from dfnet.checkpoint import refusal_reason
from dfnet.training.config import ConfigError, TrainConfig

log = logging.getLogger(__name__)


CHECKPOINT_DIR = "checkpoints"
LAST_CHECKPOINT = "last.ckpt"


class ResumableSampler(DistributedSampler):
    """DistributedSampler (seeded shuffle per epoch) that can start an epoch after its first samples.

    The order of an epoch depends only on (seed, epoch), so skipping the samples a checkpoint had
    consumed resumes exactly where the interrupted run was. A data set with ``set_epoch`` is told
    the epoch before each pass, so its per-sample randomness can depend on (epoch, index) and repeat
    after a resume too. Being a DistributedSampler, Lightning keeps it instead of injecting its own.
    """

    def __init__(
        self, dataset: Any, num_replicas: int, rank: int, seed: int = 0, shuffle: bool = True
    ) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed)
        self.skip = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch; moving to another epoch forgets a pending skip."""
        if epoch != self.epoch:
            self.skip = 0
        super().set_epoch(epoch)

    def resume(self, epoch: int, consumed: int) -> None:
        """Make the next pass be ``epoch`` without its first ``consumed`` samples (of this rank)."""
        self.epoch, self.skip = epoch, consumed

    def __iter__(self):
        set_epoch = getattr(self.dataset, "set_epoch", None)
        if callable(set_epoch):  # before any index reaches a worker
            set_epoch(self.epoch)
        indices = list(super().__iter__())
        skip, self.skip = self.skip, 0  # only the first pass of a resumed epoch is shortened
        return iter(indices[skip:])


@dataclass(frozen=True)
class DataPosition:
    """Where training stands inside an epoch: ``batches`` done of ``epoch`` (``finished``: the epoch is over)."""

    epoch: int
    batches: int
    finished: bool


class ResumableDataLoader(DataLoader):
    """A DataLoader whose state (the data position) Lightning saves in checkpoints and restores on resume."""

    def __init__(self, *args: Any, position: Callable[[], DataPosition], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._position = position

    def state_dict(self) -> dict[str, Any]:
        """The data position, plus the samples consumed by all processes together."""
        position = self._position()
        samples = position.batches * int(self.batch_size) * self.sampler.num_replicas
        return {**dataclasses.asdict(position), "samples": samples}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue after the saved position: exactly with the same batch size and process count, else
        after the same share of the epoch (each process skips its part of the samples already seen)."""
        if bool(state["finished"]):
            self.sampler.resume(int(state["epoch"]) + 1, 0)
        else:
            samples = state.get(
                "samples", int(state["batches"]) * int(self.batch_size) * self.sampler.num_replicas
            )
            self.sampler.resume(int(state["epoch"]), int(samples) // self.sampler.num_replicas)


def make_resumable(
    loader: DataLoader, rank: int, world_size: int, seed: int, position: Callable[[], DataPosition]
) -> ResumableDataLoader:
    """The same loader (data set, batch size, workers, collate) with a :class:`ResumableSampler`."""
    if loader.batch_size is None:
        raise ConfigError("the training DataLoader must use batch_size, not a custom batch_sampler")
    sampler = ResumableSampler(loader.dataset, num_replicas=world_size, rank=rank, seed=seed)
    return ResumableDataLoader(
        loader.dataset,
        batch_size=loader.batch_size,
        sampler=sampler,
        num_workers=loader.num_workers,
        collate_fn=loader.collate_fn,
        pin_memory=loader.pin_memory,
        drop_last=loader.drop_last,
        timeout=loader.timeout,
        worker_init_fn=loader.worker_init_fn,
        multiprocessing_context=loader.multiprocessing_context,
        generator=loader.generator,
        prefetch_factor=loader.prefetch_factor if loader.num_workers > 0 else None,
        persistent_workers=loader.persistent_workers,
        position=position,
    )


class ResumableDataModule(pl.LightningDataModule):
    """Wraps a data module so that its training loader resumes mid-epoch; everything else is delegated."""

    def __init__(self, inner: pl.LightningDataModule, seed: int = 0) -> None:
        super().__init__()
        self.inner = inner
        self.seed = seed

    def prepare_data(self) -> None:
        self.inner.prepare_data()

    def setup(self, stage: str) -> None:
        self.inner.trainer = self.trainer
        self.inner.setup(stage)

    def teardown(self, stage: str) -> None:
        self.inner.teardown(stage)

    def _position(self) -> DataPosition:
        trainer = self.trainer
        done = trainer.fit_loop.epoch_loop.batch_progress.current.processed
        return DataPosition(trainer.current_epoch, int(done), done >= trainer.num_training_batches)

    def train_dataloader(self) -> ResumableDataLoader:
        loader = self.inner.train_dataloader()
        trainer = self.trainer
        return make_resumable(loader, trainer.global_rank, trainer.world_size, self.seed, self._position)

    def val_dataloader(self) -> Any:
        return self.inner.val_dataloader()


def launched_as_worker() -> bool:
    """True in a process that DDP/torchrun/SLURM started as a rank other than the first."""
    return any(
        int(os.environ.get(k, "0") or 0) > 0 for k in ("LOCAL_RANK", "RANK", "NODE_RANK", "SLURM_PROCID")
    )


def read_checkpoint_step(path: Path) -> int:
    """The global step of a complete training checkpoint; ValueError saying why ``path`` is not one."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError as err:  # never executed: the weights-only unpickler refused it
        raise ValueError(
            f"refused: it holds objects other than tensors ({refusal_reason(err)[:160]})"
        ) from None
    except Exception as err:  # a truncated zip, a pickle of something else, an unreadable file
        text = str(err).strip()
        raise ValueError(text.splitlines()[0][:160] if text else type(err).__name__) from None
    if (
        not isinstance(checkpoint, Mapping)
        or "state_dict" not in checkpoint
        or "global_step" not in checkpoint
    ):
        raise ValueError("not a training checkpoint (no state_dict or global_step)")
    return int(checkpoint["global_step"])


def _step_in_name(path: Path) -> int:
    match = re.fullmatch(r"step=(\d+)\.ckpt", path.name)
    return int(match.group(1)) if match else -1


def latest_complete_checkpoint(folder: Path) -> Path | None:
    """The complete checkpoint with the highest step: ``last.ckpt`` or a newer periodic one.

    A file that does not load (cut short by a copy or a full disk) is passed over with a warning;
    a run killed while writing leaves only a temporary file, never a damaged checkpoint.
    """
    last = folder / LAST_CHECKPOINT
    periodic = sorted(folder.glob("step=*.ckpt"), key=_step_in_name, reverse=True)  # newest first
    best: tuple[int, Path] | None = None
    for path in ([last] if last.is_file() else []) + periodic:
        if path != last and best is not None and _step_in_name(path) <= best[0]:
            break  # no periodic checkpoint left is newer than the one found
        try:
            step = read_checkpoint_step(path)
        except ValueError as err:
            log.warning("not resuming from %s: %s", path, err)
            continue
        if best is None or step > best[0]:
            best = (step, path)
        if path != last:
            break
    return None if best is None else best[1]


def remove_unfinished_writes(folder: Path) -> list[Path]:
    """Delete the temporary files of checkpoint writes that a killed run left behind (``.NAME.*.tmp``)."""
    leftovers = sorted(folder.glob(".*.ckpt.*.tmp"))
    for path in leftovers:
        path.unlink(missing_ok=True)
        log.info("removed %s, left by a checkpoint write that did not finish", path)
    return leftovers


def resolve_resume(config: TrainConfig, resume: str | os.PathLike | None) -> Path | None:
    """The checkpoint to resume from: a path, ``auto`` (the newest complete checkpoint of the run) or None."""
    folder = config.run_dir / CHECKPOINT_DIR
    last = folder / LAST_CHECKPOINT
    if resume is None:
        if last.is_file() and not launched_as_worker():
            raise ConfigError(
                f"{config.run_dir} already holds a run; resume it with --resume auto or choose another "
                "output.name"
            )
        return None
    if not launched_as_worker():
        remove_unfinished_writes(folder)
    if str(resume) == "auto":
        return latest_complete_checkpoint(folder)
    path = Path(resume)
    if not path.is_file():
        raise ConfigError(f"{path}: no such checkpoint to resume from")
    try:
        read_checkpoint_step(path)
    except ValueError as err:
        raise ConfigError(f"{path}: cannot resume from it ({err})") from None
    return path
