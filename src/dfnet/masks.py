"""Hole masks: the paper's hole-ratio bins, a free-form stroke generator, mask sets and training mask sources.

Masks are ``bool`` arrays of shape (H, W) with ``True`` = hole (white in files), as everywhere in dfnet.

* :func:`generate_mask` draws one DeepFill v2 style free-form mask (strokes of connected segments with
  alternately reflected turns, round joints, random flips), optionally inside one of the five paper bins.
  Everything random comes from the ``numpy.random.Generator`` passed in; vertices are rounded to whole
  pixels and drawn with OpenCV's integer line/circle rasteriser, so a seed gives the same masks on any
  machine.
* :func:`generate_masks` / :func:`write_mask_set` make a balanced mask set (PNG files + ``index.csv`` with
  columns ``file,hole_ratio,bin``); :func:`read_mask_index` reads one back.
* :class:`MaskSource` is what a training data set draws masks from: :class:`GeneratedMaskSource` (strokes on
  the fly) or :class:`MaskSetSource` (a fixed set with this project's augmentation, or the paper's:
  :func:`paper_augment_mask`), chosen by a :class:`MaskConfig`. The paper's own set is :data:`PAPER_MASK_COUNT` masks drawn with
  :data:`PAPER_STROKES` (``dfnet masks generate --paper``).
"""

from __future__ import annotations

import csv
import errno
import io
import math
import os
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import cv2
import numpy as np

from dfnet.files import atomic_write, atomic_write_text
from dfnet.imageio import hole_ratio, load_mask, resize_mask

# The five evaluation bins of the paper (Section 4.1), as [low, high) hole ratios.
HOLE_RATIO_BINS: tuple[tuple[float, float], ...] = (
    (0.0, 0.1),
    (0.1, 0.2),
    (0.2, 0.3),
    (0.3, 0.4),
    (0.4, 0.5),
)
ALL_BINS: tuple[int, ...] = tuple(range(len(HOLE_RATIO_BINS)))
INDEX_FILE = "index.csv"
INDEX_COLUMNS = ("file", "hole_ratio", "bin")
MASK_SUFFIXES = (".png", ".bmp", ".jpg", ".jpeg", ".webp", ".tif", ".tiff")
REFERENCE_SIDE = 256  # stroke widths in StrokeConfig are pixels at this side and scale with the mask


def bin_label(index: int) -> str:
    """'[10%, 20%)' style label of a bin."""
    low, high = HOLE_RATIO_BINS[index]
    return f"[{low:.0%}, {high:.0%})"


def bin_of(ratio: float) -> int | None:
    """Index of the paper bin holding ``ratio``, or None when it lies outside [0, 50%)."""
    for i, (low, high) in enumerate(HOLE_RATIO_BINS):
        if low <= ratio < high:
            return i
    return None


def parse_bins(text: str | Sequence[int] | None) -> tuple[int, ...] | None:
    """Validate bins given as '0,2,4' or a sequence of ints; None stays None (no bin constraint)."""
    if text is None:
        return None
    if isinstance(text, str):
        try:
            values = [int(part) for part in text.replace(" ", "").split(",") if part]
        except ValueError:
            raise ValueError(f"bins must be comma-separated integers 0..4, got {text!r}") from None
    else:
        values = [int(v) for v in text]
    if not values:
        raise ValueError("at least one bin is needed")
    bad = [v for v in values if v not in ALL_BINS]
    if bad:
        raise ValueError(f"bins must lie in 0..{len(HOLE_RATIO_BINS) - 1}, got {bad}")
    if len(set(values)) != len(values):
        raise ValueError(f"bins must not repeat, got {values}")
    return tuple(values)


def _ratio(hole_mask: np.ndarray) -> float:
    return cv2.countNonZero(hole_mask) / hole_mask.size


