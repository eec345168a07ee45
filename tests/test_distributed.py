"""Sharded folder work: rank detection, shares, and `torchrun` runs of `dfnet eval` / `dfnet inpaint` with two
CPU processes (gloo) that match a single-process run byte for byte."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dfnet.cli import main
from dfnet.distributed import Ranks, rank_device, ranks_from_environment
from dfnet.evaluation.run import numbered_batches

SRC = Path(__file__).resolve().parents[1] / "src"
SIZE = 64
NUM_IMAGES = 7


def test_ranks_come_from_torchrun_then_slurm_else_one_process():
    assert ranks_from_environment({}) == Ranks(0, 1, 0)
    torchrun = {"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "SLURM_PROCID": "0", "SLURM_NTASKS": "2"}
    assert ranks_from_environment(torchrun) == Ranks(3, 4, 1)
    assert ranks_from_environment({"SLURM_PROCID": "5", "SLURM_NTASKS": "8", "SLURM_LOCALID": "1"}) == Ranks(
        5, 8, 1
    )
    with pytest.raises(ValueError, match="rank 4 of 4"):
        ranks_from_environment({"RANK": "4", "WORLD_SIZE": "4"})


def test_shares_cover_every_item_once():
    items = list(range(11))
    shares = [Ranks(r, 3).shard(items) for r in range(3)]
    assert shares == [[0, 3, 6, 9], [1, 4, 7, 10], [2, 5, 8]]
    assert sorted(sum(shares, [])) == items


def test_each_rank_on_a_node_takes_its_own_gpu(monkeypatch):
    assert rank_device("cpu", Ranks(1, 2, 1)) == "cpu"
    assert rank_device("cuda", Ranks(0, 1, 0)) == "cuda"  # one process: whatever device the user named
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    assert rank_device("cuda", Ranks(5, 8, 1)) == "cuda:1"
    assert rank_device("cuda", Ranks(6, 12, 6)) == "cuda:2"  # more processes than GPUs: shared in turn


def test_eval_batches_keep_the_single_run_composition():
    single = numbered_batches(7, 3)
    assert single == [(0, [0, 1, 2]), (1, [3, 4, 5]), (2, [6])]
    assert numbered_batches(7, 3, Ranks(0, 2)) == [single[0], single[2]]
    assert numbered_batches(7, 3, Ranks(1, 2)) == [single[1]]


# ---------------------------------------------------------------------------------------------
# Two processes through torchrun
# ---------------------------------------------------------------------------------------------
@pytest.fixture
def folder(tmp_path: Path, tiny_model) -> Path:
    """Seven 64x64 photos (one unreadable), a mask per photo, and a tiny DFNet."""
    from dfnet.checkpoint import save_model

    rng = np.random.default_rng(0)
    for sub in ("images", "masks"):
        (tmp_path / sub).mkdir()
    for i in range(NUM_IMAGES):
        Image.fromarray(rng.integers(0, 256, (SIZE, SIZE, 3), np.uint8)).save(
            tmp_path / "images" / f"p{i}.png"
        )
        hole = np.zeros((SIZE, SIZE), np.uint8)
        hole[8 + i : 24 + 2 * i, 10:40] = 255
        Image.fromarray(hole).save(tmp_path / "masks" / f"p{i}.png")
    (tmp_path / "images" / "p3.png").write_bytes(b"not a png")
    save_model(tiny_model, tmp_path / "tiny.safetensors")
    return tmp_path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(*command: str) -> subprocess.CompletedProcess:
    """Run ``command`` (``-m dfnet.cli ...`` or a script) in two CPU processes started by torch.distributed.run."""
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    env["CUDA_VISIBLE_DEVICES"] = ""
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2"]
    launcher += ["--master-addr", "127.0.0.1", "--master-port", str(_free_port())]
    return subprocess.run([*launcher, *command], capture_output=True, text=True, env=env, timeout=300)


def _eval_args(folder: Path, out: Path) -> list[str]:
    return ["eval", "--images", str(folder / "images"), "--masks", str(folder / "masks"), "--out", str(out),
            "--method", "dfnet", "--model", str(folder / "tiny.safetensors"), "--name", "tiny", "--size",
            "256", "--batch-size", "2", "--workers", "0", "--device", "cpu", "--texture", "0",
            "--save-images", "3", "--quiet"]  # fmt: skip


def _without_run_stamps(path: Path) -> dict:
    report = json.loads(path.read_text())
    del report["created"], report["seconds"]
    return report


@pytest.mark.slow
def test_torchrun_eval_writes_the_single_process_report(folder, one_thread):
    # torchrun runs each rank on one thread (OMP_NUM_THREADS=1): the single run uses as many
    assert main(_eval_args(folder, folder / "single")) == 0
    run = _torchrun("-m", "dfnet.cli", *_eval_args(folder, folder / "two"))
    assert run.returncode == 0, run.stderr
    single, two = folder / "single", folder / "two"
    for name in ("tiny.md", "tiny.csv", "table.md"):
        assert (two / name).read_bytes() == (single / name).read_bytes(), name
    assert _without_run_stamps(two / "tiny.json") == _without_run_stamps(single / "tiny.json")
    report = json.loads((two / "tiny.json").read_text())
    assert report["settings"]["num_pairs"] == NUM_IMAGES - 1 and report["settings"]["pairs_skipped"] == 1
    saved = sorted(p.name for p in (two / "tiny" / "results").iterdir())
    assert saved == sorted(p.name for p in (single / "tiny" / "results").iterdir()) and len(saved) == 3
    assert run.stdout.count("tiny.md") == 1  # rank 0 alone speaks


@pytest.mark.slow
def test_torchrun_inpaint_writes_each_image_once_as_a_single_process_does(folder, one_thread):
    def args(out: str) -> list[str]:
        return ["inpaint", str(folder / "images"), str(folder / "masks"), "-o", str(folder / out),
                "--model", str(folder / "tiny.safetensors"), "--device", "cpu", "--texture", "0",
                "--no-progress"]  # fmt: skip

    assert main(args("single")) == 1  # the unreadable photo fails
    run = _torchrun("-m", "dfnet.cli", *args("two"))
    assert run.returncode != 0
    assert "inpainted 6 of 7 images" in run.stdout and "p3.png" in run.stderr
    names = sorted(p.name for p in (folder / "single").iterdir())
    assert names == sorted(p.name for p in (folder / "two").iterdir()) and len(names) == NUM_IMAGES - 1
    for name in names:
        assert (folder / "two" / name).read_bytes() == (folder / "single" / name).read_bytes(), name


FAILING_RANK = """import os, sys
import dfnet.baselines, dfnet.inference
from dfnet.cli import main
class DeviceLost(Exception):
    pass
