"""`dfnet convert-official`: released .pth to the project's safetensors."""

from __future__ import annotations

import argparse


def _convert_official(args: argparse.Namespace) -> int:
    from dfnet.checkpoint import convert_official
    from dfnet.files import check_outputs

    check_outputs([args.output], [args.source], args.overwrite)
    config = convert_official(args.source, args.output, half=args.half)
    print(f"{args.output}: converted ({len(config.fusion_layers)} fusion blocks, width {config.width:g})")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("convert-official", help="convert a released .pth to safetensors (RGB, white = hole)")
    p.add_argument("source", help="released model_places2.pth or model_celeba.pth")
    p.add_argument("output", help="output .safetensors")
    p.add_argument("--half", action="store_true", help="store fp16 weights")
    p.add_argument("--overwrite", action="store_true", help="allow the output to replace an input file")
    p.set_defaults(func=_convert_official)