def _shape(size: int | Sequence[int]) -> tuple[int, int]:
    """(height, width) from a side or an (height, width) pair, as numpy shapes are written."""
    if isinstance(size, (int, np.integer)):
        height = width = int(size)
    else:
        height, width = (int(v) for v in size)
    if height < 8 or width < 8:
        raise ValueError(f"masks need at least 8x8 pixels, got {width}x{height}")
    return height, width


# --------------------------------------------------------------------------------------------------
# Free-form strokes


@dataclass(frozen=True)
class StrokeConfig:
    """DeepFill v2 stroke parameters; widths are pixels at a 256-pixel short side and scale with the mask."""

    min_strokes: int = (
        1  # strokes per mask without a target bin (with one, strokes are added until it is met)
    )
    max_strokes: int = 3
    min_vertices: int = 4  # vertices per stroke, inclusive range
    max_vertices: int = 11
    mean_angle: float = 2 * math.pi / 5  # segment direction; reflected (2*pi - angle) on alternate vertices
    angle_range: float = 2 * math.pi / 15
    # False: each turn in mean_angle ± angle_range; True (DeepFill v2): each stroke draws its own interval
    # [mean_angle - U(0, angle_range), mean_angle + U(0, angle_range)] once and every turn is drawn from it.
    angle_per_stroke: bool = False
    min_width: float = 12.0
    max_width: float = 40.0
    segment_length: float = 1 / 8  # mean segment length as a fraction of the diagonal (sigma = half of it)
    flip: bool = True  # random horizontal and vertical flips of the whole mask
    # Brush width multiplier per target bin, so small bins get thin strokes and [40%, 50%) needs few strokes.
    bin_width_scale: tuple[float, ...] = (0.5, 0.75, 1.0, 1.25, 1.5)
    min_hole_ratio: float = 0.01  # bin 0 masks hold at least this much hole

    def __post_init__(self) -> None:
        if not 1 <= self.min_strokes <= self.max_strokes:
            raise ValueError("need 1 <= min_strokes <= max_strokes")
        if not 2 <= self.min_vertices <= self.max_vertices:
            raise ValueError("need 2 <= min_vertices <= max_vertices")
        if not 0 < self.min_width <= self.max_width:
            raise ValueError("need 0 < min_width <= max_width")
        if len(self.bin_width_scale) != len(HOLE_RATIO_BINS) or min(self.bin_width_scale) <= 0:
            raise ValueError(f"bin_width_scale needs {len(HOLE_RATIO_BINS)} positive values")
        if self.segment_length <= 0 or self.angle_range < 0:
            raise ValueError("need segment_length > 0 and angle_range >= 0")
        if not 0 <= self.min_hole_ratio < HOLE_RATIO_BINS[0][1]:
            raise ValueError("min_hole_ratio must lie inside the first bin")


# The paper's training masks (Section 4.1: "1000 masks according to the method in [35]"): DeepFill v2 free-form
# strokes, 1-3 per mask, 4-11 segments each (5-12 vertices), one turning-angle interval per stroke, no bins.
PAPER_STROKES = StrokeConfig(min_vertices=5, max_vertices=12, angle_per_stroke=True)
PAPER_MASK_COUNT = 1000


