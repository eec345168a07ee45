"""Training configuration: typed dataclass configs and YAML loading with ``base:`` inheritance and overrides.

One YAML file (a config packaged in ``dfnet/configs/`` or any path) holds every setting, in sections
``model`` (:class:`~dfnet.model.DFNetConfig`), ``loss`` (:class:`~dfnet.losses.LossConfig`), ``vgg``,
``optim``, ``data`` (:class:`~dfnet.data.DataConfig`), ``trainer``, ``output`` and ``discriminator``
(:class:`~dfnet.gan.discriminator.DiscriminatorConfig`, the optional adversarial loss, off by default); ``key=value``
overrides (``trainer.max_steps=100``) change single values. The paper's ablations are config changes:
``model.fusion=mask|none``, ``model.fusion_layers=[0]`` / ``[0,1,2]`` (1 or 3 fusion blocks),
``loss.structure_scales`` / ``loss.texture_scales`` (p, q). The dataclasses are the schema of an OmegaConf
structured config (:mod:`dfnet.structured_config`): values are type-checked as they are merged, and
``${section.key}`` interpolation works in files and overrides.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from dfnet import structured_config
from dfnet.choices import check_choice
from dfnet.data import DataConfig
from dfnet.gan.discriminator import DiscriminatorConfig
from dfnet.losses import LossConfig
from dfnet.model import DFNetConfig
from dfnet.safe_load import loads_yaml, read_yaml

PRECISIONS = ("32", "32-true", "bf16-mixed", "16-mixed")
LRStepUnit = Literal["epoch", "step"]  # what optim.lr_step counts


class ConfigError(ValueError):
    """An invalid training configuration or override (one-line, user-facing message)."""


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
    lr_step_unit: LRStepUnit = "epoch"
    grad_clip: float | None = None  # clip the gradient norm to this value (None: no clipping)
    fused: bool = True  # torch's fused Adam kernel (CPU and CUDA): same update, one kernel for all tensors

    def __post_init__(self) -> None:
        if self.lr <= 0 or self.lr_step < 1 or not 0 < self.lr_decay <= 1:
            raise ConfigError("optim needs lr > 0, lr_step >= 1 and 0 < lr_decay <= 1")
        check_choice("optim.lr_step_unit", self.lr_step_unit, LRStepUnit, ConfigError)
        if not all(0 <= beta < 1 for beta in self.betas):
            raise ConfigError(f"optim.betas must be two numbers in [0, 1), got {list(self.betas)}")
        if self.weight_decay < 0 or (self.grad_clip is not None and self.grad_clip <= 0):
            raise ConfigError(
                f"optim needs weight_decay >= 0 and grad_clip > 0 or null, got {self.weight_decay}, "
                f"{self.grad_clip}"
            )


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
    # The optional adversarial loss (not in the paper; dfnet.gan.lightning_step). Off by default.
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
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
        if self.synthetic_images < 0:
            raise ConfigError(f"synthetic_images must be >= 0, got {self.synthetic_images}")
        if self.init_weights is not None and (not self.init_weights.strip() or "\0" in self.init_weights):
            raise ConfigError(
                f"init_weights must be the path of a weights file or null, got {self.init_weights!r}"
            )
        if self.initial_alpha is not None and not 0.0 < self.initial_alpha < 1.0:
            raise ConfigError(f"initial_alpha must lie strictly between 0 and 1, got {self.initial_alpha}")
        try:
            self.loss.check_scales(len(self.model.fusion_layers))
        except ValueError as err:
            raise ConfigError(str(err)) from None
        multiple = self.model.size_multiple
        if self.data.size % multiple:
            raise ConfigError(
                f"data.image_size must be a multiple of {multiple} for DFNet (2 to the number of "
                f"model.encoder_kernels), got {self.data.size}"
            )
        if (self.data.size // multiple) ** 2 * self.data.batch_size < 2:
            raise ConfigError(
                f"data.batch_size must be at least 2 at data.image_size {self.data.size}: the innermost "
                "BatchNorm sees one value per channel otherwise"
            )
        if self.discriminator.enabled:
            self._check_adversarial()

    def _check_adversarial(self) -> None:
        """Trainer options that manual optimisation with two networks does not support."""
        trainer = self.trainer
        refused = [
            (trainer.precision == "16-mixed", "trainer.precision=16-mixed (use bf16-mixed or 32)"),
            (trainer.accumulate_grad_batches > 1, "trainer.accumulate_grad_batches > 1"),
            (trainer.compile, "trainer.compile=true"),
        ]
        for is_set, option in refused:
            if is_set:
                raise ConfigError(f"discriminator.enabled=true does not support {option}")

    @property
    def run_dir(self) -> Path:
        return self.output.run_dir

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict of lists, numbers, strings and None (YAML- and weights_only-safe)."""
        return plain(dataclasses.asdict(self))


