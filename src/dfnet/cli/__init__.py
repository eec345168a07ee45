"""The ``dfnet`` command line: parses arguments and calls the library, nothing more.

Each sub-command is a module of this package with a ``register(subparsers)`` function that adds
its parser and sets ``func``; ``SUBCOMMANDS`` lists them in the order ``--help`` shows them.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from dfnet.cli.common import CLIError, OneLineParser

SUBCOMMANDS = [
    "inpaint",
    "export",
    "convert",
    "eval",
    "serve",
    "masks",
    "train",
    "models",
    "data",
]


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="dfnet", description="Deep Fusion Network for image completion")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in SUBCOMMANDS:
        importlib.import_module(f"dfnet.cli.{name}").register(sub)
    return parser


def error_message(err: BaseException) -> str | None:
    """The one-line message for an expected failure (bad input, a file-system error), or None for a bug.

    This is the only place where the command line turns exceptions into messages: every sub-command
    raises and ``main`` prints ``dfnet <command>: error: <message>`` and exits 1.
    """
    from dfnet.files import describe_os_error

    if isinstance(err, OSError):
        text = describe_os_error(err)
    elif isinstance(err, (CLIError, ValueError)) or _is_lightning_misconfiguration(err):
        text = str(err)
    elif isinstance(err, MemoryError):
        text = "not enough memory (try a smaller image, --batch-size 1 or the crop strategy)"
    else:
        return None
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__


def _is_lightning_misconfiguration(err: BaseException) -> bool:
    """Lightning's refusal of a trainer setting (only possible once ``dfnet train`` has imported it)."""
    exceptions = sys.modules.get("lightning.fabric.utilities.exceptions")
    return exceptions is not None and isinstance(err, exceptions.MisconfigurationException)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: user errors print one line and exit 1 (never a traceback)."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        message = error_message(err)
        if message is None:
            raise
        print(f"dfnet {args.command}: error: {message}", file=sys.stderr)
        return 1


__all__ = ["CLIError", "build_parser", "main"]
