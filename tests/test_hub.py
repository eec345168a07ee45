"""dfnet.hub: hf:// references through huggingface_hub, against a pre-filled cache (HF_HUB_OFFLINE=1) and
against a loopback stand-in of the Hub (HF_ENDPOINT): downloads, revisions, refusals, offline reuse, and the
model card folder for `huggingface-cli upload`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dfnet.checkpoint import CheckpointError, save_model
from dfnet.cli import main
from dfnet.hub import HubReference, parse_reference
from dfnet.model import DFNet, DFNetConfig

ROOT = Path(__file__).resolve().parents[1]
COMMIT = "0123456789abcdef0123456789abcdef01234567"
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
EXAMPLE = [str(EXAMPLES / "photo.png"), str(EXAMPLES / "mask.png")]


def _put_in_hub_cache(cache: Path, repo: str, name: str, write) -> Path:
    """Lay a file out as huggingface_hub's cache does: refs/main -> snapshots/<commit>/<name>."""
    folder = cache / ("models--" + repo.replace("/", "--"))
    (folder / "refs").mkdir(parents=True, exist_ok=True)
    (folder / "refs" / "main").write_text(COMMIT)
    path = folder / "snapshots" / COMMIT / name
    path.parent.mkdir(parents=True, exist_ok=True)
    write(path)
    return path


@pytest.fixture
def hub_cache(tmp_path, monkeypatch) -> Path:
    import huggingface_hub.constants as constants  # imported before the environment changes (read at import)

    cache = tmp_path / "hf" / "hub"
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return cache


@pytest.fixture
def tiny_weights(tmp_path) -> Path:
    torch.manual_seed(1)
    path = tmp_path / "tiny.safetensors"
    save_model(DFNet(DFNetConfig(width=0.125)).eval(), path, metadata={"working_size": 256})
    return path


def test_parse_reference():
    assert parse_reference("hf://me/dfnet") == HubReference("me/dfnet", "model.safetensors", None)
    assert parse_reference("hf://me/dfnet/sub/w.safetensors@v1") == HubReference(
        "me/dfnet", "sub/w.safetensors", "v1"
    )
    with pytest.raises(ValueError, match="expected hf://OWNER/REPO"):
        parse_reference("hf://me")


def test_hub_model_loads_like_a_local_file(hub_cache, tiny_weights):
    from dfnet.inference import Inpainter

    _put_in_hub_cache(
        hub_cache, "me/dfnet-tiny", "model.safetensors", lambda p: p.write_bytes(tiny_weights.read_bytes())
    )
    hub = Inpainter.from_pretrained("hf://me/dfnet-tiny", device="cpu")
    local = Inpainter.from_pretrained(str(tiny_weights), device="cpu")
    assert hub.name == "me/dfnet-tiny" and hub.working_size == 256
    rgb = np.random.default_rng(0).integers(0, 255, (40, 48, 3), dtype=np.uint8)
    hole = np.zeros((40, 48), bool)
    hole[10:20, 10:30] = True
    assert np.array_equal(hub.inpaint(rgb, hole), local.inpaint(rgb, hole))


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("hf://me/dfnet-tiny@v9", "not in the Hugging Face cache at revision 'v9'"),
        ("hf://me/dfnet-tiny/other.safetensors", "not a DFNet weights file"),
        ("hf://me/dfnet-tiny/fake.safetensors", "not a safetensors file"),
        ("hf://me/dfnet-tiny/pytorch_model.bin", "pickle files are refused"),
        ("hf://me/absent", "not in the Hugging Face cache: add --download"),
    ],
)
def test_refusals_are_one_line(hub_cache, tiny_weights, reference, expected, tmp_path, capsys):
    repo = "me/dfnet-tiny"
    _put_in_hub_cache(
        hub_cache, repo, "model.safetensors", lambda p: p.write_bytes(tiny_weights.read_bytes())
    )
    from safetensors.torch import save_file

    _put_in_hub_cache(
        hub_cache, repo, "other.safetensors", lambda p: save_file({"w": torch.zeros(2)}, str(p))
    )
    _put_in_hub_cache(hub_cache, repo, "fake.safetensors", lambda p: torch.save({"w": torch.zeros(2)}, p))
    status = main(
        [
            "inpaint",
            *EXAMPLE,
            "-o",
            str(tmp_path / "y.png"),
            "--model",
            reference,
        ]
    )
    err = capsys.readouterr().err.strip()
    assert status == 1 and "\n" not in err and expected in err, err


def test_download_while_offline_is_one_line(hub_cache):
    from dfnet.hub import resolve_hub

    with pytest.raises(CheckpointError, match="not in the Hugging Face cache and HF_HUB_OFFLINE is set"):
        resolve_hub("hf://me/absent", download=True)


