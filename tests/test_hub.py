"""dfnet.hub: hf:// references through huggingface_hub's cache (pre-filled, HF_HUB_OFFLINE=1), refusals,
and the model card folder for `huggingface-cli upload`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from dfnet.checkpoint import CheckpointError, save_model
from dfnet.cli import main
from dfnet.hub import HubReference, parse_reference
from dfnet.model import DFNet, DFNetConfig

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
    cache = tmp_path / "hf" / "hub"
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants as constants

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

    with pytest.raises(CheckpointError, match="cannot be reached"):
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
