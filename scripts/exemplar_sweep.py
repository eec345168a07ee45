"""Score exemplar-detail settings on an evaluation set, the network run once: the L1 / texture trade-off.

``dfnet eval --texture STRENGTH`` scores one strength per run and re-runs the network each time; this script
runs the model once per pair (cached in ``--cache``), then adds the detail with each setting given as JSON
(:class:`dfnet.exemplar.ExemplarDetail` fields; ``none`` = the network alone) and prints one markdown row per
setting: L1×100 per hole-ratio bin, the gradient ratio and the detail measure in the hole (both as ``dfnet eval``
computes them, :mod:`dfnet.texture_metrics`), and the detail measure's signed log-ratio per pyramid level
(negative = less energy than the truth in that band: which scales still lack texture). ``--rings`` adds, per
setting, where in the hole the detail costs L1: by distance to the hole's border, the correlation of the added
detail with what the network's fill misses (truth - fill) and the change of L1 per hole pixel.

A setting ``oracle:C[:SIGMA]`` is not a method but a bound: the fill's band below σ = SIGMA px (default 8) is replaced, in the hole, by
the ground truth's own band, mixed with the truth's band from 32 px away so that the texture correlates C with the
truth at its place and keeps the truth's energy (C = 1: the truth's detail; C = 0: a perfect texture in the wrong
place). ``topup[:SIGMA]`` keeps the whole fill and adds the truth's band from 32 px away, scaled so that the hole's
band energy is the truth's: the best a copy placed without knowing where the truth's detail was can do. Both answer
how well any texture generator on top of this fill must *predict* the detail, not only match its
statistics, for its L1 to stay where a target needs it.

    python scripts/exemplar_sweep.py --images data/heldout/scenes --masks data/eval_masks_512 \\
        none '{}' '{"sigma": 4}' '{"sigma": 6, "strength": 0.8}' '{"feather": 16}'
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
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


_EDGES = (0.0, 1.5, 3.0, 5.0, 8.0, 12.0, 16.0, 24.0, float("inf"))
RINGS = list(zip(_EDGES[:-1], _EDGES[1:], strict=True))  # (low, high] distances to the nearest known pixel


def ring_rows(data: dict[str, torch.Tensor], results: np.ndarray) -> list[str]:
    """Per ring of distance to the known pixels: pixels, correlation of the added detail (result - fill) with the
    fill's miss (truth - fill), and the mean change of |result - truth| against |fill - truth| in grey levels."""
    rgb, hole, fill = (data[k].numpy() for k in ("rgb", "hole", "fill"))
    sums = np.zeros((len(RINGS), 5))  # added·miss, added², miss², ΔL1, pixels
    for i in range(len(rgb)):
        inside = hole[i].astype(bool)
        distance = cv2.distanceTransform(inside.astype(np.uint8), cv2.DIST_L2, 3)
        miss = rgb[i].astype(np.float64) - fill[i]
        added = results[i].astype(np.float64) - fill[i]
        change = np.abs(miss - added) - np.abs(miss)
        for k, (low, high) in enumerate(RINGS):
            ring = inside & (distance > low) & (distance <= high)
            a, m = added[ring].ravel(), miss[ring].ravel()
            sums[k] += [a @ m, a @ a, m @ m, change[ring].sum(), a.size]
    rows = []
    for (low, high), (am, aa, mm, change, n) in zip(RINGS, sums, strict=True):
        rho = am / np.sqrt(aa * mm) if aa > 0 and mm > 0 else 0.0
        rows.append(f"| ({low:g}, {high:g}] px | {int(n // 3):,} | {rho:+.3f} | {change / max(n, 1):+.2f} |")
    return rows


