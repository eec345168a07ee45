"""Mean absolute error of hole pixels by their distance to the nearest known pixel, DFNet against baselines.

BPE says *that* a method is worse at the boundary; this says where the error sits. Each hole pixel's
distance is its Euclidean distance transform value rounded up (1 = touching a known pixel). The
``nearest`` row copies each hole pixel's nearest known pixel: not an inpainting method, but a yardstick
for how much the pixels next to the boundary can be predicted from their neighbours alone.

    python scripts/error_by_boundary_distance.py data/wallpapers/val_256 data/eval_masks_256 --model default
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy import ndimage

from dfnet.baselines import OpenCVInpaint, PushPullInpaint
from dfnet.imageio import load_image, load_mask
from dfnet.inference import Inpainter


def error_by_distance(
    result: np.ndarray, truth: np.ndarray, hole: np.ndarray, max_distance: int
) -> np.ndarray:
    """(max_distance, 2): per distance 1..max_distance, the summed channel-mean error and the pixel count."""
    distance = np.ceil(ndimage.distance_transform_edt(hole)).astype(int)
    error = np.abs(result.astype(np.float64) - truth).mean(axis=2) / 255
    sums = np.zeros((max_distance, 2))
    for d in range(1, max_distance + 1):
        at = distance == d
        sums[d - 1] = error[at].sum(), at.sum()
    return sums


def nearest_known_fill(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """Each hole pixel takes the value of its nearest known pixel (Euclidean)."""
    _, (rows, cols) = ndimage.distance_transform_edt(hole, return_indices=True)
    return image[rows, cols]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("images", type=Path, help="folder of ground-truth images (all the masks' size)")
    parser.add_argument("masks", type=Path, help="folder of hole masks (white = hole)")
    parser.add_argument("--model", default="default", help="DFNet weights (default: the bundled model)")
    parser.add_argument("--every", type=int, default=1, help="use every n-th mask")
    parser.add_argument("--max-distance", type=int, default=10)
    args = parser.parse_args()
    images = sorted(p for p in args.images.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    masks = sorted(args.masks.glob("*.png"))[:: args.every]
    methods = {
        "dfnet": Inpainter.from_pretrained(args.model, device="cpu").inpaint,
        "telea": OpenCVInpaint("telea").complete_array,
        "ns": OpenCVInpaint("ns").complete_array,
        "pushpull": PushPullInpaint().complete_array,
        "nearest": nearest_known_fill,
    }
    sums = {name: np.zeros((args.max_distance, 2)) for name in methods}
    for image_path in images:
        truth = load_image(image_path).rgb
        for mask_path in masks:
            hole = load_mask(mask_path)
            for name, complete in methods.items():
                sums[name] += error_by_distance(
                    np.asarray(complete(truth, hole)), truth, hole, args.max_distance
                )
    distances = range(1, args.max_distance + 1)
    print(f"{len(images)} images x {len(masks)} masks; mean absolute error in [0, 1] by distance (px)")
    print("| method | " + " | ".join(str(d) for d in distances) + " |")
    print("|---|" + "---:|" * args.max_distance)
    for name, table in sums.items():
        cells = " | ".join(f"{s / n:.3f}" if n else "–" for s, n in table)
        print(f"| {name} | {cells} |")
    print("| pixels | " + " | ".join(str(int(n)) for n in sums["ns"][:, 1]) + " |")


if __name__ == "__main__":
    main()
