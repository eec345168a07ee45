"""Training: configs and overrides, the LightningModule, checkpoints (atomic, weights_only, loadable,
exported), exact resume (step, optimiser, data position, final weights), DDP on CPU and the smoke CLI.

Most runs use a 3-layer DFNet (sides multiple of 8) at 32x32 with a deterministic in-test data
module, so a run takes seconds; the smoke and DDP tests use the real command line.
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
import torch.nn.functional as F
from helpers import (
    TINY_TRAINING,
    assert_one_line_error,
    encode,
    files_in,
    picture,
    run_cli,
)
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from safetensors import safe_open
from torch.utils.data import DataLoader, Dataset

from dfnet.checkpoint import CheckpointError, load_model, read_state_dict, save_model
from dfnet.cli import main
from dfnet.inference import working_size_of
from dfnet.model import DFNet, DFNetConfig
from dfnet.training import (
    AtomicCheckpointIO,
    ConfigError,
    DFNetLightning,
    ResumableSampler,
    TrainConfig,
    completion_grid,
    load_config,
    packaged_configs,
    train,
)
from dfnet.vgg import VGG16Features, VGGWeightsError

ROOT = Path(__file__).resolve().parents[1]
REPO_CONFIGS = ROOT / "configs"  # the stages of the bundled model, run by path
pytestmark = pytest.mark.usefixtures("one_thread_per_module")  # tiny convolutions: fastest on one thread


def tiny_config(tmp_path: Path, *overrides: str) -> TrainConfig:
    return load_config("smoke", [*TINY_TRAINING, f"output.dir={tmp_path}", *overrides])


def random_vgg() -> VGG16Features:
    vgg = VGG16Features()
    vgg.init_random()
    return vgg


class PatternDataset(Dataset):
    """Sample i is a fixed function of i: a coloured gradient with a rectangular hole."""

    def __init__(self, count: int, size: int, offset: int = 0) -> None:
        self.count, self.size, self.offset = count, size, offset

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> dict:
        gen = torch.Generator().manual_seed(index + self.offset)
        ramp = torch.linspace(0, 1, self.size)
        colour = torch.rand(3, 1, 1, generator=gen)
        image = (colour * ramp[None, :, None] + (1 - colour) * ramp[None, None, :]).clamp(0, 1)
        hole = torch.zeros(1, self.size, self.size)
        top, left = (int(v) for v in torch.randint(0, self.size // 2, (2,), generator=gen))
        hole[:, top : top + self.size // 4, left : left + self.size // 3] = 1
        return {"image": image, "hole_mask": hole, "index": index}


class PatternDataModule(pl.LightningDataModule):
    def __init__(self, count: int = 8, size: int = 32, batch_size: int = 2) -> None:
        super().__init__()
        self.count, self.size, self.batch_size = count, size, batch_size

    def train_dataloader(self) -> DataLoader:
        return DataLoader(
            PatternDataset(self.count, self.size), batch_size=self.batch_size, shuffle=True, drop_last=True
        )

    def val_dataloader(self) -> DataLoader:
        return DataLoader(PatternDataset(2, self.size, offset=1000), batch_size=2)


class Recorder(pl.Callback):
    """Remembers the first step and optimiser state of a (resumed) run and the sample indices per batch."""

    def __init__(self) -> None:
        self.start_step: int | None = None
        self.start_optimizer: dict | None = None
        self.indices: list[list[int]] = []

    def on_train_start(self, trainer, pl_module) -> None:
        self.start_step = trainer.global_step
        self.start_optimizer = copy.deepcopy(trainer.optimizers[0].state_dict())
        self.start_lr = trainer.optimizers[0].param_groups[0]["lr"]

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.indices.append(batch["index"].tolist())


def run(config: TrainConfig, resume=None, **kwargs) -> tuple:
    recorder = Recorder()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = train(
            config,
            resume=resume,
            datamodule=kwargs.pop("datamodule", PatternDataModule()),
            extra_callbacks=[recorder],
            vgg=random_vgg(),
        )
    return result, recorder


def metrics_rows(run_dir: Path) -> list[dict]:
    rows = []
    for path in sorted(run_dir.glob("csv/version_*/metrics.csv")):
        with open(path, newline="") as f:
            rows += list(csv.DictReader(f))
    return rows


def assert_same_tensors(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------
def test_packaged_configs_load() -> None:
    assert {"places2", "celeba", "smoke"} <= set(packaged_configs())
    places2 = load_config("places2")
    assert places2.data.size == 512 and places2.data.batch_size == 6 and places2.optim.lr == 2e-3
    assert (places2.loss.structure_scales, places2.loss.texture_scales) == (6, 3)
    assert (places2.loss.lambda_l1, places2.loss.lambda_perceptual, places2.loss.lambda_style) == (
        6,
        0.1,
        240,
    )
    assert load_config("celeba").data.size == 256
    smoke = load_config("smoke")
    assert smoke.vgg.allow_random and smoke.model.width == 0.125
    for name in packaged_configs():  # every file parses into a valid TrainConfig
        assert isinstance(load_config(name), TrainConfig), name
    for path in REPO_CONFIGS.glob("*.yaml"):  # the stage configs, by path
        assert isinstance(load_config(path), TrainConfig), path
    assert load_config(REPO_CONFIGS / "wallpapers-boundary.yaml").loss.lambda_boundary == 3.0


def test_configs_readme_lists_every_config() -> None:
    table = (REPO_CONFIGS / "README.md").read_text()
    for name in [*packaged_configs(), *(p.stem for p in REPO_CONFIGS.glob("*.yaml"))]:
        assert f"| `{name}` |" in table, name


def test_package_ships_the_starting_configs_and_the_repository_the_stages() -> None:
    assert packaged_configs() == ["celeba", "places2", "smoke", "wallpapers"]
    stages = sorted(p.stem for p in REPO_CONFIGS.glob("*.yaml"))
    assert stages and all(name.startswith(("wallpapers-", "texture-")) for name in stages)
    assert not set(stages) & set(packaged_configs())  # one copy of each file
    assert "src/dfnet/configs" in (REPO_CONFIGS / "README.md").read_text()


@pytest.mark.parametrize("recorded", sorted((ROOT / "tests" / "data" / "resolved_configs").glob("*.yaml")))
def test_configs_resolve_to_the_recorded_values(recorded: Path) -> None:
    """Every config, base chain and all, resolves field by field to the values recorded before the move."""
    name = recorded.stem
    source = name if name in packaged_configs() else REPO_CONFIGS / f"{name}.yaml"
    config, expected = load_config(source), load_config(recorded)
    for section in dataclasses.fields(TrainConfig):
        assert getattr(config, section.name) == getattr(expected, section.name), (name, section.name)


def test_overrides_and_round_trip(tmp_path: Path) -> None:
    config = load_config(
        "places2", ["optim.lr=2e-4", "model.fusion=mask", "trainer.devices=[0,1]", "data.masks.bins=[0,1]"]
    )
    assert config.optim.lr == pytest.approx(2e-4) and isinstance(config.optim.lr, float)
    assert config.model.fusion == "mask" and config.trainer.devices == [0, 1]
    assert config.data.masks.bins == (0, 1)
    path = tmp_path / "copy.yaml"
    from dfnet.training import config_to_yaml

    path.write_text(config_to_yaml(config))
    assert load_config(path) == config


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["optim.nope=1"], "unknown option"),
        (["model.fusion_layers=[0,1,2]"], r"\(p, q\) = \(6, 3\)"),
        (["data.image_size=300"], "multiple of 256"),
        (["trainer.precision=8"], "trainer.precision"),
        (["optim.lr"], "section.key=value"),
        (["optim.lr_step_unit=month"], "lr_step_unit"),
        (["data.image_size=256", "data.batch_size=1"], "at least 2"),
        (["trainer.max_time=5min"], "max_time"),
        (["trainer.max_time=0"], "max_time"),
    ],
)
def test_config_errors(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config("places2", overrides)


def test_config_base_merges_sections_and_replaces_lists(tmp_path: Path) -> None:
    (tmp_path / "parent.yaml").write_text("base: places2\noptim:\n  lr: 1.0e-4\nmodel:\n  width: 0.5\n")
    child = tmp_path / "child.yaml"
    child.write_text(
        "base: parent.yaml\nmodel:\n  fusion_layers: [0]\nloss:\n  structure_scales: 1\n  texture_scales: 1\n"
        "data:\n  batch_size: 3\n"
    )
    places2, config = load_config("places2"), load_config(child, ["optim.lr_decay=0.5"])
    assert config.model.width == 0.5 and config.model.fusion_layers == (0,)  # sibling file, then packaged
    assert config.optim.lr == pytest.approx(1e-4) and config.optim.lr_decay == 0.5
    assert config.optim.betas == places2.optim.betas and config.data.batch_size == 3
    assert (
        config.data.dataset == places2.data.dataset and config.loss.lambda_style == places2.loss.lambda_style
    )


def test_config_base_name_finds_the_yaml_file_next_to_it_before_a_packaged_one(tmp_path: Path) -> None:
    (tmp_path / "smoke.yaml").write_text("base: places2\nmodel:\n  width: 0.5\n")  # shadows packaged smoke
    (tmp_path / "child.yaml").write_text("base: smoke\n")
    config = load_config(tmp_path / "child.yaml")
    assert config.model.width == 0.5 and config.data.size == load_config("places2").data.size
    (tmp_path / "other" / "child.yaml").parent.mkdir()
    (tmp_path / "other" / "child.yaml").write_text("base: smoke\n")  # no sibling: the packaged smoke
    assert load_config(tmp_path / "other" / "child.yaml") == load_config("smoke")


def test_config_base_errors(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("base: b.yaml\n")
    (tmp_path / "b.yaml").write_text(f"base: ../{tmp_path.name}/a.yaml\n")  # a.yaml again, by another name
    for start in ("a.yaml", "b.yaml"):
        with pytest.raises(ConfigError, match="name each other as base"):
            load_config(tmp_path / start)
    (tmp_path / "c.yaml").write_text("base: [places2]\n")
    with pytest.raises(ConfigError, match="base must name a config"):
        load_config(tmp_path / "c.yaml")
    (tmp_path / "d.yaml").write_text("base: no-such-config\n")
    with pytest.raises(ConfigError, match="no config file no-such-config"):
        load_config(tmp_path / "d.yaml")


def test_wallpaper_stages_build_on_each_other() -> None:
    ring, zoom = (
        load_config(REPO_CONFIGS / "wallpapers-ring.yaml"),
        load_config(REPO_CONFIGS / "wallpapers-zoom.yaml"),
    )
    assert ring.model == zoom.model and ring.loss == zoom.loss and zoom.data.max_zoom == 2.0
    assert (
        ring.initial_alpha is None
        and load_config(REPO_CONFIGS / "wallpapers-pushpull.yaml").initial_alpha == 0.05
    )
    assert load_config(REPO_CONFIGS / "wallpapers-gpu.yaml").trainer.max_time == "00:00:03:20"
    stage2 = load_config(REPO_CONFIGS / "wallpapers-stage2.yaml")  # base: wallpapers, the packaged stage 1
    assert stage2.model.width == load_config("wallpapers").model.width and stage2.model.fusion == "mask"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("00:00:05:00", "00:00:05:00"), ("300", "00:00:05:00"), ("01:00:00:00", "01:00:00:00")],
)
def test_max_time_accepts_lightning_durations_and_seconds(value: str, expected: str) -> None:
    assert load_config("smoke", [f"trainer.max_time={value}"]).trainer.max_time == expected


def test_max_time_stops_the_run_and_exports_the_last_weights(tmp_path: Path) -> None:
    config = tiny_config(tmp_path, "trainer.max_time=1", "trainer.max_steps=100000", "trainer.max_epochs=-1")
    result, _ = run(config)
    assert 0 < result.global_step < 100000
    with safe_open(str(result.export), framework="pt") as f:  # written although max_steps was never reached
        assert f.metadata()["global_step"] == str(result.global_step)


def test_ablations_are_config_only() -> None:
    for overrides in (
        ["model.fusion=none", "model.fusion_layers=[0]", "loss.structure_scales=1", "loss.texture_scales=1"],
        [
            "model.fusion=mask",
            "model.fusion_layers=[0,1,2]",
            "loss.structure_scales=3",
            "loss.texture_scales=3",
        ],
        ["loss.structure_scales=6", "loss.texture_scales=0"],
        ["loss.structure_scales=2", "loss.texture_scales=1"],
    ):
        config = load_config("places2", overrides)
        assert len(config.model.fusion_layers) >= config.loss.structure_scales


def test_missing_vgg_weights_stop_training(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.delenv("DFNET_VGG16_WEIGHTS", raising=False)
    with pytest.raises(VGGWeightsError, match="vgg16-397923af.pth"):
        DFNetLightning(tiny_config(tmp_path, "vgg.allow_random=false"))


def test_init_weights_starts_the_network_from_a_file(tmp_path: Path) -> None:
    first = DFNetLightning(tiny_config(tmp_path), vgg=random_vgg())
    torch.manual_seed(7)
    for p in first.model.parameters():
        p.data.normal_()
    save_model(first.model, tmp_path / "start.safetensors")
    config = tiny_config(tmp_path, "model.fusion=mask", f"init_weights={tmp_path / 'start.safetensors'}")
    second = DFNetLightning(config, vgg=random_vgg())
    for key, value in second.model.state_dict().items():
        assert torch.equal(value, first.model.state_dict()[key]), key
    missing = tiny_config(tmp_path, f"init_weights={tmp_path / 'missing.safetensors'}")
    with pytest.raises(CheckpointError, match="no such weights file"):
        DFNetLightning(missing, vgg=random_vgg())
    DFNetLightning(missing, vgg=random_vgg(), initialise=False)  # a resume does not need the file any more


def test_initial_alpha_sets_fresh_alpha_networks_but_not_loaded_ones(tmp_path: Path) -> None:
    image, hole_mask = torch.rand(2, 3, 256, 256), (torch.rand(2, 1, 256, 256) > 0.7).float()
    fresh = DFNetLightning(tiny_config(tmp_path, "initial_alpha=0.9"), vgg=random_vgg())
    assert fresh.config.initial_alpha == 0.9
    for alpha in fresh.model.eval()(image, hole_mask).alphas:
        torch.testing.assert_close(alpha, torch.full_like(alpha, 0.9))
    # Alpha networks that init_weights supplies win over initial_alpha.
    torch.manual_seed(3)
    source = DFNetLightning(tiny_config(tmp_path), vgg=random_vgg())
    save_model(source.model, tmp_path / "start.safetensors")
    loaded = DFNetLightning(
        tiny_config(tmp_path, "initial_alpha=0.9", f"init_weights={tmp_path / 'start.safetensors'}"),
        vgg=random_vgg(),
    )
    for key, value in loaded.model.state_dict().items():
        assert torch.equal(value, source.model.state_dict()[key]), key
    with pytest.raises(ConfigError, match="initial_alpha"):
        tiny_config(tmp_path, "initial_alpha=1.0")


def test_fused_adam_takes_the_same_step_as_the_plain_one(tmp_path: Path) -> None:
    # The same gradients (fixed random tensors, not the network's: a bias before BatchNorm has a
    # gradient of pure rounding noise, which Adam scales up to a full step) go to both optimisers.
    params = {}
    for fused in ("true", "false"):
        torch.manual_seed(0)
        module = DFNetLightning(tiny_config(tmp_path, f"optim.fused={fused}"), vgg=random_vgg())
        optimizer = module.configure_optimizers()["optimizer"]
        assert bool(optimizer.defaults["fused"]) == (fused == "true")
        generator = torch.Generator().manual_seed(1)
        for _ in range(3):
            for p in module.model.parameters():
                p.grad = torch.randn(p.shape, generator=generator)
            optimizer.step()
        params[fused] = [p.detach().clone() for p in module.model.parameters()]
    for a, b in zip(params["true"], params["false"], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


# --------------------------------------------------------------------------------------------
# Pieces
# --------------------------------------------------------------------------------------------
def test_resumable_sampler_orders_by_epoch_and_skips() -> None:
    data = list(range(10))
    sampler = ResumableSampler(data, num_replicas=1, rank=0, seed=3)
    first = list(sampler)
    assert sorted(first) == data and list(sampler) == first  # same epoch, same order
    sampler.set_epoch(1)
    second = list(sampler)
    assert second != first
    sampler.resume(1, 4)
    assert list(sampler) == second[4:]
    assert list(sampler) == second  # only one pass is shortened
    sampler.resume(1, 4)
    sampler.set_epoch(2)  # a new epoch forgets the skip
    assert len(list(sampler)) == 10
    halves = [list(ResumableSampler(data, num_replicas=2, rank=r, seed=3)) for r in (0, 1)]
    assert sorted(halves[0] + halves[1]) == data


def test_atomic_checkpoint_io_keeps_old_file_on_failure(tmp_path: Path) -> None:
    io = AtomicCheckpointIO()
    path = tmp_path / "a.ckpt"
    io.save_checkpoint({"x": torch.ones(2)}, path)
    with pytest.raises(Exception):  # noqa: B017 - whatever torch.save raises for an unpicklable object
        io.save_checkpoint({"x": lambda: 0}, path)
    assert torch.equal(torch.load(path, weights_only=True)["x"], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ["a.ckpt"]  # no temporary file left behind


def test_completion_grid_layout() -> None:

    model = DFNet(DFNetConfig(encoder_kernels=(7, 5, 5, 3), fusion_layers=(0, 1, 2), width=0.125)).eval()
    image, hole = torch.rand(2, 3, 32, 32), torch.zeros(2, 1, 32, 32)
    hole[..., 8:16, 8:16] = 1
    with torch.no_grad():
        grid = completion_grid(image, hole, model(image, hole), cell=32)
    # 2 samples x (3 rows of 32 + 4 separator) high, (1 + 3 scales) x 32 wide
    assert grid.shape == (3, 2 * (3 * 32 + 4), 4 * 32)
    assert torch.all(grid[:, 8:16, 8:16] == 1)  # the hole is white in the input cell
    assert torch.allclose(grid[:, 32:64, :32], image[0])  # the target


def test_lr_schedule_steps(tmp_path: Path) -> None:
    config = tiny_config(tmp_path, "optim.lr=1e-3", "optim.lr_step=2", "optim.lr_step_unit=step")
    module = DFNetLightning(config, vgg=random_vgg())
    setup = module.configure_optimizers()
    optimizer, scheduler = setup["optimizer"], setup["lr_scheduler"]["scheduler"]
    lrs = []
    for _ in range(5):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs == pytest.approx([1e-3, 1e-3, 1e-4, 1e-4, 1e-5])
    assert setup["lr_scheduler"]["interval"] == "step"


# --------------------------------------------------------------------------------------------
# Whole runs
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def full_run(tmp_path_factory) -> tuple:
    """6 steps over an 8-image set in batches of 2 (4 batches an epoch), checkpoints every 2 steps."""
    tmp = tmp_path_factory.mktemp("full")
    config = tiny_config(tmp, "output.name=full", "trainer.max_steps=6", "trainer.keep_checkpoints=-1")
    result, recorder = run(config)
    return config, result, recorder


def test_run_writes_checkpoints_logs_images_and_export(full_run) -> None:
    config, result, recorder = full_run
    run_dir = result.run_dir
    assert result.global_step == 6 and len(recorder.indices) == 6
    names = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert names == ["last.ckpt", "step=00000002.ckpt", "step=00000004.ckpt", "step=00000006.ckpt"]
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    assert (run_dir / "images" / "step_00000002.png").is_file()
    assert load_config(run_dir / "config.yaml") == config
    rows = metrics_rows(run_dir)
    columns = set().union(*rows)
    for name in ("l1", "perceptual", "style", "tv", "structure", "texture", "loss_step"):
        assert f"train/{name}" in columns, name
    assert {"lr", "train/images_per_s", "val/l1", "val/bpe", "val/psnr"} <= columns
    val_l1 = [float(r["val/l1"]) for r in rows if r.get("val/l1")]
    assert len(val_l1) == 1 and 0 < val_l1[0] < 1  # one finished epoch (steps 1-4) was validated


def test_checkpoint_is_weights_only_and_loadable(full_run) -> None:
    train_config, result, _ = full_run
    checkpoint = torch.load(result.last_checkpoint, map_location="cpu", weights_only=True)
    assert checkpoint["global_step"] == 6
    assert checkpoint["dfnet_config"]["fusion_layers"] == [0, 1, 2]
    assert all(k.startswith("model.") for k in checkpoint["state_dict"])  # no VGG weights inside
    model = load_model(result.last_checkpoint)
    exported, config = read_state_dict(result.export)
    assert config == model.config
    assert_same_tensors(exported, model.state_dict())
    out = result.run_dir / "cli_export.safetensors"
    assert main(["export-checkpoint", str(result.last_checkpoint), str(out), "--working-size", "256"]) == 0
    assert_same_tensors(read_state_dict(out)[0], exported)
    assert working_size_of(out) == 256
    assert working_size_of(result.export) == train_config.data.image_size


@pytest.mark.parametrize("stop", [2, 4])  # mid-epoch and at an epoch boundary
def test_resume_is_exact(full_run, tmp_path: Path, stop: int) -> None:
    config, result, reference = full_run
    checkpoint_path = result.run_dir / "checkpoints" / f"step={stop:08d}.ckpt"
    saved = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
    resumed_config = tiny_config(tmp_path, "output.name=resumed", "trainer.max_steps=6")
    resumed, recorder = run(resumed_config, resume=checkpoint_path)
    # continues from the saved step with the saved optimiser state and learning rate
    assert recorder.start_step == stop
    state = recorder.start_optimizer["state"]
    for key, value in saved["optimizer_states"][0]["state"].items():
        assert_same_tensors(state[key], value)
    # sees exactly the batches the uninterrupted run saw after that step
    assert recorder.indices == reference.indices[stop:]
    # and ends with the same weights (deterministic config, CPU)
    assert_same_tensors(load_model(resumed.export).state_dict(), load_model(result.export).state_dict())


@pytest.mark.parametrize("first_leg", ["trainer.max_steps=3", "trainer.max_epochs=1"])
def test_continue_finished_run_with_longer_schedule(full_run, tmp_path: Path, first_leg: str) -> None:
    """A run that ended (max_steps or max_epochs) and is continued with a longer one matches the long run."""
    _, result, reference = full_run
    first, _ = run(
        tiny_config(tmp_path, "output.name=legs", first_leg, "trainer.checkpoint_every_n_steps=100")
    )
    assert first.global_step in (3, 4)
    second, recorder = run(tiny_config(tmp_path, "output.name=legs", "trainer.max_steps=6"), resume="auto")
    assert recorder.start_step == first.global_step
    assert recorder.indices == reference.indices[first.global_step :]
    assert_same_tensors(load_model(second.export).state_dict(), load_model(result.export).state_dict())


def test_resumed_run_takes_its_decay_schedule_from_its_config(tmp_path: Path) -> None:
    common = ("output.name=reschedule", "optim.lr=1e-3", "optim.lr_step_unit=step")
    first, _ = run(tiny_config(tmp_path, *common, "optim.lr_step=100", "trainer.max_steps=2"))
    config = tiny_config(tmp_path, *common, "optim.lr_step=3", "optim.lr_decay=0.5", "trainer.max_steps=6")
    resumed, recorder = run(config, resume="auto")
    assert recorder.start_step == first.global_step == 2
    final = torch.load(resumed.last_checkpoint, map_location="cpu", weights_only=True)
    scheduler = final["lr_schedulers"][0]
    assert (scheduler["step_size"], scheduler["gamma"], scheduler["last_epoch"]) == (3, 0.5, 6)
    # no decay in the first leg (step_size 100); after resuming, halved at steps 3 and 6
    assert final["optimizer_states"][0]["param_groups"][0]["lr"] == pytest.approx(1e-3 * 0.25)


def test_existing_run_needs_resume(full_run) -> None:
    config, result, _ = full_run
    with pytest.raises(ConfigError, match="--resume auto"):
        run(config)
    again, recorder = run(config, resume="auto")  # already finished: nothing left to do
    assert again.global_step == 6 and recorder.indices == []


def test_accumulation_mixed_precision_channels_last(tmp_path: Path) -> None:
    config = tiny_config(
        tmp_path,
        "trainer.max_steps=1",
        "trainer.accumulate_grad_batches=2",
        "trainer.precision=bf16-mixed",
        "trainer.channels_last=true",
        "trainer.limit_val_batches=0",
    )
    result, recorder = run(config)
    assert result.global_step == 1 and len(recorder.indices) == 2  # two batches per optimiser step
    weights = load_model(result.export).state_dict()
    assert all(torch.isfinite(v).all() for v in weights.values() if v.is_floating_point())


# --------------------------------------------------------------------------------------------
# Command line: smoke config and 2-process DDP
# --------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_compiled_training_step_matches_eager(tmp_path: Path) -> None:
    torch.manual_seed(0)
    module = DFNetLightning(tiny_config(tmp_path, "trainer.compile=true"), vgg=random_vgg())
    module.on_fit_start()
    assert module._train_terms is not module._loss_terms  # the compiled step is what training_step calls
    image = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    hole_mask = torch.zeros(2, 1, 32, 32)
    hole_mask[..., 8:20, 4:28] = 1
    losses, grads = [], []
    for step in (module._loss_terms, module._train_terms):
        module.model.zero_grad()
        terms = step(image, hole_mask)
        terms["total"].backward()
        losses.append({k: v.item() for k, v in terms.items()})
        grads.append([p.grad.clone() for p in module.model.parameters()])
    assert losses[1] == pytest.approx(losses[0], rel=1e-4, abs=1e-6)
    # Fused kernels round differently, and BatchNorm over few values and the style weight (240) amplify it
    # (1-6 % in single small tensors, measured); a bias before BatchNorm has a gradient of pure rounding
    # noise (~1e-8). A wrong graph (a missing term, a detached branch) changes gradients by ~100 %.
    flat = [torch.cat([g.flatten() for g in run]) for run in grads]
    assert (flat[1] - flat[0]).norm() <= 1e-2 * flat[0].norm()
    for eager, compiled in zip(*grads, strict=True):
        if eager.norm() > 1e-6:
            assert F.cosine_similarity(compiled.flatten(), eager.flatten(), dim=0) > 0.99


@pytest.mark.slow
def test_smoke_config_cli(tmp_path: Path) -> None:
    assert main(["train", "--config", "smoke", f"output.dir={tmp_path}", "trainer.progress_bar=false"]) == 0
    run_dir = tmp_path / "smoke"
    assert (run_dir / "model.safetensors").is_file() and (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert load_model(run_dir / "model.safetensors").config.width == 0.125
    assert any(r.get("val/l1") for r in metrics_rows(run_dir))
    assert main(["train", "--config", "smoke", f"output.dir={tmp_path}"]) == 1  # exists: needs --resume


def train_ddp_on_cpu(tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess:
    """``dfnet train`` of the tiny smoke run as 2 DDP processes on CPU (run ``tmp_path/ddp``), checked to succeed."""
    args = [
        *TINY_TRAINING,
        f"output.dir={tmp_path}",
        "output.name=ddp",
        "trainer.devices=2",
        "trainer.strategy=ddp",
        "trainer.max_steps=2",
        "trainer.limit_train_batches=2",  # one epoch of 2 steps, then validation
        "trainer.checkpoint_every_n_steps=1",
        "trainer.limit_val_batches=1",
        "data.batch_size=1",
        *overrides,
    ]
    env = dict(os.environ, PYTHONWARNINGS="ignore", OMP_NUM_THREADS="1")
    done = subprocess.run(
        [sys.executable, "-m", "dfnet.cli", "train", "--config", "smoke", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.mark.slow
def test_ddp_two_processes_on_cpu(tmp_path: Path) -> None:
    done = train_ddp_on_cpu(tmp_path)
    run_dir = tmp_path / "ddp"
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert checkpoint["global_step"] == 2
    rows = metrics_rows(run_dir)
    rates = [float(r["train/images_per_s"]) for r in rows if r.get("train/images_per_s")]
    assert rates and any(r.get("val/l1") for r in rows)
    assert "world_size=2" in done.stderr or "distributed_backend=gloo" in done.stderr
    assert load_model(run_dir / "model.safetensors").config.fusion_layers == (0, 1, 2)


def test_cli_config_errors_and_print(capsys) -> None:
    assert main(["train", "--config", "no-such-config"]) == 1
    assert "no config file no-such-config" in capsys.readouterr().err
    assert main(["train", "--config", "smoke", "optim.lr=5e-4", "--print-config"]) == 0
    assert "lr: 0.0005" in capsys.readouterr().out


def test_steps_per_epoch_counts_batches_per_rank_and_accumulation() -> None:
    from dfnet.training import steps_per_epoch

    config = load_config("smoke", ["data.batch_size=3", "trainer.accumulate_grad_batches=2"])
    assert steps_per_epoch(10, config) == 2  # 3 full batches of 3 (one image dropped), 2 per step
    assert steps_per_epoch(100, config, world_size=8) == 2  # 13 per rank: 4 batches
    assert steps_per_epoch(10, load_config("smoke", ["data.batch_size=3", "data.drop_last=false"])) == 4


def _training_fields() -> list[tuple[str, Any]]:
    """(section.field, annotation) of every training option."""
    import dataclasses
    import typing

    from dfnet.training import TrainConfig

    found = []
    for section, section_type in typing.get_type_hints(TrainConfig).items():
        if dataclasses.is_dataclass(section_type):
            found += [(f"{section}.{name}", t) for name, t in typing.get_type_hints(section_type).items()
                      if not dataclasses.is_dataclass(t)]  # fmt: skip
        else:
            found.append((section, section_type))
    return found


TRAINING_FIELDS = _training_fields()


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(TRAINING_FIELDS), value=st.sampled_from(["{a: 1}", "[[1], 2]", "abc", ".inf"]))
def test_a_training_option_of_the_wrong_type_names_its_field_before_training(field, value, capsys):
    import typing

    name, annotation = field
    takes_text = str in (annotation, *typing.get_args(annotation))
    assume(not (takes_text and value in ("abc", ".inf")))  # any scalar is valid text
    code, out, err = run_cli(capsys, "train", "--config", "smoke", f"{name}={value}", "--print-config")
    assert code == 1 and out == ""
    assert_one_line_error(err, "train", f"{name} must be")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("trainer.max_epochs=-5", "max_epochs, max_steps and num_sanity_val_steps >= -1"),
        ("data.num_workers=100000", "num_workers is at most 256"),  # was: 100,000 loader processes forked
        ("trainer.precision=64", "trainer.precision must be one of"),
    ],
)
def test_a_training_option_out_of_range_is_refused_before_training(override, message, capsys):
    code, out, err = run_cli(capsys, "train", "--config", "smoke", override, "--print-config")
    assert code == 1 and out == ""
    assert_one_line_error(err, "train", message)


def test_a_trainer_setting_lightning_refuses_is_one_line(tmp_path, capsys):
    code, _, err = run_cli(
        capsys, "train", "--config", "smoke", f"output.dir={tmp_path}", "trainer.accelerator=abacus"
    )
    assert code == 1
    lines = [line for line in err.splitlines() if line.startswith("dfnet train")]
    assert "Traceback" not in err and lines == [lines[-1]] and "invalid accelerator name" in lines[-1]


def test_a_run_directory_inside_the_training_data_is_refused(tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "a.png").write_bytes(encode(picture(64, 64), "PNG"))
    before = files_in(tmp_path)
    code, _, err = run_cli(
        capsys, "train", "--config", "smoke", f"data.root={photos}", f"output.dir={photos}"
    )
    assert code == 1
    assert_one_line_error(err, "train", "lies inside the input folder", "--overwrite")
    assert files_in(tmp_path) == before
