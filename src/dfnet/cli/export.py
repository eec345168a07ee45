"""`dfnet export`: write a model as ONNX or TorchScript (final result only) and check it against PyTorch."""

from __future__ import annotations

import argparse

from dfnet.cli.common import add_download_arguments, fetch_model_if_asked, int_in, model_file_read, non_empty


def _export(args: argparse.Namespace) -> int:
    from dfnet.files import check_outputs
    from dfnet.inference import Inpainter
    from dfnet.onnx_export import export_model, parity_error

    check_outputs([args.output], [model_file_read(args.model)], args.overwrite)
    fetch_model_if_asked(args)
    source = Inpainter.from_pretrained(args.model, device="cpu", precision="fp32")
    info = export_model(
        source.model,
        args.output,
        format=args.format,
        size=args.size,
        dynamic_size=not args.static,
        opset=args.opset,
        working_size=source.working_size,
    )
    shape = f"{args.size}x{args.size}" if args.static else f"any multiple of {source.size_multiple}"
    print(f"{info.path}: {args.format}, inputs image (N,3,H,W) and hole_mask (N,1,H,W), H and W {shape}")
    if args.verify:
        error = parity_error(source.model, info, batch=2)
        print(f"max |{args.format} - pytorch| on a random batch of 2: {error:.2e}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a model to ONNX or TorchScript (final result only)")
    p.add_argument(
        "--model",
        type=non_empty,
        default="default",
        help="'default', places2, celeba, hf://..., .safetensors, checkpoint or .pth",
    )
    add_download_arguments(p)
    p.add_argument("--format", choices=("onnx", "torchscript"), default="onnx")
    p.add_argument(
        "--size", type=int_in(1, 16384), default=512, help="side of the example input used for tracing"
    )
    p.add_argument("--static", action="store_true", help="ONNX: fix height and width to --size")
    p.add_argument("--opset", type=int_in(9, 99), default=17, help="ONNX opset version")
    p.add_argument("--no-verify", dest="verify", action="store_false", help="skip the parity check")
    p.add_argument("-o", "--output", required=True, type=non_empty, help="output file (.onnx or .pt)")
    p.add_argument("--overwrite", action="store_true", help="allow the output to replace an input file")
    p.set_defaults(func=_export)