class _Stroke:
    """One free-form stroke being drawn segment by segment (vertices rounded to whole pixels)."""

    def __init__(self, rng: np.random.Generator, height: int, width: int, brush: int, config: StrokeConfig):
        self.brush = brush
        self.points = [(int(rng.integers(0, width)), int(rng.integers(0, height)))]
        n_vertices = int(rng.integers(config.min_vertices, config.max_vertices + 1))
        mean_length = math.hypot(height, width) * config.segment_length
        x, y = self.points[0]
        if config.angle_per_stroke:
            low = config.mean_angle - float(rng.uniform(0, config.angle_range))
            high = config.mean_angle + float(rng.uniform(0, config.angle_range))
        for i in range(n_vertices - 1):
            if config.angle_per_stroke:
                angle = float(rng.uniform(low, high))
            else:
                angle = config.mean_angle + float(rng.uniform(-config.angle_range, config.angle_range))
            if i % 2 == 0:
                angle = 2 * math.pi - angle
            length = min(max(float(rng.normal(mean_length, mean_length / 2)), 0.0), 2 * mean_length)
            x = min(max(round(x + length * math.cos(angle)), 0), width - 1)
            y = min(max(round(y + length * math.sin(angle)), 0), height - 1)
            self.points.append((x, y))

    @property
    def n_segments(self) -> int:
        return len(self.points) - 1

    def draw_segment(self, canvas: np.ndarray, i: int) -> None:
        """Draw segment ``i`` with round joints (a filled circle at both ends) onto a uint8 canvas."""
        start, end = self.points[i], self.points[i + 1]
        cv2.line(canvas, start, end, 1, thickness=self.brush, lineType=cv2.LINE_8)
        for point in (start, end):
            cv2.circle(canvas, point, self.brush // 2, 1, thickness=-1, lineType=cv2.LINE_8)


def _brush(rng: np.random.Generator, height: int, width: int, scale: float, config: StrokeConfig) -> int:
    side = min(height, width) / REFERENCE_SIDE
    return max(1, int(rng.uniform(config.min_width, config.max_width) * side * scale))


def _flip(canvas: np.ndarray, rng: np.random.Generator, config: StrokeConfig) -> np.ndarray:
    if config.flip:
        if rng.random() < 0.5:
            canvas = canvas[:, ::-1]
        if rng.random() < 0.5:
            canvas = canvas[::-1, :]
    return np.ascontiguousarray(canvas, dtype=bool)


def _free_form(rng: np.random.Generator, height: int, width: int, config: StrokeConfig) -> np.ndarray:
    canvas = np.zeros((height, width), dtype=np.uint8)
    for _ in range(int(rng.integers(config.min_strokes, config.max_strokes + 1))):
        stroke = _Stroke(rng, height, width, _brush(rng, height, width, 1.0, config), config)
        for i in range(stroke.n_segments):
            stroke.draw_segment(canvas, i)
    return canvas


def _free_form_in_bin(
    rng: np.random.Generator, height: int, width: int, target_bin: int, config: StrokeConfig
) -> np.ndarray:
    """Add stroke segments until a random target ratio inside the bin is reached, never overshooting it.

    A segment that would push the mask past the bin's upper edge is dropped and a new stroke begins (or, if
    the mask is already inside the bin, the mask is finished), so every bin is reached without rejections.
    """
    low, high = HOLE_RATIO_BINS[target_bin]
    low = max(low, config.min_hole_ratio)
    target = float(rng.uniform(low, high))
    scale = config.bin_width_scale[target_bin]
    canvas = np.zeros((height, width), dtype=np.uint8)
    trial = canvas.copy()
    ratio = 0.0
    for _ in range(10_000):
        stroke = _Stroke(rng, height, width, _brush(rng, height, width, scale, config), config)
        for i in range(stroke.n_segments):
            np.copyto(trial, canvas)
            stroke.draw_segment(trial, i)
            trial_ratio = _ratio(trial)
            if trial_ratio >= high:
                if ratio >= low:
                    return canvas
                break  # too big a step: start another (random width) stroke
            canvas, trial, ratio = trial, canvas, trial_ratio
            if ratio >= target:
                return canvas
    raise RuntimeError(f"could not reach hole ratio bin {bin_label(target_bin)} at {width}x{height}")


def generate_mask(
    size: int | Sequence[int],
    rng: np.random.Generator,
    target_bin: int | None = None,
    config: StrokeConfig | None = None,
) -> np.ndarray:
    """One free-form hole mask, bool (H, W); ``size`` is a side or (height, width); optionally inside a bin.

    Without ``target_bin`` it is a plain DeepFill v2 mask (1-3 strokes); with one, strokes (widths scaled by
    ``config.bin_width_scale``) are added until the hole ratio lies in ``HOLE_RATIO_BINS[target_bin]``.
    """
    config = config or StrokeConfig()
    height, width = _shape(size)
    if target_bin is None:
        canvas = _free_form(rng, height, width, config)
    else:
        if target_bin not in ALL_BINS:
            raise ValueError(f"target_bin must lie in 0..{len(HOLE_RATIO_BINS) - 1}, got {target_bin}")
        canvas = _free_form_in_bin(rng, height, width, target_bin, config)
    return _flip(canvas, rng, config)


def mask_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of mask ``index`` in a set made from ``seed`` (independent streams, order-free)."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(index,))))


@dataclass(frozen=True)
class GeneratedMask:
    """A generated mask with its hole ratio and paper bin (None only for unbinned masks over 50%)."""

    index: int
    hole_mask: np.ndarray
    hole_ratio: float
    bin: int | None


def generate_masks(
    count: int,
    size: int | Sequence[int],
    seed: int = 0,
    bins: Sequence[int] | None = ALL_BINS,
    config: StrokeConfig | None = None,
) -> Iterator[GeneratedMask]:
    """Yield ``count`` masks balanced across ``bins`` (mask i goes to bins[i % len(bins)]); None = unbinned.

    Mask i depends only on (seed, i, its bin, size, config), so a longer set starts with the shorter one.
    """
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    bins = parse_bins(bins) if bins is not None else None
    for i in range(count):
        target = bins[i % len(bins)] if bins else None
        hole = generate_mask(size, mask_rng(seed, i), target, config)
        ratio = _ratio(hole.view(np.uint8))
        yield GeneratedMask(i, hole, ratio, bin_of(ratio))


# --------------------------------------------------------------------------------------------------
# Mask sets on disk: PNG files (white = hole) plus index.csv


@dataclass(frozen=True)
class MaskRecord:
    """One row of a mask index: ``file`` as written (relative to the index), its absolute ``path``."""

    file: str
    path: Path
    hole_ratio: float
    bin: int | None


def _index_path(path_or_dir: str | os.PathLike) -> Path:
    path = Path(path_or_dir)
    return path / INDEX_FILE if path.is_dir() else path


def write_mask_index(directory: str | os.PathLike, records: Iterable[MaskRecord]) -> Path:
    """Write ``index.csv`` (file,hole_ratio,bin) into ``directory`` atomically; returns its path."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(INDEX_COLUMNS)
    for record in records:
        writer.writerow(
            [record.file, repr(float(record.hole_ratio)), "" if record.bin is None else record.bin]
        )
    path = Path(directory) / INDEX_FILE
    atomic_write_text(path, buffer.getvalue())
    return path


def read_mask_index(path_or_dir: str | os.PathLike) -> list[MaskRecord]:
    """Mask records from an ``index.csv`` (or a directory holding one).

    A directory without an index is scanned instead: its mask images (sorted by name) are loaded and their
    hole ratios and bins computed, so any folder of user masks can serve as a mask set.
    """
    path = Path(path_or_dir)
    if path.is_dir() and not (path / INDEX_FILE).is_file():
        return scan_mask_dir(path)
    index = _index_path(path)
    if not index.is_file():
        raise FileNotFoundError(f"{index}: no such mask index")
    with open(index, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in INDEX_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(
                f"{index}: missing column(s) {', '.join(missing)} (need {','.join(INDEX_COLUMNS)})"
            )
        records = []
        for line, row in enumerate(reader, start=2):
            try:
                ratio = float(row["hole_ratio"])
                bin_index = int(row["bin"]) if row["bin"].strip() else None
            except ValueError:
                raise ValueError(f"{index}:{line}: bad hole_ratio or bin") from None
            records.append(MaskRecord(row["file"], (index.parent / row["file"]).resolve(), ratio, bin_index))
    return records


def scan_mask_dir(directory: str | os.PathLike) -> list[MaskRecord]:
    """Records for every mask image directly inside ``directory`` (ratios computed from the files)."""

    directory = Path(directory)
    files = sorted(p for p in directory.iterdir() if p.suffix.lower() in MASK_SUFFIXES and p.is_file())
    records = []
    for file in files:
        ratio = hole_ratio(load_mask(file))
        records.append(MaskRecord(file.name, file.resolve(), ratio, bin_of(ratio)))
    return records


class MaskSetExistsError(FileExistsError):
    """The output folder already holds a mask set (its index file) and overwriting was not asked for."""


def write_mask_set(
    out_dir: str | os.PathLike,
    count: int,
    size: int | Sequence[int],
    seed: int = 0,
    bins: Sequence[int] | None = ALL_BINS,
    config: StrokeConfig | None = None,
    overwrite: bool = False,
) -> list[MaskRecord]:
    """Generate a mask set into ``out_dir``: NNNNN.png (white = hole) and index.csv, balanced across ``bins``.

    Every file is written atomically and the index last, so the folder holds either a complete set
    or, after a failure (a full disk), none: the masks this call wrote are removed again.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(
            errno.ENOTDIR, "exists and is not a folder; name a folder for the mask set", str(out)
        )
    if (out / INDEX_FILE).exists():
        if not overwrite:
            raise MaskSetExistsError(f"{out / INDEX_FILE} already exists")
        previous = read_mask_index(out)
        (out / INDEX_FILE).unlink()  # from here on the folder is no complete set until the new index lands
        for old in previous:  # the previous set's masks; other files are left alone
            if old.path.parent == out.resolve():
                old.path.unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    digits = max(5, len(str(max(count - 1, 0))))
    records: list[MaskRecord] = []
    try:
        for mask in generate_masks(count, size, seed, bins, config):
            name = f"{mask.index:0{digits}d}.png"
            atomic_write(out / name, partial(_write_png, mask.hole_mask))
            records.append(MaskRecord(name, (out / name).resolve(), mask.hole_ratio, mask.bin))
        write_mask_index(out, records)
    except BaseException:
        for record in records:  # an unindexed half set would pass for a smaller complete one
            record.path.unlink(missing_ok=True)
        raise
    return records


def _write_png(hole_mask: np.ndarray, path: str) -> None:
    """Write a hole mask as an 8-bit grey PNG, white = hole (OpenCV's encoder: 4x faster than PIL's here)."""
    ok, encoded = cv2.imencode(".png", hole_mask.view(np.uint8) * np.uint8(255))
    if not ok:
        raise OSError(f"{path}: PNG encoding failed")
    with open(path, "wb") as f:
        f.write(encoded.tobytes())


def bin_counts(records: Iterable[MaskRecord]) -> dict[int | None, int]:
    """How many records fall in each bin (None = outside the paper bins), in bin order."""
    counts = Counter(r.bin for r in records)
    return {b: counts[b] for b in sorted(counts, key=lambda b: len(ALL_BINS) if b is None else b)}


# --------------------------------------------------------------------------------------------------
# Compact in-memory mask sets


class PackedMasks:
    """A list of bool masks stored bit-packed (1/8 of the memory), shared by DataLoader workers via fork."""

    def __init__(self, masks: Iterable[np.ndarray]):
        self._bits: list[np.ndarray] = []
        self._shapes: list[tuple[int, int]] = []
        for mask in masks:
            mask = np.asarray(mask, dtype=bool)
            if mask.ndim != 2:
                raise ValueError(f"masks must be (H, W), got {mask.shape}")
            self._bits.append(np.packbits(mask, axis=None))
            self._shapes.append(mask.shape)

    def __len__(self) -> int:
        return len(self._bits)

    def __iter__(self) -> Iterator[np.ndarray]:
        return (self[i] for i in range(len(self)))

    def __getitem__(self, index: int) -> np.ndarray:
        height, width = self._shapes[index]
        return np.unpackbits(self._bits[index], count=height * width).reshape(height, width).view(bool)

    @classmethod
    def from_records(
        cls, records: Sequence[MaskRecord], size: int | Sequence[int] | None = None
    ) -> PackedMasks:
        """Load the masks of an index; ``size`` (side or (height, width)) resizes them with nearest neighbour."""

        wh = None
        if size is not None:
            height, width = _shape(size)
            wh = (width, height)
        return cls(load_mask(record.path, size=wh) for record in records)

    @classmethod
    def from_dir(cls, path_or_dir: str | os.PathLike, size: int | Sequence[int] | None = None) -> PackedMasks:
        """Load a mask set directory (index.csv or plain mask images)."""
        records = read_mask_index(path_or_dir)
        if not records:
            raise ValueError(f"{path_or_dir}: the mask set is empty")
        return cls.from_records(records, size)


# --------------------------------------------------------------------------------------------------
# Augmentation of mask-set masks


@dataclass(frozen=True)
class MaskAugmentConfig:
    """Random changes applied to masks drawn from a fixed set during training (all keep masks binary)."""

    flip: bool = True  # random horizontal and vertical flips
    rotate90: bool = True  # random multiple of 90 degrees
    scale: tuple[float, float] = (0.8, 1.25)  # log-uniform zoom relative to covering the output
    translate: float = 0.1  # extra random shift, fraction of the output side (borders are reflected)
    morph: float = 0.008  # max dilation/erosion radius as a fraction of the output's short side

    def __post_init__(self) -> None:
        if not 0 < self.scale[0] <= self.scale[1]:
            raise ValueError("need 0 < scale[0] <= scale[1]")
        if not 0 <= self.translate <= 1 or not 0 <= self.morph < 0.1:
            raise ValueError("translate must lie in [0, 1] and morph in [0, 0.1)")

    def apply(self, hole_mask: np.ndarray, rng: np.random.Generator, size: int | Sequence[int]) -> np.ndarray:
        """:func:`augment_mask` with this configuration."""
        return augment_mask(hole_mask, rng, size, self)


def _warp(mask: np.ndarray, rng: np.random.Generator, height: int, width: int, config: MaskAugmentConfig):
    """Random zoom + crop/shift of a uint8 mask onto a (height, width) output, nearest neighbour."""
    src_h, src_w = mask.shape
    cover = max(height / src_h, width / src_w)
    zoom = cover * math.exp(rng.uniform(math.log(config.scale[0]), math.log(config.scale[1])))
    slack_x = max(src_w * zoom - width, 0) / 2 + config.translate * width
    slack_y = max(src_h * zoom - height, 0) / 2 + config.translate * height
    shift_x, shift_y = rng.uniform(-1, 1) * slack_x, rng.uniform(-1, 1) * slack_y
    matrix = np.array(
        [
            [zoom, 0, width / 2 - zoom * src_w / 2 + shift_x],
            [0, zoom, height / 2 - zoom * src_h / 2 + shift_y],
        ]
    )
    return cv2.warpAffine(
        mask, matrix, (width, height), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_REFLECT_101
    )


def _morph(mask: np.ndarray, rng: np.random.Generator, config: MaskAugmentConfig) -> np.ndarray:
    """Dilate or erode by a random radius up to ``config.morph`` of the side; never erode to nothing."""
    max_radius = round(config.morph * min(mask.shape))
    radius = int(rng.integers(-max_radius, max_radius + 1)) if max_radius > 0 else 0
    if radius == 0:
        return mask
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * abs(radius) + 1, 2 * abs(radius) + 1))
    changed = cv2.dilate(mask, kernel) if radius > 0 else cv2.erode(mask, kernel)
    return changed if cv2.countNonZero(changed) else mask