def lost(*args, **kwargs):
    raise DeviceLost("the device went away")
if os.environ["RANK"] == "1":
    dfnet.baselines.DFNetMethod.complete = lost
    dfnet.inference.Inpainter.complete_arrays = lost
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_a_failing_rank_names_the_images_it_lost(folder):
    script = folder / "rank_one_fails.py"
    script.write_text(FAILING_RANK)
    run = _torchrun(str(script), *_eval_args(folder, folder / "out"))
    assert run.returncode != 0
    # rank 1 owns batches 1 and 3 (pairs 2-3 and 6) and fails at its first: all three are lost
    assert "rank 1 stopped (DeviceLost: the device went away) and lost 3 images" in run.stderr
    for name in ("p2.png", "p3.png", "p6.png"):
        assert name in run.stderr
    assert not (folder / "out" / "tiny.json").exists()

    inpaint = ["inpaint", str(folder / "images"), str(folder / "masks"), "-o", str(folder / "inpainted"),
               "--model", str(folder / "tiny.safetensors"), "--device", "cpu", "--texture", "0", "--no-progress"]  # fmt: skip
    run = _torchrun(str(script), *inpaint)
    assert run.returncode != 0 and "inpainted 4 of 7 images" in run.stdout  # rank 0's p0, p2, p4, p6
    lost = [
        line
        for line in run.stderr.splitlines()
        if line.endswith("lost: rank 1 stopped (DeviceLost: the device went away)")
    ]
    assert sorted(line.split(": lost")[0].strip().rsplit("/", 1)[-1] for line in lost) == [
        "p1.png",
        "p3.png",
        "p5.png",
    ]
    assert sorted(p.name for p in (folder / "inpainted").iterdir()) == [
        "p0.png",
        "p2.png",
        "p4.png",
        "p6.png",
    ]
