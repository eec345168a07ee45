"""The run: the Lightning trainer with its loggers and callbacks, ``train()`` and the safetensors export.

Scaling: Lightning's DDP strategy runs one process per device; ``trainer.devices`` and
``trainer.num_nodes`` must match the launch. Single machine: ``dfnet train`` starts the other processes
itself. Many nodes: start one ``dfnet train`` per node with ``torchrun`` (it sets RANK, WORLD_SIZE,
MASTER_ADDR) or one task per GPU with SLURM ``srun``; Lightning detects either environment.
``data.batch_size`` is per device, so the global batch is batch_size · devices · num_nodes ·
accumulate_grad_batches.
"""

from __future__ import annotations

import logging
import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback, LearningRateMonitor, ModelCheckpoint, TQDMProgressBar
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from dfnet.checkpoint import load_model, save_model
from dfnet.data import InpaintingDataModule, epoch_batches
from dfnet.files import atomic_write_text
from dfnet.model import DFNetConfig
from dfnet.training.callbacks import AtomicCheckpointIO, ImageGridLogger, LastCheckpoint, ThroughputMonitor
from dfnet.training.config import TrainConfig, config_to_yaml
from dfnet.training.module import DFNetLightning
from dfnet.training.resume import CHECKPOINT_DIR, LAST_CHECKPOINT, ResumableDataModule, resolve_resume
from dfnet.training.synthetic import synthetic_data_config
from dfnet.vgg import VGG16Features

log = logging.getLogger(__name__)


EXPORT_NAME = "model.safetensors"
RUN_CONFIG_NAME = "config.yaml"  # the resolved config of a run, beside its checkpoints


def build_callbacks(config: TrainConfig) -> list[Callback]:
    """Checkpoints (periodic + last), LR and throughput monitors, image grids and the progress bar."""
    cfg, run_dir = config.trainer, config.run_dir
    checkpoints = run_dir / CHECKPOINT_DIR
    callbacks: list[Callback] = [
        ModelCheckpoint(
            dirpath=checkpoints,
            filename="step={step:08d}",
            auto_insert_metric_name=False,
            every_n_train_steps=cfg.checkpoint_every_n_steps,
            save_top_k=cfg.keep_checkpoints,
            monitor="step",
            mode="max",
        ),
        LastCheckpoint(checkpoints / LAST_CHECKPOINT, cfg.checkpoint_every_n_steps),
        LearningRateMonitor(logging_interval="step"),
        ThroughputMonitor(cfg.log_every_n_steps),
        ImageGridLogger(cfg.image_every_n_steps, cfg.image_count, run_dir / "images"),
    ]
    if cfg.progress_bar:
        callbacks.append(TQDMProgressBar(refresh_rate=1))
    return callbacks


def ddp_strategy(strategy: str, devices: int | str | list[int], num_nodes: int) -> str:
    """``trainer.strategy`` for adversarial training: a DDP strategy told to find unused parameters.

    ``ddp``, ``ddp_spawn``, ``ddp_fork`` and ``ddp_notebook`` get Lightning's ``…_find_unused_parameters_true``
    variant, and so does ``auto`` when ``devices`` (a number or a list) or ``num_nodes`` asks for several processes.
    """
    count = len(devices) if isinstance(devices, list) else devices
    several = num_nodes > 1 or (isinstance(count, int) and count > 1)
    if strategy == "auto" and several:
        strategy = "ddp"
    if strategy in ("ddp", "ddp_spawn", "ddp_fork", "ddp_notebook"):
        return f"{strategy}_find_unused_parameters_true"
    return strategy


def build_trainer(config: TrainConfig, extra_callbacks: Sequence[Callback] = ()) -> pl.Trainer:
    """A Lightning Trainer for ``config``: devices, precision, run length, loggers, callbacks, atomic checkpoints."""
    cfg, run_dir = config.trainer, config.run_dir
    optional = {
        name: getattr(cfg, name)
        for name in (
            "limit_train_batches",
            "limit_val_batches",
            "val_check_interval",
            "benchmark",
            "max_time",
        )
        if getattr(cfg, name) is not None
    }
    strategy = cfg.strategy
    if config.discriminator.enabled:  # manual optimisation: clipping in the step, DDP finds unused parameters
        strategy = ddp_strategy(cfg.strategy, cfg.devices, cfg.num_nodes)
    elif config.optim.grad_clip is not None:
        optional["gradient_clip_val"] = config.optim.grad_clip
    loggers = [
        TensorBoardLogger(save_dir=str(run_dir), name="tensorboard", version="", default_hp_metric=False),
        CSVLogger(save_dir=str(run_dir), name="csv"),
    ]
    return pl.Trainer(
        accelerator=cfg.accelerator,
        devices=cfg.devices,
        num_nodes=cfg.num_nodes,
        strategy=strategy,
        precision=cfg.precision,
        sync_batchnorm=cfg.sync_batchnorm,
        max_epochs=cfg.max_epochs,
        max_steps=cfg.max_steps,
        accumulate_grad_batches=cfg.accumulate_grad_batches,
        check_val_every_n_epoch=cfg.check_val_every_n_epoch,
        num_sanity_val_steps=cfg.num_sanity_val_steps,
        log_every_n_steps=cfg.log_every_n_steps,
        deterministic=cfg.deterministic,
        enable_progress_bar=cfg.progress_bar,
        default_root_dir=str(run_dir),
        logger=loggers,
        callbacks=build_callbacks(config) + list(extra_callbacks),
        plugins=[AtomicCheckpointIO()],
        **optional,
    )


