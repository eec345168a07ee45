"""Saving and loading DFNet weights: the project's safetensors files, its training checkpoints
and the released ``model_places2.pth`` / ``model_celeba.pth`` state dicts.

Nothing here unpickles arbitrary objects: ``.pth``/``.ckpt`` files are read with
``torch.load(weights_only=True)`` and anything else is refused with a one-line error.

The released network takes BGR images; this project's network takes RGB. Converting a released
state dict renames its keys and permutes the colour channels of the first encoder layer, the
finest decoder layer and every fusion block, which is exact: the converted network computes the
same function with the colour channels reversed.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import warnings
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor

from dfnet.files import atomic_write
from dfnet.model import IMAGE_CHANNELS, DFNet, DFNetConfig
from dfnet.safe_load import read_json

StateDict = dict[str, Tensor]
FORMAT_NAME = "dfnet"
MAX_WORKING_SIZE = 16384  # pixels: the largest training resolution a file may record


class CheckpointError(ValueError):
    """A weights file that cannot be used as a DFNet (one-line, user-facing message)."""


# ---------------------------------------------------------------------------------------------
# Released key layout <-> project key layout
# ---------------------------------------------------------------------------------------------
# (project name, released name); {i}, {j}: layer indices, {p}: parameter name.
_KEY_RULES: list[tuple[str, str]] = [
    ("encoder.{i}.conv.conv.{p}", "en_{i}.encode.0.conv.1.{p}"),
    ("encoder.{i}.norm.{p}", "en_{i}.encode.1.{p}"),
    ("decoder.{i}.conv.conv.{p}", "de_{i}.decode.0.conv.{p}"),
    ("decoder.{i}.norm.{p}", "de_{i}.decode.1.{p}"),
    ("fusion.{i}.to_raw.conv.{p}", "fuse_{i}.map2img.0.conv.{p}"),
    ("fusion.{i}.alpha_net.{j}.conv.{p}", "fuse_{i}.blend.blend.{j}.conv.{p}"),
    ("fusion.{i}.alpha_net.{j}.{p}", "fuse_{i}.blend.blend.{j}.{p}"),
]


def _template_regex(template: str) -> re.Pattern[str]:
    pattern = re.escape(template)
    for name, group in (("i", r"\d+"), ("j", r"\d+"), ("p", r"[A-Za-z_]+")):
        pattern = pattern.replace(re.escape("{" + name + "}"), f"(?P<{name}>{group})")
    return re.compile(pattern)


def _rename(key: str, source: int) -> str:
    for rule in _KEY_RULES:
        match = _template_regex(rule[source]).fullmatch(key)
        if match:
            return rule[1 - source].format(**match.groupdict())
    raise KeyError(key)


def project_key_to_released(key: str) -> str:
    """Name a project parameter the way the released code names it."""
    return _rename(key, 0)


def released_key_to_project(key: str) -> str:
    """Name a released parameter the way this project names it."""
    return _rename(key, 1)


def is_released_layout(state: Mapping[str, Tensor]) -> bool:
    """True when the keys look like the released DFNet code (``en_0.encode...``)."""
    return any(k.startswith("en_0.encode.0.") for k in state)


def _flip(t: Tensor, dim: int, start: int = 0, stop: int = IMAGE_CHANNELS) -> Tensor:
    """Reverse the slice [start, stop) of ``t`` along ``dim`` (RGB <-> BGR)."""
    t = t.clone()
    idx = torch.arange(start, stop)
    t.index_copy_(dim, idx, t.index_select(dim, idx.flip(0)))
    return t


def swap_color_order(state: Mapping[str, Tensor], config: DFNetConfig) -> StateDict:
    """Permute colour channels so an RGB network becomes a BGR one and back (an involution)."""
    out = dict(state)
    out["encoder.0.conv.conv.weight"] = _flip(out["encoder.0.conv.conv.weight"], 1)
    up = out["decoder.0.conv.conv.weight"].shape[1] - (IMAGE_CHANNELS + 1)
    out["decoder.0.conv.conv.weight"] = _flip(out["decoder.0.conv.conv.weight"], 1, up, up + IMAGE_CHANNELS)
    for i in config.fusion_layers:
        p = f"fusion.{i}."
        for name in ("to_raw.conv.weight", "to_raw.conv.bias"):
            out[p + name] = _flip(out[p + name], 0)
        if config.fusion != "learned":
            continue
        first = out[p + "alpha_net.0.conv.weight"]
        out[p + "alpha_net.0.conv.weight"] = _flip(_flip(first, 1), 1, IMAGE_CHANNELS, 2 * IMAGE_CHANNELS)
        if config.alpha_channels == IMAGE_CHANNELS:
            for name in (
                "3.conv.weight",
                "3.conv.bias",
                "4.weight",
                "4.bias",
                "4.running_mean",
                "4.running_var",
            ):
                out[p + "alpha_net." + name] = _flip(out[p + "alpha_net." + name], 0)
            last = out[p + "alpha_net.6.conv.weight"]
            out[p + "alpha_net.6.conv.weight"] = _flip(_flip(last, 0), 1)
            out[p + "alpha_net.6.conv.bias"] = _flip(out[p + "alpha_net.6.conv.bias"], 0)
    return out


def config_from_released(state: Mapping[str, Tensor]) -> DFNetConfig:
    """Infer the architecture of a released-layout state dict."""
    layers = sorted(
        int(m.group(1)) for k in state if (m := re.fullmatch(r"en_(\d+)\.encode\.0\.conv\.1\.weight", k))
    )
    fused = sorted(
        int(m.group(1)) for k in state if (m := re.fullmatch(r"fuse_(\d+)\.map2img\.0\.conv\.weight", k))
    )
    if not layers or not fused:
        raise CheckpointError("not a released DFNet state dict: encoder or fusion weights are missing")
    try:
        kernels = tuple(int(state[f"en_{i}.encode.0.conv.1.weight"].shape[-1]) for i in layers)
        base = int(state["en_0.encode.0.conv.1.weight"].shape[0])
        alpha = int(state[f"fuse_{fused[0]}.blend.blend.6.conv.weight"].shape[0])
        return DFNetConfig(
            encoder_kernels=kernels, width=base / 64, fusion_layers=tuple(fused), alpha_channels=alpha
        )
    except KeyError as err:
        raise CheckpointError(f"not a complete released DFNet state dict: {err.args[0]} is missing") from None
    except (IndexError, ValueError) as err:
        raise CheckpointError(f"not a released DFNet architecture ({err})") from None


def released_to_project(state: Mapping[str, Tensor]) -> tuple[StateDict, DFNetConfig]:
    """Convert a released (BGR, ``en_/de_/fuse_``) state dict to this project's RGB layout."""
    config = config_from_released(state)
    try:
        renamed = {released_key_to_project(k): v for k, v in state.items()}
    except KeyError as err:
        raise CheckpointError(f"unknown key in released checkpoint: {err.args[0]}") from None
    try:
        return swap_color_order(renamed, config), config
    except KeyError as err:  # a key the colour swap needs is absent: name it in the released layout
        missing = project_key_to_released(err.args[0])
        raise CheckpointError(f"not a complete released DFNet state dict: {missing} is missing") from None
    except (IndexError, RuntimeError) as err:
        raise CheckpointError(f"not a released DFNet architecture ({str(err).splitlines()[0]})") from None


