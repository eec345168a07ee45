"""Adversarial training in DFNetLightning (dfnet.gan.lightning_step): the discriminator config section, both
networks updated and checkpointed, exact resume, generator steps counted as steps, bf16, export without the
discriminator, and DDP on CPU. Tiny runs as in tests/test_training.py (3-layer DFNet, 32x32, a few steps)."""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import pytest
import torch
from lightning.pytorch import Callback
from safetensors import safe_open
from test_training import (
    PatternDataModule,
    Recorder,
    assert_same_tensors,
    metrics_rows,
    random_vgg,
    tiny_config,
    train_ddp_on_cpu,
)

from dfnet.checkpoint import load_model
from dfnet.cli import main
from dfnet.training import ConfigError, DFNetLightning, load_config, packaged_configs, train
from dfnet.training.fit import ddp_strategy
from dfnet.vgg import VGGWeightsError

pytestmark = pytest.mark.usefixtures("one_thread_per_module")

GAN = ("discriminator.enabled=true", "discriminator.width=8")
REPO_CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def gan_config(tmp_path: Path, *overrides: str):
    return tiny_config(tmp_path, *GAN, *overrides)


def discriminator_state(checkpoint: dict) -> dict[str, torch.Tensor]:
    return {k: v for k, v in checkpoint["state_dict"].items() if k.startswith("discriminator.")}


def load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


class BothNetworks(Callback):
    """Both networks' weights and both optimiser states when training starts, and the loss terms of every step."""

    def __init__(self) -> None:
        self.terms: list[dict[str, torch.Tensor]] = []

    def on_train_start(self, trainer, pl_module) -> None:
        self.start_weights = copy.deepcopy(pl_module.state_dict())
        self.start_optimizers = [copy.deepcopy(o.state_dict()) for o in trainer.optimizers]
        if pl_module.adversarial is None:
            return
        step = pl_module.adversarial.training_step

        def recording_step(module, image, hole_mask):
            terms = step(module, image, hole_mask)
            self.terms.append({**terms, "autocast": torch.tensor(torch.is_autocast_enabled("cpu"))})
            return terms

        pl_module.adversarial.training_step = recording_step


def run(config, resume=None) -> tuple:
    """Train on the deterministic pattern data; (result, sample indices per batch, BothNetworks record)."""
    indices, record = Recorder(), BothNetworks()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = train(
            config,
            resume=resume,
            datamodule=PatternDataModule(),
            extra_callbacks=[indices, record],
            vgg=random_vgg(),
        )
    return result, indices.indices, record


# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------
def test_discriminator_is_off_by_default_and_in_the_paper_configs() -> None:
    for name in packaged_configs():
        assert not load_config(name).discriminator.enabled, name
    assert load_config(REPO_CONFIGS / "texture-cpu.yaml").discriminator.enabled


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["discriminator.depth_of_field=2"], "unknown option discriminator.depth_of_field \\(known: "),
        (["discriminator.lr=0"], "discriminator.lr must be > 0"),
        (["discriminator.r1_every=0"], "discriminator.r1_every"),
        (["discriminator.adversarial_region=edges"], "discriminator.adversarial_region"),
        ([*GAN, "trainer.precision=16-mixed"], "does not support trainer.precision=16-mixed"),
        ([*GAN, "trainer.accumulate_grad_batches=2"], "does not support trainer.accumulate_grad_batches"),
        ([*GAN, "trainer.compile=true"], "does not support trainer.compile"),
    ],
)
def test_discriminator_config_errors(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config("smoke", overrides)


def test_print_config_shows_the_discriminator_section(capsys) -> None:
    assert main(["train", "--config", "smoke", *GAN, "discriminator.betas=[0.0,0.99]", "--print-config"]) == 0
    out = capsys.readouterr().out
    assert "discriminator:\n  enabled: true" in out and "betas: [0.0, 0.99]" in out and "width: 8" in out


def test_missing_vgg_weights_message_names_the_random_texture_weights(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.delenv("DFNET_VGG16_WEIGHTS", raising=False)
    with pytest.raises(VGGWeightsError, match=r"vgg16-397923af.pth.*vgg.weights=random:<seed>") as error:
        DFNetLightning(tiny_config(tmp_path, "vgg.allow_random=false"))
    assert "\n" not in str(error.value)
    module = DFNetLightning(tiny_config(tmp_path, "vgg.allow_random=false", "vgg.weights=random:3"))
    assert module.criterion.vgg is not None


# --------------------------------------------------------------------------------------------
# Runs
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def gan_run(tmp_path_factory) -> tuple:
    """6 steps (4 batches an epoch), checkpoints every 2 steps, lazy R1 every 3 discriminator steps."""
    tmp = tmp_path_factory.mktemp("gan")
    config = gan_config(
        tmp,
        "output.name=gan",
        "trainer.max_steps=6",
        "trainer.keep_checkpoints=-1",
        "discriminator.r1_weight=0.01",
        "discriminator.r1_every=3",
    )
    return (config, *run(config))


def test_one_step_updates_both_networks(tmp_path) -> None:
    config = gan_config(tmp_path, "trainer.max_steps=1", "trainer.limit_val_batches=0")
    result, _, recorder = run(config)
    start, after_one = recorder.start_weights, load(result.last_checkpoint)["state_dict"]
    assert result.global_step == 1 and start.keys() == after_one.keys()
    for prefix in ("model.", "discriminator."):
        buffers = ("running_mean", "running_var", "num_batches_tracked", "._u", "._v")
        learned = [k for k in start if k.startswith(prefix) and not k.endswith(buffers)]
        changed = [k for k in learned if not torch.equal(start[k], after_one[k])]
        assert learned and changed == learned, prefix
    power_iteration = (
        "discriminator.blocks.0.0.parametrizations.weight.0._u"  # spectral norm's estimate moved
    )
    assert not torch.equal(start[power_iteration], after_one[power_iteration])


def test_the_discriminator_terms_are_logged_and_lazy_r1_runs_every_r1_every_steps(gan_run) -> None:
    _, result, _, recorder = gan_run
    first = recorder.terms[0]
    assert {"adversarial", "feature_matching", "d_loss", "d_real_logit", "d_fake_logit", "r1"} <= first.keys()
    assert first["r1"] > 0 and recorder.terms[1]["r1"] == 0  # lazy R1 at discriminator steps 0 and 3
    assert recorder.terms[3]["r1"] > 0
    columns = set().union(*metrics_rows(result.run_dir))
    assert {"train/adversarial", "train/feature_matching", "train/d_loss", "train/r1", "lr"} <= columns


def test_max_steps_counts_generator_steps_and_the_checkpoint_holds_both_networks(gan_run) -> None:
    _, result, indices, _ = gan_run
    assert result.global_step == 6 and len(indices) == 6  # one generator (and one discriminator) step a batch
    names = sorted(p.name for p in (result.run_dir / "checkpoints").iterdir())
    assert names == ["last.ckpt", "step=00000002.ckpt", "step=00000004.ckpt", "step=00000006.ckpt"]
    checkpoint = load(result.last_checkpoint)
    assert len(checkpoint["optimizer_states"]) == 2 and checkpoint["lr_schedulers"][0]["last_epoch"] == 1
    saved = discriminator_state(checkpoint)
    assert any(k.endswith("._u") for k in saved) and any(k.endswith("._v") for k in saved)  # spectral norm
    assert len(checkpoint["optimizer_states"][1]["state"]) == len(
        [k for k in saved if k.endswith((".bias", ".original"))]
    )


def test_export_and_inference_weights_leave_the_discriminator_out(gan_run) -> None:
    _, result, _, _ = gan_run
    with safe_open(str(result.export), "pt") as f:
        assert f.keys() and not [k for k in f.keys() if "discriminator" in k or "blocks." in k]  # noqa: SIM118
    from_checkpoint = load_model(result.last_checkpoint).state_dict()
    assert_same_tensors(load_model(result.export).state_dict(), from_checkpoint)
    out = result.run_dir / "exported.safetensors"
    assert main(["export-checkpoint", str(result.last_checkpoint), str(out)]) == 0
    assert_same_tensors(load_model(out).state_dict(), from_checkpoint)


@pytest.mark.parametrize("stop", [2, 4])  # mid-epoch and at an epoch boundary
def test_resume_restores_both_networks_and_optimisers_and_continues_exactly(gan_run, tmp_path, stop) -> None:
    config, result, reference_indices, _ = gan_run
    checkpoint_path = result.run_dir / "checkpoints" / f"step={stop:08d}.ckpt"
    saved = load(checkpoint_path)
    resumed_config = gan_config(
        tmp_path,
        "output.name=resumed",
        "trainer.max_steps=6",
        "discriminator.r1_weight=0.01",
        "discriminator.r1_every=3",
    )
    resumed, indices, recorder = run(resumed_config, resume=checkpoint_path)
    assert_same_tensors(recorder.start_weights, saved["state_dict"])  # both networks, spectral-norm buffers
    for start, stored in zip(recorder.start_optimizers, saved["optimizer_states"], strict=True):
        assert start["param_groups"] == stored["param_groups"]
        for key, value in stored["state"].items():
            assert_same_tensors(start["state"][key], value)
    assert indices == reference_indices[stop:]
    assert_same_tensors(
        load(resumed.last_checkpoint)["state_dict"], load(result.last_checkpoint)["state_dict"]
    )


def test_resuming_across_an_enabled_or_disabled_discriminator_is_refused(gan_run, tmp_path) -> None:
    _, result, _, _ = gan_run
    config = tiny_config(tmp_path, "output.name=plain", "trainer.max_steps=6")
    with pytest.raises(ConfigError, match="trained with a discriminator.*init_weights"):
        run(config, resume=result.run_dir / "checkpoints" / "step=00000002.ckpt")


def test_init_weights_without_a_discriminator_starts_a_fresh_one(gan_run, tmp_path) -> None:
    """A plain DFNet file seeds the generator; the discriminator starts from its own initialisation."""
    _, result, _, _ = gan_run
    plain = tmp_path / "plain.safetensors"
    assert main(["export-checkpoint", str(result.last_checkpoint), str(plain)]) == 0
    config = gan_config(tmp_path, "output.name=init", "trainer.max_steps=1", f"init_weights={plain}")
    _, _, recorder = run(config)
    start = recorder.start_weights
    assert_same_tensors(
        {k.removeprefix("model."): v for k, v in start.items() if k.startswith("model.")},
        load_model(plain).state_dict(),
    )
    trained = discriminator_state(load(result.last_checkpoint))
    assert not any(torch.equal(start[k], trained[k]) for k in trained if k.endswith(".original"))


@pytest.mark.parametrize("unit", ["step", "epoch"])
def test_with_zero_adversarial_weights_the_generator_trains_exactly_as_without_a_discriminator(
    tmp_path, unit
) -> None:
    """Manual optimisation keeps the automatic path's steps, LR schedule and gradient clipping bit for bit."""
    common = ("trainer.max_steps=6", "optim.lr=1e-3", "optim.lr_step=1", f"optim.lr_step_unit={unit}")
    common += ("optim.grad_clip=0.05", "trainer.limit_val_batches=0")
    plain, plain_indices, _ = run(tiny_config(tmp_path, "output.name=plain", *common))
    zero = ("discriminator.lambda_adversarial=0", "discriminator.lambda_feature_matching=0")
    gan, gan_indices, _ = run(gan_config(tmp_path, "output.name=zero", *common, *zero))
    assert gan.global_step == plain.global_step == 6 and gan_indices == plain_indices
    assert_same_tensors(load_model(gan.export).state_dict(), load_model(plain.export).state_dict())
    schedules = [load(r.last_checkpoint)["lr_schedulers"][0] for r in (plain, gan)]
    assert schedules[0]["last_epoch"] == schedules[1]["last_epoch"] == (6 if unit == "step" else 1)
    assert schedules[0]["_last_lr"] == schedules[1]["_last_lr"]


def test_bf16_mixed_step_runs_with_float32_losses(tmp_path) -> None:
    config = gan_config(
        tmp_path, "trainer.max_steps=1", "trainer.precision=bf16-mixed", "trainer.limit_val_batches=0"
    )
    result, _, recorder = run(config)
    assert result.global_step == 1
    (terms,) = recorder.terms
    assert terms.pop("autocast")  # the step ran under bf16 autocast
    for name, value in terms.items():
        assert value.dtype == torch.float32 and torch.isfinite(value), name
    assert_same_tensors(
        load_model(result.export).state_dict(), load_model(result.last_checkpoint).state_dict()
    )


# --------------------------------------------------------------------------------------------
# The discriminator's schedule and warm-up
# --------------------------------------------------------------------------------------------
WARM_UP = (
    "trainer.max_steps=5",
    "trainer.checkpoint_every_n_steps=1",
    "trainer.keep_checkpoints=-1",
    "trainer.limit_val_batches=0",
    "optim.lr=1e-3",
    "optim.lr_step=2",
    "optim.lr_step_unit=step",
    "optim.lr_decay=0.5",
    "discriminator.lr=4e-4",
    "discriminator.start_step=3",
)


@pytest.fixture(scope="module")
def warm_up_run(tmp_path_factory) -> tuple:
    """5 steps, the first 3 generator-only, both learning rates halved every 2 steps, a checkpoint a step."""
    config = gan_config(tmp_path_factory.mktemp("warm_up"), "output.name=warm_up", *WARM_UP)
    return (config, *run(config))


def step_checkpoint(result, step: int) -> dict:
    return load(result.run_dir / "checkpoints" / f"step={step:08d}.ckpt")


def test_the_discriminator_learning_rate_follows_the_generator_schedule(warm_up_run) -> None:
    _, result, _, _ = warm_up_run
    for step, factor in [(1, 1.0), (2, 0.5), (3, 0.5), (4, 0.25), (5, 0.25)]:
        generator, discriminator = step_checkpoint(result, step)["lr_schedulers"]
        assert generator["_last_lr"] == [pytest.approx(1e-3 * factor, rel=1e-12)], step
        assert discriminator["_last_lr"] == [pytest.approx(4e-4 * factor, rel=1e-12)], step
        assert generator["last_epoch"] == discriminator["last_epoch"] == step


def test_the_warm_up_trains_the_generator_alone_then_both(warm_up_run) -> None:
    _, result, _, recorder = warm_up_run
    assert ["d_loss" in terms for terms in recorder.terms] == [False, False, False, True, True]
    start = {k: v for k, v in recorder.start_weights.items() if k.startswith("discriminator.")}
    assert_same_tensors(discriminator_state(step_checkpoint(result, 3)), start)  # untouched, buffers too
    assert step_checkpoint(result, 3)["optimizer_states"][1]["state"] == {}  # Adam has never stepped
    learned = [k for k in start if k.endswith(".original")]
    after = discriminator_state(step_checkpoint(result, 4))
    assert learned and not any(torch.equal(after[k], start[k]) for k in learned)
    model_1, model_2 = (
        step_checkpoint(result, s)["state_dict"]["model.encoder.0.conv.conv.weight"] for s in (1, 2)
    )
    assert not torch.equal(model_1, model_2)  # the generator trains during the warm-up


def test_resume_in_the_middle_of_the_warm_up_continues_exactly(warm_up_run, tmp_path) -> None:
    _, result, reference_indices, _ = warm_up_run
    resumed, indices, recorder = run(
        gan_config(tmp_path, "output.name=resumed", *WARM_UP),
        resume=result.run_dir / "checkpoints" / "step=00000002.ckpt",
    )
    assert indices == reference_indices[2:] and [("d_loss" in t) for t in recorder.terms] == [
        False,
        True,
        True,
    ]
    expected, got = load(result.last_checkpoint), load(resumed.last_checkpoint)
    assert_same_tensors(got["state_dict"], expected["state_dict"])
    assert got["lr_schedulers"] == expected["lr_schedulers"]


@pytest.mark.slow
def test_ddp_two_processes_on_cpu_train_both_networks(tmp_path: Path) -> None:
    train_ddp_on_cpu(tmp_path, *GAN)
    checkpoints = tmp_path / "ddp" / "checkpoints"
    first, last = load(checkpoints / "step=00000001.ckpt"), load(checkpoints / "last.ckpt")
    assert last["global_step"] == 2 and len(last["optimizer_states"]) == 2
    changed = [k for k, v in discriminator_state(last).items() if not torch.equal(v, first["state_dict"][k])]
    assert changed


RANK_STATES = """
import sys

import torch
from lightning.pytorch import Callback

from dfnet.training import load_config, train


class SaveEveryRank(Callback):
    def on_train_end(self, trainer, module):
        optimizer = trainer.optimizers[1].state_dict()["state"]
        state = {
            "weights": {k: v.detach().cpu() for k, v in module.discriminator.state_dict().items()},
            "adam": {f"{i}.{k}": v.cpu() for i, s in optimizer.items() for k, v in s.items()},
        }
        torch.save(state, f"{sys.argv[1]}/rank{trainer.global_rank}.pt")


train(load_config("smoke", sys.argv[2:]), extra_callbacks=[SaveEveryRank()])
"""


@pytest.mark.slow
def test_ddp_ranks_hold_identical_discriminators(tmp_path: Path) -> None:
    """Every rank's discriminator (weights, spectral-norm vectors, Adam state) is the same after DDP steps."""
    import os
    import subprocess
    import sys

    from helpers import TINY_TRAINING

    script = tmp_path / "rank_states.py"  # a file: Lightning starts the other rank by running it again
    script.write_text(RANK_STATES)
    args = [*TINY_TRAINING, f"output.dir={tmp_path}", "output.name=ddp", "trainer.devices=2"]
    args += [
        "trainer.strategy=ddp",
        "trainer.max_steps=3",
        "trainer.limit_val_batches=0",
        "data.batch_size=1",
    ]
    env = dict(os.environ, PYTHONWARNINGS="ignore", OMP_NUM_THREADS="1")
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path), *args, *GAN, "discriminator.r1_weight=0.01"],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    for part in ("weights", "adam"):
        assert ranks[0][part] and ranks[0][part].keys() == ranks[1][part].keys(), part
        assert_same_tensors(ranks[0][part], ranks[1][part])
    assert any(k.endswith("._u") for k in ranks[0]["weights"])


@pytest.mark.parametrize(
    ("strategy", "devices", "nodes", "expected"),
    [
        ("auto", 1, 1, "auto"),
        ("auto", "auto", 1, "auto"),
        ("auto", 2, 1, "ddp_find_unused_parameters_true"),
        ("auto", [0, 1], 1, "ddp_find_unused_parameters_true"),
        ("auto", 1, 2, "ddp_find_unused_parameters_true"),
        ("ddp", 1, 1, "ddp_find_unused_parameters_true"),
        ("ddp_spawn", 2, 1, "ddp_spawn_find_unused_parameters_true"),
        ("ddp_find_unused_parameters_true", 2, 1, "ddp_find_unused_parameters_true"),
        ("deepspeed", 2, 1, "deepspeed"),
    ],
)
def test_ddp_strategy_finds_unused_parameters_when_it_runs_ddp(strategy, devices, nodes, expected) -> None:
    assert ddp_strategy(strategy, devices, nodes) == expected
