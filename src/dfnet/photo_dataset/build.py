"""Build the photo data set: survey the packages, split by image, write photos, manifest.csv and report.json."""

from __future__ import annotations

import csv
import hashlib
import json
import platform
import re
import shutil
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import PIL
from PIL import Image, ImageOps

from dfnet.photo_dataset import debian
from dfnet.photo_dataset.debian import PackageResult, sha256_file
from dfnet.photo_dataset.images import centre_crop, contact_sheet, example_mask, resize_short_side, to_srgb
from dfnet.photo_dataset.licences import licence_for, parse_copyright, upstream_metadata
from dfnet.photo_dataset.photos import (
    Candidate,
    PhotoStats,
    group_duplicates,
    image_stats,
    is_photo,
    largest,
    picture_name,
    rules_for,
    same_picture_pairs,
    thumbnail_bytes,
)
from dfnet.photo_dataset.sources import (
    EXAMPLE_CROP_LEFT,
    EXAMPLE_CROP_TOP,
    EXAMPLE_ID,
    SCENE,
    SOURCES,
    TEXTURE,
    Source,
    manual_decision,
)

SHORT_SIDE = 512
EVAL_SIDE = 256
JPEG_QUALITY = 95
# An image goes to val when a hash of its output file name, mod 1000, is below this.  170 rather than
# 130: with only ~40 photos the draw matters, and 170 puts 5 of the 38 first photos (13 %) in val.
VAL_PERMILLE = 170
MAX_IMAGE_PIXELS = 200_000_000  # the largest wallpapers are about 18 MP; this only guards bombs
MANIFEST_FIELDS = (
    "split",
    "file",
    "package",
    "kind",
    "source_path",
    "width",
    "height",
    "licence",
    "sha256",
    "copyright",
    "author",
    "upstream_licence",
)
LICENCE_URLS = {
    "GPL-2+": "https://www.gnu.org/licenses/old-licenses/gpl-2.0.html",
    "CC-BY-4.0": "https://creativecommons.org/licenses/by/4.0/",
    "CC-BY-SA-3.0": "https://creativecommons.org/licenses/by-sa/3.0/",
    "CC-BY-SA-4.0": "https://creativecommons.org/licenses/by-sa/4.0/",
    "CC0-1.0": "https://creativecommons.org/publicdomain/zero/1.0/",
}


@dataclass
class BuildOptions:
    """What to build and where (the command line's options)."""

    out: Path = Path("data/wallpapers")
    cache_dir: Path = Path("data/cache/debs")
    sources: tuple[Source, ...] = tuple(s for s in SOURCES if s.kind == SCENE)  # textures: opt in
    val_permille: int = VAL_PERMILLE
    review: bool = False  # also write contact sheets to out/review/
    examples: Path | None = None  # also write photo.png, mask.png and LICENSE.md here
    clean: bool = False  # delete out before building


@dataclass
class Picture:
    """A group's representative file after the photo decision."""

    id: str
    package: str
    path: str
    abs_path: Path
    width: int
    height: int
    stats: PhotoStats
    photo: bool
    reason: str
    kind: str = SCENE  # sources.SCENE or sources.TEXTURE
    licence: str = "unknown"  # from debian/copyright
    copyright: str = ""  # holder line from debian/copyright
    author: str = ""  # from upstream metadata (plasma), when it names one
    upstream_licence: str = ""  # from upstream metadata (plasma), when it names one


def output_name(package: str, picture: str) -> str:
    """Output file stem: package and picture name, restricted to safe characters."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", f"{package}_{picture}")


def split_of(file_name: str, val_permille: int = VAL_PERMILLE) -> str:
    """'val' or 'train' from a hash of the file name, so an image's split never changes between builds."""
    value = int.from_bytes(hashlib.sha256(file_name.encode("utf-8")).digest()[:8], "big") % 1000
    return "val" if value < val_permille else "train"


def candidates_of(source: Source, root: Path, result: PackageResult) -> list[Candidate]:
    """The package's image files that pass the name and size rules of its kind (the others go to result.dropped)."""
    rules = rules_for(source.kind)
    candidates: list[Candidate] = []
    files = debian.list_images(root)
    result.files = len(files)
    for rel in files:
        reason = rules.name_rule(rel)
        if reason is None:
            with Image.open(root / rel) as image:
                reason = rules.size_rule(image.width, image.height)
                if reason is None:
                    size = (root / rel).stat().st_size
                    thumb = thumbnail_bytes(image)
                    candidates.append(Candidate(source.package, rel, image.width, image.height, size, thumb))
        if reason is not None:
            result.dropped[f"{source.package}:{rel}"] = reason
    return candidates


