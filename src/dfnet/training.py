"""Training DFNet with PyTorch Lightning: configuration, the LightningModule, callbacks, trainer, export.

One YAML file (``configs/*.yaml`` inside the package, or any path) holds every setting, in sections
``model`` (:class:`~dfnet.model.DFNetConfig`), ``loss`` (:class:`~dfnet.losses.LossConfig`), ``vgg``,
``optim``, ``data`` (:class:`~dfnet.data.DataConfig`), ``trainer`` and ``output``; ``key=value``
overrides (``trainer.max_steps=100``) change single values. The paper's ablations are config changes:
``model.fusion=mask|none``, ``model.fusion_layers=[0]`` / ``[0,1,2]`` (1 or 3 fusion blocks),
``loss.structure_scales`` / ``loss.texture_scales`` (p, q).

Scaling: Lightning's DDP strategy runs one process per device; ``trainer.devices`` and
``trainer.num_nodes`` must match the launch. Single machine: ``dfnet train`` starts the other processes
itself. Many nodes: start one ``dfnet train`` per node with ``torchrun`` (it sets RANK, WORLD_SIZE,
MASTER_ADDR) or one task per GPU with SLURM ``srun``; Lightning detects either environment.
``data.batch_size`` is per device, so the global batch is batch_size · devices · num_nodes ·
accumulate_grad_batches.

Run directory ``output.dir/output.name``: ``config.yaml`` (resolved), ``checkpoints/`` (periodic
``step=…ckpt`` plus ``last.ckpt``, written atomically), ``tensorboard/``, ``csv/version_*/metrics.csv``
(a new version per session), ``images/`` (completion grids) and ``model.safetensors`` (the export).
Checkpoints hold only tensors and plain containers (``torch.load(weights_only=True)`` reads them) and
the architecture as a plain dict under ``dfnet_config``, so :func:`dfnet.checkpoint.load_model` loads
them directly. Resuming restores model, optimiser, LR scheduler, step, epoch and the position inside
the epoch (the training sampler skips the batches already seen).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import pickle
import re
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import lightning.pytorch as pl
import numpy as np
import torch
import torch.nn.functional as F
import yaml
from lightning.pytorch.callbacks import Callback, LearningRateMonitor, ModelCheckpoint, TQDMProgressBar
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.plugins.io import TorchCheckpointIO
from torch import Tensor
from torch.utils.data import DataLoader, DistributedSampler

from dfnet.checkpoint import init_from_weights, load_model, refusal_reason, save_model
from dfnet.config_types import check_field_types
from dfnet.data import DataConfig, InpaintingDataModule
from dfnet.files import atomic_write, atomic_write_text
from dfnet.losses import DFNetLoss, LossConfig
from dfnet.metrics import per_image_bpe_sums, per_image_l1, per_image_psnr
from dfnet.model import DFNet, DFNetConfig, DFNetOutput, composite, set_initial_alpha
from dfnet.vgg import VGG16Features, load_vgg16_features

log = logging.getLogger(__name__)

PRECISIONS = ("32", "32-true", "bf16-mixed", "16-mixed")
CHECKPOINT_DIR = "checkpoints"
LAST_CHECKPOINT = "last.ckpt"
EXPORT_NAME = "model.safetensors"


class ConfigError(ValueError):
    """An invalid training configuration or override (one-line, user-facing message)."""


# =============================================================================================
# Configuration
# =============================================================================================
@dataclass(frozen=True)
class VGGConfig:
    """Where the VGG16 weights for the texture loss come from (see :mod:`dfnet.vgg`)."""

    weights: str | None = None  # path; else $DFNET_VGG16_WEIGHTS, else the torch hub cache
    allow_random: bool = False  # tests and smoke runs only: random VGG weights, logged as a warning


@dataclass(frozen=True)
class OptimConfig:
    """Adam and a step learning-rate schedule: the paper's 2e-3, ×0.1 every 5 epochs (released: 2e-4)."""

    lr: float = 2e-3
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    lr_decay: float = 0.1
    lr_step: int = 5  # decay every lr_step epochs (or optimiser steps, see lr_step_unit)
    lr_step_unit: Literal["epoch", "step"] = "epoch"
    grad_clip: float | None = None  # clip the gradient norm to this value (None: no clipping)
    fused: bool = True  # torch's fused Adam kernel (CPU and CUDA): same update, one kernel for all tensors

    def __post_init__(self) -> None:
        if self.lr <= 0 or self.lr_step < 1 or not 0 < self.lr_decay <= 1:
            raise ConfigError("optim needs lr > 0, lr_step >= 1 and 0 < lr_decay <= 1")
        if self.lr_step_unit not in ("epoch", "step"):
            raise ConfigError(f"optim.lr_step_unit must be 'epoch' or 'step', got {self.lr_step_unit!r}")


