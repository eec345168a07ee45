"""Score exemplar-detail settings on an evaluation set, the network run once: the L1 / texture trade-off.

``dfnet eval --texture STRENGTH`` scores one strength per run and re-runs the network each time; this script
runs the model once per pair (cached in ``--cache``), then adds the detail with each setting given as JSON
(:class:`dfnet.exemplar.ExemplarDetail` fields; ``none`` = the network alone) and prints one markdown row per
setting: L1×100 per hole-ratio bin, the gradient ratio and the detail measure in the hole (both as ``dfnet eval``
computes them, :mod:`dfnet.texture_metrics`), and the detail measure's signed log-ratio per pyramid level
(negative = less energy than the truth in that band: which scales still lack texture). ``--rings`` adds, per
setting, where in the hole the detail costs L1: by distance to the hole's border, the correlation of the added
detail with what the network's fill misses (truth - fill) and the change of L1 per hole pixel.

A setting ``oracle:C[:SIGMA]`` is not a method but a bound: the fill's band below σ = SIGMA px (default 8) is
replaced, in the hole, by the ground truth's own band, mixed with the truth's band from 32 px away so that the
texture correlates C with the truth at its place and keeps the truth's energy (C = 1: the truth's detail; C = 0: a
perfect texture in the wrong place). ``envelope[:SIGMA]`` is ``oracle:0`` scaled to the truth's local contrast
(where the detail is and how strong, right; its phase, wrong). ``topup[:SIGMA]`` keeps the whole fill and adds the
truth's band from 32 px away, scaled so that the hole's band energy is the truth's: the best a copy placed without
knowing where the truth's detail was can do. They answer how well any texture generator on top of this fill must
*predict* the detail, not only match its statistics, for its L1 to stay where a target needs it. ``--bands`` prints,
per setting, how much of the truth's detail per scale the result predicts (the correlation of its luma band with the
truth's), near the border and beyond.

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
        rho = _correlation(am, aa, mm)
        rows.append(f"| ({low:g}, {high:g}] px | {int(n // 3):,} | {rho:+.3f} | {change / max(n, 1):+.2f} |")
    return rows


def _correlation(xy: float, xx: float, yy: float) -> float:
    """The correlation from summed products x·y, x², y² (uncentred: the bands and misses have mean about 0);
    0 when either side is all zeros."""
    return xy / np.sqrt(xx * yy) if xx > 0 and yy > 0 else 0.0


BOUND_SHIFT = 32  # px: where the bounds take "the truth's texture from elsewhere"


def _blur(image: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(image, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)


def _band_below(image: np.ndarray, sigma: float) -> np.ndarray:
    """What a Gaussian of ``sigma`` removes: the detail below that scale."""
    return image - _blur(image, sigma)


def _elsewhere(band: np.ndarray) -> np.ndarray:
    """The same band, taken BOUND_SHIFT px away: the truth's statistics, not its place."""
    return np.roll(band, (BOUND_SHIFT, BOUND_SHIFT), axis=(0, 1))


def _in_hole(hole: np.ndarray, inside: np.ndarray, fill: np.ndarray) -> np.ndarray:
    """``inside`` in the hole, the fill elsewhere, as 8-bit values."""
    return np.clip(np.rint(np.where(hole[..., None] > 0.5, inside, fill)), 0, 255).astype(np.uint8)


def oracle_detail(
    rgb: np.ndarray, hole: np.ndarray, fill: np.ndarray, correlation: float, sigma: float = 8.0
) -> np.ndarray:
    """The fill with its band below ``sigma`` replaced in the hole by the truth's, ``correlation`` at its place."""
    truth, fill = rgb.astype(np.float32), fill.astype(np.float32)
    truth_band = _band_below(truth, sigma)
    texture = correlation * truth_band + np.sqrt(1 - correlation**2) * _elsewhere(truth_band)
    return _in_hole(hole, _blur(fill, sigma) + texture, fill)


def envelope_detail(
    rgb: np.ndarray, hole: np.ndarray, fill: np.ndarray, sigma: float = 8.0, window: float = 4.0
) -> np.ndarray:
    """``oracle:0`` rescaled to the truth's local contrast (RMS over a Gaussian ``window``): where and how
    strong the detail is, right; its phase, not."""
    truth, fill = rgb.astype(np.float32), fill.astype(np.float32)
    truth_band = _band_below(truth, sigma)
    elsewhere = _elsewhere(truth_band)

    def local_rms(band: np.ndarray) -> np.ndarray:
        return np.sqrt(_blur(np.square(band).mean(-1), window) + 1e-3)[..., None]

    texture = elsewhere * local_rms(truth_band) / local_rms(elsewhere)
    return _in_hole(hole, _blur(fill, sigma) + texture, fill)


