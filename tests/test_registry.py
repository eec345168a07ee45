"""dfnet.registry and `dfnet models`: names, licences, the download -> convert -> verify -> inpaint route on a
loopback stand-in of the authors' files, the cache record, licence acceptance, DFNET_HOME, two processes."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from dfnet import registry
from dfnet.checkpoint import CheckpointError, convert_official, save_released
from dfnet.cli import main
from dfnet.download import DownloadError, OfflineError, file_sha256
from dfnet.model import DFNet, DFNetConfig

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = [str(ROOT / "examples" / "photo.png"), str(ROOT / "examples" / "mask.png")]


@pytest.fixture
def released_pth(tmp_path) -> Path:
    """A released-layout model_places2.pth from a random narrow network (BatchNorm statistics randomised)."""
    from helpers import randomize_batchnorm

    torch.manual_seed(3)
    model = randomize_batchnorm(DFNet(DFNetConfig(width=0.125))).eval()
    path = tmp_path / "stand-in" / "model_places2.pth"
    path.parent.mkdir()
    save_released(model, path)
    return path


@pytest.fixture
def mirror(loopback, released_pth, monkeypatch):
    """The loopback server as DFNET_MODELS_MIRROR, serving the stand-in model_places2.pth."""
    loopback.files["/model_places2.pth"] = released_pth.read_bytes()
    monkeypatch.setenv("DFNET_MODELS_MIRROR", loopback.url)
    return loopback


def test_list_shows_every_model_with_its_licence(capsys):
    assert main(["models", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["name", "licence", "size", "cached", "path"]
    rows = {line.split()[0]: line.split() for line in lines[1:-1]}
    assert list(rows) == ["default", "places2", "celeba", "vgg16", "fid-inception"]
    licences = {name: row[1] for name, row in rows.items()}
    assert licences == {
        "default": "MIT",
        "places2": "CC-BY-NC-4.0",
        "celeba": "CC-BY-NC-4.0",
        "vgg16": "BSD-3-Clause",
        "fid-inception": "Apache-2.0",
    }
    bundled_mb = registry.BUNDLED.stat().st_size / 1e6
    assert rows["default"][2:5] == [f"{bundled_mb:.1f}", "MB", "yes"]  # measured: no ~
    assert rows["places2"][2:5] == ["~131.6", "MB", "no"]  # not downloaded: the estimate, marked ~
    assert rows["places2"][5] == str(registry.cache_dir() / "places2.safetensors")
    assert lines[-1].startswith(f"cache: {registry.cache_dir()} ")


def test_list_shows_the_measured_size_once_downloaded(mirror, capsys):
    path = registry.download_model("places2", accept_license=True, progress=False)
    capsys.readouterr()
    assert main(["models", "list"]) == 0
    row = next(line.split() for line in capsys.readouterr().out.splitlines() if line.startswith("places2 "))
    assert row[2:5] == [f"{path.stat().st_size / 1e6:.1f}", "MB", "yes"]


def test_models_help_names_the_environment(capsys):
    with pytest.raises(SystemExit) as exit_status:
        main(["models", "--help"])
    out = capsys.readouterr().out
    assert exit_status.value.code == 0
    for variable in ("DFNET_HOME=DIR", "DFNET_ACCEPT_LICENSE=1", "DFNET_MODELS_MIRROR=URL", "HF_HUB_OFFLINE"):
        assert variable in out, variable


def test_registry_entries():
    assert registry.get_entry("vgg16").url == "https://download.pytorch.org/models/vgg16-397923af.pth"
    fid = registry.get_entry("fid-inception")
    assert (
        fid.url.endswith("/fid_weights/pt_inception-2015-12-05-6726825d.pth")
        and fid.sha256_prefix == "6726825d"
    )
    assert (registry.get_entry("places2").working_size, registry.get_entry("celeba").working_size) == (
        512,
        256,
    )
    with pytest.raises(ValueError, match="unknown model 'nope': choose one of default, places2"):
        registry.get_entry("nope")


def test_inpaint_with_a_missing_model_names_the_download_command(tmp_path, capsys):
    status = main(
        [
            "inpaint",
            *EXAMPLE,
            "-o",
            str(tmp_path / "y.png"),
            "--model",
            "places2",
        ]
    )
    err = capsys.readouterr().err.strip()
    assert status == 1 and "\n" not in err
    assert "`dfnet models download places2 --accept-license`" in err
    assert not (tmp_path / "y.png").exists()


@pytest.mark.parametrize(
    "command",
    [
        ["serve", "--port", "0"],
        ["export", "-o", "model.onnx"],
        ["eval", "--images", "images", "--masks", "masks", "--method", "dfnet", "--out", "report"],
    ],
)
def test_every_model_option_names_the_download_command(command, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for folder in ("images", "masks"):
        (tmp_path / folder).mkdir()
    assert main([*command, "--model", "celeba"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.endswith(
        "run `dfnet models download celeba --accept-license` (or pass --download / download=True)"
    )
    assert "\n" not in err


def test_licence_is_never_accepted_silently(mirror, capsys):
    assert main(["models", "download", "places2", "--no-progress"]) == 1
    assert "licensed CC-BY-NC-4.0 (non-commercial use only, https://github.com/hughplay/DFNet#license)" in (
        capsys.readouterr().err
    )
    assert mirror.requests["/model_places2.pth"] == 0
    with pytest.raises(DownloadError, match="accept_license=True or DFNET_ACCEPT_LICENSE=1"):
        registry.download_model("places2", progress=False)


def test_download_convert_verify_inpaint_equals_converting_by_hand(mirror, released_pth, tmp_path, capsys):
    from dfnet.inference import Inpainter

    assert main(["models", "download", "places2", "--accept-license", "--no-progress"]) == 0
    out, err = capsys.readouterr()
    cached = registry.cache_dir() / "places2.safetensors"
    assert out.strip() == str(cached)
    notice = (registry.cache_dir() / "places2.LICENSE.txt").read_text()
    assert notice.startswith(
        "places2: The DFNet weights of Hong et al. are licensed under the Creative Commons "
    )
    assert "Licence stated at: https://github.com/hughplay/DFNet#license\n" in notice
    assert "@inproceedings{DFNet2019" in notice and notice in err  # printed, and stored beside the file
    record = json.loads((registry.cache_dir() / "places2.json").read_text())
    assert record["sha256"] == file_sha256(cached)
    assert record["downloaded_sha256"] == file_sha256(released_pth)
    assert sorted(p.name for p in registry.cache_dir().iterdir() if not p.name.startswith(".")) == [
        "places2.LICENSE.txt",
        "places2.json",
        "places2.safetensors",
    ]  # the original .pth is not kept

    by_hand = tmp_path / "by_hand.safetensors"
    convert_official(released_pth, by_hand)
    from safetensors.torch import load_file

    assert load_file(str(cached)).keys() == load_file(str(by_hand)).keys()
    assert all(torch.equal(load_file(str(cached))[k], v) for k, v in load_file(str(by_hand)).items())

    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (64, 80, 3), dtype=np.uint8)
    hole = np.zeros((64, 80), bool)
    hole[20:40, 30:50] = True
    named = Inpainter.from_pretrained("places2", device="cpu")
    assert named.name == "places2" and named.working_size == 512
    hand = Inpainter.from_pretrained(str(by_hand), device="cpu", working_size=512)
    assert np.array_equal(named.inpaint(rgb, hole), hand.inpaint(rgb, hole))

    photo = tmp_path / "y.png"
    assert (
        main(
            [
                "inpaint",
                *EXAMPLE,
                "-o",
                str(photo),
                "--model",
                "places2",
                "--no-progress",
            ]
        )
        == 0
    )
    assert photo.is_file()
    assert main(["models", "path", "places2"]) == 0
    assert capsys.readouterr().out.strip().endswith(str(cached))


def test_download_flag_and_environment_acceptance(mirror, monkeypatch):
    from dfnet.inference import Inpainter

    monkeypatch.setenv("DFNET_ACCEPT_LICENSE", "1")
    inpainter = Inpainter.from_pretrained("places2", device="cpu", download=True)
    assert inpainter.name == "places2" and mirror.requests["/model_places2.pth"] == 1
    Inpainter.from_pretrained("places2", device="cpu", download=True)  # cached: no second download
    assert mirror.requests["/model_places2.pth"] == 1


def test_changed_cached_file_is_refused(mirror):
    path = registry.download_model("places2", accept_license=True, progress=False)
    with open(path, "r+b") as f:
        f.seek(-1, os.SEEK_END)
        last = f.read(1)
        f.seek(-1, os.SEEK_END)
        f.write(bytes([last[0] ^ 1]))
    with pytest.raises(CheckpointError, match="changed since it was downloaded"):
        registry.resolve_model("places2")


def test_remove(mirror, capsys):
    registry.download_model("places2", accept_license=True, progress=False)
    assert main(["models", "remove", "places2"]) == 0
    assert "removed 3 files" in capsys.readouterr().out
    assert not registry.is_cached(registry.get_entry("places2"))
    assert main(["models", "path", "places2"]) == 1
    assert main(["models", "remove", "default"]) == 1


@pytest.mark.parametrize("problem", ["html", "truncated", "not_released"])
def test_bad_downloads_are_refused_and_leave_nothing(problem, loopback, released_pth, monkeypatch, tmp_path):
    monkeypatch.setenv("DFNET_MODELS_MIRROR", loopback.url)
    data = released_pth.read_bytes()
    if problem == "html":
        loopback.html.add("/model_places2.pth")
        expected = "web page instead of the file"
    elif problem == "truncated":
        loopback.files["/model_places2.pth"] = data[: len(data) // 3]
        expected = "truncated or damaged"
    else:
        other = tmp_path / "other.pth"
        torch.save({"weight": torch.zeros(3)}, other)
        loopback.files["/model_places2.pth"] = other.read_bytes()
        expected = "not the released DFNet layout"
    with pytest.raises(DownloadError, match=expected) as err:
        registry.download_model("places2", accept_license=True, progress=False)
    assert "\n" not in str(err.value)
    assert [p for p in registry.cache_dir().iterdir() if not p.name.endswith(".lock")] == []


def test_aux_weights_checked_by_sha256_prefix_and_used_by_training(loopback, monkeypatch, tmp_path):
    from dfnet.vgg import VGG16Features, find_vgg16_weights

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("DFNET_VGG16_WEIGHTS", raising=False)
    monkeypatch.setenv("DFNET_MODELS_MIRROR", loopback.url)
    assert find_vgg16_weights() is None
    stand_in = tmp_path / "vgg.pth"
    torch.save(VGG16Features().state_dict(), stand_in)
    loopback.files["/vgg16-397923af.pth"] = stand_in.read_bytes()
    with pytest.raises(DownloadError, match="checksum mismatch"):
        registry.download_model("vgg16", progress=False)
    assert [p for p in registry.cache_dir().iterdir() if not p.name.endswith(".lock")] == []

    entry = dataclasses.replace(registry.REGISTRY["vgg16"], sha256_prefix=file_sha256(stand_in)[:8])
    monkeypatch.setitem(registry.REGISTRY, "vgg16", entry)
    path = registry.download_model("vgg16", progress=False)
    assert find_vgg16_weights() == path  # dfnet train's VGG16 lookup finds the cached file
    with pytest.raises(ValueError, match="vgg16 is not an inpainting model"):
        registry.resolve_model("vgg16")


def test_fid_weights_from_the_cache_are_found(monkeypatch, tmp_path):
    from dfnet import inception

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("DFNET_FID_WEIGHTS", raising=False)
    assert inception.find_fid_weights() is None
    entry = registry.get_entry("fid-inception")
    cached = registry.model_file(entry)
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"stand-in")
    registry._write_record(entry, cached, entry.url, file_sha256(cached))
    assert inception.find_fid_weights() == cached


def test_offline_gives_the_manual_route(monkeypatch):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("DFNET_MODELS_MIRROR", f"http://127.0.0.1:{port}")
    with pytest.raises(OfflineError) as err:
        registry.download_model("celeba", accept_license=True, progress=False)
    text = str(err.value)
    assert "\n" not in text and registry.AUTHORS_DRIVE in text
    assert "`dfnet convert-official model_celeba.pth celeba.safetensors`" in text


def test_dfnet_home_moves_the_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("DFNET_HOME", str(tmp_path / "elsewhere"))
    assert registry.cache_dir() == tmp_path / "elsewhere" / "models"
    assert (
        registry.model_file(registry.get_entry("celeba"))
        == tmp_path / "elsewhere" / "models" / "celeba.safetensors"
    )
    monkeypatch.delenv("DFNET_HOME")
    from platformdirs import user_cache_dir

    assert registry.cache_dir() == Path(user_cache_dir("dfnet", appauthor=False)) / "models"


def test_unwritable_cache_is_one_line(monkeypatch, mirror, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("DFNET_HOME", str(blocker))
    with pytest.raises(DownloadError, match="cannot write in") as err:
        registry.download_model("places2", accept_license=True, progress=False)
    assert "\n" not in str(err.value)


def test_read_only_cache_is_one_line(monkeypatch, mirror):
    import errno

    def read_only(self, *args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(self))

    monkeypatch.setattr(Path, "mkdir", read_only)
    with pytest.raises(DownloadError, match="is not writable: set DFNET_HOME to a writable folder"):
        registry.download_model("places2", accept_license=True, progress=False)


def test_two_processes_download_once_and_both_succeed(mirror, tmp_path):
    mirror.delay_s = 1.0  # the first download is still running when the second process starts
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
        "DFNET_ACCEPT_LICENSE": "1",
    }
    command = [sys.executable, "-m", "dfnet.cli", "models", "download", "places2", "--no-progress"]
    runs = [
        subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    results = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], results
    cached = str(registry.cache_dir() / "places2.safetensors")
    assert [out.strip() for out, _ in results] == [cached, cached]
    assert mirror.requests["/model_places2.pth"] == 1