@dataclass(frozen=True)
class TrainerConfig:
    """Devices, precision, run length, logging and checkpoint intervals (passed on to Lightning)."""

    accelerator: str = "auto"  # cpu | gpu | auto
    devices: int | str | list[int] = "auto"  # per node
    num_nodes: int = 1
    strategy: str = "auto"  # auto picks DDP for several devices; or ddp, ddp_find_unused_parameters_true, ...
    precision: str = "32"  # 32 | bf16-mixed | 16-mixed
    channels_last: bool = False
    # torch.compile the forward pass and loss of a training step (minutes to compile on CPU)
    compile: bool = False
    sync_batchnorm: bool = False
    max_epochs: int = 20
    max_steps: int = -1  # optimiser steps; -1: no limit
    # Wall-clock limit, "DD:HH:MM:SS" or seconds (time-boxed GPU leases). The export then holds the weights of
    # the step where time ran out; last.ckpt stays at the previous checkpoint_every_n_steps save.
    max_time: str | int | None = None
    accumulate_grad_batches: int = 1
    limit_train_batches: int | float | None = None
    limit_val_batches: int | float | None = None
    val_check_interval: int | float | None = None  # default: once per epoch
    check_val_every_n_epoch: int = 1
    num_sanity_val_steps: int = 2
    log_every_n_steps: int = 50
    image_every_n_steps: int = 1000  # completion grids; 0 disables
    image_count: int = 2  # samples per grid
    checkpoint_every_n_steps: int = 2000
    keep_checkpoints: int = 5  # periodic checkpoints kept (the newest); -1 keeps all
    seed: int = 0
    deterministic: bool = False
    benchmark: bool | None = None  # cudnn.benchmark; None leaves Lightning's default
    matmul_precision: str | None = None  # torch.set_float32_matmul_precision: highest | high | medium
    progress_bar: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "precision", str(self.precision))
        if self.precision not in PRECISIONS:
            raise ConfigError(
                f"trainer.precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}"
            )
        if self.accumulate_grad_batches < 1 or self.num_nodes < 1 or self.log_every_n_steps < 1:
            raise ConfigError("trainer needs accumulate_grad_batches, num_nodes and log_every_n_steps >= 1")
        if self.checkpoint_every_n_steps < 1 or self.keep_checkpoints == 0 or self.keep_checkpoints < -1:
            raise ConfigError("trainer needs checkpoint_every_n_steps >= 1 and keep_checkpoints >= 1 or -1")
        if min(self.max_epochs, self.max_steps, self.num_sanity_val_steps) < -1:
            raise ConfigError(
                "trainer needs max_epochs, max_steps and num_sanity_val_steps >= -1 (-1: no limit)"
            )
        if self.check_val_every_n_epoch < 1 or self.image_every_n_steps < 0 or self.image_count < 1:
            raise ConfigError(
                "trainer needs check_val_every_n_epoch >= 1, image_every_n_steps >= 0, image_count >= 1"
            )
        if self.max_time is not None:
            object.__setattr__(self, "max_time", _duration(self.max_time))


def _duration(value: str | int) -> str:
    """Lightning's "DD:HH:MM:SS" for a positive duration given as that string or as seconds.

    YAML 1.1 reads ``01:00:00:00`` as a base-60 integer, so seconds must be accepted as well.
    """
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        minutes, seconds = divmod(value, 60)
        hours, minutes = divmod(minutes, 60)
        days, hours = divmod(hours, 24)
        return f"{days:02d}:{hours:02d}:{minutes:02d}:{seconds:02d}"
    parts = str(value).split(":")
    if len(parts) == 4 and all(p.isdigit() for p in parts) and any(int(p) for p in parts):
        return str(value)
    raise ConfigError(f"trainer.max_time must be 'DD:HH:MM:SS' or a number of seconds > 0, got {value!r}")