def judge(source: Source, root: Path, best: Candidate) -> Picture:
    """The photo decision for one picture: the rules of its kind, then the manual decisions."""
    picture_id = f"{source.package}:{picture_name(best.path)}"
    with Image.open(root / best.path) as image:
        stats = image_stats(image)
    photo, reason = is_photo(stats, rules_for(source.kind).photo)
    override = manual_decision(picture_id)
    if override is not None:
        photo, why = override
        reason = f"manual: {why} (rules said: {reason})"
    return Picture(
        picture_id,
        source.package,
        best.path,
        root / best.path,
        best.width,
        best.height,
        stats,
        photo,
        reason,
        source.kind,
    )


def survey_package(source: Source, root: Path, result: PackageResult) -> list[Picture]:
    """Candidates of one unpacked package, grouped, with a photo decision for each group."""
    candidates = candidates_of(source, root, result)
    pictures = []
    for group in group_duplicates(candidates):
        best = candidates[largest(candidates, group)]
        pictures.append(judge(source, root, best))
        for i in group:
            if candidates[i] is not best:
                result.dropped[f"{source.package}:{candidates[i].path}"] = f"duplicate of {best.path}"
    result.pictures = len(pictures)
    return pictures


def survey(
    sources: Sequence[Source], cache_dir: Path, unpack_dir: Path
) -> tuple[list[PackageResult], list[Picture]]:
    """Fetch, unpack and judge every package; a package apt cannot fetch is recorded and skipped."""
    results: list[PackageResult] = []
    pictures: list[Picture] = []
    for source in sources:
        package = source.package
        result = PackageResult(package, kind=source.kind)
        results.append(result)
        try:
            deb = debian.apt_download(package, cache_dir)
        except RuntimeError as exc:
            result.available, result.error = False, str(exc)
            print(f"{package}: not available ({exc})", file=sys.stderr)
            continue
        root = unpack_dir / package
        result.version = debian.unpack(deb, root)
        copyright_file = root / "usr/share/doc" / package / "copyright"
        info = parse_copyright(copyright_file.read_text(encoding="utf-8", errors="replace"))
        for picture in survey_package(source, root, result):
            picture.licence, picture.copyright = licence_for(info, picture.path)
            picture.author, picture.upstream_licence = upstream_metadata(root, picture.path)
            if picture.photo:
                result.kept.append(picture.id)
            else:
                result.dropped[picture.id] = picture.reason
            pictures.append(picture)
        print(
            f"{package} {result.version}: {result.files} files, {result.pictures} pictures, {len(result.kept)} photos"
        )
    drop_copies_across_packages([p for p in pictures if p.kind == TEXTURE], results)
    return results, pictures


def drop_copies_across_packages(pictures: Sequence[Picture], results: Sequence[PackageResult]) -> None:
    """Drop the photos that repeat a photo of an earlier package (games borrow each other's textures),
    so that no picture is in both splits under two names; the first package's copy stays."""
    photos = [p for p in pictures if p.photo]
    thumbs = []
    for p in photos:
        with Image.open(p.abs_path) as image:
            thumbs.append(Candidate(p.package, p.path, p.width, p.height, 0, thumbnail_bytes(image)))
    by_package = {r.package: r for r in results}
    for i, j in same_picture_pairs(thumbs):
        first, copy = photos[i], photos[j]
        if first.package != copy.package and first.photo and copy.photo:
            copy.photo, copy.reason = False, f"same picture as {first.id}"
            by_package[copy.package].kept.remove(copy.id)
            by_package[copy.package].dropped[copy.id] = copy.reason


def review_items(pictures: Sequence[Picture]) -> list[tuple[Image.Image, str]]:
    """Thumbnails captioned with id, statistics and the reason of the decision, for contact sheets."""
    items = []
    for p in pictures:
        with Image.open(p.abs_path) as image:
            thumb = ImageOps.contain(to_srgb(image), (300, 300))
        s = p.stats
        caption = f"{p.id}\nflat={s.flat:.2f} tex={s.texture:.2f} corr={s.channel_corr:.2f}\n{p.reason}"
        items.append((thumb, caption))
    return items


