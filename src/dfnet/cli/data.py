"""`dfnet data`: download the Places365 validation set, check a CelebA folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from dfnet.cli.common import non_empty, positive_int


def _download(args: argparse.Namespace) -> int:
    from dfnet.datasets import download_places365_val

    folder = download_places365_val(args.root, progress=not args.no_progress)
    print(f"{folder}: Places365 validation images ready")
    return 0


def _check(args: argparse.Namespace) -> int:
    from dfnet.datasets import check_celeba

    report = check_celeba(args.folder, expected=args.expected)
    print(report)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="benchmark data: download places365-val, check a celeba folder")
    actions = p.add_subparsers(dest="action", required=True)
    d = actions.add_parser("download", help="download, verify and unpack a data set")
    d.add_argument(
        "name",
        choices=["places365-val"],
        help="places365-val: the 36,500 Places365 validation images (MD5-checked)",
    )
    d.add_argument(
        "--root", type=non_empty, default="data/places2", help="target folder (default data/places2)"
    )
    d.add_argument("--no-progress", action="store_true", help="no progress bar")
    d.set_defaults(func=_download)
    c = actions.add_parser("check", help="check a data set folder: image count, sizes, readable files")
    c.add_argument(
        "name", choices=["celeba"], help="celeba: Align&Cropped CelebA (202,599 images) or CelebA-HQ (30,000)"
    )
    c.add_argument("folder", type=Path, help="the folder of images to check")
    c.add_argument(
        "--expected", type=positive_int, default=None, help="number of images the folder must hold"
    )
    c.set_defaults(func=_check)
