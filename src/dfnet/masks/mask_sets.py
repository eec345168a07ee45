"""Mask sets: PNG files (white = hole) plus ``index.csv`` (``file,hole_ratio,bin``) on disk, and compact
in-memory sets (:class:`PackedMasks`) for training."""

from __future__ import annotations

import csv
import errno
import io
import os
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import cv2
import numpy as np

from dfnet.files import atomic_write, atomic_write_text
from dfnet.imageio import hole_ratio, load_mask
from dfnet.masks.bins import ALL_BINS, bin_of, mask_shape
from dfnet.masks.strokes import StrokeConfig, generate_masks

INDEX_FILE = "index.csv"
INDEX_COLUMNS = ("file", "hole_ratio", "bin")
MASK_SUFFIXES = (".png", ".bmp", ".jpg", ".jpeg", ".webp", ".tif", ".tiff")


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
            height, width = mask_shape(size)
            wh = (width, height)
        return cls(load_mask(record.path, size=wh) for record in records)

    @classmethod
    def from_dir(cls, path_or_dir: str | os.PathLike, size: int | Sequence[int] | None = None) -> PackedMasks:
        """Load a mask set directory (index.csv or plain mask images)."""
        records = read_mask_index(path_or_dir)
        if not records:
            raise ValueError(f"{path_or_dir}: the mask set is empty")
        return cls.from_records(records, size)