def oracle_detail(
    rgb: np.ndarray,
    hole: np.ndarray,
    fill: np.ndarray,
    correlation: float,
    sigma: float = 8.0,
    shift: int = 32,
) -> np.ndarray:
    """The fill with its band below ``sigma`` replaced in the hole by the truth's, ``correlation`` at its place."""
    truth, fill = rgb.astype(np.float32), fill.astype(np.float32)
    truth_band = truth - cv2.GaussianBlur(truth, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    elsewhere = np.roll(truth_band, (shift, shift), axis=(0, 1))
    texture = correlation * truth_band + np.sqrt(1 - correlation**2) * elsewhere
    base = cv2.GaussianBlur(fill, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    result = np.where(hole[..., None] > 0.5, base + texture, fill)
    return np.clip(np.rint(result), 0, 255).astype(rgb.dtype)


def topup_detail(
    rgb: np.ndarray, hole: np.ndarray, fill: np.ndarray, sigma: float = 8.0, shift: int = 32
) -> np.ndarray:
    """The fill plus the truth's band below ``sigma`` from elsewhere, raising the hole's band energy to the truth's."""
    truth, fill = rgb.astype(np.float32), fill.astype(np.float32)
    inside = hole > 0.5
    truth_band = truth - cv2.GaussianBlur(truth, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    fill_band = fill - cv2.GaussianBlur(fill, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    elsewhere = np.roll(truth_band, (shift, shift), axis=(0, 1))
    missing = np.square(truth_band[inside]).sum() - np.square(fill_band[inside]).sum()
    scale = np.sqrt(max(missing, 0.0) / max(np.square(elsewhere[inside]).sum(), 1e-6))
    result = np.where(inside[..., None], fill + scale * elsewhere, fill)
    return np.clip(np.rint(result), 0, 255).astype(rgb.dtype)


def complete(setting: str, rgb: np.ndarray, hole: np.ndarray, fill: np.ndarray) -> np.ndarray:
    """Every pair's result for one setting: ``none``, ``oracle:C[:SIGMA]``, ``topup[:SIGMA]`` or ExemplarDetail
    fields as JSON."""
    if setting == "none":
        return fill
    if setting.startswith("oracle:"):
        correlation, sigma = (float(v) for v in (setting.removeprefix("oracle:") + ":8").split(":")[:2])
        return np.stack(
            [oracle_detail(rgb[i], hole[i], fill[i], correlation, sigma) for i in range(len(rgb))]
        )
    if setting.startswith("topup"):
        sigma = float((setting + ":8").split(":")[1])
        return np.stack([topup_detail(rgb[i], hole[i], fill[i], sigma) for i in range(len(rgb))])
    options = ExemplarDetail(**json.loads(setting))
    return np.stack([add_exemplar_detail(rgb[i], hole[i], fill[i], options) for i in range(len(rgb))])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "settings", nargs="+", help="ExemplarDetail fields as JSON, none, oracle:C[:SIGMA] or topup[:SIGMA]"
    )
    parser.add_argument("--images", required=True)
    parser.add_argument("--masks", required=True)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--model", default="default")
    parser.add_argument("--cache", default="data/cache/exemplar_sweep.pt")
    parser.add_argument(
        "--rings", action="store_true", help="also where the detail costs L1, by border distance"
    )
    args = parser.parse_args()
    data = network_fills(args)
    rgb, hole, fill = (data[k].numpy() for k in ("rgb", "hole", "fill"))
    print("| setting | L1×100 per bin | gradient ratio | detail | log-ratio per level | s/image |")
    print("|---|---|---:|---:|---|---:|")
    for setting in args.settings:
        started = time.perf_counter()
        results = complete(setting, rgb, hole, fill)
        seconds = (time.perf_counter() - started) / len(rgb)
        row = score(data, results)
        print(
            f"| `{setting}` | {' / '.join(f'{v:.3f}' for v in row['l1'])} | {row['ratio']:.3f} | "
            f"{row['detail']:.3f} | {' / '.join(f'{v:+.2f}' for v in row['levels'])} | {seconds:.2f} |",
            flush=True,
        )
        if args.rings and setting != "none":
            print(
                f"\n`{setting}`:\n\n| distance to the border | hole pixels | correlation | ΔL1 per pixel and channel (grey levels) |"
            )
            print("|---|---:|---:|---:|\n" + "\n".join(ring_rows(data, results)) + "\n", flush=True)


if __name__ == "__main__":
    main()
