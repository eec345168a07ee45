"""`dfnet inpaint`: fill the holes of an image."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dfnet.cli.common import CLIError


def _inpaint(args: argparse.Namespace) -> int:
    from dfnet.imageio import hole_ratio, load_image, load_mask, save_image
    from dfnet.inference import Inpainter

    inpainter = Inpainter.from_pretrained(args.model, device=args.device)
    image = load_image(args.image)
    hole = load_mask(args.mask, size=image.size, invert=args.invert_mask)
    ratio = hole_ratio(hole)
    if ratio > 0.5:
        print(
            f"warning: {ratio:.0%} of the mask is hole; is it inverted? (see --invert-mask)", file=sys.stderr
        )
    m = inpainter.size_multiple
    h, w = image.rgb.shape[:2]
    if h % m or w % m:
        raise CLIError(f"{args.image}: {w}x{h} is not a multiple of {m} on both sides")
    done = inpainter.complete_array(image.rgb, hole, details=args.save_raw or args.save_alpha)
    out = Path(args.output)
    save_image(out, done.result, like=image)
    if args.save_raw:
        save_image(out.with_name(out.stem + "_raw.png"), done.raw)
    if args.save_alpha:
        save_image(out.with_name(out.stem + "_alpha.png"), done.alpha)
    print(f"{out}: inpainted {ratio:.1%} hole")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("inpaint", help="fill the holes of an image")
    p.add_argument("image", help="input image")
    p.add_argument("mask", help="mask image (white = hole)")
    p.add_argument("-o", "--output", required=True, help="output image path")
    p.add_argument(
        "--model", required=True, help="weights: .safetensors, project checkpoint or released .pth"
    )
    p.add_argument("--device", default="auto", help="cpu, cuda, mps or auto")
    p.add_argument("--invert-mask", action="store_true", help="the mask is white = known (released samples)")
    p.add_argument("--save-raw", action="store_true", help="also write DFNet's raw completion (OUT_raw.png)")
    p.add_argument("--save-alpha", action="store_true", help="also write the alpha map (OUT_alpha.png)")
    p.set_defaults(func=_inpaint)
