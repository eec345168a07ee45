#!/usr/bin/env python3
"""Build the dfnet photo data set from Debian's wallpaper and texture packages (see docs/data.md).

The recipe is the library package ``dfnet.photo_dataset``; this script only parses the options.

Run:  .venv/bin/python scripts/build_wallpaper_dataset.py --out data/wallpapers        (the 38 scene photos)
      .venv/bin/python scripts/build_wallpaper_dataset.py --textures --out data/wallpapers-v2
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from dfnet.photo_dataset.build import VAL_PERMILLE, BuildOptions, build
from dfnet.photo_dataset.sources import SCENE, SOURCES, TEXTURE, sources_from_names


def parse_args(argv: Sequence[str] | None = None) -> BuildOptions:
    """Command-line options as BuildOptions."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--out", type=Path, default=Path("data/wallpapers"), help="output folder (default data/wallpapers)"
    )
    parser.add_argument(
        "--cache-dir", type=Path, default=Path("data/cache/debs"), help="where .deb files are downloaded"
    )
    parser.add_argument(
        "--packages",
        nargs="*",
        default=[s.package for s in SOURCES if s.kind == SCENE],
        help="Debian packages of scene photos (wallpapers) to read",
    )
    textures = [s.package for s in SOURCES if s.kind == TEXTURE]
    parser.add_argument(
        "--textures", action="store_true", help=f"also read the texture packages ({', '.join(textures)})"
    )
    parser.add_argument(
        "--texture-packages", nargs="*", default=None, help="Debian packages of material textures to read"
    )
    parser.add_argument("--val-permille", type=int, default=VAL_PERMILLE, help="validation share in 1/1000")
    parser.add_argument("--review", action="store_true", help="also write contact sheets to OUT/review/")
    parser.add_argument(
        "--examples", type=Path, default=None, help="also write photo.png, mask.png, LICENSE.md here"
    )
    parser.add_argument("--clean", action="store_true", help="delete OUT before building")
    args = parser.parse_args(argv)
    texture_packages = args.texture_packages
    if texture_packages is None:
        texture_packages = textures if args.textures else []
    return BuildOptions(
        out=args.out,
        cache_dir=args.cache_dir,
        sources=sources_from_names(args.packages, texture_packages),
        val_permille=args.val_permille,
        review=args.review,
        examples=args.examples,
        clean=args.clean,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: parse the options and build."""
    return build(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