def project_to_released(state: Mapping[str, Tensor], config: DFNetConfig) -> StateDict:
    """Write this project's state dict in the released layout (BGR, released key names)."""
    if config.fusion != "learned":
        raise CheckpointError("the released layout only exists for fusion='learned' networks")
    if config.hole_fill != "zero":
        raise CheckpointError(
            f"the released code zeroes the hole; a hole_fill={config.hole_fill!r} network has no released layout"
        )
    swapped = swap_color_order(state, config)
    return {project_key_to_released(k): v for k, v in swapped.items()}


# ---------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------
def save_model(
    model: DFNet, path: str | os.PathLike, half: bool = False, metadata: dict | None = None
) -> None:
    """Save weights and config as safetensors (optionally fp16, for shipping)."""
    tensors = {}
    for key, value in model.state_dict().items():
        value = value.detach().cpu().contiguous()
        if half and value.is_floating_point():
            value = value.half()
        tensors[key] = value
    meta = {"format": FORMAT_NAME, "config": json.dumps(model.config.to_dict())}
    meta.update({k: str(v) for k, v in (metadata or {}).items()})
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=meta))


def metadata_int(value: object, source: str, field: str, low: int = 1, high: int = MAX_WORKING_SIZE) -> int:
    """A whole number stored as text in a weights file's metadata, checked against ``low..high`` so a
    damaged or hostile file is refused when read, naming the file and the field, not at first use."""
    try:
        number = int(str(value).strip())
    except ValueError:
        number = None
    if number is None or not low <= number <= high:
        raise CheckpointError(
            f"{source}: metadata field {field!r} must be a whole number in {low}..{high:,}, got {str(value)[:40]!r}"
        )
    return number