def write_review(pictures: Sequence[Picture], review_dir: Path) -> None:
    """Contact sheets of the pictures judged photo and not photo, scenes and textures apart."""
    review_dir.mkdir(parents=True, exist_ok=True)
    for kind in sorted({p.kind for p in pictures}):
        prefix = "" if kind == SCENE else f"{kind}_"
        for label, keep in (("photos", True), ("not_photos", False)):
            chosen = [p for p in pictures if p.photo == keep and p.kind == kind]
            for page in range(0, max(1, len(chosen)), 25):
                sheet = contact_sheet(review_items(chosen[page : page + 25]))
                sheet.save(review_dir / f"{prefix}{label}_{page // 25 + 1}.png")


def write_images(picture: Picture, out: Path, split: str, name: str) -> tuple[int, int]:
    """Write the 512-short-side JPEG (and for val the 256 centre crop PNG); returns the JPEG size."""
    with Image.open(picture.abs_path) as image:
        rgb = to_srgb(image)
    resized = resize_short_side(rgb, SHORT_SIDE)
    (out / split).mkdir(parents=True, exist_ok=True)
    resized.save(out / split / f"{name}.jpg", quality=JPEG_QUALITY, subsampling=0, optimize=True)
    if split == "val":
        (out / "val_256").mkdir(parents=True, exist_ok=True)
        centre_crop(resize_short_side(rgb, EVAL_SIDE), EVAL_SIDE).save(
            out / "val_256" / f"{name}.png", optimize=True
        )
    return resized.size


def write_examples(pictures: Sequence[Picture], examples_dir: Path, val_permille: int) -> str | None:
    """Write examples/photo.png (512x512 crop of val photo EXAMPLE_ID), mask.png and LICENSE.md.

    Returns an error message instead when EXAMPLE_ID is not a validation photo of this build.
    """
    picture = next((p for p in pictures if p.id == EXAMPLE_ID and p.photo), None)
    if picture is None:
        return f"example photo {EXAMPLE_ID} is not among the photos of this build"
    name = output_name(picture.package, picture_name(picture.path))
    if split_of(f"{name}.jpg", val_permille) != "val":
        return f"example photo {EXAMPLE_ID} is not a validation photo of this build"
    with Image.open(picture.abs_path) as image:
        resized = resize_short_side(to_srgb(image), SHORT_SIDE)
    box = (EXAMPLE_CROP_LEFT, EXAMPLE_CROP_TOP, EXAMPLE_CROP_LEFT + 512, EXAMPLE_CROP_TOP + 512)
    examples_dir.mkdir(parents=True, exist_ok=True)
    resized.crop(box).save(examples_dir / "photo.png", optimize=True)
    example_mask().save(examples_dir / "mask.png", optimize=True)
    hole_share = float(np.mean(np.asarray(example_mask()) > 127))
    licence_url = LICENCE_URLS.get(picture.licence, "")
    text = f"""# Example images

## photo.png

A 512x512 crop (left {box[0]}, top {box[1]}) of `/{picture.path}` from the Debian package
`{picture.package}`, after resizing its short side to 512 pixels: the validation image
`val/{name}.jpg` of the wallpaper data set (see docs/data.md), so no model trained on that data set
has seen it. The crop is a modified version of the original.

- Copyright: {picture.copyright or "see the package's copyright file"}
- Licence: {picture.licence}{f" ({licence_url})" if licence_url else ""}, as stated in
  `/usr/share/doc/{picture.package}/copyright`

## mask.png

A hole mask (white = hole, {hole_share:.1%} of the image) drawn by `example_mask` in
`dfnet.photo_dataset.images`. Part of dfnet, under dfnet's licence.

Both files are rebuilt by `.venv/bin/python scripts/build_wallpaper_dataset.py --examples examples`.
"""
    (examples_dir / "LICENSE.md").write_text(text, encoding="utf-8")
    return None


def manifest_row(picture: Picture, split: str, name: str, size: tuple[int, int]) -> dict[str, str | int]:
    """One manifest.csv row (MANIFEST_FIELDS) for a written photo."""
    return {
        "split": split,
        "file": f"{split}/{name}.jpg",
        "package": picture.package,
        "kind": picture.kind,
        "source_path": "/" + picture.path,
        "width": size[0],
        "height": size[1],
        "licence": picture.licence,
        "sha256": sha256_file(picture.abs_path),
        "copyright": picture.copyright,
        "author": picture.author or picture.copyright,
        "upstream_licence": picture.upstream_licence,
    }


