#!/usr/bin/env python3
"""Build the dfnet wallpaper photo data set from Debian's wallpaper packages.

Recipe (see docs/data.md):
  1. ``apt-get download`` each package in PACKAGES into a cache folder and unpack it with ``dpkg -x``
     into a temporary folder (nothing is installed on the system).
  2. List every image file, drop vector files, thumbnails and small files by name/size, and group
     the files that show the same picture (plasma ships one picture at many resolutions, MATE ships
     ``Elephants`` at three sizes, GNOME a light and a dark variant): by picture name, and by equal
     aspect ratio plus nearly equal 16x16 thumbnails.  The largest file of a group stands for it.
  3. Decide photo / not photo for each group with transparent rules (is_photo): transparency, share
     of perfectly flat pixels, camera EXIF, file format, share of textured blocks and correlation of
     the colour channels' noise; then apply the committed manual decisions in PHOTO_OVERRIDES (made
     by looking at the contact sheets that --review writes).
  4. Look the licence up in the package's ``usr/share/doc/<pkg>/copyright`` (DEP-5 ``Files:``
     stanzas matched to the file, last match wins; a simple reading of free-form files otherwise).
  5. Split by image, deterministically from a hash of the output file name, resize so the short side
     is 512 (JPEG quality 95), write ``val_256/`` centre crops, ``manifest.csv`` and ``report.json``.

Run:  .venv/bin/python scripts/build_wallpaper_dataset.py --out data/wallpapers
"""

from __future__ import annotations

import argparse
import csv
import fnmatch
import hashlib
import io
import json
import math
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
import PIL
from PIL import Image, ImageCms, ImageDraw, ImageFont, ImageOps

PACKAGES: tuple[str, ...] = (
    "gnome-backgrounds",
    "plasma-workspace-wallpapers",
    "mate-backgrounds",
    "ukui-wallpapers",
    "lomiri-wallpapers-16.04",
    "lomiri-wallpapers-20.04",
)
RASTER_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
VECTOR_SUFFIXES = (".svg", ".svgz")
MIN_SHORT_SIDE = 768  # smaller files are previews, phone crops or tiles, never a wallpaper's main picture
SHORT_SIDE = 512
EVAL_SIDE = 256
JPEG_QUALITY = 95
# An image goes to val when a hash of its output file name, mod 1000, is below this.  170 rather than
# 130: with only ~40 photos the draw matters, and 170 puts 5 of the 38 current photos (13 %) in val.
VAL_PERMILLE = 170
STATS_CROP = 1024  # photo statistics look at the central 1024x1024 pixels at native resolution
CORR_CLIP = 4.0  # residuals are clipped to +-4 before correlating channels, so that edges count little
THUMB_SIDE = 16  # duplicate detection compares 16x16 RGBA thumbnails ...
DUPLICATE_THUMB_DIFF = 4.0  # ... whose mean absolute difference (0-255) is at most this
ASPECT_TOLERANCE = 0.01  # ... of pictures whose aspect ratios differ by at most 1 %
MANIFEST_FIELDS = (
    "split",
    "file",
    "package",
    "source_path",
    "width",
    "height",
    "licence",
    "sha256",
    "copyright",
    "author",
    "upstream_licence",
)

# Manual decisions, made by looking at data/wallpapers/review/*.png (contact sheets this script writes
# with --review).  Key: image id "<package>:<name>"; value: (is_photo, why).  These win over the
# statistics, which misjudge the cases listed here.
PHOTO_OVERRIDES: dict[str, tuple[bool, str]] = {
    "mate-backgrounds:Elephants": (False, "mirrored, painted-over collage despite its camera EXIF"),
    "plasma-workspace-wallpapers:Autumn": (False, "painting"),
    "plasma-workspace-wallpapers:Flow": (False, "rendered hexagon art with added grain"),
    "plasma-workspace-wallpapers:Honeywave": (False, "vector-style illustration with added grain"),
    "plasma-workspace-wallpapers:SafeLanding": (False, "painted illustration"),
    "plasma-workspace-wallpapers:Shell": (False, "rendered faceted shapes"),
    "plasma-workspace-wallpapers:Volna": (False, "rendered sand-and-wave illustration"),
    "ukui-wallpapers:rhythm": (False, "rendered ribbon"),
}

