"""`dfnet models`: list, download, locate and remove the named models and auxiliary weights."""

from __future__ import annotations

import argparse
import re

from dfnet.cli.common import model_file_read

ENVIRONMENT = """environment:
  DFNET_HOME=DIR            keep the cache in DIR/models (default: the platform's user cache folder)
  DFNET_ACCEPT_LICENSE=1    accept the non-commercial licence of places2 and celeba (as --accept-license)
  DFNET_MODELS_MIRROR=URL   fetch every file from URL/<file name> (a local mirror)
  HF_HOME, HF_HUB_OFFLINE   huggingface_hub's cache and offline switch, for --model hf://OWNER/REPO[/FILE][@REV]
"""
# the Hub's repository ids: OWNER/NAME of letters, digits, '-', '_' and '.', not starting with '-' or '.'
REPO_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*/[A-Za-z0-9_][A-Za-z0-9_.-]*")
LICENCE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")  # an SPDX-style id: cc-by-nc-4.0, mit, other
NAME_HELP = "a registry name (dfnet models list): default, places2, celeba, vgg16, fid-inception"


def repo_id(text: str) -> str:
    """An argparse type: a Hub repository id ``OWNER/NAME`` (the card names it; a bad one would not upload)."""
    if not REPO_ID.fullmatch(text) or ".." in text or "--" in text:
        raise argparse.ArgumentTypeError(
            f"expected OWNER/NAME (letters, digits, '-', '_', '.'), got {text!r}"
        )
    return text


def licence_id(text: str) -> str:
    """An argparse type: a licence id for the card's metadata, e.g. ``mit`` or ``cc-by-nc-4.0``."""
    if not LICENCE_ID.fullmatch(text):
        raise argparse.ArgumentTypeError(f"expected a licence id such as mit or cc-by-nc-4.0, got {text!r}")
    return text


def _size_text(row: dict) -> str:
    """The file size, with ``~`` when it is the registry's estimate for a file not downloaded yet."""
    return f"{'' if row['cached'] else '~'}{row['size_mb']:.1f} MB"


def _list(args: argparse.Namespace) -> int:
    from dfnet.registry import cache_dir, describe_models

    header = {"name": "name", "licence": "licence", "size": "size", "cached": "cached", "path": "path"}
    rows = [
        {**row, "size": _size_text(row), "cached": "yes" if row["cached"] else "no"}
        for row in describe_models()
    ]
    widths = {key: max(len(str(row[key])) for row in [header, *rows]) for key in ("name", "licence", "size")}
    for row in [header, *rows]:
        print(
            f"{row['name']:<{widths['name']}}  {row['licence']:<{widths['licence']}}  "
            f"{row['size']:>{widths['size']}}  {row['cached']:<6}  {row['path']}"
        )
    print(f"cache: {cache_dir()} (set DFNET_HOME to move it; ~ = size before download)")
    return 0


def _download(args: argparse.Namespace) -> int:
    from dfnet.registry import download_model

    path = download_model(args.name, accept_license=args.accept_license, progress=not args.no_progress)
    print(path)
    return 0


def _path(args: argparse.Namespace) -> int:
    from dfnet.registry import get_entry, verified_file

    print(verified_file(get_entry(args.name)))
    return 0


def _remove(args: argparse.Namespace) -> int:
    from dfnet.registry import remove_model

    removed = remove_model(args.name)
    print(f"{args.name}: removed {len(removed)} files" if removed else f"{args.name}: nothing to remove")
    return 0


def _hub_card(args: argparse.Namespace) -> int:
    from dfnet.files import check_outputs
    from dfnet.hub_card import write_hub_card

    check_outputs([args.out], [model_file_read(args.model)], args.overwrite)
    for path in write_hub_card(args.model, args.out, args.repo, args.license):
        print(path)
    print(f"upload with: huggingface-cli upload {args.repo} {args.out}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "models",
        help="named models: list, download, path, remove (cache: $DFNET_HOME)",
        description="The named models (--model NAME) and the weight files dfnet train and dfnet eval use.",
        epilog=ENVIRONMENT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = p.add_subparsers(dest="action", required=True)
    actions.add_parser("list", help="every known model: licence, size, whether cached, path").set_defaults(
        func=_list
    )
    d = actions.add_parser(
        "download", help="download, verify and cache a model (places2, celeba, vgg16, ...)"
    )
    d.add_argument("name", help=NAME_HELP)
    d.add_argument(
        "--accept-license", action="store_true", help="accept a non-commercial licence (places2, celeba)"
    )
    d.add_argument("--no-progress", action="store_true", help="no progress bar")
    d.set_defaults(func=_download)
    for name, func, text in (
        ("path", _path, "print the cached file of a model (an error when not downloaded)"),
        ("remove", _remove, "delete a downloaded model and its records"),
    ):
        q = actions.add_parser(name, help=text)
        q.add_argument("name", help=NAME_HELP)
        q.set_defaults(func=func)
    h = actions.add_parser(
        "hub-card", help="write model.safetensors, config.json and a README model card for the Hub"
    )
    h.add_argument("model", help="places2, celeba, default or a weights file")
    h.add_argument("out", help="folder to write (then: huggingface-cli upload REPO OUT)")
    h.add_argument("--repo", type=repo_id, required=True, help="OWNER/REPO the card names")
    h.add_argument(
        "--license", type=licence_id, help="licence id for the card (default: the model's, else 'other')"
    )
    h.add_argument("--overwrite", action="store_true", help="allow OUT to replace an input")
    h.set_defaults(func=_hub_card)
