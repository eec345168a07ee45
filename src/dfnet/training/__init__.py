"""Training DFNet with PyTorch Lightning, one module per part; this package re-exports the public names.

- :mod:`~dfnet.training.config`: typed configs, YAML loading with ``base:`` inheritance and overrides.
- :mod:`~dfnet.training.resume`: the loader that resumes mid-epoch and finding the checkpoint to resume.
- :mod:`~dfnet.training.synthetic`: generated images for smoke runs.
- :mod:`~dfnet.training.module`: the LightningModule (DFNet, loss, validation metrics, optimiser).
- :mod:`~dfnet.training.callbacks`: atomic checkpoint writes, throughput, completion grids, ``last.ckpt``.
- :mod:`~dfnet.training.fit`: the trainer (and its DDP strategy), :func:`train` and the safetensors export.

A new part of the training loop gets a module of its own here; the adversarial training is :mod:`dfnet.gan`.

Run directory ``output.dir/output.name``: ``config.yaml`` (resolved), ``checkpoints/`` (periodic
``step=…ckpt`` plus ``last.ckpt``, written atomically), ``tensorboard/``, ``csv/version_*/metrics.csv``
(a new version per start or resume), ``images/`` (completion grids) and ``model.safetensors`` (the export).
Checkpoints hold only tensors and plain containers (``torch.load(weights_only=True)`` reads them) and
the architecture as a plain dict under ``dfnet_config``, so :func:`dfnet.checkpoint.load_model` loads
them directly.
"""

from __future__ import annotations

from dfnet.training.callbacks import (
    AtomicCheckpointIO,
    ImageGridLogger,
    LastCheckpoint,
    ThroughputMonitor,
    completion_grid,
)
from dfnet.training.config import (
    PRECISIONS,
    ConfigError,
    OptimConfig,
    OutputConfig,
    TrainConfig,
    TrainerConfig,
    VGGConfig,
    config_to_yaml,
    load_config,
    packaged_configs,
    parse_override,
    plain,
    read_config_files,
)
from dfnet.training.fit import (
    EXPORT_NAME,
    RUN_CONFIG_NAME,
    TrainResult,
    build_callbacks,
    build_trainer,
    export_checkpoint,
    skipped_images,
    steps_per_epoch,
    train,
)
from dfnet.training.module import DFNetLightning
from dfnet.training.resume import (
    CHECKPOINT_DIR,
    LAST_CHECKPOINT,
    DataPosition,
    ResumableDataLoader,
    ResumableDataModule,
    ResumableSampler,
    latest_complete_checkpoint,
    launched_as_worker,
    make_resumable,
    read_checkpoint_step,
    remove_unfinished_writes,
    resolve_resume,
)
from dfnet.training.synthetic import synthetic_data_config, write_synthetic_images

__all__ = [
    "CHECKPOINT_DIR",
    "EXPORT_NAME",
    "RUN_CONFIG_NAME",
    "LAST_CHECKPOINT",
    "PRECISIONS",
    "AtomicCheckpointIO",
    "ConfigError",
    "DFNetLightning",
    "DataPosition",
    "ImageGridLogger",
    "LastCheckpoint",
    "OptimConfig",
    "OutputConfig",
    "ResumableDataLoader",
    "ResumableDataModule",
    "ResumableSampler",
    "ThroughputMonitor",
    "TrainConfig",
    "TrainResult",
    "TrainerConfig",
    "VGGConfig",
    "build_callbacks",
    "build_trainer",
    "completion_grid",
    "config_to_yaml",
    "export_checkpoint",
    "latest_complete_checkpoint",
    "launched_as_worker",
    "load_config",
    "make_resumable",
    "packaged_configs",
    "plain",
    "read_checkpoint_step",
    "read_config_files",
    "parse_override",
    "remove_unfinished_writes",
    "resolve_resume",
    "skipped_images",
    "steps_per_epoch",
    "synthetic_data_config",
    "train",
    "write_synthetic_images",
]