def topup_detail(rgb: np.ndarray, hole: np.ndarray, fill: np.ndarray, sigma: float = 8.0) -> np.ndarray:
    """The fill plus the truth's band below ``sigma`` from elsewhere, raising the hole's band energy to the truth's."""
    truth, fill = rgb.astype(np.float32), fill.astype(np.float32)
    inside = hole > 0.5
    truth_band = _band_below(truth, sigma)
    elsewhere = _elsewhere(truth_band)
    missing = np.square(truth_band[inside]).sum() - np.square(_band_below(fill, sigma)[inside]).sum()
    scale = np.sqrt(max(missing, 0.0) / max(np.square(elsewhere[inside]).sum(), 1e-6))
    return _in_hole(hole, fill + scale * elsewhere, fill)


BOUNDS = {  # setting name -> (function, its parameters after the name, with their defaults)
    "oracle": (oracle_detail, (None, 8.0)),
    "envelope": (envelope_detail, (8.0,)),
    "topup": (topup_detail, (8.0,)),
}


def complete(setting: str, rgb: np.ndarray, hole: np.ndarray, fill: np.ndarray) -> np.ndarray:
    """Every pair's result for one setting: ``none``, a bound (``oracle:C[:SIGMA]``, ``envelope[:SIGMA]``,
    ``topup[:SIGMA]``) or ExemplarDetail fields as JSON."""
    if setting == "none":
        return fill
    name, *given = setting.split(":")
    if name in BOUNDS:
        function, defaults = BOUNDS[name]
        values = [float(v) for v in given] + list(defaults[len(given) :])
        if None in values or len(values) != len(defaults):
            raise SystemExit(f"{setting}: expected {name}" + "".join(":X" for _ in defaults))
        return np.stack([function(rgb[i], hole[i], fill[i], *values) for i in range(len(rgb))])
    options = ExemplarDetail(**json.loads(setting))
    return np.stack([add_exemplar_detail(rgb[i], hole[i], fill[i], options) for i in range(len(rgb))])


BAND_SIGMAS = (None, 1.0, 2.0, 4.0, 8.0)  # None: x - G1 (< 1 px); s: G_s - G_2s (about 1-2 ... 8-16 px)
NEAR_BORDER = 5.0  # px


def band_correlations(data: dict[str, torch.Tensor], results: np.ndarray) -> list[str]:
    """Per band of the luma, the correlation of the result's band with the truth's, within NEAR_BORDER px of
    the known pixels and beyond: how much of the truth's detail at each scale the result predicts."""
    weights = np.array([0.299, 0.587, 0.114], np.float32)
    sums = np.zeros((len(BAND_SIGMAS), 2, 3))  # band, (near, far), (r·t, t², r²)
    for i in range(len(results)):
        inside = data["hole"][i].numpy().astype(bool)
        distance = cv2.distanceTransform(inside.astype(np.uint8), cv2.DIST_L2, 3)
        regions = (inside & (distance <= NEAR_BORDER), inside & (distance > NEAR_BORDER))
        truth = data["rgb"][i].numpy().astype(np.float32) @ weights
        result = results[i].astype(np.float32) @ weights
        for k, sigma in enumerate(BAND_SIGMAS):
            bands = [
                x - _blur(x, 1.0) if sigma is None else _blur(x, sigma) - _blur(x, 2 * sigma)
                for x in (result, truth)
            ]
            for j, region in enumerate(regions):
                r, t = bands[0][region], bands[1][region]
                sums[k, j] += [r @ t, t @ t, r @ r]
    rows = []
    for sigma, (near, far) in zip(BAND_SIGMAS, sums, strict=True):
        label = "< 1 px" if sigma is None else f"{sigma:g}-{2 * sigma:g} px"
        rows.append(f"| {label} | {_correlation(*near):+.3f} | {_correlation(*far):+.3f} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "settings",
        nargs="+",
        help="ExemplarDetail fields as JSON, none, oracle:C[:SIGMA], envelope[:SIGMA] or topup[:SIGMA]",
    )
    parser.add_argument("--images", required=True)
    parser.add_argument("--masks", required=True)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--model", default="default")
    parser.add_argument("--cache", default="data/cache/exemplar_sweep.pt")
    parser.add_argument(
        "--rings", action="store_true", help="also where the detail costs L1, by border distance"
    )
    parser.add_argument(
        "--bands", action="store_true", help="also the correlation with the truth per band, near and far"
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
        if args.bands:
            header = f"| band | correlation with the truth, ≤ {NEAR_BORDER:g} px from the border | beyond |"
            print(f"\n`{setting}`:\n\n{header}\n|---|---:|---:|", flush=True)
            print("\n".join(band_correlations(data, results)) + "\n", flush=True)


if __name__ == "__main__":
    main()