def test_hub_card_folder_loads_back(tiny_weights, tmp_path, hub_cache, capsys):
    from dfnet.inference import Inpainter

    out = tmp_path / "card"
    assert (
        main(
            ["models", "hub-card", str(tiny_weights), str(out), "--repo", "me/dfnet-tiny", "--license", "mit"]
        )
        == 0
    )
    assert "huggingface-cli upload me/dfnet-tiny" in capsys.readouterr().out
    card = (out / "README.md").read_text()
    assert (
        card.startswith("---\nlicense: mit\nlibrary_name: dfnet\n") and "--model hf://me/dfnet-tiny" in card
    )
    config = json.loads((out / "config.json").read_text())
    assert config["format"] == "dfnet" and config["working_size"] == 256 and config["width"] == 0.125
    # pushed and fetched again: the Hub copy equals the source
    _put_in_hub_cache(
        hub_cache,
        "me/dfnet-tiny",
        "model.safetensors",
        lambda p: p.write_bytes((out / "model.safetensors").read_bytes()),
    )
    hub = Inpainter.from_pretrained("hf://me/dfnet-tiny", device="cpu")
    local = Inpainter.from_pretrained(str(tiny_weights), device="cpu")
    assert all(
        torch.equal(a, b)
        for a, b in zip(hub.model.state_dict().values(), local.model.state_dict().values(), strict=True)
    )


REPO = "me/dfnet-tiny"
WEIGHTS = "tiny.safetensors"


def _tiny_weights_bytes(tmp_path: Path, seed: int) -> bytes:
    torch.manual_seed(seed)
    path = tmp_path / f"tiny-{seed}.safetensors"
    save_model(DFNet(DFNetConfig(width=0.125)).eval(), path, metadata={"working_size": 256})
    return path.read_bytes()


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """A loopback Hub (tests/loopback.py) that publishes ``me/dfnet-tiny`` at ``main`` and ``v1`` (another
    network), plus a pickle, a foreign safetensors and a pickle named .safetensors; huggingface_hub in this
    process points at it (HF_ENDPOINT and HF_HOME are read when it is imported, so they are patched there)."""
    import huggingface_hub.constants as constants
    import huggingface_hub.file_download as file_download
    from huggingface_hub.utils import reset_sessions
    from loopback import HubStandIn
    from safetensors.torch import save_file

    server = HubStandIn()
    save_file({"w": torch.zeros(2)}, str(tmp_path / "foreign.safetensors"))
    torch.save({"w": torch.zeros(2)}, tmp_path / "pickle.bin")
    pickle = (tmp_path / "pickle.bin").read_bytes()
    server.main_weights = _tiny_weights_bytes(tmp_path, 1)
    server.v1_weights = _tiny_weights_bytes(tmp_path, 2)
    server.add(
        REPO,
        "main",
        {
            WEIGHTS: server.main_weights,
            "foreign.safetensors": (tmp_path / "foreign.safetensors").read_bytes(),
            "pytorch_model.bin": pickle,
            "disguised.safetensors": pickle,
        },
    )
    server.add(REPO, "v1", {WEIGHTS: server.v1_weights})
    template = server.url + "/{repo_id}/resolve/{revision}/{filename}"
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    for name in ("HF_HUB_CACHE", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(constants, "ENDPOINT", server.url)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", template)
    monkeypatch.setattr(file_download, "HUGGINGFACE_CO_URL_TEMPLATE", template)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    reset_sessions()
    yield server
    server.close()
    reset_sessions()


def _inpaint(model: str, out: Path, *extra: str) -> int:
    return main(["inpaint", *EXAMPLE, "-o", str(out), "--model", model, "--no-progress", *extra])


def _pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def test_download_from_the_hub_inpaints_like_the_local_file(hub, tmp_path):
    local = tmp_path / "local.safetensors"
    local.write_bytes(hub.main_weights)
    assert _inpaint(str(local), tmp_path / "local.png") == 0
    reference = f"hf://{REPO}/{WEIGHTS}"
    assert _inpaint(reference, tmp_path / "hub.png", "--download") == 0
    assert np.array_equal(_pixels(tmp_path / "hub.png"), _pixels(tmp_path / "local.png"))
    assert hub.requests[f"GET /{REPO}/resolve/main/{WEIGHTS}"] == 1
    cached = tmp_path / "hf" / "hub" / "models--me--dfnet-tiny"
    assert (cached / "refs" / "main").read_text() == hub.commits[REPO]["main"][0]
    # cached: the same string without --download needs no request
    requests = sum(hub.requests.values())
    assert _inpaint(reference, tmp_path / "again.png") == 0
    assert sum(hub.requests.values()) == requests
    assert np.array_equal(_pixels(tmp_path / "again.png"), _pixels(tmp_path / "local.png"))


def test_revision_selects_the_commit(hub):
    from dfnet.hub import resolve_hub

    name, main_file = resolve_hub(f"hf://{REPO}/{WEIGHTS}", download=True)
    _, v1_file = resolve_hub(f"hf://{REPO}/{WEIGHTS}@v1", download=True)
    assert name == REPO and hub.main_weights != hub.v1_weights
    assert main_file.read_bytes() == hub.main_weights and v1_file.read_bytes() == hub.v1_weights
    assert v1_file.parent.name == hub.commits[REPO]["v1"][0]
    # a commit hash is a revision too, and is then served from the cache
    commit = hub.commits[REPO]["v1"][0]
    assert resolve_hub(f"hf://{REPO}/{WEIGHTS}@{commit}")[1].read_bytes() == hub.v1_weights


def test_from_pretrained_downloads_a_revision(hub, tmp_path):
    from safetensors.torch import load_file

    from dfnet.inference import Inpainter

    inpainter = Inpainter.from_pretrained(f"hf://{REPO}/{WEIGHTS}@v1", device="cpu", download=True)
    (tmp_path / "v1.safetensors").write_bytes(hub.v1_weights)
    expected = load_file(str(tmp_path / "v1.safetensors"))
    state = inpainter.model.state_dict()
    assert inpainter.name == REPO and inpainter.working_size == 256
    assert all(torch.equal(state[key], value) for key, value in expected.items())
    assert hub.requests[f"GET /{REPO}/resolve/v1/{WEIGHTS}"] == 1


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        (f"hf://{REPO}/{WEIGHTS}@v9", f"revision 'v9' not found in {REPO}"),
        (f"hf://{REPO}/absent.safetensors", f"no file absent.safetensors in {REPO}"),
        ("hf://me/absent", "no repository me/absent on the Hub"),
        (f"hf://{REPO}/pytorch_model.bin", "pickle files are refused"),
        (f"hf://{REPO}/disguised.safetensors", "not a safetensors file"),
        (f"hf://{REPO}/foreign.safetensors", "not a DFNet weights file"),
    ],
)
def test_hub_refusals_are_one_line(hub, reference, expected, tmp_path, capsys):
    out = tmp_path / "y.png"
    assert _inpaint(reference, out, "--download") == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("dfnet inpaint: error: hf://") and "\n" not in err and expected in err, err
    assert not out.exists()
    if reference.endswith(".bin"):
        assert sum(hub.requests.values()) == 0  # refused by name, before any request


