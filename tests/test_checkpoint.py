"""Weights files: released layout round trip, RGB/BGR + mask-convention parity, safe and clear loading."""

from __future__ import annotations

import os
import pickle
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import assert_one_line_error, randomize_batchnorm, run_cli
from reference_dfnet import ReferenceDFNet, released_test_composite
from safetensors.torch import save_file

from dfnet.checkpoint import (
    CheckpointError,
    config_from_released,
    convert_official,
    init_from_weights,
    load_model,
    project_key_to_released,
    project_to_released,
    released_key_to_project,
    save_model,
    save_released,
)
from dfnet.inference import Inpainter
from dfnet.model import DFNet, DFNetConfig

OFFICIAL_KEYS = Path(__file__).parent / "data" / "official-state-dict.txt"  # names and shapes of the release


def _official_listing() -> dict[str, tuple[int, ...]]:
    shapes = {}
    for line in OFFICIAL_KEYS.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, shape = line.split(" ", 1)
        shapes[name] = tuple(int(s) for s in shape.strip("()").split(",") if s.strip())
    return shapes


def test_released_key_mapping_matches_published_state_dict():
    model = DFNet()
    released = project_to_released(model.state_dict(), model.config)
    listing = _official_listing()
    assert {k: tuple(v.shape) for k, v in released.items()} == listing


def test_key_renaming_is_a_bijection():
    for key in DFNet().state_dict():
        assert released_key_to_project(project_key_to_released(key)) == key


@pytest.fixture
def released_file(tmp_path, tiny_model) -> Path:
    """A randomly initialised narrow network saved exactly as the released code would save it."""
    path = tmp_path / "model_places2.pth"
    save_released(tiny_model, path)
    return path


def test_released_file_loads_into_independent_reference_strictly(released_file):
    state = torch.load(released_file, weights_only=True)
    reference = ReferenceDFNet(base=8)
    reference.load_state_dict(state, strict=True)
    assert config_from_released(state) == DFNetConfig(width=0.125)


def test_convert_then_load_gives_identical_outputs(released_file, tmp_path, tiny_model):
    converted = tmp_path / "converted.safetensors"
    convert_official(released_file, converted)
    image, hole = torch.rand(1, 3, 256, 256), (torch.rand(1, 1, 256, 256) > 0.8).float()
    with torch.no_grad():
        expected = tiny_model.complete(image, hole)
        for path in (converted, released_file):  # both the converted file and the .pth used directly
            torch.testing.assert_close(load_model(path).complete(image, hole), expected, rtol=0, atol=1e-6)


def test_composite_matches_released_test_script_within_one_level(released_file, photo_256, hole_256):
    reference = ReferenceDFNet(base=8).eval()
    reference.load_state_dict(torch.load(released_file, weights_only=True))
    known_u8 = np.where(hole_256, 0, 255).astype(np.uint8)  # released masks: white = known
    released_bgr = released_test_composite(reference, photo_256[:, :, ::-1].copy(), known_u8)
    ours = Inpainter.from_pretrained(released_file, device="cpu").complete_array(photo_256, hole_256).result
    diff = np.abs(ours.astype(int) - released_bgr[:, :, ::-1].astype(int))
    assert diff.max() <= 1
    assert np.array_equal(ours[~hole_256], photo_256[~hole_256])  # known pixels bit-identical


def test_safetensors_round_trip_keeps_config_and_weights(tmp_path):
    config = DFNetConfig(width=0.125, fusion_layers=(0, 1, 2), alpha_channels=1, fusion="mask")
    model = randomize_batchnorm(DFNet(config)).eval()
    path = tmp_path / "m.safetensors"
    save_model(model, path)
    loaded = load_model(path)
    assert loaded.config == config
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


def test_half_precision_file_loads_as_float32_close_to_original(tmp_path, tiny_model):
    path = tmp_path / "half.safetensors"
    save_model(tiny_model, path, half=True)
    loaded = load_model(path)
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    image, hole = torch.rand(1, 3, 256, 256), (torch.rand(1, 1, 256, 256) > 0.8).float()
    with torch.no_grad():
        assert (loaded.complete(image, hole) - tiny_model.complete(image, hole)).abs().max() < 2e-2


def test_training_checkpoint_layout_loads(tmp_path, tiny_model):
    ckpt = {
        "state_dict": {f"model.{k}": v for k, v in tiny_model.state_dict().items()},
        "dfnet_config": tiny_model.config.to_dict(),
        "global_step": 7,
    }
    path = tmp_path / "last.ckpt"
    torch.save(ckpt, path)
    assert load_model(path).config == tiny_model.config


class _Exploit:
    def __reduce__(self):
        return (os.system, ("touch /tmp/dfnet-pwned-by-test",))


def test_malicious_pickle_is_refused_without_running(tmp_path):
    marker = Path("/tmp/dfnet-pwned-by-test")
    marker.unlink(missing_ok=True)
    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:
        pickle.dump({"en_0.encode.0.conv.1.weight": _Exploit()}, f)
    with pytest.raises(CheckpointError, match="refused"):
        load_model(path)
    assert not marker.exists()


@pytest.mark.parametrize(
    "content,match",
    [
        (b"", "empty"),
        (b"this is not a checkpoint at all", "not a PyTorch checkpoint"),
        (b"\x89PNG\r\n\x1a\n", "not"),
    ],
)
def test_garbage_files_get_one_line_errors(tmp_path, content, match):
    path = tmp_path / "weights.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=match) as info:
        load_model(path)
    assert "\n" not in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="no such weights file"):
        load_model(tmp_path / "nope.safetensors")


