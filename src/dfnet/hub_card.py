"""A Hugging Face Hub model repository for a DFNet model: weights, config.json and a README model card.

The folder it writes is ready for ``huggingface-cli upload OWNER/REPO FOLDER``; loading it back goes through
``hf://OWNER/REPO`` (:mod:`dfnet.hub`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from dfnet.checkpoint import FORMAT_NAME
from dfnet.hub import DEFAULT_FILE


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


__all__ = ["write_hub_card"]
