"""`dfnet serve`: the web page and HTTP API for painting a mask and inpainting it."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import socket
import sys
from typing import TYPE_CHECKING

from dfnet.cli.common import (
    ENGINE_CHOICES,
    CLIError,
    add_download_arguments,
    add_texture_argument,
    fetch_model_if_asked,
    float_in,
    int_in,
    non_empty,
    positive_int,
)

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

    try:
        return ServerSettings(
            max_upload_bytes=int(args.max_upload_mb * 1024 * 1024),
            max_pixels=args.max_pixels,
            queue_size=args.queue_size,
            worker_threads=args.workers,
            body_timeout_s=args.body_timeout,
            requests_per_client=args.requests_per_client,
        )
    except ValueError as err:
        raise CLIError(str(err)) from None


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to (host, port), taken before the model is loaded so that a port in use or an
    unknown address is a one-line error at once rather than after the model's set-up."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family)
    except OSError as err:
        raise CLIError(f"cannot listen on {host}:{port} ({err.strerror or err})") from None


def served_models(given: list[str] | None) -> list[str]:
    """The --model values in order, 'default' when none is given; a model named twice is an error."""
    names = given or ["default"]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise CLIError(f"--model {repeated[0]} is given more than once")
    return names


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from dfnet.inference import Inpainter
    from dfnet.web import create_app
    from dfnet.web.guard import server_config

    settings = _settings(args)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    fetch_model_if_asked(args)
    sock = listen(args.host, args.port)
    with sock:
        models = {
            name: Inpainter.from_pretrained(
                name, device=args.device, engine=args.engine, texture=args.texture
            )
            for name in served_models(args.model)
        }
        if not is_loopback(args.host):
            print(
                f"warning: listening on {args.host} makes the page reachable from other machines (no authentication)",
                file=sys.stderr,
            )
        port = sock.getsockname()[1]
        url_host = f"[{args.host}]" if ":" in args.host else args.host
        print(f"dfnet serve: open http://{url_host}:{port}/ (API docs at /docs)", file=sys.stderr, flush=True)
        config = server_config(
            create_app(models, settings), header_timeout_s=args.header_timeout, log_level=args.log_level
        )
        uvicorn.Server(config).run(sockets=[sock])
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="web page and HTTP API: paint a mask in the browser and inpaint it")
    p.add_argument(
        "--host",
        type=non_empty,
        default="127.0.0.1",
        help="address to listen on (default: 127.0.0.1, this machine only)",
    )
    p.add_argument(
        "--port", type=int_in(0, 65535), default=8000, help="port (default: 8000; 0: any free port)"
    )
    p.add_argument(
        "--model",
        action="append",
        type=non_empty,
        help="'default' (bundled), places2, celeba (dfnet models), hf://OWNER/REPO or a weights file; repeat it "
        "to serve several, each with its own inference threads, all loaded at start (the first is the page's default)",
    )
    add_download_arguments(p)
    p.add_argument("--device", type=non_empty, default="auto", help="cpu, cuda, mps or auto")
    p.add_argument(
        "--engine",
        choices=ENGINE_CHOICES,
        default="optimized",
        help="optimized (default): folded graph, ONNX Runtime on CPU, prepared once at start; "
        "torch: the eager network; onnxruntime: a .onnx given as --model",
    )
    add_texture_argument(p)
    p.add_argument(
        "--max-upload-mb",
        type=float_in(0, 4096, low_open=True),
        default=32.0,
        help="largest request body, image and mask together (413 above)",
    )
    p.add_argument(
        "--max-pixels",
        type=positive_int,
        default=25_000_000,
        help="largest image in pixels, width x height (413 above)",
    )
    p.add_argument(
        "--queue-size",
        type=int_in(1, 1024),
        default=4,
        help="inpaint requests whose upload is complete admitted at once (running + waiting); more get 503",
    )
    p.add_argument("--workers", type=int_in(1, 256), default=1, help="threads running inference")
    p.add_argument(
        "--body-timeout",
        type=float_in(0, 3600, low_open=True),
        default=30.0,
        help="seconds a request body may take to arrive (408 after; a slow client holds no queue slot)",
    )
    p.add_argument(
        "--header-timeout",
        type=float_in(0, 3600, low_open=True),
        default=10.0,
        help="seconds a request's headers may take to arrive; slower connections get 408 and are closed",
    )
    p.add_argument(
        "--requests-per-client",
        type=int_in(1, 1024),
        default=4,
        help="inpaint requests one client address may have open at once (429 above)",
    )
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    p.set_defaults(func=_serve)