def plain(value: Any) -> Any:
    """Tuples to lists and Paths to strings, recursively, for YAML and checkpoints."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def packaged_configs() -> list[str]:
    """Names of the configs shipped in the package (``dfnet/configs/*.yaml``)."""
    folder = resources.files("dfnet") / "configs"
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def _config_file(source: str | os.PathLike) -> tuple[Any, str]:
    """(file or packaged resource, the name errors give it) for a path or the name of a packaged config."""
    path = Path(source)
    if path.is_file():
        return path, str(path)
    name = str(source).removesuffix(".yaml")
    packaged = resources.files("dfnet") / "configs" / f"{name}.yaml"
    if "/" not in name and packaged.is_file():
        return packaged, f"dfnet/configs/{name}.yaml"
    if path.exists():  # a folder, a FIFO: read_yaml says what it is
        return path, str(path)
    raise ConfigError(
        f"no config file {source} and no packaged config of that name ({', '.join(packaged_configs())})"
    )


def parse_override(override: str) -> tuple[str, Any]:
    """``(dotted key, value)`` of one ``section.key=value`` override, the value parsed as YAML."""
    key, sep, text = override.partition("=")
    parts = key.strip().split(".")
    if not sep or not all(parts):
        raise ConfigError(f"override {override!r} must look like section.key=value")
    key = ".".join(parts)
    return key, loads_yaml(text, f"override {key}") if text.strip() else None


def read_config_files(source: str | os.PathLike, _chain: tuple[str, ...] = ()) -> list[tuple[dict, str]]:
    """(values, origin) of a YAML config and its ``base:`` chain (a file next to it, else a packaged
    name), the deepest base first."""
    file, origin = _config_file(source)
    values = read_yaml(file, origin)
    if values is None:
        raise ConfigError(f"{origin}: holds no settings (only comments or blank lines)")
    if not isinstance(values, dict):
        raise ConfigError(f"{origin}: the config must be a mapping of sections")
    base = values.pop("base", None)
    if base is None:
        return [(values, origin)]
    if not isinstance(base, str) or not base:
        raise ConfigError(f"{origin}: base must name a config, got {base!r}")
    origin_file = Path(origin) if Path(origin).is_file() else None
    key = str(origin_file.resolve()) if origin_file else origin  # one name per file for the cycle check
    if key in _chain:
        raise ConfigError(f"{origin}: configs name each other as base ({' -> '.join((*_chain, key))})")
    return [*read_config_files(_base_source(origin_file, base), (*_chain, key)), (values, origin)]


def _base_source(origin_file: Path | None, base: str) -> str | Path:
    """Where ``base:`` points: a file next to the config (``NAME`` or ``NAME.yaml``), else a packaged name."""
    if origin_file is None:
        return base
    for candidate in (base, f"{base}.yaml"):
        sibling = origin_file.parent / candidate
        if sibling.is_file():
            return sibling
    return base


def load_config(source: str | os.PathLike, overrides: Sequence[str] = ()) -> TrainConfig:
    """Read a YAML config (file path or packaged name, with its ``base:`` chain) and apply overrides.

    The values merge into the :class:`TrainConfig` schema file by file (sections key by key, lists
    replaced), then the overrides; each value is checked against its field as it arrives.
    """
    config = structured_config.schema(TrainConfig)
    try:
        for values, origin in read_config_files(source):
            structured_config.merge(config, values, origin)
        for override in overrides:
            structured_config.update(config, *parse_override(override))
        return structured_config.build(config, TrainConfig)
    except ConfigError:
        raise
    except (TypeError, ValueError) as err:
        raise ConfigError(str(err).splitlines()[0]) from None


def config_to_yaml(config: TrainConfig) -> str:
    return yaml.safe_dump(config.to_dict(), sort_keys=False, default_flow_style=None)