# The validation photo that examples/photo.png is cut from, and the crop's top-left corner in the
# 512-short-side image.
EXAMPLE_ID = "mate-backgrounds:Dune"
EXAMPLE_CROP_LEFT = 152
EXAMPLE_CROP_TOP = 0


# --------------------------------------------------------------------------------------------------
# Names, groups and duplicates


@dataclass(frozen=True)
class Candidate:
    """One raster image file found in an unpacked package."""

    package: str
    path: str  # path inside the package, e.g. "usr/share/backgrounds/foo.jpg"
    width: int
    height: int
    file_size: int
    thumb: bytes  # THUMB_SIDE x THUMB_SIDE RGBA thumbnail (aspect ignored), for duplicate detection

    @property
    def pixels(self) -> int:
        """Pixel count, the measure of 'largest' among duplicates."""
        return self.width * self.height

    @property
    def aspect(self) -> float:
        """Width over height."""
        return self.width / self.height


_RESOLUTION_SUFFIX = re.compile(r"[_-]\d{3,5}x\d{3,5}$")
_SHADE_SUFFIX = re.compile(r"[_-](l|d|light|dark)$", re.IGNORECASE)
_PLASMA_DIR = re.compile(r"usr/share/wallpapers/([^/]+)/contents/")


def picture_name(path: str) -> str:
    """Name of the picture a file shows, shared by its resolution and light/dark variants."""
    match = _PLASMA_DIR.search(path)
    if match:  # plasma: one folder per wallpaper, files named by resolution
        return match.group(1)
    stem = PurePosixPath(path).stem
    stem = _RESOLUTION_SUFFIX.sub("", stem)
    return _SHADE_SUFFIX.sub("", stem)


def name_rule(path: str) -> str | None:
    """Reason to drop a file from its name alone, or None when it needs a closer look."""
    suffix = PurePosixPath(path).suffix.lower()
    if suffix in VECTOR_SUFFIXES:
        return "vector"
    if suffix not in RASTER_SUFFIXES:
        return "not an image"
    if PurePosixPath(path).stem.lower() in {"screenshot", "preview", "thumbnail"}:
        return "thumbnail"
    return None


def size_rule(width: int, height: int) -> str | None:
    """Reason to drop a raster file for its size (too small for a 512-short-side photo), or None."""
    if min(width, height) < MIN_SHORT_SIDE:
        return f"small ({width}x{height})"
    return None


def thumbnail_bytes(image: Image.Image) -> bytes:
    """THUMB_SIDE x THUMB_SIDE RGBA thumbnail (box filter, aspect ignored) as raw bytes.

    Alpha is part of it so that transparent layers (whose hidden colour is often all black) differ.
    """
    return image.convert("RGBA").resize((THUMB_SIDE, THUMB_SIDE), Image.Resampling.BOX).tobytes()


def same_picture(a: Candidate, b: Candidate) -> bool:
    """Same picture at another resolution: equal aspect ratio (within 1 %) and nearly equal thumbnails."""
    if abs(a.aspect - b.aspect) > ASPECT_TOLERANCE * a.aspect:
        return False
    diff = np.abs(np.frombuffer(a.thumb, np.uint8).astype(np.int16) - np.frombuffer(b.thumb, np.uint8))
    return float(diff.mean()) <= DUPLICATE_THUMB_DIFF


