"""docs/reproduce.md, run: every command of its bash blocks on tiny stand-ins for Places2, CelebA and the weights
(downloads from a loopback server).

First each command runs as written and must get as far as the guide says it can without real data or weights
(mask sets and configs are made, training stops at the missing VGG16 file, evaluation at the missing model).
Then the training and evaluation commands run to the end on the stand-ins, with a narrow network on the CPU
(overrides appended), so the data layout, the configs' paths and the evaluation options are all exercised.
The fast variant shrinks the 1000-mask sets to 20 masks and the histogram to 50 draws; the slow one runs them
as written.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dfnet.cli import main

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "reproduce.md"
TINY_TRAINING = [
    "model.width=0.125",
    "model.encoder_kernels=[7,5,5]",
    "model.fusion_layers=[0,1,2]",
    "loss.structure_scales=3",
    "loss.texture_scales=2",
    "data.image_size=32",
    "data.batch_size=2",
    "data.num_workers=0",
    "data.val_mask_count=4",
    "vgg.allow_random=true",
    "trainer.accelerator=cpu",
    "trainer.devices=1",
    "trainer.num_nodes=1",
    "trainer.strategy=auto",
    "trainer.max_steps=2",
    "trainer.num_sanity_val_steps=0",
    "trainer.limit_val_batches=1",
    "trainer.progress_bar=false",
    "trainer.image_every_n_steps=0",
]


def guide_commands() -> list[str]:
    """The command lines of the guide's ```bash blocks (continuations joined, comments dropped)."""
    blocks = re.findall(r"```bash\n(.*?)```", GUIDE.read_text(encoding="utf-8"), flags=re.S)
    lines = [line.strip() for block in blocks for line in block.replace("\\\n", " ").splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def dfnet_arguments(command: str) -> list[str] | None:
    """The arguments a guide line passes to dfnet (directly, through torchrun -m dfnet.cli or srun), else None."""
    tokens = shlex.split(command)
    for marker in ("dfnet.cli", "dfnet"):
        if marker in tokens:
            return tokens[tokens.index(marker) + 1 :]
    return None


def _picture(path: Path, width: int, height: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack([x * 255 // width, y * 255 // height, (x + y) % 256], axis=2) + rng.integers(
        0, 30, (height, width, 3)
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(path, quality=90)


def make_stand_ins(root: Path) -> None:
    """Places2 and CelebA in the guide's layout, a handful of small images each."""
    places = root / "data" / "places2"
    train_lines, val_lines = [], []
    for i, name in enumerate(["a/airfield/00000001.jpg", "a/airfield/00000002.jpg", "b/beach/00000001.jpg"]):
        _picture(places / "data_large" / name, 48, 40, i)
        train_lines.append(f"/{name} {i}")
    for i in range(2):
        name = f"Places365_val_{i + 1:08d}.jpg"
        _picture(places / "val_large" / name, 40, 40, 10 + i)
        val_lines.append(f"{name} {i}")
    (places / "places365_train_standard.txt").write_text("\n".join(train_lines) + "\n")
    (places / "places365_val.txt").write_text("\n".join(val_lines) + "\n")
    for i in range(10):
        _picture(root / "data" / "celeba" / "img_align_celeba" / f"{i + 1:06d}.jpg", 36, 44, 20 + i)


def run(command: str, cwd: Path, full: bool, extra: list[str] = ()) -> tuple[int, str]:
    """Run one guide line in ``cwd``: (exit status, stdout + stderr)."""
    if not full:
        command = command.replace("--count 1000", "--count 20").replace("--draws 10000", "--draws 50")
    if command.startswith("python "):
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
        }
        script, *arguments = shlex.split(command)[1:]  # scripts/ of this checkout, data under cwd
        done = subprocess.run(
            [sys.executable, str(ROOT / script), *arguments], cwd=cwd, env=env, capture_output=True, text=True
        )
        return done.returncode, done.stdout + done.stderr
    arguments = dfnet_arguments(command)
    assert arguments is not None, f"not a dfnet command: {command}"
    return main([*arguments, *extra]), ""


def serve_downloads(root: Path, server, monkeypatch) -> None:
    """The guide's downloads from a loopback server: a released-layout places2 stand-in, the Places365
    validation images and lists as archives (taken out of the stand-in folder), random bytes for the
    published VGG16 and Inception files (refused: they cannot carry the published checksums)."""
    import hashlib
    import io
    import shutil
    import tarfile

    from dfnet import datasets
    from dfnet.checkpoint import save_released
    from dfnet.model import DFNet, DFNetConfig

    buffer = io.BytesIO()
    save_released(DFNet(DFNetConfig(width=0.125)).eval(), root / "model_places2.pth")
    server.files["/model_places2.pth"] = (root / "model_places2.pth").read_bytes()
    (root / "model_places2.pth").unlink()
    places = root / "data" / "places2"
    for name, members in (
        ("val_large.tar", [("val_large", places / "val_large")]),
        ("filelist_places365-standard.tar", [("places365_val.txt", places / "places365_val.txt")]),
    ):
        with tarfile.open(fileobj=buffer, mode="w") as archive:
            for arcname, path in members:
                archive.add(path, arcname=arcname)
        server.files[f"/{name}"] = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    shutil.rmtree(places / "val_large")
    (places / "places365_val.txt").unlink()
    server.files["/vgg16-397923af.pth"] = server.files["/pt_inception-2015-12-05-6726825d.pth"] = (
        b"\x80" * 999
    )
    md5 = {name: hashlib.md5(server.files[f"/{name}"]).hexdigest() for name in datasets.PLACES365_ARCHIVES}
    monkeypatch.setattr(datasets, "PLACES365_ARCHIVES", md5)
    monkeypatch.setenv("DFNET_MODELS_MIRROR", server.url)
    monkeypatch.setenv("DFNET_DATA_MIRROR", server.url)


def _check(full: bool, tmp_path: Path, monkeypatch, capsys, server) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))  # no VGG16 or Inception file anywhere
    make_stand_ins(tmp_path)
    serve_downloads(tmp_path, server, monkeypatch)
    commands = guide_commands()
    assert len(commands) >= 15
    for command in commands:
        if command.startswith("export "):
            name, value = command.removeprefix("export ").split("=", 1)
            monkeypatch.setenv(name, value)
            continue
        arguments = dfnet_arguments(command) or []
        quick = ["--workers", "0", "--quiet"] if arguments[:1] == ["eval"] and "places2" in arguments else []
        status, output = run(command, tmp_path, full, quick)
        output += "".join(capsys.readouterr())
        if arguments[:1] == ["train"] and "--print-config" not in arguments:
            assert status == 1 and "dfnet models download vgg16" in output, (command, output)
        elif arguments[:2] == ["models", "download"] and arguments[2] in ("vgg16", "fid-inception"):
            assert status == 1 and "checksum mismatch" in output, (command, output)
        elif quick:  # the authors' model, downloaded by the guide's first Table-1 command
            assert status == 0, (command, output)
            report = json.loads((tmp_path / "table1" / "DFNet-released.json").read_text())
            assert report["settings"]["resize"] == "resize" and report["settings"]["size"] == 512
        elif arguments[:1] == ["eval"]:
            model = arguments[arguments.index("--model") + 1]
            assert status == 1 and model in output, (command, output)
        elif arguments[:1] == ["eval-compare"]:
            assert status == 1 and "DFNet-ours.json" in output, (command, output)
        else:
            assert status == 0, (command, output)
            if "--print-config" in arguments:
                for line in (
                    "target_resize: fusion",
                    "vgg_input: raw",
                    "resize_mode: resize",
                    "source: paper_set",
                ):
                    assert line in output, line
    masks = tmp_path / "data" / "masks"
    count = 1000 if full else 20
    assert len(list((masks / "paper").glob("*.png"))) == count
    assert len(list((tmp_path / "data" / "celeba" / "test").iterdir())) == 1  # 10 % of 10 stand-ins
    assert len(list((tmp_path / "data" / "places2" / "val_large").iterdir())) == 2  # downloaded and unpacked

    # Now with the stand-ins: a narrow network on the CPU, random VGG16, no FID weights.
    for config in ("places2", "celeba"):
        assert main(["train", "--config", config, *TINY_TRAINING]) == 0, config
        assert (tmp_path / "runs" / config / "model.safetensors").is_file()
    for command in commands:
        arguments = dfnet_arguments(command) or []
        if arguments[:1] != ["eval"] or "runs/" not in command:
            continue
        arguments = [*arguments, "--limit", "5", "--quiet", "--workers", "0"]
        assert main(arguments) == 0, command
        out = tmp_path / arguments[arguments.index("--out") + 1]
        report = json.loads((out / "DFNet-ours.json").read_text())
        assert report["settings"]["resize"] == "resize" and report["settings"]["pairing"] == "every-bin"
        assert (out / "table.md").read_text().startswith(f"Images at {report['settings']['size']}×")


def test_guide_commands_on_stand_ins(tmp_path, monkeypatch, capsys, loopback):
    _check(False, tmp_path, monkeypatch, capsys, loopback)


@pytest.mark.slow
def test_guide_commands_as_written_on_stand_ins(tmp_path, monkeypatch, capsys, loopback):
    _check(True, tmp_path, monkeypatch, capsys, loopback)


@pytest.mark.parametrize("name", ["places2", "celeba"])
def test_paper_configs_print_the_paper_protocol(name, capsys):
    from dfnet.masks import PaperAugmentConfig
    from dfnet.training import load_config

    config = load_config(name)
    assert (config.loss.target_resize, config.loss.vgg_input) == ("fusion", "raw")
    assert (
        config.loss.lambda_l1,
        config.loss.lambda_perceptual,
        config.loss.lambda_style,
        config.loss.lambda_tv,
    ) == (
        6.0,
        0.1,
        240.0,
        0.1,
    )
    assert (config.data.resize_mode, config.data.hflip, config.data.size) == (
        "resize",
        True,
        512 if name == "places2" else 256,
    )
    assert config.data.masks.source == "paper_set" and config.data.masks.mask_dir == "data/masks/paper"
    assert config.data.masks.paper_augment == PaperAugmentConfig(
        hflip=True, degrees=20, scale=(0.5, 2.0), translate=0.2, shear=20
    )
    assert (config.optim.lr, config.optim.lr_decay, config.optim.lr_step, config.trainer.max_epochs) == (
        2e-3,
        0.1,
        5,
        20,
    )
    assert (config.data.batch_size, config.trainer.devices) == (6, 8)
    assert main(["train", "--config", name, "--print-config", "optim.lr=2e-4"]) == 0
    printed = capsys.readouterr().out
    for line in (
        "target_resize: fusion",
        "vgg_input: raw",
        "resize_mode: resize",
        "source: paper_set",
        "shear: 20",
    ):
        assert line in printed
    assert "lr: 0.0002" in printed  # the authors' config.yaml value, one override away
