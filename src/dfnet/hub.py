"""Models on the Hugging Face Hub: ``hf://OWNER/REPO[/FILE][@REVISION]`` through ``huggingface_hub``
(its cache, ``HF_HOME``, ``HF_HUB_OFFLINE``), and the model card a user pushes with ``huggingface-cli upload``.

Only safetensors files that carry this project's metadata (``format: dfnet`` and the config) are
loaded; a pickle (``.bin``, ``.pth``, ``.ckpt``) or another project's file is refused in one line.
As for registry names, nothing is fetched unless ``download=True`` (``--download``); otherwise the
file must already be in the Hub cache.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from dfnet.checkpoint import FORMAT_NAME, CheckpointError

DEFAULT_FILE = "model.safetensors"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")


@dataclass(frozen=True)
class HubReference:
    """A parsed ``hf://`` reference."""

    repo_id: str
    filename: str = DEFAULT_FILE
    revision: str | None = None

    def __str__(self) -> str:
        revision = f"@{self.revision}" if self.revision else ""
        return f"hf://{self.repo_id}/{self.filename}{revision}"


def parse_reference(text: str) -> HubReference:
    """Parse ``hf://OWNER/REPO[/FILE][@REVISION]`` (FILE defaults to model.safetensors)."""
    body = text.removeprefix("hf://")
    body, _, revision = body.partition("@")
    parts = [part for part in body.split("/") if part]
    if len(parts) < 2:
        raise ValueError(f"{text}: expected hf://OWNER/REPO[/FILE][@REVISION]")
    return HubReference("/".join(parts[:2]), "/".join(parts[2:]) or DEFAULT_FILE, revision or None)


def _fetch(ref: HubReference, download: bool) -> Path:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        return Path(
            hf_hub_download(ref.repo_id, ref.filename, revision=ref.revision, local_files_only=not download)
        )
    except RevisionNotFoundError:
        raise CheckpointError(f"{ref}: revision {ref.revision!r} not found in {ref.repo_id}") from None
    except LocalEntryNotFoundError:
        revision = f" at revision {ref.revision!r}" if ref.revision else ""
        if download:
            from huggingface_hub import constants

            reason = (
                "HF_HUB_OFFLINE is set"
                if constants.HF_HUB_OFFLINE
                else "the Hub cannot be reached (offline?)"
            )
            raise CheckpointError(f"{ref}: not in the Hugging Face cache{revision} and {reason}") from None
        raise CheckpointError(
            f"{ref}: not in the Hugging Face cache{revision}: add --download (download=True) to fetch it"
        ) from None
    except EntryNotFoundError:
        raise CheckpointError(f"{ref}: no file {ref.filename} in {ref.repo_id}") from None
    except RepositoryNotFoundError:
        raise CheckpointError(f"{ref}: no repository {ref.repo_id} on the Hub (or it is private)") from None
    except HFValidationError as err:
        raise CheckpointError(f"{ref}: {str(err).splitlines()[0]}") from None


def check_dfnet_file(path: Path, source: str) -> None:
    """Refuse anything but a safetensors file with this project's metadata, before it is used."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError):
        raise CheckpointError(
            f"{source}: not a safetensors file (pickles are never loaded from the Hub)"
        ) from None
    if meta.get("format") != FORMAT_NAME or "config" not in meta:
        raise CheckpointError(
            f"{source}: not a DFNet weights file (no 'format: {FORMAT_NAME}' config metadata)"
        )


def resolve_hub(text: str, download: bool = False) -> tuple[str, Path]:
    """(display name, local file) for an ``hf://`` reference; the file is checked before it is returned."""
    ref = parse_reference(text)
    if ref.filename.lower().endswith(PICKLE_SUFFIXES):
        raise CheckpointError(
            f"{ref}: pickle files are refused; publish a .safetensors (dfnet models hub-card)"
        )
    path = _fetch(ref, download)
    check_dfnet_file(path, str(ref))
    return ref.repo_id, path


def _card(repo_id: str, licence: str, config: dict, working_size: int, source: str) -> str:
    rows = "\n".join(f"| `{key}` | `{value}` |" for key, value in config.items())
    return f"""---
license: {licence}
library_name: dfnet
pipeline_tag: image-to-image
tags:
- image-inpainting
- dfnet
---

# DFNet: {repo_id}

Deep Fusion Network for Image Completion (Hong et al., ACM Multimedia 2019), weights in the `dfnet` package's
safetensors format (RGB input, white = hole), converted from `{source}`. Working size: {working_size}×{working_size}.

```bash
dfnet inpaint photo.png mask.png -o result.png --model hf://{repo_id} --download
```

```python
from dfnet import Inpainter

inpainter = Inpainter.from_pretrained("hf://{repo_id}", download=True)
```

## Configuration

| key | value |
|---|---|
{rows}

## Citation

```bibtex
@inproceedings{{DFNet2019,
  title={{Deep Fusion Network for Image Completion}},
  author={{Xin Hong and Pengfei Xiong and Renhe Ji and Haoqiang Fan}},
  booktitle={{Proceedings of the 27th ACM International Conference on Multimedia}},
  year={{2019}}
}}
```
"""


def write_hub_card(
    model: str | os.PathLike, out_dir: str | os.PathLike, repo_id: str, licence: str | None = None
) -> list[Path]:
    """Write ``model.safetensors``, ``config.json`` and a ``README.md`` model card into ``out_dir``, ready for
    ``huggingface-cli upload REPO_ID OUT_DIR``; returns the files written."""
    from dfnet.checkpoint import load_model, save_model
    from dfnet.files import atomic_write_text
    from dfnet.inference import guess_working_size, resolve_source
    from dfnet.registry import REGISTRY

    name, path = resolve_source(model)
    if licence is None:
        entry = REGISTRY.get(str(model))
        licence = entry.licence.lower() if entry else "other"  # the Hub's licence ids are lower-case SPDX
    out = Path(out_dir)
    network = load_model(path)
    size = guess_working_size(path)
    weights, config_file, card = out / DEFAULT_FILE, out / "config.json", out / "README.md"
    save_model(network, weights, metadata={"source": path.name, "working_size": size})
    config = {"format": FORMAT_NAME, "working_size": size, **network.config.to_dict()}
    atomic_write_text(config_file, json.dumps(config, indent=2) + "\n")
    atomic_write_text(card, _card(repo_id, licence, network.config.to_dict(), size, path.name))
    return [weights, config_file, card]


__all__ = ["HubReference", "check_dfnet_file", "parse_reference", "resolve_hub", "write_hub_card"]