def build(options: BuildOptions) -> int:
    """Fetch, filter, split and write the data set (and optionally the examples); returns an exit code."""
    out = options.out
    if options.clean and out.exists():
        shutil.rmtree(out)
    previous_limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    try:
        with tempfile.TemporaryDirectory(prefix="wallpapers-") as tmp:
            results, pictures = survey(options.sources, options.cache_dir, Path(tmp))
            if options.review:
                write_review(pictures, out / "review")
            rows = []
            for picture in (p for p in pictures if p.photo):
                name = output_name(picture.package, picture_name(picture.path))
                split = split_of(f"{name}.jpg", options.val_permille)
                rows.append(manifest_row(picture, split, name, write_images(picture, out, split, name)))
            if options.examples:
                error = write_examples(pictures, options.examples, options.val_permille)
                if error:
                    print(error, file=sys.stderr)
                    return 1
    finally:
        Image.MAX_IMAGE_PIXELS = previous_limit
    rows.sort(key=lambda r: str(r["file"]))
    write_manifest(out / "manifest.csv", rows)
    write_report(out / "report.json", results, rows, pictures, options)
    print_summary(results, rows)
    return 0


def write_manifest(path: Path, rows: Iterable[dict]) -> None:
    """manifest.csv with MANIFEST_FIELDS columns."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=MANIFEST_FIELDS)
        writer.writeheader()
        writer.writerows(rows)


def picture_report(p: Picture) -> dict:
    """report.json's entry for one picture: its file, decision, licence and statistics."""
    return {
        "path": p.path,
        "kind": p.kind,
        "width": p.width,
        "height": p.height,
        "photo": p.photo,
        "reason": p.reason,
        "licence": p.licence,
        "copyright": p.copyright,
        "author": p.author,
        "upstream_licence": p.upstream_licence,
        **asdict(p.stats),
    }


def write_report(
    path: Path,
    results: Sequence[PackageResult],
    rows: Sequence[dict],
    pictures: Sequence[Picture],
    options: BuildOptions,
) -> None:
    """report.json: package versions, what was kept and dropped and why, per-picture statistics, tool versions."""
    report = {
        "packages": [asdict(r) for r in results],
        "counts": dict(Counter(r["split"] for r in rows)),
        "kinds": dict(Counter(f"{r['kind']}/{r['split']}" for r in rows)),
        "licences": dict(Counter(r["licence"] for r in rows)),
        "pictures": {p.id: picture_report(p) for p in pictures},
        "settings": {
            "short_side": SHORT_SIDE,
            "eval_side": EVAL_SIDE,
            "jpeg_quality": JPEG_QUALITY,
            "val_permille": options.val_permille,
        },
        "versions": {"python": platform.python_version(), "pillow": PIL.__version__, "numpy": np.__version__},
    }
    path.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def print_summary(results: Sequence[PackageResult], rows: Sequence[dict]) -> None:
    """Per-package counts (files, pictures after duplicates, photos kept, pictures dropped), splits, licences."""
    print(f"{'package':28} {'kind':7} {'version':12} {'files':>5} {'pictures':>8} {'kept':>4} {'dropped':>7}")
    for r in results:
        if not r.available:
            print(f"{r.package:28} UNAVAILABLE: {r.error}")
            continue
        dropped = r.pictures - len(r.kept)
        print(
            f"{r.package:28} {r.kind:7} {r.version:12} {r.files:5d} {r.pictures:8d} {len(r.kept):4d} {dropped:7d}"
        )
    for kind, counts in sorted(_splits_by_kind(rows).items()):
        print(f"{kind} photos: train {counts['train']}, val {counts['val']}")
    for licence, n in sorted(Counter(r["licence"] for r in rows).items()):
        print(f"  {licence}: {n}")


def _splits_by_kind(rows: Sequence[dict]) -> dict[str, Counter]:
    """{kind: Counter of splits} over manifest rows."""
    counts: dict[str, Counter] = {}
    for r in rows:
        counts.setdefault(str(r["kind"]), Counter())[r["split"]] += 1
    return counts
