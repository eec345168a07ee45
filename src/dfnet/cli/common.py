"""Pieces shared by the sub-commands: the user-error type and argparse value types.

Every option that takes a number uses one of the types below, so a bad value (text, NaN, infinity,
zero, a negative or absurdly large number) is refused by the parser with one line, before any model
is loaded or any file is written.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import NoReturn

# dfnet.inference.ENGINES, repeated here so that building the parser does not import torch
ENGINE_CHOICES = ("torch", "optimized", "onnxruntime")
LARGEST_INT = 2**31 - 1


class CLIError(Exception):
    """A user-facing failure: printed as one line, exit status 1."""


class OneLineParser(argparse.ArgumentParser):
    """argparse whose usage errors are one line, ``dfnet <command>: error: ...`` (exit status 2), like
    every other error of the command line; the usage itself is one ``--help`` away."""

    def _get_values(self, action: argparse.Action, arg_strings: list[str]) -> object:
        # argparse drops a value of "--" (--quality=--) and hands the action [] past its type check
        if action.option_strings and arg_strings == ["--"]:
            raise argparse.ArgumentError(action, "expected a value, got '--'")
        return super()._get_values(action, arg_strings)

    def error(self, message: str) -> NoReturn:
        message = " ".join(message.split())
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def int_in(low: int, high: int = LARGEST_INT) -> Callable[[str], int]:
    """An argparse type: an integer in ``low..high``."""

    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be in {low}..{high:,}, got {value}")
        return value

    parse.__name__ = "integer"
    parse.bounds = (low, high)  # type: ignore[attr-defined]  # for tests that probe every option
    return parse


def float_in(low: float, high: float, low_open: bool = False) -> Callable[[str], float]:
    """An argparse type: a finite number in ``[low, high]`` (``(low, high]`` when ``low_open``)."""

    def parse(text: str) -> float:
        try:
            value = float(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        too_low = value <= low if low_open else value < low
        if not math.isfinite(value) or too_low or value > high:
            interval = f"{'(' if low_open else '['}{low:g}, {high:g}]"
            raise argparse.ArgumentTypeError(f"must be a number in {interval}, got {text.strip()}")
        return value

    parse.__name__ = "number"
    parse.bounds = (low, high)  # type: ignore[attr-defined]
    parse.low_open = low_open  # type: ignore[attr-defined]
    return parse


def non_empty(text: str) -> str:
    """An argparse type: any text but an empty one (paths, names)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text


def file_name(text: str) -> str:
    """An argparse type: a plain file name (no folder part), e.g. a report name written inside --out."""
    name = text.strip()
    if not name or name in (".", "..") or any(sep in name for sep in ("/", "\\", "\0")):
        raise argparse.ArgumentTypeError(f"must be a plain name without '/', '\\' or '..', got {text!r}")
    return name


positive_int = int_in(1)
# dfnet.exemplar's strength range and preset names, repeated here so that building the parser does not import torch
TEXTURE_MAX = 2.0
TEXTURE_PRESET_NAMES = ("fine", "coarse")
TEXTURE_HELP = (
    "exemplar detail copied from the photo into the hole (dfnet.exemplar): auto (default: fine for the bundled "
    "default model, off for other weights), fine (the band under about 2 px), coarse (under about 4 px as well: "
    "more texture, a higher L1), or a strength of fine's setting from 0 (off) to 2"
)


def texture_option(text: str) -> str | float:
    """An argparse type: 'auto', a preset name or an exemplar-detail strength in [0, TEXTURE_MAX]."""
    name = text.strip().lower()
    if name == "auto" or name in TEXTURE_PRESET_NAMES:
        return name
    try:
        return float_in(0.0, TEXTURE_MAX)(text)
    except argparse.ArgumentTypeError as err:
        names = ", ".join(("auto", *TEXTURE_PRESET_NAMES))
        raise argparse.ArgumentTypeError(f"expected {names} or a strength: {err}") from None


texture_option.__name__ = "texture"


def add_texture_argument(parser: argparse.ArgumentParser) -> None:
    """The --texture option of inpaint, serve and eval."""
    parser.add_argument(
        "--texture",
        type=texture_option,
        default="auto",
        metavar="auto|fine|coarse|STRENGTH",
        help=TEXTURE_HELP,
    )


def add_download_arguments(parser: argparse.ArgumentParser) -> None:
    """--download and --accept-license: let --model NAME fetch a registry model that is not cached yet."""
    parser.add_argument(
        "--download",
        action="store_true",
        help="download --model NAME (places2, celeba, hf://...) when it is not cached (otherwise: an error)",
    )
    parser.add_argument(
        "--accept-license",
        action="store_true",
        help="accept a non-commercial licence (CC BY-NC 4.0: places2, celeba) for --download",
    )


def fetch_model_if_asked(args: argparse.Namespace) -> None:
    """With --download, fetch each --model registry name or hf:// file into its cache before loading it."""
    if args.download and args.model:
        from dfnet.registry import resolve_model

        for name in [args.model] if isinstance(args.model, str) else args.model:
            resolve_model(name, download=True, accept_license=args.accept_license)


def model_file_read(model: str | None) -> str | None:
    """The weights file ``--model`` reads, for the output guard: None for the bundled model, a registry name
    (its file is in the model cache) or an ``hf://`` reference (in the Hub's cache)."""
    from dfnet.registry import is_model_name

    if model is None or is_model_name(model) or model.startswith("hf://"):
        return None
    return model