@dataclass(frozen=True)
class OutputConfig:
    """Where a run writes: ``dir/name``."""

    dir: str = "runs"
    name: str = "dfnet"
    export_half: bool = False  # store the safetensors export in fp16

    @property
    def run_dir(self) -> Path:
        return Path(self.dir) / self.name


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs; :func:`load_config` builds it from YAML plus overrides."""

    model: DFNetConfig = field(default_factory=DFNetConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    vgg: VGGConfig = field(default_factory=VGGConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    data: DataConfig = field(default_factory=DataConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    # Smoke runs: when data.root is unset, generate this many synthetic training images (and a few for
    # validation) under the run directory and train on them. 0 disables.
    synthetic_images: int = 0
    # Start from the weights in this file (safetensors, released .pth or a run's .ckpt) instead of a
    # fresh initialisation; shared keys are copied (dfnet.checkpoint.init_from_weights). A resume wins.
    init_weights: str | None = None
    # Start every learned alpha map at this value (dfnet.model.set_initial_alpha) before init_weights
    # is read; alpha networks that init_weights supplies keep their weights. None: PyTorch's default.
    initial_alpha: float | None = None

    def __post_init__(self) -> None:
        if self.initial_alpha is not None and not 0.0 < self.initial_alpha < 1.0:
            raise ConfigError(f"initial_alpha must lie strictly between 0 and 1, got {self.initial_alpha}")
        try:
            self.loss.check_scales(len(self.model.fusion_layers))
        except ValueError as err:
            raise ConfigError(str(err)) from None
        multiple = self.model.size_multiple
        if self.data.size % multiple:
            raise ConfigError(
                f"data.image_size must be a multiple of {multiple} for DFNet, got {self.data.size}"
            )
        if (self.data.size // multiple) ** 2 * self.data.batch_size < 2:
            raise ConfigError(
                f"data.batch_size must be at least 2 at {self.data.size}x{self.data.size}: the innermost "
                "BatchNorm sees one value per channel otherwise"
            )

    @property
    def run_dir(self) -> Path:
        return self.output.run_dir

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict of lists, numbers, strings and None (YAML- and weights_only-safe)."""
        return plain(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TrainConfig:
        """Build from a nested dict (missing keys keep their defaults; unknown keys are errors)."""
        values = dict(values or {})
        _reject_unknown(values, [f.name for f in dataclasses.fields(cls)], "the config")
        kwargs: dict[str, Any] = {}
        try:
            check_field_types(cls, values)  # a wrong type names its field here, not at the start of training
            for name, builder in _SECTION_BUILDERS.items():
                section = values.get(name) or {}
                if not isinstance(section, Mapping):
                    raise ConfigError(f"config section {name!r} must be a mapping, got {section!r}")
                kwargs[name] = builder(dict(section), name)
            kwargs["synthetic_images"] = int(values.get("synthetic_images", 0) or 0)
            kwargs["init_weights"] = values.get("init_weights") or None
            initial_alpha = values.get("initial_alpha")
            kwargs["initial_alpha"] = None if initial_alpha is None else float(initial_alpha)
            return cls(**kwargs)
        except ConfigError:
            raise
        except (TypeError, ValueError) as err:
            raise ConfigError(str(err).splitlines()[0]) from None


def plain(value: Any) -> Any:
    """Tuples to lists and Paths to strings, recursively, for YAML and checkpoints."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def _reject_unknown(values: Mapping[str, Any], known: Sequence[str], where: str) -> None:
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(
            f"unknown option(s) in {where}: {', '.join(unknown)} (known: {', '.join(sorted(known))})"
        )


def _build_dataclass(cls: type, values: dict[str, Any], section: str) -> Any:
    """A frozen dataclass from a dict: unknown keys rejected, lists turned into tuples."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    _reject_unknown(values, list(fields), f"section {section!r}")
    for key, value in values.items():
        if isinstance(value, list) and "tuple" in str(fields[key].type):
            values[key] = tuple(value)
    return cls(**values)


def _build_model(values: dict[str, Any], section: str) -> DFNetConfig:
    _reject_unknown(values, [f.name for f in dataclasses.fields(DFNetConfig)], f"section {section!r}")
    return DFNetConfig.from_dict(values)


def _build_data(values: dict[str, Any], section: str) -> DataConfig:
    return DataConfig.from_dict(values)


_SECTION_BUILDERS: dict[str, Callable[[dict[str, Any], str], Any]] = {
    "model": _build_model,
    "loss": lambda v, s: _build_dataclass(LossConfig, v, s),
    "vgg": lambda v, s: _build_dataclass(VGGConfig, v, s),
    "optim": lambda v, s: _build_dataclass(OptimConfig, v, s),
    "data": _build_data,
    "trainer": lambda v, s: _build_dataclass(TrainerConfig, v, s),
    "output": lambda v, s: _build_dataclass(OutputConfig, v, s),
}


class _ConfigLoader(yaml.SafeLoader):
    """YAML safe loader that also reads ``2e-4`` (no dot) as a float, as people write learning rates."""


_ConfigLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def parse_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_ConfigLoader)