def augment_mask(
    hole_mask: np.ndarray,
    rng: np.random.Generator,
    size: int | Sequence[int] | None = None,
    config: MaskAugmentConfig | None = None,
) -> np.ndarray:
    """A randomly flipped/rotated/zoomed/shifted/dilated-or-eroded copy of a mask, bool (height, width)."""
    config = config or MaskAugmentConfig()
    height, width = _shape(size if size is not None else hole_mask.shape)
    mask = np.asarray(hole_mask, dtype=bool)
    if config.rotate90:
        mask = np.rot90(mask, int(rng.integers(0, 4)))
    if config.flip:
        if rng.random() < 0.5:
            mask = mask[:, ::-1]
        if rng.random() < 0.5:
            mask = mask[::-1, :]
    warped = _warp(np.ascontiguousarray(mask, dtype=np.uint8), rng, height, width, config)
    return _morph(warped, rng, config).astype(bool)


@dataclass(frozen=True)
class PaperAugmentConfig:
    """The paper's augmentation of set masks, as the released training code applies it to each mask it loads.

    The mask is resized to the image (nearest neighbour: masks stay binary), flipped left-right with
    probability 1/2, then warped by one random affine map about the image centre: rotation uniform in
    ±``degrees``, scale uniform in ``scale``, translation uniform in ±``translate`` of each side (whole
    pixels), horizontal shear uniform in ±``shear`` degrees. Pixels the warp brings in from outside the
    mask are known (no hole).
    """

    hflip: bool = True
    degrees: float = 20.0
    scale: tuple[float, float] = (0.5, 2.0)
    translate: float = 0.2
    shear: float = 20.0

    def __post_init__(self) -> None:
        if not 0 < self.scale[0] <= self.scale[1]:
            raise ValueError("need 0 < scale[0] <= scale[1]")
        if not 0 <= self.translate <= 1 or not 0 <= self.degrees <= 180 or not 0 <= self.shear < 90:
            raise ValueError("need translate in [0, 1], degrees in [0, 180] and shear in [0, 90)")

    def apply(self, hole_mask: np.ndarray, rng: np.random.Generator, size: int | Sequence[int]) -> np.ndarray:
        """:func:`paper_augment_mask` with this configuration."""
        return paper_augment_mask(hole_mask, rng, size, self)


