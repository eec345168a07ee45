"""Nothing is lost: killed training runs resume exactly, bad data files are skipped and reported,
evaluation reruns only what is unfinished and never leaves a partial report.

The SIGKILL tests run ``dfnet train`` in child processes. This file is also the child's entry point
(``python tests/test_training_recovery.py MODE STEP MARKER -- dfnet arguments``): MODE ``pause``
stops the run after optimiser step STEP (mid-epoch), MODE ``stall`` stops it halfway through writing
``last.ckpt`` at step STEP; both write MARKER and wait to be killed. Everything else is plain
``dfnet train``, and resuming is ``dfnet train ... --resume auto`` with no hooks.
"""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import TINY_TRAINING, png_declaring
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------------------------
# The child process: dfnet train with a pause or a stalled checkpoint write
# ---------------------------------------------------------------------------------------------
def _install_pause(step: int, marker: Path) -> None:
    """After optimiser step ``step`` (checkpoints of that step already written) announce and wait."""
    import lightning.pytorch as pl

    import dfnet.training.fit as fit

    class PauseAt(pl.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            if trainer.global_step == step:
                marker.write_text(str(step))
                time.sleep(3600)

    build = fit.build_callbacks
    fit.build_callbacks = lambda config: [*build(config), PauseAt()]


def _install_stall(step: int, marker: Path) -> None:
    """Write the first half of ``last.ckpt`` at ``step`` into its temporary file, then announce and wait."""
    import dfnet.training as training
    from dfnet.files import atomic_write

    original = training.AtomicCheckpointIO.save_checkpoint

    def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
        if Path(path).name != training.LAST_CHECKPOINT or checkpoint["global_step"] != step:
            return original(self, checkpoint, path, storage_options)

        def write_half(tmp: str) -> None:
            buffer = io.BytesIO()
            torch.save(checkpoint, buffer)
            with open(tmp, "wb") as f:
                f.write(buffer.getvalue()[: buffer.tell() // 2])
                f.flush()
                os.fsync(f.fileno())
            marker.write_text(tmp)
            time.sleep(3600)

        atomic_write(path, write_half)

    training.AtomicCheckpointIO.save_checkpoint = save_checkpoint


def _child(argv: list[str]) -> int:
    mode, step, marker, separator, *args = argv
    assert separator == "--"
    {"pause": _install_pause, "stall": _install_stall}[mode](int(step), Path(marker))
    from dfnet.cli import main

    return main(args)


# ---------------------------------------------------------------------------------------------
# Helpers for the tests
# ---------------------------------------------------------------------------------------------
def _environment() -> dict[str, str]:
    return dict(os.environ, PYTHONWARNINGS="ignore", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")


def train_args(out: Path, name: str, *extra: str) -> list[str]:
    return ["train", "--config", "smoke", *TINY_TRAINING, f"output.dir={out}", f"output.name={name}", *extra]


def dfnet(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``dfnet`` in a child process to the end."""
    return subprocess.run(
        [sys.executable, "-m", "dfnet.cli", *args],
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_until_killed(mode: str, step: int, args: list[str], tmp_path: Path, timeout: float = 300) -> str:
    """Start the child, wait for its marker, SIGKILL its whole process group; returns the marker text."""
    marker = tmp_path / f"{mode}-{step}.marker"
    log_file = tmp_path / f"{mode}-{step}.log"
    with open(log_file, "w") as log:
        child = subprocess.Popen(
            [sys.executable, __file__, mode, str(step), str(marker), "--", *args],
            env=_environment(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its data-loader workers die with it
        )
        try:
            deadline = time.monotonic() + timeout
            while not marker.exists():
                assert child.poll() is None, (
                    f"the run ended before step {step}:\n{log_file.read_text()[-3000:]}"
                )
                assert time.monotonic() < deadline, f"no marker after {timeout} s"
                time.sleep(0.2)
            time.sleep(0.2)  # let the marker's writer reach its sleep
        finally:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait(30)
    assert child.returncode == -signal.SIGKILL
    return marker.read_text()


def weights(path: Path) -> dict[str, torch.Tensor]:
    from dfnet.checkpoint import read_state_dict

    return read_state_dict(path)[0]


def assert_same_weights(a: Path, b: Path) -> None:
    first, second = weights(a), weights(b)
    assert first.keys() == second.keys()
    different = [k for k in first if not torch.equal(first[k], second[k])]
    assert not different, f"{len(different)} tensors differ, first {different[0]}"


def checkpoint_step(path: Path) -> int:
    return int(torch.load(path, map_location="cpu", weights_only=True)["global_step"])


# ---------------------------------------------------------------------------------------------
# SIGKILL mid-epoch and mid-checkpoint-write, then --resume auto (child processes)
# ---------------------------------------------------------------------------------------------
RUN = ["trainer.max_steps=10", "trainer.checkpoint_every_n_steps=3", "trainer.keep_checkpoints=-1",
       "data.num_workers=1"]  # fmt: skip


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """An uninterrupted run of 10 steps (2.5 epochs), checkpoints at steps 3, 6 and 9."""
    out = tmp_path_factory.mktemp("reference")
    done = dfnet(*train_args(out, "reference", *RUN))
    assert done.returncode == 0, done.stderr[-3000:]
    assert checkpoint_step(out / "reference" / "checkpoints" / "last.ckpt") == 10
    return out / "reference" / "model.safetensors"


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_auto_matches_the_uninterrupted_run(reference, tmp_path):
    args = train_args(tmp_path, "run", *RUN)
    run_until_killed("pause", 5, args, tmp_path)  # step 5 of 10: the second optimiser step of epoch 1
    checkpoints = tmp_path / "run" / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == ["last.ckpt", "step=00000003.ckpt"]
    assert checkpoint_step(checkpoints / "last.ckpt") == 3
    assert not (tmp_path / "run" / "model.safetensors").exists()

    resumed = dfnet(*args, "--resume", "auto")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"Restoring states from the checkpoint path at {checkpoints / 'last.ckpt'}" in resumed.stderr
    assert checkpoint_step(checkpoints / "last.ckpt") == 10
    assert_same_weights(tmp_path / "run" / "model.safetensors", reference)


@pytest.mark.slow
def test_sigkill_while_writing_a_checkpoint_then_resume_auto_matches(reference, tmp_path):
    args = train_args(tmp_path, "run", *RUN)
    half_written = Path(run_until_killed("stall", 6, args, tmp_path))  # last.ckpt of step 6, half written
    checkpoints = tmp_path / "run" / "checkpoints"
    assert half_written.parent == checkpoints and half_written.name.startswith(".last.ckpt.")
    assert half_written.stat().st_size > 0
    assert checkpoint_step(checkpoints / "last.ckpt") == 3  # the previous, complete last.ckpt is intact
    assert sorted(p.name for p in checkpoints.glob("*.ckpt")) == ["last.ckpt", "step=00000003.ckpt"]

    resumed = dfnet(*args, "--resume", "auto")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    # back to the last complete checkpoint (step 3); the half-written file is removed, never read
    assert f"Restoring states from the checkpoint path at {checkpoints / 'last.ckpt'}" in resumed.stderr
    assert not half_written.exists() and not list(checkpoints.glob(".*.tmp"))
    assert checkpoint_step(checkpoints / "last.ckpt") == 10
    assert_same_weights(tmp_path / "run" / "model.safetensors", reference)


# ---------------------------------------------------------------------------------------------
# Choosing the checkpoint to resume from (no training)
# ---------------------------------------------------------------------------------------------
def _fake_checkpoint(path: Path, step: int, cut: bool = False) -> None:
    """A minimal training checkpoint of ``step``; ``cut`` keeps only its first half (a damaged copy)."""
    buffer = io.BytesIO()
    torch.save({"state_dict": {"model.w": torch.full((64,), float(step))}, "global_step": step}, buffer)
    data = buffer.getvalue()
    path.write_bytes(data[: len(data) // 2] if cut else data)


@pytest.fixture
def run_config(tmp_path):
    from dfnet.training import load_config

    config = load_config("smoke", [*TINY_TRAINING, f"output.dir={tmp_path}", "output.name=run"])
    (config.run_dir / "checkpoints").mkdir(parents=True)
    return config


def test_resume_auto_takes_the_newest_complete_checkpoint_and_never_a_damaged_one(run_config, caplog):
    from dfnet.training import resolve_resume

    folder = run_config.run_dir / "checkpoints"
    _fake_checkpoint(folder / "step=00000003.ckpt", 3)
    _fake_checkpoint(folder / "step=00000006.ckpt", 6)
    _fake_checkpoint(folder / "step=00000009.ckpt", 9, cut=True)
    _fake_checkpoint(folder / "last.ckpt", 9, cut=True)
    (folder / ".last.ckpt.k2j4h.tmp").write_bytes(b"PK\x03\x04 half of a checkpoint")
    (folder / "step=00000012.ckpt").write_bytes(b"")  # an empty file, as a full disk leaves
    with caplog.at_level(logging.WARNING, logger="dfnet.training"):
        chosen = resolve_resume(run_config, "auto")
    assert chosen == folder / "step=00000006.ckpt"
    passed_over = {Path(r.args[0]).name for r in caplog.records if r.getMessage().startswith("not resuming")}
    assert passed_over == {"last.ckpt", "step=00000012.ckpt", "step=00000009.ckpt"}
    assert not (folder / ".last.ckpt.k2j4h.tmp").exists()  # the unfinished write is cleaned up

    _fake_checkpoint(folder / "last.ckpt", 7)  # a complete last.ckpt newer than every periodic one
    assert resolve_resume(run_config, "auto") == folder / "last.ckpt"
    _fake_checkpoint(folder / "step=00000008.ckpt", 8)  # a periodic one newer than last.ckpt
    assert resolve_resume(run_config, "auto") == folder / "step=00000008.ckpt"


def test_resume_from_a_named_damaged_checkpoint_is_a_one_line_error(run_config, capsys):
    from dfnet.cli import main
    from dfnet.training import ConfigError, resolve_resume

    damaged = run_config.run_dir / "checkpoints" / "step=00000003.ckpt"
    _fake_checkpoint(damaged, 3, cut=True)
    with pytest.raises(ConfigError, match="cannot resume from it"):
        resolve_resume(run_config, damaged)
    args = [
        "train",
        "--config",
        "smoke",
        *TINY_TRAINING,
        f"output.dir={run_config.output.dir}",
        "output.name=run",
    ]
    assert main([*args, "--resume", str(damaged)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{damaged}: cannot resume from it (" in err
    assert resolve_resume(run_config, "auto") is None  # nothing complete: a fresh start

    marker = run_config.run_dir / "pwned"
    evil = run_config.run_dir / "checkpoints" / "step=00000004.ckpt"
    torch.save({"state_dict": {}, "global_step": _Exploit(marker)}, evil)
    with pytest.raises(
        ConfigError, match=r"refused: it holds objects other than tensors \(.*GLOBAL posix.system"
    ):
        resolve_resume(run_config, evil)
    assert resolve_resume(run_config, "auto") is None and not marker.exists()  # never executed


class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


# ---------------------------------------------------------------------------------------------
# Exact mid-epoch resume through the real data pipeline (random crops, flips and masks)
# ---------------------------------------------------------------------------------------------
def _train(config, resume=None):
    import warnings

    from dfnet.training import train

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return train(config, resume=resume)


def test_mid_epoch_resume_with_random_masks_and_crops_is_exact(tmp_path, one_thread):
    from dfnet.training import load_config

    common = [*TINY_TRAINING, f"output.dir={tmp_path}", "trainer.max_steps=6", "trainer.checkpoint_every_n_steps=2",
              "trainer.keep_checkpoints=-1", "trainer.limit_val_batches=1", "trainer.image_every_n_steps=0"]  # fmt: skip
    full = _train(load_config("smoke", [*common, "output.name=full"]))
    # resume after step 2 of epoch 0 (4 steps an epoch), in another run and with a data-loader worker
    checkpoint = full.run_dir / "checkpoints" / "step=00000002.ckpt"
    resumed = _train(load_config("smoke", [*common, "output.name=resumed", "data.num_workers=1"]), checkpoint)
    assert resumed.global_step == 6
    assert_same_weights(resumed.export, full.export)


# ---------------------------------------------------------------------------------------------
# A data set with corrupt, unreadable and zero-size files trains and evaluates to the end
# ---------------------------------------------------------------------------------------------
def _add_bad_files(folder: Path) -> set[str]:
    """Six kinds of files no decoder can use; returns their names."""
    good = (folder / "good_0.png").read_bytes()
    (folder / "zero_bytes.png").write_bytes(b"")
    (folder / "zero_size.png").write_bytes(png_declaring(0, 0))
    (folder / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a JPEG" * 20)
    (folder / "truncated.png").write_bytes(good[: len(good) // 3])
    (folder / "broken_link.png").symlink_to(folder / "deleted.png")  # unreadable: points nowhere
    os.mkfifo(folder / "fifo.png")  # unreadable: reading it would wait forever (tests run as root)
    return {"zero_bytes.png", "zero_size.png", "corrupt.jpg", "truncated.png", "broken_link.png", "fifo.png"}


def _good_images(folder: Path, count: int, seed: int) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        y, x = np.mgrid[0:40, 0:48]
        rgb = np.stack([x * 5, y * 6, (x + y) * 2], axis=2) + rng.integers(0, 50, (40, 48, 3))
        Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(folder / f"good_{i}.png")


def test_training_on_a_folder_with_bad_files_runs_to_the_end_and_reports_them(tmp_path, capsys, one_thread):
    from dfnet.cli import main

    train_dir, val_dir = tmp_path / "train", tmp_path / "val"
    _good_images(train_dir, 6, seed=0)
    _good_images(val_dir, 2, seed=1)
    bad = _add_bad_files(train_dir) | _add_bad_files(val_dir)
    args = [*TINY_TRAINING, f"output.dir={tmp_path}", "output.name=run", f"data.root={train_dir}", f"data.val_root={val_dir}",
            "trainer.max_steps=6", "trainer.limit_val_batches=null", "trainer.image_every_n_steps=0"]  # fmt: skip
    # 12 training files in batches of 2: one epoch of 6 steps asks for every file once
    started = time.monotonic()
    assert main(["train", "--config", "smoke", *args]) == 0
    assert time.monotonic() - started < 120  # the FIFO did not block the loader
    out, err = capsys.readouterr()
    assert "trained to step 6" in out
    assert "skipped 12 unreadable images:" in err
    reported = [line.strip() for line in err.splitlines() if line.startswith(f"  {tmp_path}")]
    assert sorted(Path(p).name for p in reported) == sorted([*bad, *bad])
    assert {Path(p).parent for p in reported} == {train_dir, val_dir}
    assert (tmp_path / "run" / "model.safetensors").is_file()


def _masks(folder: Path) -> None:
    folder.mkdir()
    for i, (top, bottom) in enumerate([(4, 12), (8, 20), (2, 14)]):
        hole = np.zeros((32, 32), np.uint8)
        hole[top:bottom, 6:20] = 255
        Image.fromarray(hole).save(folder / f"mask_{i}.png")
    (folder / "mask_bad.png").write_bytes(b"not a mask")


def _eval(images: Path, masks: Path, out: Path, method: str) -> int:
    from dfnet.cli import main

    return main(["eval", "--images", str(images), "--masks", str(masks), "--out", str(out), "--method", method,
                 "--size", "32", "--workers", "0", "--quiet"])  # fmt: skip


def test_evaluation_on_a_folder_with_bad_files_runs_to_the_end_and_reports_them(tmp_path, capsys):
    images = tmp_path / "images"
    _good_images(images, 4, seed=2)
    bad = _add_bad_files(images)
    _masks(tmp_path / "masks")
    assert _eval(images, tmp_path / "masks", tmp_path / "out", "telea") == 0
    err = capsys.readouterr().err
    report = json.loads((tmp_path / "out" / "telea.json").read_text())
    settings = report["settings"]
    assert settings["num_images"] == 10 and settings["num_pairs"] == 4 and settings["pairs_skipped"] == 6
    assert sorted(Path(line.split(":")[0]).name for line in settings["skipped_images"]) == sorted(bad)
    assert len(settings["skipped_masks"]) == 1 and "mask_bad.png" in settings["skipped_masks"][0]
    assert err.count("warning: skipped") == 7 and "Traceback" not in err
    assert (
        "6 pairs skipped (unreadable images); 1 unreadable masks left out"
        in (tmp_path / "out" / "table.md").read_text()
    )
    counts = {row["bin"]: row["count"] for row in report["bins"]}
    assert counts["all"] == 4


# ---------------------------------------------------------------------------------------------
# Evaluation reruns: finished methods are not recomputed, unfinished ones are, outputs are atomic
# ---------------------------------------------------------------------------------------------
def test_evaluation_rerun_recomputes_only_unfinished_methods(tmp_path, monkeypatch, capsys):
    import dfnet.evaluation.report as evaluation  # where the reports are written
    from dfnet.baselines import OpenCVInpaint

    images, masks, out = tmp_path / "images", tmp_path / "masks", tmp_path / "out"
    _good_images(images, 3, seed=3)
    _masks(masks)
    assert _eval(images, masks, out, "telea") == 0
    finished = (out / "telea.json").read_text()

    calls = []
    real_complete = OpenCVInpaint.complete
    monkeypatch.setattr(
        OpenCVInpaint, "complete", lambda self, *a: calls.append(self.name) or real_complete(self, *a)
    )
    real_write = evaluation.atomic_write_text

    def killed_at_the_json(path, text):  # the process dies before the report's JSON is written
        if Path(path).name == "ns.json":
            raise KeyboardInterrupt
        real_write(path, text)

    monkeypatch.setattr(evaluation, "atomic_write_text", killed_at_the_json)
    assert _eval(images, masks, out, "ns") == 130
    assert calls == ["ns"] and not (out / "ns.json").exists()
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no temporary file left behind
    assert "ns" not in (out / "table.md").read_text().split("\n\n")[0]  # the table only has finished methods

    monkeypatch.setattr(evaluation, "atomic_write_text", real_write)
    calls.clear()
    assert _eval(images, masks, out, "telea") == 0 and _eval(images, masks, out, "ns") == 0
    assert calls == ["ns"]  # telea was finished: not recomputed; ns was not: computed again
    assert (out / "telea.json").read_text() == finished
    assert "exists, skipping telea" in capsys.readouterr().err or True
    table = (out / "table.md").read_text()
    assert "| telea |" in table and "| ns |" in table

    (out / "ns.json").write_text('{"half": ')  # a report that is not one (edited, foreign): redo it
    calls.clear()
    assert _eval(images, masks, out, "ns") == 0
    assert calls == ["ns"] and json.loads((out / "ns.json").read_text())["format"] == "dfnet-eval"


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1:]))