def packaged_configs() -> list[str]:
    """Names of the configs shipped in the package (``dfnet/configs/*.yaml``)."""
    folder = resources.files("dfnet") / "configs"
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def read_config_text(source: str | os.PathLike) -> tuple[str, str]:
    """(YAML text, where it came from) for a file path or the name of a packaged config."""
    path = Path(source)
    if path.is_file():
        return path.read_text(encoding="utf-8"), str(path)
    name = str(source).removesuffix(".yaml")
    packaged = resources.files("dfnet") / "configs" / f"{name}.yaml"
    if "/" not in name and packaged.is_file():
        return packaged.read_text(encoding="utf-8"), f"dfnet/configs/{name}.yaml"
    raise ConfigError(
        f"no config file {source} and no packaged config of that name ({', '.join(packaged_configs())})"
    )


def apply_override(values: dict[str, Any], override: str) -> None:
    """Apply one ``section.key=value`` override (value parsed as YAML) to a nested dict in place."""
    key, sep, text = override.partition("=")
    parts = key.strip().split(".")
    if not sep or not all(parts):
        raise ConfigError(f"override {override!r} must look like section.key=value")
    target = values
    for part in parts[:-1]:
        child = target.get(part)
        if child is None:
            child = target[part] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"override {override!r}: {part} is not a section")
        target = child
    try:
        target[parts[-1]] = parse_yaml(text) if text.strip() else None
    except yaml.YAMLError as err:
        raise ConfigError(
            f"override {override!r}: value is not valid YAML ({str(err).splitlines()[0]})"
        ) from None


def merge_config_values(base: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """``values`` over ``base``: sections merge key by key, anything else (lists included) replaces."""
    merged = dict(base)
    for key, value in values.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_config_values(merged[key], value)
        else:
            merged[key] = value
    return merged


def read_config_values(source: str | os.PathLike, _chain: tuple[str, ...] = ()) -> dict[str, Any]:
    """The nested dict of a YAML config, with its ``base:`` config (a packaged name or a file) underneath."""
    text, origin = read_config_text(source)
    try:
        values = parse_yaml(text) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{origin}: not valid YAML ({str(err).splitlines()[0]})") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{origin}: the config must be a mapping of sections")
    base = values.pop("base", None)
    if base is None:
        return values
    if not isinstance(base, str) or not base:
        raise ConfigError(f"{origin}: base must name a config, got {base!r}")
    origin_file = Path(origin) if Path(origin).is_file() else None
    key = str(origin_file.resolve()) if origin_file else origin  # one name per file for the cycle check
    if key in _chain:
        raise ConfigError(f"{origin}: configs name each other as base ({' -> '.join((*_chain, key))})")
    sibling = origin_file.parent / base if origin_file else None
    base_source = sibling if sibling is not None and sibling.is_file() else base
    return merge_config_values(read_config_values(base_source, (*_chain, key)), values)


def load_config(source: str | os.PathLike, overrides: Sequence[str] = ()) -> TrainConfig:
    """Read a YAML config (file path or packaged name, with its ``base:`` chain) and apply overrides."""
    values = read_config_values(source)
    for override in overrides:
        apply_override(values, override)
    return TrainConfig.from_dict(values)


def config_to_yaml(config: TrainConfig) -> str:
    return yaml.safe_dump(config.to_dict(), sort_keys=False, default_flow_style=None)


# =============================================================================================
# Data: a training loader that resumes mid-epoch
# =============================================================================================
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