def group_duplicates(candidates: Sequence[Candidate]) -> list[list[int]]:
    """Indices of candidates grouped as one picture: same package and picture name, or same_picture.

    Groups come back sorted by their first index; each group's indices are sorted.
    """
    parent = list(range(len(candidates)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(i: int, j: int) -> None:
        root_i, root_j = find(i), find(j)
        parent[max(root_i, root_j)] = min(root_i, root_j)

    first_of_name: dict[tuple[str, str], int] = {}
    for i, cand in enumerate(candidates):
        union(i, first_of_name.setdefault((cand.package, picture_name(cand.path)), i))
    for i in range(len(candidates)):
        for j in range(i + 1, len(candidates)):
            if same_picture(candidates[i], candidates[j]):
                union(i, j)
    groups: dict[int, list[int]] = {}
    for i in range(len(candidates)):
        groups.setdefault(find(i), []).append(i)
    return sorted(groups.values())


def largest(candidates: Sequence[Candidate], group: Sequence[int]) -> int:
    """Index of the group member with most pixels, then the largest file, then the first index."""
    return min(group, key=lambda i: (-candidates[i].pixels, -candidates[i].file_size, i))


def output_name(package: str, picture: str) -> str:
    """Output file stem: package and picture name, restricted to safe characters."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", f"{package}_{picture}")


def split_of(file_name: str, val_permille: int = VAL_PERMILLE) -> str:
    """'val' or 'train' from a hash of the file name, so an image's split never changes between builds."""
    value = int.from_bytes(hashlib.sha256(file_name.encode("utf-8")).digest()[:8], "big") % 1000
    return "val" if value < val_permille else "train"


# --------------------------------------------------------------------------------------------------
# Photo or not: image statistics


@dataclass(frozen=True)
class PhotoStats:
    """What is_photo decides on; computed by image_stats on a native-resolution centre crop."""

    alpha_used: bool  # some pixel is not fully opaque: a layer or sticker, not a photograph
    flat: float  # share of pixels whose noise residual is exactly 0: rendered flat fills and clean gradients
    texture: float  # share of 8x8 blocks with mean |residual| > 1: sensor noise or fine detail present
    channel_corr: float  # correlation of the red and blue residuals (each clipped to +-CORR_CLIP)
    camera: str  # EXIF "Make Model" when the file records a camera, else ""
    jpeg: bool  # stored as JPEG, as camera pipelines store photographs (renders come as PNG/WebP)


@dataclass(frozen=True)
class PhotoRule:
    """Thresholds of is_photo (chosen on this data, documented in docs/data.md)."""

    max_flat: float = 0.65
    min_texture: float = 0.35
    min_channel_corr: float = 0.35


def is_photo(stats: PhotoStats, rule: PhotoRule = PhotoRule()) -> tuple[bool, str]:
    """Photo or not from the statistics, with the reason (the first test that decided)."""
    if stats.alpha_used:
        return False, "uses transparency"
    if stats.flat > rule.max_flat:
        return False, f"flat fills ({stats.flat:.2f} > {rule.max_flat})"
    if stats.camera:
        return True, f"camera EXIF ({stats.camera})"
    if not stats.jpeg:
        return False, "not a JPEG and no camera EXIF"
    if stats.texture < rule.min_texture:
        return False, f"little texture ({stats.texture:.2f} < {rule.min_texture})"
    if stats.channel_corr < rule.min_channel_corr:
        return False, f"uncorrelated channel noise ({stats.channel_corr:.2f} < {rule.min_channel_corr})"
    return True, "photo statistics"


def residual(channel: np.ndarray) -> np.ndarray:
    """Immerkaer's noise residual: the channel convolved with [[1,-2,1],[-2,4,-2],[1,-2,1]] (valid part).

    It is zero on any locally linear ramp, so flat fills and clean gradients give exactly 0 while
    sensor noise and fine texture do not.
    """
    g = channel.astype(np.float32)
    rows = g[:-2] - 2 * g[1:-1] + g[2:]
    return rows[:, :-2] - 2 * rows[:, 1:-1] + rows[:, 2:]


def centre_crop_array(array: np.ndarray, size: int) -> np.ndarray:
    """The central size x size part of an (H, W, ...) array (or all of it along a shorter side)."""
    h, w = array.shape[:2]
    top, left = max(0, (h - size) // 2), max(0, (w - size) // 2)
    return array[top : top + size, left : left + size]


def block_means(values: np.ndarray, block: int) -> np.ndarray:
    """Means of the non-overlapping block x block tiles of a 2-D array (ragged edges dropped)."""
    h, w = values.shape[0] // block * block, values.shape[1] // block * block
    return values[:h, :w].reshape(h // block, block, w // block, block).mean(axis=(1, 3))


def residual_stats(rgb: np.ndarray) -> tuple[float, float, float]:
    """(flat, texture, channel_corr) of an (H, W, 3) uint8 array; see PhotoStats."""
    channels = [residual(rgb[..., c]) for c in range(3)]
    grey_res = residual(np.asarray(Image.fromarray(rgb).convert("L")))
    mean_res = np.abs(channels[0] + channels[1] + channels[2]) / 3
    texture = float(np.mean(block_means(mean_res, 8) > 1.0))
    red, blue = (np.clip(c, -CORR_CLIP, CORR_CLIP).ravel() for c in (channels[0], channels[2]))
    corr = 0.0  # a channel without any residual: no evidence of sensor noise
    if red.std() > 0 and blue.std() > 0:
        corr = float(np.corrcoef(red, blue)[0, 1])
    return float(np.mean(grey_res == 0)), texture, corr


def camera_of(image: Image.Image) -> str:
    """EXIF camera make and model ("" when absent): a camera-made file is a photograph."""
    exif = image.getexif()
    text = " ".join(str(exif.get(tag, "")).replace("\x00", " ").strip() for tag in (0x010F, 0x0110))
    return re.sub(r"\s+", " ", text).strip()


def image_stats(image: Image.Image) -> PhotoStats:
    """PhotoStats of an opened image (any mode), from its central STATS_CROP x STATS_CROP pixels."""
    alpha_used = False
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        alpha_used = bool(np.asarray(image.convert("RGBA").getchannel("A")).min() < 255)
    crop = centre_crop_array(np.asarray(image.convert("RGB")), STATS_CROP)
    flat, texture, corr = residual_stats(crop)
    return PhotoStats(alpha_used, flat, texture, corr, camera_of(image), image.format == "JPEG")


# --------------------------------------------------------------------------------------------------
# Licences from debian/copyright


@dataclass(frozen=True)
class FilesStanza:
    """One 'Files:' stanza of a DEP-5 copyright file."""

    patterns: tuple[str, ...]
    licence: str
    copyright: str


@dataclass(frozen=True)
class CopyrightInfo:
    """What a package's copyright file says, in a form licence_for can match paths against."""

    stanzas: tuple[FilesStanza, ...]
    default_licence: str = "unknown"
    default_copyright: str = ""


def _paragraphs(text: str) -> list[dict[str, str]]:
    """Deb822 paragraphs as {lower-case field: value}, continuation lines joined with newlines."""
    paragraphs: list[dict[str, str]] = []
    current: dict[str, str] = {}
    last = ""
    for line in text.splitlines():
        if not line.strip():
            if current:
                paragraphs.append(current)
            current, last = {}, ""
        elif line[0] in " \t" and last:
            current[last] += "\n" + line.strip()
        elif ":" in line:
            key, value = line.split(":", 1)
            last = key.strip().lower()
            current[last] = value.strip()
    if current:
        paragraphs.append(current)
    return paragraphs


def _first_line(value: str) -> str:
    """First non-empty line of a field value."""
    return next((line.strip() for line in value.splitlines() if line.strip()), "")


_FREEFORM_LICENCES = {
    "creative commons attribution-sharealike 2.0": "CC-BY-SA-2.0",
    "creative commons attribution-sharealike 3.0": "CC-BY-SA-3.0",
    "creative commons attribution-sharealike 4.0": "CC-BY-SA-4.0",
    "creative commons attribution 2.0": "CC-BY-2.0",
    "creative commons attribution 3.0": "CC-BY-3.0",
    "creative commons attribution 4.0": "CC-BY-4.0",
}


def _freeform_licence(sentence: str) -> str:
    """SPDX-like id for a 'Licensed under ...' sentence, or the sentence itself when unknown."""
    text = re.sub(r"\s+", " ", sentence.lower())
    for words, spdx in _FREEFORM_LICENCES.items():
        if words in text:
            return spdx
    return sentence.strip()


def _freeform_default(text: str) -> str:
    """Package-wide licence of a free-form copyright file (GPL-2+ style notices only)."""
    flat = re.sub(r"\s+", " ", text)
    match = re.search(
        r"GNU General Public License as published by the Free Software Foundation; either version (\d)", flat
    )
    if match:
        return f"GPL-{match.group(1)}+"
    return "unknown"


def _parse_freeform(text: str) -> CopyrightInfo:
    """Read '- file' lists followed by 'Copyright ...' and 'Licensed under ...' lines (gnome-backgrounds style)."""
    stanzas: list[FilesStanza] = []
    patterns: list[str] = []
    holders: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        item = re.match(r"^- (\S+?):?$", line)
        if item:
            if not patterns:
                holders = []
            patterns.append(item.group(1))
        elif patterns and line.lower().startswith("copyright"):
            holders.append(re.sub(r"^copyright\s*(©|\(c\))?\s*", "", line, flags=re.IGNORECASE))
        elif patterns and line.lower().startswith("licensed under"):
            licence = _freeform_licence(line[len("licensed under") :].rstrip("."))
            stanzas.append(FilesStanza(tuple(patterns), licence, "; ".join(holders)))
            patterns = []
    return CopyrightInfo(tuple(stanzas), default_licence=_freeform_default(text))


def parse_copyright(text: str) -> CopyrightInfo:
    """Parse a debian/copyright file: DEP-5 'Files:' stanzas, or the free-form style as a fallback."""
    paragraphs = _paragraphs(text)
    if not paragraphs or "format" not in paragraphs[0]:
        return _parse_freeform(text)
    stanzas = tuple(
        FilesStanza(
            patterns=tuple(p["files"].split()),
            licence=_first_line(p.get("license", "")) or "unknown",
            copyright=_first_line(p.get("copyright", "")),
        )
        for p in paragraphs
        if "files" in p
    )
    return CopyrightInfo(stanzas)


def pattern_matches(pattern: str, path: str) -> bool:
    """Does a copyright 'Files:' pattern (source-tree relative) match an installed file path?

    Installed paths differ from source paths by a prefix (usr/share/backgrounds/ vs 16.04/), so the
    pattern is matched against the same number of trailing path components; a pattern whose file
    name has no wildcard also matches any file of that name.
    """
    pattern = pattern.removeprefix("./")
    parts = PurePosixPath(path).parts
    pattern_parts = PurePosixPath(pattern).parts
    tail = "/".join(parts[-len(pattern_parts) :])
    if fnmatch.fnmatchcase(tail, pattern):
        return True
    base = pattern_parts[-1]
    return not any(c in base for c in "*?[") and base == parts[-1]


def licence_for(info: CopyrightInfo, path: str) -> tuple[str, str]:
    """(licence, copyright holder) of an installed file: the last matching stanza wins, as in DEP-5."""
    found = (info.default_licence, info.default_copyright)
    for stanza in info.stanzas:
        if any(pattern_matches(p, path) for p in stanza.patterns):
            found = (stanza.licence, stanza.copyright)
    return found


def plasma_metadata(text: str) -> tuple[str, str]:
    """(author, licence) from a plasma wallpaper's metadata.json or metadata.desktop text ("" when absent).

    Plasma records the photographer and the upstream licence per wallpaper, which the Debian
    copyright file (one stanza for everything) does not.
    """
    try:
        plugin = json.loads(text).get("KPlugin", {})
    except json.JSONDecodeError:
        fields = _desktop_fields(text)
        return fields.get("X-KDE-PluginInfo-Author", ""), fields.get("X-KDE-PluginInfo-License", "")
    authors = ", ".join(a.get("Name", "") for a in plugin.get("Authors", []) if a.get("Name"))
    return authors, str(plugin.get("License", ""))


def _desktop_fields(text: str) -> dict[str, str]:
    """key=value lines of a .desktop file (first occurrence wins, comments skipped)."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, value = line.split("=", 1)
            fields.setdefault(key.strip(), value.strip())
    return fields


def upstream_metadata(root: Path, path: str) -> tuple[str, str]:
    """(author, licence) from the plasma metadata file next to an image's contents/ folder, if any."""
    match = _PLASMA_DIR.search(path)
    if not match:
        return "", ""
    folder = root / path[: match.start(1)] / match.group(1)
    for name in ("metadata.json", "metadata.desktop"):
        if (folder / name).is_file():
            return plasma_metadata((folder / name).read_text(encoding="utf-8", errors="replace"))
    return "", ""


# --------------------------------------------------------------------------------------------------
# Image conversion


def to_srgb(image: Image.Image) -> Image.Image:
    """RGB image in sRGB: EXIF orientation applied, embedded ICC profile converted, alpha dropped."""
    icc = image.info.get("icc_profile")
    rgb = ImageOps.exif_transpose(image).convert("RGB")
    if icc:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            rgb = ImageCms.profileToProfile(rgb, source, ImageCms.createProfile("sRGB"), outputMode="RGB")
        except (ImageCms.PyCMSError, OSError):
            pass  # a broken profile: keep the pixel values as they are
    return rgb


def resize_short_side(
    image: Image.Image, side: int, resample: Image.Resampling = Image.Resampling.LANCZOS
) -> Image.Image:
    """Resize so the shorter side is exactly ``side``, keeping the aspect ratio."""
    scale = side / min(image.size)
    size = (max(side, round(image.width * scale)), max(side, round(image.height * scale)))
    return image.resize(size, resample, reducing_gap=3.0)


def centre_crop(image: Image.Image, side: int) -> Image.Image:
    """The central side x side square of an image at least that large."""
    left, top = (image.width - side) // 2, (image.height - side) // 2
    return image.crop((left, top, left + side, top + side))


# --------------------------------------------------------------------------------------------------
# Example mask


def example_mask(size: int = 512) -> Image.Image:
    """Deterministic hole mask (white = hole): two brush strokes and a blob, about 11 % of the image."""
    mask = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(mask)
    scale = size / 512
    strokes = [  # (points on a 512 grid, brush width)
        ([(60, 120), (140, 175), (220, 165), (300, 215), (350, 205)], 38),
        ([(330, 440), (365, 370), (420, 330), (450, 260)], 32),
    ]
    for points, width in strokes:
        scaled = [(x * scale, y * scale) for x, y in points]
        draw.line(scaled, fill=255, width=round(width * scale), joint="curve")
        radius = width * scale / 2
        for x, y in scaled:  # round brush ends and joints
            draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=255)
    draw.ellipse((120 * scale, 300 * scale, 235 * scale, 385 * scale), fill=255)
    return mask


# --------------------------------------------------------------------------------------------------
# Packages


@dataclass
class PackageResult:
    """What happened to one package, for report.json and the summary."""

    package: str
    version: str = ""
    available: bool = True
    error: str = ""
    files: int = 0
    pictures: int = 0
    kept: list[str] = field(default_factory=list)
    dropped: dict[str, str] = field(default_factory=dict)  # picture id -> reason


def apt_download(package: str, cache_dir: Path) -> Path:
    """The package's .deb in cache_dir, fetched with apt-get download when not cached yet."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    cached = sorted(cache_dir.glob(f"{package}_*.deb"))
    if cached:
        return cached[-1]
    proc = subprocess.run(["apt-get", "download", package], cwd=cache_dir, capture_output=True, text=True)
    cached = sorted(cache_dir.glob(f"{package}_*.deb"))
    if proc.returncode != 0 or not cached:
        message = (proc.stderr.strip().splitlines() or ["apt-get download failed"])[-1]
        raise RuntimeError(message)
    return cached[-1]


def unpack(deb: Path, dest: Path) -> str:
    """Unpack a .deb with dpkg -x into dest; returns the package version."""
    dest.mkdir(parents=True, exist_ok=True)
    subprocess.run(["dpkg", "-x", str(deb), str(dest)], check=True)
    return subprocess.run(
        ["dpkg-deb", "-f", str(deb), "Version"], check=True, capture_output=True, text=True
    ).stdout.strip()


def list_images(root: Path) -> list[str]:
    """Paths (relative, posix) of regular image-like files under root; symlinks are aliases and skipped."""
    suffixes = RASTER_SUFFIXES + VECTOR_SUFFIXES
    return sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.suffix.lower() in suffixes and p.is_file() and not p.is_symlink()
    )


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --------------------------------------------------------------------------------------------------
# Review sheets


def contact_sheet(items: Sequence[tuple[Image.Image, str]], columns: int = 5, tile: int = 300) -> Image.Image:
    """Grid of thumbnails with a caption under each, for checking the photo filter by eye."""
    font = ImageFont.load_default()
    caption_h = 44
    rows = max(1, math.ceil(len(items) / columns))
    sheet = Image.new("RGB", (columns * tile, rows * (tile + caption_h)), "white")
    draw = ImageDraw.Draw(sheet)
    for k, (image, caption) in enumerate(items):
        x, y = (k % columns) * tile, (k // columns) * (tile + caption_h)
        thumb = ImageOps.contain(image, (tile - 6, tile - 6))
        sheet.paste(thumb, (x + (tile - thumb.width) // 2, y + (tile - thumb.height) // 2))
        for n, line in enumerate(caption.splitlines()[:3]):
            draw.text((x + 4, y + tile + 2 + 14 * n), line[:48], fill="black", font=font)
    return sheet


# --------------------------------------------------------------------------------------------------
# The build


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
    licence: str = "unknown"  # from debian/copyright
    copyright: str = ""  # holder line from debian/copyright
    author: str = ""  # from upstream metadata (plasma), when it names one
    upstream_licence: str = ""  # from upstream metadata (plasma), when it names one


def survey_package(package: str, root: Path, result: PackageResult) -> list[Picture]:
    """Candidates of one unpacked package, grouped, with a photo decision for each group."""
    candidates: list[Candidate] = []
    files = list_images(root)
    result.files = len(files)
    for rel in files:
        reason = name_rule(rel)
        if reason is None:
            with Image.open(root / rel) as image:
                reason = size_rule(image.width, image.height)
                if reason is None:
                    size = (root / rel).stat().st_size
                    thumb = thumbnail_bytes(image)
                    candidates.append(Candidate(package, rel, image.width, image.height, size, thumb))
        if reason is not None:
            result.dropped[f"{package}:{rel}"] = reason
    pictures = []
    for group in group_duplicates(candidates):
        best = candidates[largest(candidates, group)]
        picture_id = f"{package}:{picture_name(best.path)}"
        with Image.open(root / best.path) as image:
            stats = image_stats(image)
        photo, reason = is_photo(stats)
        if picture_id in PHOTO_OVERRIDES:
            photo, why = PHOTO_OVERRIDES[picture_id]
            reason = f"manual: {why} (rules said: {reason})"
        pictures.append(
            Picture(
                picture_id,
                package,
                best.path,
                root / best.path,
                best.width,
                best.height,
                stats,
                photo,
                reason,
            )
        )
        for i in group:
            if candidates[i] is not best:
                result.dropped[f"{package}:{candidates[i].path}"] = f"duplicate of {best.path}"
    result.pictures = len(pictures)
    return pictures


def write_review(pictures: Sequence[Picture], review_dir: Path) -> None:
    """Contact sheets of the pictures judged photo and not photo, captioned with id and statistics."""
    review_dir.mkdir(parents=True, exist_ok=True)
    for label, keep in (("photos", True), ("not_photos", False)):
        chosen = [p for p in pictures if p.photo == keep]
        for page in range(0, max(1, len(chosen)), 25):
            items = []
            for p in chosen[page : page + 25]:
                with Image.open(p.abs_path) as image:
                    thumb = ImageOps.contain(to_srgb(image), (300, 300))
                s = p.stats
                caption = (
                    f"{p.id}\nflat={s.flat:.2f} tex={s.texture:.2f} corr={s.channel_corr:.2f}\n{p.reason}"
                )
                items.append((thumb, caption))
            contact_sheet(items).save(review_dir / f"{label}_{page // 25 + 1}.png")


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


LICENCE_URLS = {
    "GPL-2+": "https://www.gnu.org/licenses/old-licenses/gpl-2.0.html",
    "CC-BY-4.0": "https://creativecommons.org/licenses/by/4.0/",
    "CC-BY-SA-3.0": "https://creativecommons.org/licenses/by-sa/3.0/",
    "CC-BY-SA-4.0": "https://creativecommons.org/licenses/by-sa/4.0/",
    "CC0-1.0": "https://creativecommons.org/publicdomain/zero/1.0/",
}


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
`scripts/build_wallpaper_dataset.py`. Part of dfnet, under dfnet's licence.

Both files are rebuilt by `.venv/bin/python scripts/build_wallpaper_dataset.py --examples examples`.
"""
    (examples_dir / "LICENSE.md").write_text(text, encoding="utf-8")
    return None


def survey(
    packages: Sequence[str], cache_dir: Path, unpack_dir: Path
) -> tuple[list[PackageResult], list[Picture]]:
    """Fetch, unpack and judge every package; a package apt cannot fetch is recorded and skipped."""
    results: list[PackageResult] = []
    pictures: list[Picture] = []
    for package in packages:
        result = PackageResult(package)
        results.append(result)
        try:
            deb = apt_download(package, cache_dir)
        except RuntimeError as exc:
            result.available, result.error = False, str(exc)
            print(f"{package}: not available ({exc})", file=sys.stderr)
            continue
        root = unpack_dir / package
        result.version = unpack(deb, root)
        copyright_file = root / "usr/share/doc" / package / "copyright"
        info = parse_copyright(copyright_file.read_text(encoding="utf-8", errors="replace"))
        for picture in survey_package(package, root, result):
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
    return results, pictures


def manifest_row(picture: Picture, split: str, name: str, size: tuple[int, int]) -> dict[str, str | int]:
    """One manifest.csv row (MANIFEST_FIELDS) for a written photo."""
    return {
        "split": split,
        "file": f"{split}/{name}.jpg",
        "package": picture.package,
        "source_path": "/" + picture.path,
        "width": size[0],
        "height": size[1],
        "licence": picture.licence,
        "sha256": sha256_file(picture.abs_path),
        "copyright": picture.copyright,
        "author": picture.author or picture.copyright,
        "upstream_licence": picture.upstream_licence,
    }


def build(args: argparse.Namespace) -> int:
    """Fetch, filter, split and write the data set (and optionally the examples); returns an exit code."""
    out: Path = args.out
    with tempfile.TemporaryDirectory(prefix="wallpapers-") as tmp:
        results, pictures = survey(args.packages, args.cache_dir, Path(tmp))
        if args.review:
            write_review(pictures, out / "review")
        rows = []
        for picture in (p for p in pictures if p.photo):
            name = output_name(picture.package, picture_name(picture.path))
            split = split_of(f"{name}.jpg", args.val_permille)
            rows.append(manifest_row(picture, split, name, write_images(picture, out, split, name)))
        if args.examples:
            error = write_examples(pictures, args.examples, args.val_permille)
            if error:
                print(error, file=sys.stderr)
                return 1
    rows.sort(key=lambda r: str(r["file"]))
    write_manifest(out / "manifest.csv", rows)
    write_report(out / "report.json", results, rows, pictures, args)
    print_summary(results, rows)
    return 0


def write_manifest(path: Path, rows: Iterable[dict]) -> None:
    """manifest.csv with MANIFEST_FIELDS columns."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=MANIFEST_FIELDS)
        writer.writeheader()
        writer.writerows(rows)


def write_report(
    path: Path,
    results: Sequence[PackageResult],
    rows: Sequence[dict],
    pictures: Sequence[Picture],
    args: argparse.Namespace,
) -> None:
    """report.json: package versions, what was kept and dropped and why, per-picture statistics, tool versions."""
    report = {
        "packages": [asdict(r) for r in results],
        "counts": dict(Counter(r["split"] for r in rows)),
        "licences": dict(Counter(r["licence"] for r in rows)),
        "pictures": {
            p.id: {
                "path": p.path,
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
            for p in pictures
        },
        "settings": {
            "short_side": SHORT_SIDE,
            "eval_side": EVAL_SIDE,
            "jpeg_quality": JPEG_QUALITY,
            "val_permille": args.val_permille,
        },
        "versions": {"python": platform.python_version(), "pillow": PIL.__version__, "numpy": np.__version__},
    }
    path.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def print_summary(results: Sequence[PackageResult], rows: Sequence[dict]) -> None:
    """Per-package counts (files, pictures after duplicates, photos kept, pictures dropped), splits, licences."""
    print(f"{'package':28} {'version':12} {'files':>5} {'pictures':>8} {'kept':>4} {'dropped':>7}")
    for r in results:
        if not r.available:
            print(f"{r.package:28} UNAVAILABLE: {r.error}")
            continue
        dropped = r.pictures - len(r.kept)
        print(f"{r.package:28} {r.version:12} {r.files:5d} {r.pictures:8d} {len(r.kept):4d} {dropped:7d}")
    counts = Counter(r["split"] for r in rows)
    print(f"photos: train {counts['train']}, val {counts['val']}")
    for licence, n in sorted(Counter(r["licence"] for r in rows).items()):
        print(f"  {licence}: {n}")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--out", type=Path, default=Path("data/wallpapers"), help="output folder (default data/wallpapers)"
    )
    parser.add_argument(
        "--cache-dir", type=Path, default=Path("data/cache/debs"), help="where .deb files are downloaded"
    )
    parser.add_argument("--packages", nargs="+", default=list(PACKAGES), help="Debian packages to read")
    parser.add_argument("--val-permille", type=int, default=VAL_PERMILLE, help="validation share in 1/1000")
    parser.add_argument("--review", action="store_true", help="also write contact sheets to OUT/review/")
    parser.add_argument(
        "--examples", type=Path, default=None, help="also write photo.png, mask.png, LICENSE.md here"
    )
    parser.add_argument("--clean", action="store_true", help="delete OUT before building")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point."""
    args = parse_args(argv)
    if args.clean and args.out.exists():
        shutil.rmtree(args.out)
    previous_limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = 200_000_000  # the largest wallpapers are about 18 MP; this only guards bombs
    try:
        return build(args)
    finally:
        Image.MAX_IMAGE_PIXELS = previous_limit


if __name__ == "__main__":
    sys.exit(main())
