"""The ``dfnet`` command line: parses arguments and calls the library, nothing more.

Each sub-command is a module of this package with a ``register(subparsers)`` function that adds
its parser and sets ``func``; ``SUBCOMMANDS`` lists them in the order ``--help`` shows them.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from dfnet.cli.common import CLIError

SUBCOMMANDS = [
    "inpaint",
    "export",
    "convert",
    "eval",
    "serve",
    "masks",
    "train",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dfnet", description="Deep Fusion Network for image completion")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in SUBCOMMANDS:
        importlib.import_module(f"dfnet.cli.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: user errors print one line and exit 1 (never a traceback)."""
    from dfnet.checkpoint import CheckpointError
    from dfnet.imageio import ImageLoadError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (CLIError, CheckpointError, ImageLoadError, FileNotFoundError, ValueError) as err:
        print(f"dfnet {args.command}: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


__all__ = ["CLIError", "build_parser", "main"]