def test_other_architecture_is_rejected(tmp_path):
    torch.save({"fc.weight": torch.zeros(2, 2)}, tmp_path / "other.pth")
    with pytest.raises(CheckpointError, match="no DFNet config"):
        load_model(tmp_path / "other.pth")
    state = {f"model.{k}": v for k, v in DFNet(DFNetConfig(width=0.125)).state_dict().items()}
    torch.save({"state_dict": state, "dfnet_config": DFNetConfig(width=0.25).to_dict()}, tmp_path / "x.ckpt")
    with pytest.raises(CheckpointError, match="shape mismatch"):
        load_model(tmp_path / "x.ckpt")


def test_non_finite_weights_are_rejected(tmp_path, tiny_model):
    state = {k: v.clone() for k, v in tiny_model.state_dict().items()}
    state["decoder.3.conv.conv.weight"][0, 0, 0, 0] = float("nan")
    torch.save(
        {
            "state_dict": {f"model.{k}": v for k, v in state.items()},
            "dfnet_config": tiny_model.config.to_dict(),
        },
        tmp_path / "nan.ckpt",
    )
    with pytest.raises(CheckpointError, match="NaN or Inf"):
        load_model(tmp_path / "nan.ckpt")


def test_init_from_weights_copies_shared_keys_across_fusion_variants(tmp_path, tiny_model):
    save_model(tiny_model, tmp_path / "learned.safetensors")
    torch.manual_seed(1)
    masked = DFNet(DFNetConfig(width=0.125, fusion="mask"))
    loaded, left = init_from_weights(masked, tmp_path / "learned.safetensors")
    assert left == []  # the mask variant only lacks the alpha networks, which the file's extra keys hold
    assert len(loaded) == len(masked.state_dict())
    for key, value in masked.state_dict().items():
        assert torch.equal(value, tiny_model.state_dict()[key]), key
    # and back: the alpha networks keep their fresh initialisation
    torch.manual_seed(2)
    learned = DFNet(DFNetConfig(width=0.125))
    fresh = {k: v.clone() for k, v in learned.state_dict().items()}
    save_model(masked, tmp_path / "mask.safetensors")
    _, left = init_from_weights(learned, tmp_path / "mask.safetensors")
    assert left and all(".alpha_net." in k for k in left)
    assert all(torch.equal(learned.state_dict()[k], fresh[k]) for k in left)


def test_init_from_weights_rejects_other_widths_and_architectures(tmp_path, tiny_model):
    save_model(tiny_model, tmp_path / "narrow.safetensors")
    with pytest.raises(CheckpointError, match="shape mismatch"):
        init_from_weights(DFNet(DFNetConfig(width=0.25)), tmp_path / "narrow.safetensors")
    torch.save({"fc.weight": torch.zeros(2, 2)}, tmp_path / "other.pth")
    with pytest.raises(CheckpointError, match="no DFNet config"):
        init_from_weights(DFNet(DFNetConfig(width=0.125)), tmp_path / "other.pth")


def test_pushpull_networks_have_no_released_layout():
    config = DFNetConfig(width=0.125, hole_fill="pushpull")
    with pytest.raises(CheckpointError, match="pushpull"):
        project_to_released(DFNet(config).state_dict(), config)


def test_a_released_pth_with_missing_keys_is_one_line(tmp_path, capsys):
    from dfnet.checkpoint import save_released

    released = tmp_path / "r.pth"
    save_released(DFNet(DFNetConfig(width=0.125, encoder_kernels=(3, 3, 3), fusion_layers=(0, 1))), released)
    state = torch.load(released, weights_only=True)
    for missing in [k for k in state if k.endswith("weight")]:
        torch.save({k: v for k, v in state.items() if k != missing}, tmp_path / "cut.pth")
        with pytest.raises(CheckpointError) as info:
            load_model(tmp_path / "cut.pth")
        assert "\n" not in str(info.value)
    code, _, err = run_cli(capsys, "convert-official", tmp_path / "cut.pth", tmp_path / "out.safetensors")
    assert code == 1
    assert_one_line_error(err, "convert-official")
    assert not (tmp_path / "out.safetensors").exists()


HOSTILE_CONFIGS = {
    "channels": ({"base_channels": 10**9}, "base_channels must be an integer in 1..4096"),
    "layers": ({"encoder_kernels": [3] * 40, "fusion_layers": [0]}, "at most 12 layers"),
    "kernel": ({"encoder_kernels": [99999, 3, 3], "fusion_layers": [0]}, "kernel sizes must be integers"),
    "blend": ({"blend_channels": 10**12}, "blend_channels must be an integer in 1..4096"),
    # within every bound but terabytes of weights: refused by comparing with the file before building
    "huge_within_bounds": ({"base_channels": 4096, "max_channels": 4096, "width": 4},
                           "not this DFNet architecture"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(HOSTILE_CONFIGS))
def test_hostile_metadata_is_refused_before_anything_is_allocated(case, tmp_path, capsys):
    import json
    import resource

    config, message = HOSTILE_CONFIGS[case]
    path = tmp_path / "hostile.safetensors"
    save_file({"encoder.0.conv.conv.weight": torch.zeros(2, 4, 3, 3)}, path,
              metadata={"format": "dfnet", "config": json.dumps(config)})  # fmt: skip
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    with pytest.raises(CheckpointError, match=message):
        load_model(path)
    assert time.monotonic() - started < 5
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before < 200 * 1024  # KiB: < 200 MB
    code, _, err = run_cli(capsys, "export-checkpoint", path, tmp_path / "o.safetensors")
    assert code == 1
    assert_one_line_error(err, "export-checkpoint", message.split(" must")[0])
