"""`dfnet serve`: the web page and HTTP API for painting a mask and inpainting it."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import sys
from typing import TYPE_CHECKING

from dfnet.cli.common import ENGINE_CHOICES, CLIError

if TYPE_CHECKING:
    from dfnet.web import ServerSettings


def is_loopback(host: str) -> bool:
    """True for 'localhost' and loopback addresses: the server is then unreachable from other machines."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _settings(args: argparse.Namespace) -> ServerSettings:
    """Server limits from the options (web imports stay lazy so `dfnet --help` is fast)."""
    from dfnet.web import ServerSettings

    if args.max_upload_mb <= 0:
        raise CLIError(f"--max-upload-mb must be positive, got {args.max_upload_mb}")
    try:
        return ServerSettings(
            max_upload_bytes=int(args.max_upload_mb * 1024 * 1024),
            max_pixels=args.max_pixels,
            queue_size=args.queue_size,
            worker_threads=args.workers,
        )
    except ValueError as err:
        raise CLIError(str(err)) from None


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from dfnet.inference import Inpainter
    from dfnet.web import create_app

    settings = _settings(args)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    inpainter = Inpainter.from_pretrained(args.model, device=args.device, engine=args.engine)
    if not is_loopback(args.host):
        print(
            f"warning: listening on {args.host} makes the page reachable from other machines (no authentication)",
            file=sys.stderr,
        )
    url_host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"dfnet serve: open http://{url_host}:{args.port}/ (API docs at /docs)", file=sys.stderr)
    uvicorn.run(create_app(inpainter, settings), host=args.host, port=args.port, log_level=args.log_level)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="web page and HTTP API: paint a mask in the browser and inpaint it")
    p.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)"
    )
    p.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    p.add_argument("--model", default="default", help="weights file or 'default' (the bundled model)")
    p.add_argument("--device", default="auto", help="cpu, cuda, mps or auto")
    p.add_argument(
        "--engine",
        choices=ENGINE_CHOICES,
        default="optimized",
        help="optimized (default): folded graph, ONNX Runtime on CPU, prepared once at start; "
        "torch: the eager network; onnxruntime: a .onnx given as --model",
    )
    p.add_argument(
        "--max-upload-mb",
        type=float,
        default=32.0,
        help="largest request body, image and mask together (413 above)",
    )
    p.add_argument(
        "--max-pixels",
        type=int,
        default=25_000_000,
        help="largest image in pixels, width x height (413 above)",
    )
    p.add_argument(
        "--queue-size",
        type=int,
        default=4,
        help="inpaint requests admitted at once; more are refused with 503",
    )
    p.add_argument("--workers", type=int, default=1, help="threads running inference")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    p.set_defaults(func=_serve)