def _parse_config(raw: object, path: Path) -> DFNetConfig:
    """A DFNetConfig from a file's stored config (a dict or its JSON), or a one-line CheckpointError."""
    try:
        values = (
            read_json(raw, f"{path}: invalid DFNet config in metadata field 'config'")
            if isinstance(raw, str)
            else raw
        )
    except ValueError as err:
        raise CheckpointError(str(err)) from None
    try:
        if not isinstance(values, Mapping):
            raise TypeError(f"expected a mapping, found {type(values).__name__}")
        return DFNetConfig.from_dict(dict(values))
    except (TypeError, ValueError) as err:
        raise CheckpointError(
            f"{path}: invalid DFNet config in the file ({str(err).splitlines()[0][:160]})"
        ) from None


def _read_safetensors(path: Path) -> tuple[StateDict, DFNetConfig | None]:
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{path}: not a readable safetensors file ({err})") from None
    config = _parse_config(meta["config"], path) if "config" in meta else None
    return state, config


def refusal_reason(err: Exception) -> str:
    """The line of the weights-only unpickler's long message that names what was refused."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    specific = [line for line in lines if "GLOBAL" in line or line.startswith("Unsupported")]
    return (specific or lines or ["unsafe content"])[0]


def _read_torch(path: Path) -> tuple[StateDict, DFNetConfig | None]:
    with open(path, "rb") as f:
        head = f.read(2)
    if head[:2] != b"PK" and head[:1] != b"\x80":  # neither torch's zip format nor a pickle
        raise CheckpointError(f"{path}: not a PyTorch checkpoint or safetensors file")
    try:
        with warnings.catch_warnings():  # plain pickles of other protocols: the refusal below says enough
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise CheckpointError(
            f"{path}: refused to load: the file holds objects other than tensors ({refusal_reason(err)[:160]})"
        ) from None
    except Exception as err:  # the weights-only unpickler raises many kinds on garbage input
        raise CheckpointError(
            f"{path}: not a PyTorch checkpoint ({str(err).splitlines()[0][:160]})"
        ) from None
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path}: expected a state dict, found {type(obj).__name__}")
    config = None
    if "state_dict" in obj and isinstance(obj["state_dict"], Mapping):  # a checkpoint wrapping a state dict
        raw_config = obj.get("dfnet_config")
        config = _parse_config(raw_config, path) if raw_config is not None else None
        obj = _unwrap_state_dict(obj["state_dict"])
    state = {k: v for k, v in obj.items() if isinstance(v, Tensor)}
    if not state:
        raise CheckpointError(f"{path}: {_contents(obj)}, so it is not a DFNet state dict")
    return state, config


def _unwrap_state_dict(inner: Mapping[str, object]) -> Mapping[str, object]:
    """The network's tensors of a ``{'state_dict': ...}`` file: a training checkpoint's ``model.*``
    entries without the prefix, else the whole dict (a plain state dict saved inside one)."""
    model = {k.removeprefix("model."): v for k, v in inner.items() if k.startswith("model.")}
    return model or inner


def _contents(obj: Mapping[object, object]) -> str:
    """What a mapping without tensors holds, for messages: its first keys, or that it is empty."""
    if not obj:
        return "holds an empty mapping"
    keys = ", ".join(repr(k)[:40] for k in list(obj)[:3])
    return f"holds no tensors ({len(obj)} entries, such as {keys})"


def read_state_dict(path: str | os.PathLike) -> tuple[StateDict, DFNetConfig]:
    """Read any supported weights file and return (project-layout state dict, config)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such weights file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: empty file")
    with open(path, "rb") as f:
        head = f.read(8)
    is_safetensors = path.suffix == ".safetensors" or (
        len(head) == 8 and int.from_bytes(head, "little") < 1e8
    )
    state, config = (_read_safetensors if is_safetensors else _read_torch)(path)
    if is_released_layout(state):
        try:
            state, config = released_to_project(state)
        except CheckpointError as err:
            raise CheckpointError(f"{path}: {err}") from None
    if config is None:
        raise CheckpointError(f"{path}: no DFNet config found and the keys are not the released layout")
    return state, config


