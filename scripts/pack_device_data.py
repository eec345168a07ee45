"""Pack the wallpaper training photos small enough to travel to a remote GPU machine (scripts/device_session.sh).

Copies data/wallpapers-v2/train and data/wallpapers-v2/val_256 into data/device/train and data/device/val_256,
re-encoding every photo as JPEG (quality 90, no EXIF, the pixels exactly as the training loader reads them)
with the short side scaled down to at most --max-side pixels (never up). File names are kept; a photo that
was not a JPEG (the PNGs of val_256) keeps its stem and gets the suffix .jpg. The data set's manifest.csv
comes along as data/device/manifest.csv (data.texture_share reads each photo's kind from it; it also holds
the licences), with the width, height and sha256 of the training rows updated to the packed files. Stops
with a message, leaving nothing half-written behind, when the packed photos would exceed --max-mb: the
device tool carries at most 64 MiB of working tree, of which the tracked files take about 13.

data/ is git-ignored, so a device call must name data/device in its carry list.

    python scripts/pack_device_data.py [--max-mb 40] [--max-side 512] [--quality 90]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import shutil
import sys
from pathlib import Path

from PIL import Image

from dfnet.imageio import IMAGE_EXTENSIONS
from dfnet.photo_dataset.build import write_manifest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = {"train": "data/wallpapers-v2/train", "val_256": "data/wallpapers-v2/val_256"}
MANIFEST = "data/wallpapers-v2/manifest.csv"
JPEG_SUFFIXES = {".jpg", ".jpeg"}


def encode(path: Path, max_side: int, quality: int) -> bytes:
    """The photo as JPEG bytes, its short side at most ``max_side`` pixels."""
    with Image.open(path) as image:
        image = image.convert("RGB")
        short = min(image.size)
        if short > max_side:
            scale = max_side / short
            size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
            image = image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=quality, optimize=True)
    return buffer.getvalue()


def target_name(path: Path) -> str:
    return path.name if path.suffix.lower() in JPEG_SUFFIXES else path.stem + ".jpg"


def packed_manifest(train: dict[str, bytes]) -> list[dict[str, str]]:
    """manifest.csv's rows with the training rows describing the packed files (size, hash, name)."""
    with (ROOT / MANIFEST).open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        source = Path(row["file"])
        name = target_name(source)
        if row.get("split") == "train" and name in train:
            with Image.open(io.BytesIO(train[name])) as image:
                row["width"], row["height"] = str(image.width), str(image.height)
            row["sha256"] = hashlib.sha256(train[name]).hexdigest()
            row["file"] = str(source.with_name(name))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="data/device", help="output folder (default: data/device)")
    parser.add_argument("--max-mb", type=float, default=40.0, help="size budget in MiB (default: 40)")
    parser.add_argument(
        "--max-side", type=int, default=512, help="largest short side in pixels (default 512)"
    )
    parser.add_argument("--quality", type=int, default=90, help="JPEG quality (default 90)")
    args = parser.parse_args(argv)

    budget = args.max_mb * 2**20
    packed: dict[str, dict[str, bytes]] = {}
    total = 0
    for split, source in SOURCES.items():
        folder = ROOT / source
        if not folder.is_dir():
            print(
                f"error: {source} does not exist (scripts/build_wallpaper_dataset.py builds it)",
                file=sys.stderr,
            )
            return 1
        files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
        packed[split] = {}
        for path in files:
            name = target_name(path)
            if name in packed[split]:
                print(f"error: two photos in {source} would both be written as {name}", file=sys.stderr)
                return 1
            data = encode(path, args.max_side, args.quality)
            packed[split][name] = data
            total += len(data)
            if total > budget:
                print(
                    f"error: the packed photos exceed the budget of {args.max_mb:g} MiB (at {path}); "
                    "lower --max-side or --quality, or raise --max-mb if the device call still fits in 64 MiB",
                    file=sys.stderr,
                )
                return 1

    manifest = packed_manifest(packed["train"])
    out = Path(args.out) if Path(args.out).is_absolute() else ROOT / args.out
    for split, files in packed.items():
        folder = out / split
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        for name, data in files.items():
            (folder / name).write_bytes(data)
        size = sum(len(d) for d in files.values())
        print(f"{folder}: {len(files)} photos, {size / 2**20:.1f} MiB")
    write_manifest(out / "manifest.csv", manifest)
    print(f"{out / 'manifest.csv'}: {len(manifest)} rows")
    print(f"total {total / 2**20:.1f} MiB (budget {args.max_mb:g} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
