"""Score exemplar-detail settings on an evaluation set, the network run once: the L1 / texture trade-off.

``dfnet eval --texture STRENGTH`` scores one strength per run and re-runs the network each time; this script
runs the model once per pair (cached in ``--cache``), then adds the detail with each setting given as JSON
(:class:`dfnet.exemplar.ExemplarDetail` fields; ``none`` = the network alone) and prints one markdown row per
setting: L1×100 per hole-ratio bin, the gradient ratio and the detail measure in the hole (both as ``dfnet eval``
computes them, :mod:`dfnet.texture_metrics`), and the detail measure's signed log-ratio per pyramid level
(negative = less energy than the truth in that band: which scales still lack texture).

    python scripts/exemplar_sweep.py --images data/heldout/scenes --masks data/eval_masks_512 \\
        none '{}' '{"sigma": 4}' '{"sigma": 6, "strength": 0.8}' '{"feather": 16}'
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from dfnet.evaluation import PairDataset, PairPlan, list_images, load_mask_set
from dfnet.exemplar import ExemplarDetail, add_exemplar_detail
from dfnet.inference import Inpainter
from dfnet.metrics import per_image_l1
from dfnet.texture_metrics import HolePyramids, band_log_ratios, per_image_gradient_sums


def network_fills(args: argparse.Namespace) -> dict[str, torch.Tensor]:
    """Every pair's image, hole, bin and the model's own completion (texture off), cached on disk."""
    cache = Path(args.cache)
    if cache.is_file():
        return torch.load(cache, weights_only=True)
    masks = load_mask_set(args.masks, args.size)
    images = list_images(args.images)
    pairs = PairDataset(images, masks, PairPlan(len(images), masks, "all"), args.size)
    samples = [pairs[k] for k in range(len(pairs))]
    rgb = torch.stack([s["image"] for s in samples]).permute(0, 2, 3, 1).numpy()
    hole = torch.stack([s["hole"] for s in samples])[:, 0].numpy()
    model = Inpainter.from_pretrained(args.model, device="cpu", texture=None)
    fills = [
        model.complete_arrays(rgb[i : i + 1], hole[i : i + 1], "original").result for i in range(len(rgb))
    ]
    data = {
        "rgb": torch.from_numpy(rgb),
        "hole": torch.from_numpy(hole),
        "fill": torch.from_numpy(np.concatenate(fills)),
        "bin": torch.tensor([s["bin"] for s in samples]),
    }
    cache.parent.mkdir(parents=True, exist_ok=True)
    torch.save(data, cache)
    return data


def score(data: dict[str, torch.Tensor], results: np.ndarray) -> dict:
    """L1×100 per bin, gradient ratio, detail measure and mean signed log-ratio per level."""
    target = data["rgb"].permute(0, 3, 1, 2).float() / 255
    result = torch.from_numpy(results).permute(0, 3, 1, 2).float() / 255
    hole = data["hole"][:, None]
    l1 = per_image_l1(result, target)
    grad_result, grad_target = per_image_gradient_sums(result, target, hole)
    levels = band_log_ratios(HolePyramids.build(result, target, hole))
    bins = sorted(set(data["bin"].tolist()))
    return {
        "l1": [100 * l1[data["bin"] == b].mean().item() for b in bins],
        "ratio": (grad_result.sum() / grad_target.sum()).item(),
        "detail": levels.abs().mean().item(),
        "levels": levels.mean(1).tolist(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("settings", nargs="+", help="ExemplarDetail fields as JSON, or none")
    parser.add_argument("--images", required=True)
    parser.add_argument("--masks", required=True)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--model", default="default")
    parser.add_argument("--cache", default="data/cache/exemplar_sweep.pt")
    args = parser.parse_args()
    data = network_fills(args)
    rgb, hole, fill = (data[k].numpy() for k in ("rgb", "hole", "fill"))
    print("| setting | L1×100 per bin | gradient ratio | detail | log-ratio per level | s/image |")
    print("|---|---|---:|---:|---|---:|")
    for setting in args.settings:
        options = None if setting == "none" else ExemplarDetail(**json.loads(setting))
        started = time.perf_counter()
        results = (
            fill
            if options is None
            else np.stack([add_exemplar_detail(rgb[i], hole[i], fill[i], options) for i in range(len(rgb))])
        )
        seconds = (time.perf_counter() - started) / len(rgb)
        row = score(data, results)
        print(
            f"| `{setting}` | {' / '.join(f'{v:.3f}' for v in row['l1'])} | {row['ratio']:.3f} | "
            f"{row['detail']:.3f} | {' / '.join(f'{v:+.2f}' for v in row['levels'])} | {seconds:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