def _check_finite(state: Mapping[str, Tensor], source: str) -> None:
    bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise CheckpointError(f"{source}: {len(bad)} tensors hold NaN or Inf (first: {bad[0]})")


def _check_shapes(
    expected: Mapping[str, Tensor], state: Mapping[str, Tensor], keys: list[str], source: str
) -> None:
    """Raise CheckpointError naming the first of ``keys`` whose file tensor has another shape."""
    for key in keys:
        if expected[key].shape != state[key].shape:
            raise CheckpointError(
                f"{source}: shape mismatch for {key}: file {tuple(state[key].shape)}, model {tuple(expected[key].shape)}"
            )


def _check_matches(expected: Mapping[str, Tensor], state: Mapping[str, Tensor], source: str) -> None:
    """Raise CheckpointError unless ``state`` has exactly the keys and shapes of ``expected``."""
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        raise CheckpointError(
            f"{source}: not this DFNet architecture ({len(missing)} missing keys, {len(unexpected)} unexpected; "
            f"first: {(missing or unexpected)[0]})"
        )
    _check_shapes(expected, state, list(expected), source)


def check_architecture(config: DFNetConfig, state: Mapping[str, Tensor], source: str) -> None:
    """Check ``state`` against the network ``config`` describes, built on the meta device (no memory),
    so a file whose metadata asks for a huge network is refused before anything is allocated."""
    with torch.device("meta"):
        expected = DFNet(config).state_dict()
    _check_matches(expected, state, source)


def load_state_into(model: DFNet, state: Mapping[str, Tensor], source: str) -> None:
    """Load ``state`` into ``model`` strictly, turning mismatches into a one-line CheckpointError."""
    expected = model.state_dict()
    _check_matches(expected, state, source)
    _check_finite(state, source)
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()})


def init_from_weights(model: DFNet, path: str | os.PathLike) -> tuple[list[str], list[str]]:
    """Copy every tensor of a weights file whose key the model shares (fine-tuning, variant changes).

    Returns ``(loaded, left)``: the keys taken from the file and the model keys it did not hold (they
    keep their fresh initialisation). File keys the model lacks are ignored; a shared key with another
    shape, or no shared key at all, is a CheckpointError.
    """
    state, _ = read_state_dict(path)
    expected = model.state_dict()
    shared = [k for k in expected if k in state]
    if not shared:
        raise CheckpointError(f"{path}: shares no weights with this DFNet architecture")
    _check_shapes(expected, state, shared, str(path))
    _check_finite({k: state[k] for k in shared}, str(path))
    model.load_state_dict({k: state[k].to(expected[k].dtype) for k in shared}, strict=False)
    return shared, [k for k in expected if k not in state]


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> DFNet:
    """Build a DFNet from any supported weights file, in eval mode, on ``device``."""
    state, config = read_state_dict(path)
    check_architecture(config, state, str(path))
    model = DFNet(config)
    load_state_into(model, state, str(path))
    return model.to(device).eval()


def convert_official(src: str | os.PathLike, dst: str | os.PathLike, half: bool = False) -> DFNetConfig:
    """Convert a released ``.pth`` to the project's safetensors format."""
    model = load_model(src)
    save_model(model, dst, half=half, metadata={"source": Path(src).name})
    return model.config


def save_released(model: DFNet, path: str | os.PathLike) -> None:
    """Save a model as the released code would (a plain BGR state dict with released names)."""
    state = project_to_released(model.state_dict(), model.config)
    atomic_write(path, lambda tmp: torch.save(state, tmp))