@dataclass(frozen=True)
class TrainResult:
    """What a finished run left behind."""

    run_dir: Path
    last_checkpoint: Path
    export: Path | None
    global_step: int
    skipped_images: tuple[Path, ...] = ()  # unreadable training/validation files that were replaced


def export_checkpoint(
    checkpoint: str | os.PathLike,
    output: str | os.PathLike,
    half: bool = False,
    working_size: int | None = None,
) -> DFNetConfig:
    """Write the DFNet weights of a training checkpoint as safetensors for inference.

    ``working_size`` (the training resolution) is recorded so inference strategies work at it.
    """
    model = load_model(checkpoint)
    meta = {"source": Path(checkpoint).name}
    if working_size is not None:
        meta["working_size"] = working_size
    save_model(model, output, half=half, metadata=meta)
    return model.config


def train(
    config: TrainConfig,
    resume: str | os.PathLike | None = None,
    datamodule: pl.LightningDataModule | None = None,
    extra_callbacks: Sequence[Callback] = (),
    vgg: VGG16Features | None = None,
) -> TrainResult:
    """Train (or resume) a run, then export the final weights to ``run_dir/model.safetensors``.

    ``datamodule`` replaces the one built from ``config.data`` and ``vgg`` the VGG16 from
    ``config.vgg`` (tests); ``extra_callbacks`` run after the default ones. Returns the run's paths
    and final step (the export exists on rank zero only).
    """
    checkpoint = resolve_resume(config, resume)
    if datamodule is None:
        config = synthetic_data_config(config)
    if config.trainer.matmul_precision:
        torch.set_float32_matmul_precision(config.trainer.matmul_precision)
    pl.seed_everything(config.trainer.seed, workers=True, verbose=False)
    module = DFNetLightning(config, vgg=vgg, initialise=checkpoint is None)
    data = ResumableDataModule(datamodule or InpaintingDataModule(config.data), seed=config.data.seed)
    trainer = build_trainer(config, extra_callbacks)
    if trainer.is_global_zero:
        atomic_write_text(config.run_dir / RUN_CONFIG_NAME, config_to_yaml(config))
    with warnings.catch_warnings():
        # The frozen VGG16 sits in eval mode on purpose.
        warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode")
        trainer.fit(module, datamodule=data, ckpt_path=checkpoint, weights_only=True)
    export = None
    if trainer.is_global_zero:
        export = config.run_dir / EXPORT_NAME
        meta = {
            "global_step": trainer.global_step,
            "epoch": trainer.current_epoch,
            "source": "dfnet train",
            "working_size": config.data.image_size,
        }
        save_model(module.model, export, half=config.output.export_half, metadata=meta)
        log.info("exported the trained weights to %s", export)
    last = config.run_dir / CHECKPOINT_DIR / LAST_CHECKPOINT
    skipped = skipped_images(data.inner)
    if skipped:
        log.warning(
            "skipped %d unreadable images (replaced by the next readable file): %s",
            len(skipped),
            ", ".join(map(str, skipped[:10])) + (" ..." if len(skipped) > 10 else ""),
        )
    return TrainResult(config.run_dir, last, export, trainer.global_step, tuple(skipped))


def skipped_images(datamodule: pl.LightningDataModule) -> list[Path]:
    """The unreadable files a data module's data sets have skipped so far (this process)."""
    found: list[Path] = []
    for name in ("train_dataset", "val_dataset"):
        files = getattr(getattr(datamodule, name, None), "skipped_files", None)
        found += files() if callable(files) else []
    return found


def steps_per_epoch(dataset_size: int, config: TrainConfig, world_size: int = 1) -> int:
    """Optimiser steps in one epoch (for planning schedules): the epoch's batches per accumulation."""
    batches = epoch_batches(dataset_size, config.data.batch_size, world_size, config.data.drop_last)
    return math.ceil(batches / config.trainer.accumulate_grad_batches)