def write_synthetic_images(folder: Path, count: int, size: int, seed: int) -> Path:
    """``count`` smooth random pictures (gradients, discs, stripes) as PNGs, for smoke runs; idempotent."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    for i in range(count):
        path = folder / f"synthetic_{i:04d}.png"
        if path.is_file():
            continue
        rng = np.random.default_rng([seed, i])
        a, b, c = rng.uniform(0.2, 1.0, size=(3, 3))
        image = np.stack([a[k] * xx + b[k] * yy + c[k] * 0.3 for k in range(3)], axis=2) / 2
        for _ in range(3):
            cy, cx, r = rng.uniform(0.1, 0.9), rng.uniform(0.1, 0.9), rng.uniform(0.05, 0.2)
            disc = (yy - cy) ** 2 + (xx - cx) ** 2 < r**2
            image[disc] = rng.uniform(0, 1, size=3)
        image += 0.1 * np.sin(xx[..., None] * rng.uniform(10, 60) + np.arange(3))
        rgb = (np.clip(image, 0, 1) * 255).astype(np.uint8)
        atomic_write(path, lambda tmp, rgb=rgb: Image.fromarray(rgb).save(tmp, format="PNG"))
    return folder


def synthetic_data_config(config: TrainConfig) -> TrainConfig:
    """``config`` pointed at generated images when it asks for them and has no data root."""
    if config.synthetic_images <= 0 or config.data.root:
        return config
    base = config.run_dir / "synthetic_data"
    size, seed = config.data.size, config.data.seed
    train = write_synthetic_images(base / "train", config.synthetic_images, size, seed)
    val = write_synthetic_images(base / "val", max(2, config.synthetic_images // 4), size, seed + 1)
    data = dataclasses.replace(config.data, dataset="folder", root=str(train), val_root=str(val))
    return dataclasses.replace(config, data=data)


# =============================================================================================
# The LightningModule
# =============================================================================================
class DFNetLightning(pl.LightningModule):
    """DFNet training: multi-scale losses on every batch, L1/BPE/PSNR on the fixed validation set.

    Batches are dicts ``{"image": (B,3,H,W) in [0,1], "hole_mask": (B,1,H,W), 1 = hole, ...}``. Only the
    DFNet weights are in ``state_dict`` (keys ``model.*``): the frozen VGG is rebuilt from its file.
    """

    def __init__(
        self, config: TrainConfig, vgg: VGG16Features | None = None, initialise: bool = True
    ) -> None:
        """``initialise=False`` skips ``config.init_weights`` (a resumed run loads its own checkpoint)."""
        super().__init__()
        self.config = config
        self.model = DFNet(config.model)
        if config.initial_alpha is not None and initialise:
            set_initial_alpha(self.model, config.initial_alpha)
        if config.init_weights and initialise:
            loaded, left = init_from_weights(self.model, config.init_weights)
            log.info(
                "initialised %d tensors from %s; %d keep their fresh initialisation",
                len(loaded),
                config.init_weights,
                len(left),
            )
        if vgg is None and config.loss.needs_vgg:
            vgg = load_vgg16_features(config.vgg.weights, config.vgg.allow_random)
        self.criterion = DFNetLoss(config.loss, vgg)
        self._val_sums: Tensor | None = None
        self._train_terms = self._loss_terms  # replaced by its compiled version in on_fit_start

    # -- state: DFNet only -------------------------------------------------------------------
    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """The DFNet weights as ``model.<key>`` (the VGG is an external, frozen asset)."""
        return {f"model.{k}": v for k, v in self.model.state_dict(*args, **kwargs).items()}

    def load_state_dict(
        self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False
    ) -> Any:
        """Load ``model.<key>`` entries into the DFNet."""
        inner = {k.removeprefix("model."): v for k, v in state_dict.items() if k.startswith("model.")}
        return self.model.load_state_dict(inner, strict=strict, assign=assign)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["dfnet_config"] = plain(self.model.config.to_dict())
        checkpoint["train_config"] = self.config.to_dict()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        saved = checkpoint.get("dfnet_config")
        if saved is not None and DFNetConfig.from_dict(saved) != self.model.config:
            raise ConfigError(
                f"the checkpoint was trained with model config {saved}, "
                f"but this run's model config is {plain(self.model.config.to_dict())}"
            )
        # The decay schedule follows this run's config, not the checkpoint's, so a resumed run can be
        # given another one (optim.lr_step / optim.lr_decay); step count and current lr are restored.
        for scheduler_state in checkpoint.get("lr_schedulers", []):
            scheduler_state["step_size"] = self.config.optim.lr_step
            scheduler_state["gamma"] = self.config.optim.lr_decay

    # -- steps ---------------------------------------------------------------------------------
    def _inputs(self, batch: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
        image, hole_mask = batch["image"], batch["hole_mask"]
        if self.config.trainer.channels_last:
            image = image.contiguous(memory_format=torch.channels_last)
            hole_mask = hole_mask.contiguous(memory_format=torch.channels_last)
        return image, hole_mask

    def forward(self, image: Tensor, hole_mask: Tensor) -> DFNetOutput:
        return self.model(image, hole_mask)

    def _loss_terms(self, image: Tensor, hole_mask: Tensor) -> dict[str, Tensor]:
        """Forward through every fusion block and the multi-scale loss (the part ``trainer.compile`` compiles)."""
        return self.criterion(self.model(image, hole_mask).results, image, hole_mask)

    def training_step(self, batch: Mapping[str, Tensor], batch_idx: int) -> Tensor:
        image, hole_mask = self._inputs(batch)
        terms = self._train_terms(image, hole_mask)
        size = image.shape[0]
        self.log_dict({f"train/{k}": v.detach() for k, v in terms.items() if k != "total"}, batch_size=size)
        self.log("train/loss", terms["total"].detach(), prog_bar=True, on_epoch=True, batch_size=size)
        return terms["total"]

    def on_validation_epoch_start(self) -> None:
        # l1 sum, psnr sum, image count, BPE error sum, BPE pixel count
        self._val_sums = torch.zeros(5, dtype=torch.float64, device=self.device)

    def validation_step(self, batch: Mapping[str, Tensor], batch_idx: int) -> None:
        image, hole_mask = self._inputs(batch)
        result = composite(image, self.model.complete(image, hole_mask).to(image.dtype), hole_mask)
        bpe_error, bpe_pixels = per_image_bpe_sums(result, image, hole_mask)
        batch_sums = [
            per_image_l1(result, image).sum(),
            per_image_psnr(result, image).sum(),
            torch.tensor(float(image.shape[0]), device=image.device),
            bpe_error.sum(),
            bpe_pixels.sum(),
        ]
        self._val_sums += torch.stack([s.double() for s in batch_sums])

    def on_validation_epoch_end(self) -> None:
        sums = self.trainer.strategy.reduce(self._val_sums, reduce_op="sum")
        if sums[2] == 0:
            return
        metrics = {"val/l1": sums[0] / sums[2], "val/psnr": sums[1] / sums[2]}
        if sums[4] > 0:
            metrics["val/bpe"] = sums[3] / sums[4]
        self.log_dict({k: v.float() for k, v in metrics.items()}, prog_bar=True, sync_dist=False)

    # -- optimisation --------------------------------------------------------------------------
    def configure_optimizers(self) -> dict[str, Any]:
        cfg = self.config.optim
        optimizer = torch.optim.Adam(
            self.model.parameters(),
            lr=cfg.lr,
            betas=tuple(cfg.betas),
            weight_decay=cfg.weight_decay,
            fused=cfg.fused or None,
        )
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.lr_step, gamma=cfg.lr_decay)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {
                "scheduler": scheduler,
                "interval": cfg.lr_step_unit,
                "frequency": 1,
                "name": "lr",
            },
        }

    def on_fit_start(self) -> None:
        if self.config.trainer.channels_last:
            self.model.to(memory_format=torch.channels_last)
            if self.criterion.vgg is not None:
                self.criterion.vgg.to(memory_format=torch.channels_last)
        if self.config.trainer.compile:
            self._train_terms = torch.compile(self._loss_terms)


# =============================================================================================
# Callbacks and checkpoint I/O
# =============================================================================================
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


# =============================================================================================
# Trainer construction and the run
# =============================================================================================
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
    if config.optim.grad_clip is not None:
        optional["gradient_clip_val"] = config.optim.grad_clip
    loggers = [
        TensorBoardLogger(save_dir=str(run_dir), name="tensorboard", version="", default_hp_metric=False),
        CSVLogger(save_dir=str(run_dir), name="csv"),
    ]
    return pl.Trainer(
        accelerator=cfg.accelerator,
        devices=cfg.devices,
        num_nodes=cfg.num_nodes,
        strategy=cfg.strategy,
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
        atomic_write_text(config.run_dir / "config.yaml", config_to_yaml(config))
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
    """Optimiser steps in one epoch (for planning schedules)."""
    per_rank = math.ceil(dataset_size / world_size)
    batches = (
        per_rank // config.data.batch_size
        if config.data.drop_last
        else math.ceil(per_rank / config.data.batch_size)
    )
    return math.ceil(batches / config.trainer.accumulate_grad_batches)


__all__ = [
    "AtomicCheckpointIO",
    "ConfigError",
    "DFNetLightning",
    "ImageGridLogger",
    "OptimConfig",
    "OutputConfig",
    "ResumableDataModule",
    "ResumableSampler",
    "ThroughputMonitor",
    "TrainConfig",
    "TrainResult",
    "TrainerConfig",
    "VGGConfig",
    "build_trainer",
    "completion_grid",
    "export_checkpoint",
    "load_config",
    "train",
]