def paper_affine(rng: np.random.Generator, height: int, width: int, config: PaperAugmentConfig) -> np.ndarray:
    """A random 2x3 affine matrix (output from input pixel coordinates) drawn as :class:`PaperAugmentConfig` says."""
    angle = math.radians(rng.uniform(-config.degrees, config.degrees))
    shift_x = round(rng.uniform(-config.translate * width, config.translate * width))
    shift_y = round(rng.uniform(-config.translate * height, config.translate * height))
    zoom = rng.uniform(config.scale[0], config.scale[1])
    shear = math.radians(rng.uniform(-config.shear, config.shear))
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    linear = zoom * rotation @ np.array([[1.0, -math.tan(shear)], [0.0, 1.0]])
    centre = np.array([(width - 1) / 2, (height - 1) / 2])
    offset = centre + np.array([shift_x, shift_y]) - linear @ centre
    return np.hstack([linear, offset[:, None]])


def paper_augment_mask(
    hole_mask: np.ndarray,
    rng: np.random.Generator,
    size: int | Sequence[int],
    config: PaperAugmentConfig | None = None,
) -> np.ndarray:
    """The paper's augmentation of one set mask (see :class:`PaperAugmentConfig`), bool (height, width)."""

    config = config or PaperAugmentConfig()
    height, width = _shape(size)
    mask = resize_mask(np.asarray(hole_mask, dtype=bool), (width, height)).view(np.uint8)
    if config.hflip and rng.random() < 0.5:
        mask = mask[:, ::-1]
    matrix = paper_affine(rng, height, width, config)
    warped = cv2.warpAffine(
        np.ascontiguousarray(mask),
        matrix,
        (width, height),
        flags=cv2.INTER_NEAREST,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
    return warped.astype(bool)


# --------------------------------------------------------------------------------------------------
# Training mask sources and their configuration


@runtime_checkable
class MaskSource(Protocol):
    """Anything that draws a training hole mask of a given (height, width) from a generator."""

    def sample(self, rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
        """A bool (height, width) hole mask."""
        ...


class GeneratedMaskSource:
    """Free-form masks generated on the fly, each in a bin drawn uniformly from ``bins`` (None = unbinned)."""

    def __init__(self, bins: Sequence[int] | None = ALL_BINS, strokes: StrokeConfig | None = None):
        self.bins = parse_bins(bins) if bins is not None else None
        self.strokes = strokes or StrokeConfig()

    def sample(self, rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
        """A fresh free-form mask."""
        target = self.bins[int(rng.integers(0, len(self.bins)))] if self.bins else None
        return generate_mask(size, rng, target, self.strokes)


MaskAugment = MaskAugmentConfig | PaperAugmentConfig


class MaskSetSource:
    """Masks drawn uniformly from a fixed set (the paper: 1000 masks), each augmented when drawn: this
    project's :class:`MaskAugmentConfig` (default) or the paper's :class:`PaperAugmentConfig`."""

    def __init__(self, masks: PackedMasks | Sequence[np.ndarray], augment: MaskAugment | None = None):
        self.masks = masks if isinstance(masks, PackedMasks) else PackedMasks(masks)
        if len(self.masks) == 0:
            raise ValueError("the mask set is empty")
        self.augment = augment or MaskAugmentConfig()

    @classmethod
    def from_dir(cls, path_or_dir: str | os.PathLike, augment: MaskAugment | None = None) -> MaskSetSource:
        """Load a mask set directory (index.csv or plain mask images) at its own resolution."""
        return cls(PackedMasks.from_dir(path_or_dir), augment)

    def sample(self, rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
        """An augmented mask of the set, resized to ``size``."""
        return self.augment.apply(self.masks[int(rng.integers(0, len(self.masks)))], rng, size)


def sample_hole_ratios(
    source: MaskSource, size: int | Sequence[int], draws: int, seed: int = 0
) -> np.ndarray:
    """Hole ratios of ``draws`` masks drawn from ``source`` at ``size`` (one seeded generator): its histogram."""
    rng = np.random.Generator(np.random.PCG64(seed))
    shape = _shape(size)
    return np.array([_ratio(source.sample(rng, shape).view(np.uint8)) for _ in range(draws)])


MASK_SOURCES = ("generate", "set", "paper_set")


@dataclass
class MaskConfig:
    """Where training masks come from: ``source="generate"`` (on the fly), ``"set"`` (``mask_dir``, this
    project's augmentation ``augment``) or ``"paper_set"`` (``mask_dir``, the paper's ``paper_augment``)."""

    source: str = "generate"
    mask_dir: str | None = (
        None  # a mask set directory (index.csv or mask images) for source="set"/"paper_set"
    )
    bins: tuple[int, ...] | None = ALL_BINS  # bins drawn from when generating (and for generated val sets)
    strokes: StrokeConfig = field(default_factory=StrokeConfig)
    augment: MaskAugmentConfig = field(default_factory=MaskAugmentConfig)
    paper_augment: PaperAugmentConfig = field(default_factory=PaperAugmentConfig)

    def __post_init__(self) -> None:
        if self.source not in MASK_SOURCES:
            raise ValueError(f"mask source must be one of {', '.join(MASK_SOURCES)}, got {self.source!r}")
        if self.source in ("set", "paper_set") and not self.mask_dir:
            raise ValueError(f"mask source {self.source!r} needs mask_dir")
        self.bins = parse_bins(self.bins)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (for YAML/JSON and checkpoints)."""
        return asdict(self)


def build_mask_source(config: MaskConfig) -> MaskSource:
    """The training mask source a :class:`MaskConfig` describes."""
    if config.source in ("set", "paper_set"):
        augment = config.paper_augment if config.source == "paper_set" else config.augment
        return MaskSetSource.from_dir(config.mask_dir, augment)
    return GeneratedMaskSource(config.bins, config.strokes)
