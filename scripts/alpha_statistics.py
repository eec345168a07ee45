"""How a DFNet's finest fusion block behaves: mean alpha inside and outside the holes, and hole errors.

A learned alpha should approach 1 inside the holes (trust the raw completion) and 0 outside (keep the
input). Inside a hole the input is zero, so an alpha below 1 dims the result there; this shows how far a
checkpoint is from that, and how much its raw completion compensates.

    python scripts/alpha_statistics.py data/wallpapers/val_256 data/eval_masks_256 \
        runs/wallpapers/checkpoints/step=00000700.ckpt runs/wallpapers/checkpoints/step=00000900.ckpt
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from dfnet.checkpoint import load_model
from dfnet.imageio import load_image, load_mask


def load_batch(images: list[Path]) -> torch.Tensor:
    """(N, 3, H, W) float images in [0, 1]."""
    arrays = [load_image(p).rgb.astype(np.float32) / 255 for p in images]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)


def masked_mean(values: torch.Tensor, where: torch.Tensor) -> float:
    """Mean of ``values`` (N, C, H, W) over the pixels where ``where`` (N, 1, H, W) is 1, all channels."""
    return float((values * where).sum() / (where.sum() * values.shape[1]))


@torch.no_grad()
def statistics(weights: Path, images: torch.Tensor, holes: list[torch.Tensor]) -> dict[str, float]:
    """Mean alpha in holes / known pixels and mean |raw - truth|, |result - truth| in holes, over all pairs."""
    model = load_model(weights).float().eval()
    rows = []
    for hole in holes:
        hole_mask = hole.expand(len(images), -1, -1, -1)
        result, alpha, raw = model.complete_with_details(images, hole_mask)
        rows.append(
            (
                masked_mean(alpha, hole_mask),
                masked_mean(alpha, 1 - hole_mask),
                masked_mean((raw - images).abs(), hole_mask),
                masked_mean((result - images).abs(), hole_mask),
            )
        )
    names = ("alpha_hole", "alpha_known", "raw_hole_l1", "result_hole_l1")
    return dict(zip(names, np.mean(rows, axis=0), strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("images", type=Path, help="folder of images, all the masks' size")
    parser.add_argument("masks", type=Path, help="folder of hole masks (white = hole)")
    parser.add_argument("weights", type=Path, nargs="+", help="weights files or checkpoints")
    parser.add_argument("--masks-used", type=int, default=10, help="the first N masks")
    args = parser.parse_args()
    images = load_batch(sorted(p for p in args.images.iterdir() if p.suffix.lower() in (".png", ".jpg")))
    holes = [
        torch.from_numpy(load_mask(p).astype(np.float32))[None, None]
        for p in sorted(args.masks.glob("*.png"))[: args.masks_used]
    ]
    print(f"{len(images)} images x {len(holes)} masks")
    print("| weights | alpha in holes | alpha outside | raw L1 in holes | result L1 in holes |")
    print("|---|---:|---:|---:|---:|")
    for weights in args.weights:
        s = statistics(weights, images, holes)
        print(
            f"| {weights} | {s['alpha_hole']:.3f} | {s['alpha_known']:.3f} | "
            f"{s['raw_hole_l1']:.4f} | {s['result_hole_l1']:.4f} |"
        )


if __name__ == "__main__":
    main()