def test_downloaded_hub_model_works_with_hf_hub_offline(hub, tmp_path):
    """The real environment variables in fresh processes: HF_ENDPOINT + HF_HOME, then HF_HUB_OFFLINE=1."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("HF_")}
    env.update(
        HF_ENDPOINT=hub.url,
        HF_HOME=str(tmp_path / "hf-process"),
        PYTHONPATH=os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
    )

    def run(out: Path, **extra_env: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "dfnet.cli", "inpaint", *EXAMPLE, "-o", str(out)]
        command += ["--model", f"hf://{REPO}/{WEIGHTS}@v1", "--download", "--no-progress"]
        return subprocess.run(command, env={**env, **extra_env}, capture_output=True, text=True, timeout=300)

    first = run(tmp_path / "online.png")
    assert first.returncode == 0, first.stderr
    assert hub.requests[f"GET /{REPO}/resolve/v1/{WEIGHTS}"] == 1
    requests = sum(hub.requests.values())
    offline = run(tmp_path / "offline.png", HF_HUB_OFFLINE="1")
    assert offline.returncode == 0, offline.stderr
    assert sum(hub.requests.values()) == requests  # HF_HUB_OFFLINE: not one request
    assert np.array_equal(_pixels(tmp_path / "offline.png"), _pixels(tmp_path / "online.png"))
    # offline, a file never downloaded is one line naming the cache
    missing = subprocess.run(
        [sys.executable, "-m", "dfnet.cli", "inpaint", *EXAMPLE, "-o", str(tmp_path / "no.png")]
        + ["--model", f"hf://{REPO}/{WEIGHTS}", "--download"],
        env={**env, "HF_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert missing.returncode == 1 and missing.stderr.count("\n") == 1, missing.stderr
    assert "not in the Hugging Face cache and HF_HUB_OFFLINE is set" in missing.stderr


def test_unreachable_hub_is_one_line(hub):
    from dfnet.hub import resolve_hub

    hub.close()
    with pytest.raises(CheckpointError, match="not in the Hugging Face cache and the Hub cannot be reached"):
        resolve_hub(f"hf://{REPO}/{WEIGHTS}", download=True)


def test_hub_card_takes_the_registry_licence(tmp_path, capsys):
    out = tmp_path / "card"
    assert main(["models", "hub-card", "default", str(out), "--repo", "me/dfnet-default"]) == 0
    assert (out / "README.md").read_text().startswith("---\nlicense: mit\n")
