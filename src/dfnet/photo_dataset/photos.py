"""Which files are one picture, and which pictures are photographs: names, duplicates, pixel statistics."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

import numpy as np
from PIL import Image

RASTER_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".tga")  # games ship their textures as TGA
VECTOR_SUFFIXES = (".svg", ".svgz")
MIN_SHORT_SIDE = 768  # smaller files are previews, phone crops or tiles, never a wallpaper's main picture
TEXTURE_MIN_SHORT_SIDE = 512  # textures are tiles: written at their native 512 or reduced, never enlarged
STATS_CROP = 1024  # photo statistics look at the central 1024x1024 pixels at native resolution
CORR_CLIP = 4.0  # residuals are clipped to +-4 before correlating channels, so that edges count little
THUMB_SIDE = 16  # duplicate detection compares 16x16 RGBA thumbnails ...
DUPLICATE_THUMB_DIFF = 4.0  # ... whose mean absolute difference (0-255) is at most this
ASPECT_TOLERANCE = 0.01  # ... of pictures whose aspect ratios differ by at most 1 %


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
PLASMA_DIR = re.compile(r"usr/share/wallpapers/([^/]+)/contents/")
ARCHIVE_DIR_SUFFIX = "!"  # a game archive is unpacked next to itself, into "<archive path>!"
ARCHIVE_MARK = ARCHIVE_DIR_SUFFIX + "/"  # so a file inside has the path "<archive path>!/<member path>"
# Material maps that are not photographs: normal, bump, height, gloss, specular, glow maps (UFO:AI
# abbreviates them nm, sm, gm) and the player-colour masks (pants/shirt) of Quake-engine games.
_MAP_SUFFIX = re.compile(
    r"[_-](norm|normal|nm|bump|height|disp|gloss|spec|specular|sm|glow|gm|luma|pants|shirt|reflect|ao|mask)$",
    re.IGNORECASE,
)


def picture_name(path: str) -> str:
    """Name of the picture a file shows, shared by its resolution and light/dark variants."""
    match = PLASMA_DIR.search(path)
    if match:  # plasma: one folder per wallpaper, files named by resolution
        return match.group(1)
    if ARCHIVE_MARK in path:  # game archives reuse file names in different folders: keep the folders
        member = PurePosixPath(path.split(ARCHIVE_MARK, 1)[1])
        return _SHADE_SUFFIX.sub("", "/".join(member.parent.parts[1:] + (member.stem,)))
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


def texture_name_rule(path: str) -> str | None:
    """name_rule, and also drop material maps (normal, gloss, glow, ... maps) named by their suffix and,
    in game archives, files at the top of ``textures/``: Quake-engine games keep materials in one folder
    per set and put the skins (UV atlases) of models there."""
    reason = name_rule(path)
    if reason is None:
        match = _MAP_SUFFIX.search(PurePosixPath(path).stem)
        if match:
            return f"{match.group(1).lower()} map"
        if ARCHIVE_MARK in path and len(PurePosixPath(path.split(ARCHIVE_MARK, 1)[1]).parts) == 2:
            return "model skin (not in a material set's folder)"
    return reason


def size_rule(width: int, height: int, min_short_side: int = MIN_SHORT_SIDE) -> str | None:
    """Reason to drop a raster file for its size (too small for a 512-short-side photo), or None."""
    if min(width, height) < min_short_side:
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


def same_picture_pairs(candidates: Sequence[Candidate]) -> list[tuple[int, int]]:
    """All pairs (i < j) for which same_picture holds, one row of comparisons at a time (game texture
    packages have thousands of candidates)."""
    if not candidates:
        return []
    thumbs = np.stack([np.frombuffer(c.thumb, np.uint8) for c in candidates]).astype(np.int16)
    aspects = np.array([c.aspect for c in candidates])
    pairs = []
    for i in range(len(candidates) - 1):
        others = np.arange(i + 1, len(candidates))
        others = others[np.abs(aspects[i] - aspects[others]) <= ASPECT_TOLERANCE * aspects[i]]
        diff = np.abs(thumbs[others] - thumbs[i]).mean(axis=1)
        pairs.extend((i, int(j)) for j in others[diff <= DUPLICATE_THUMB_DIFF])
    return pairs


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
    for i, j in same_picture_pairs(candidates):
        union(i, j)
    groups: dict[int, list[int]] = {}
    for i in range(len(candidates)):
        groups.setdefault(find(i), []).append(i)
    return sorted(groups.values())


def largest(candidates: Sequence[Candidate], group: Sequence[int]) -> int:
    """Index of the group member with most pixels, then the largest file, then the first index."""
    return min(group, key=lambda i: (-candidates[i].pixels, -candidates[i].file_size, i))


@dataclass(frozen=True)
class PhotoStats:
    """What is_photo decides on; computed by image_stats on a native-resolution centre crop."""

    alpha_used: bool  # some pixel is not fully opaque: a layer or sticker, not a photograph
    flat: float  # share of pixels whose noise residual is exactly 0: rendered flat fills and clean gradients
    texture: float  # share of 8x8 blocks with mean |residual| > 1: sensor noise or fine detail present
    channel_corr: float  # correlation of the red and blue residuals (each clipped to +-CORR_CLIP)
    camera: str  # EXIF "Make Model" when the file records a camera, else ""
    jpeg: bool  # stored as JPEG, as camera pipelines store photographs (renders come as PNG/WebP)
    chroma: float = 0.0  # mean over pixels of (largest - smallest channel): 0 for grey maps
    mean_rgb: tuple[float, float, float] = (0.0, 0.0, 0.0)  # mean colour: normal maps are (128, 128, 255)-ish


@dataclass(frozen=True)
class PhotoRule:
    """Thresholds of is_photo (chosen on this data, documented in docs/data.md)."""

    max_flat: float = 0.65
    min_texture: float = 0.35
    min_channel_corr: float = 0.35
    require_jpeg: bool = True  # scenes: renders come as PNG/WebP; textures: games store photos as TGA too
    min_chroma: float = 0.0  # below: a grey map (gloss, bump, height), not a colour photograph
    reject_normal_maps: bool = False


def looks_like_normal_map(mean_rgb: Sequence[float]) -> bool:
    """Mean colour of a tangent-space normal map: blue far above red and green, both near 128."""
    red, green, blue = mean_rgb
    return blue > max(red, green) + 60 and abs(red - 128) < 40 and abs(green - 128) < 40


def is_photo(stats: PhotoStats, rule: PhotoRule = PhotoRule()) -> tuple[bool, str]:
    """Photo or not from the statistics, with the reason (the first test that decided)."""
    if stats.alpha_used:
        return False, "uses transparency"
    if stats.flat > rule.max_flat:
        return False, f"flat fills ({stats.flat:.2f} > {rule.max_flat})"
    if rule.reject_normal_maps and looks_like_normal_map(stats.mean_rgb):
        return False, "normal map colours"
    if stats.chroma < rule.min_chroma:
        return False, f"grey ({stats.chroma:.2f} < {rule.min_chroma})"
    if stats.camera:
        return True, f"camera EXIF ({stats.camera})"
    if rule.require_jpeg and not stats.jpeg:
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
    chroma = float(np.mean(crop.max(axis=2).astype(np.int16) - crop.min(axis=2)))
    mean_rgb = tuple(float(v) for v in crop.reshape(-1, 3).mean(axis=0))
    return PhotoStats(
        alpha_used, flat, texture, corr, camera_of(image), image.format == "JPEG", chroma, mean_rgb
    )


@dataclass(frozen=True)
class KindRules:
    """The rules for one kind of source: which files are candidates, and which pictures are photos."""

    name_rule: Callable[[str], str | None]
    min_short_side: int
    photo: PhotoRule

    def size_rule(self, width: int, height: int) -> str | None:
        """size_rule with this kind's smallest short side."""
        return size_rule(width, height, self.min_short_side)


SCENE_RULES = KindRules(name_rule, MIN_SHORT_SIDE, PhotoRule())
TEXTURE_RULES = KindRules(
    texture_name_rule,
    TEXTURE_MIN_SHORT_SIDE,
    PhotoRule(max_flat=0.12, require_jpeg=False, min_chroma=4.0, reject_normal_maps=True),
)


def rules_for(kind: str) -> KindRules:
    """SCENE_RULES or TEXTURE_RULES for a source kind ("scene" or "texture")."""
    rules = {"scene": SCENE_RULES, "texture": TEXTURE_RULES}
    if kind not in rules:
        raise ValueError(f"unknown source kind {kind!r} (expected one of {', '.join(rules)})")
    return rules[kind]
