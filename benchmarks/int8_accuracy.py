"""int8 against fp32 on held-out photos: the change of L1 per hole-ratio bin and the largest pixel difference.

Both are ``prepare_for_inference`` of the same weights (``engine="onnxruntime"``, fp32 and int8); every pair of
the photos x masks is completed by both (network result composited with the known pixels, rounded to 8 bits) and
scored against the photo as ``dfnet eval`` scores L1 (mean absolute error over the whole image, per bin).

    python benchmarks/int8_accuracy.py --images data/heldout/scenes --masks data/eval_masks_512
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from dfnet.checkpoint import load_model
from dfnet.evaluation import PairDataset, PairPlan, list_images, load_mask_set
from dfnet.inference import DEFAULT_MODEL
from dfnet.masks import HOLE_RATIO_BINS, bin_label, bin_of
from dfnet.optimize import prepare_for_inference


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", required=True)
    parser.add_argument("--masks", required=True)
    parser.add_argument("--model", default=str(DEFAULT_MODEL))
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = load_model(args.model).eval()
    started = time.perf_counter()
    prepared = {"int8": prepare_for_inference(model, "cpu", precision="int8")}
    print(
        f"int8 preparation (export, calibration, quantisation, session): {time.perf_counter() - started:.1f} s"
    )
    prepared["fp32"] = prepare_for_inference(model, "cpu", precision="fp32", engine="onnxruntime")
    masks = load_mask_set(args.masks, args.size)
    photos = list_images(args.images)
    pairs = PairDataset(photos, masks, PairPlan(len(photos), masks, "all"), args.size)
    l1: dict[tuple[str, int], list[float]] = {}
    largest = []
    for k in range(len(pairs)):
        sample = pairs[k]
        image, hole = sample["image"][None].float() / 255, sample["hole"][None].float()
        done = {}
        for name, net in prepared.items():
            fill = net.complete(image * (1 - hole), hole)
            done[name] = torch.round((image * (1 - hole) + fill * hole).clamp(0, 1) * 255) / 255
            l1.setdefault((name, bin_of(hole.mean().item())), []).append(
                (done[name] - image).abs().mean().item()
            )
        largest.append(255 * (done["int8"] - done["fp32"]).abs().max().item())
    print(
        f"{len(pairs)} pairs; largest difference int8 - fp32: {max(largest):.0f} levels "
        f"(median per image {np.median(largest):.0f})"
    )
    print("| hole-ratio bin | L1×100 fp32 | L1×100 int8 | change |")
    print("|---|---:|---:|---:|")
    for b in range(len(HOLE_RATIO_BINS)):
        if ("fp32", b) in l1:
            fp32, int8 = np.mean(l1[("fp32", b)]), np.mean(l1[("int8", b)])
            print(
                f"| {bin_label(b)} | {100 * fp32:.3f} | {100 * int8:.3f} | {100 * (int8 - fp32) / fp32:+.2f} % |"
            )


if __name__ == "__main__":
    main()
