"""Benchmark data: the official Places365 validation set, downloaded and unpacked into the layout the
``places2`` config and ``dfnet eval`` read, and a check of a CelebA folder.

Places365 (Zhou et al.) publishes its archives with MD5 checksums at ``PLACES365_URL``; the high-resolution
validation archive ``val_large.tar`` (36,500 images) unpacks to ``val_large/Places365_val_XXXXXXXX.jpg``
and the Standard file lists (``filelist_places365-standard.tar``) hold ``places365_val.txt`` and
``places365_train_standard.txt``. Downloads resume (HTTP ``Range``), the checksum is verified before
anything is unpacked, and the images are unpacked into a hidden folder under ``--root`` that is renamed
to ``val_large`` only when complete. The archives are deleted once unpacked.

CelebA-HQ and the aligned CelebA have no stable direct download; ``check_celeba`` verifies a folder
obtained by hand (count, sizes, every file readable).
"""

from __future__ import annotations

import os
import tarfile
import tempfile
from collections import Counter
from pathlib import Path

from dfnet.download import DownloadError, download_lock, fetch_http, file_md5, partial_path, writable_folder

PLACES365_URL = "http://data.csail.mit.edu/places/places365/"
DATA_MIRROR_ENV = "DFNET_DATA_MIRROR"
# archive name -> MD5 published for it (the values torchvision's Places365 dataset checks as well)
PLACES365_ARCHIVES = {
    "filelist_places365-standard.tar": "35a0585fee1fa656440f3ab298f8479c",
    "val_large.tar": "9b71c4993ad89d2d8bcbdc4aef38042f",
}
PLACES365_VAL_COUNT = 36_500
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
CELEBA_LAYOUTS = {  # (image count, typical size) of the two CelebA packages the configs can read
    "CelebA-HQ": (30_000, None),
    "CelebA aligned (img_align_celeba)": (202_599, (178, 218)),
}


def _archive(root: Path, name: str, progress: bool) -> Path:
    """Download one Places365 archive into ``root`` (resuming) and check its MD5; returns its path."""
    base = os.environ.get(DATA_MIRROR_ENV) or PLACES365_URL
    url = base.rstrip("/") + "/" + name
    target = root / name
    part = partial_path(target)
    if not target.is_file():
        fetch_http(url, part, progress)
        os.replace(part, target)
    digest = file_md5(target)
    if digest != PLACES365_ARCHIVES[name]:
        target.unlink()
        raise DownloadError(
            f"{url}: checksum mismatch (MD5 {digest}, published {PLACES365_ARCHIVES[name]}); file refused"
        )
    return target


def _members(archive: tarfile.TarFile, wanted) -> list[tarfile.TarInfo]:
    return [m for m in archive.getmembers() if m.isfile() and wanted(m.name)]


def _extract(archive_path: Path, into: Path, wanted) -> list[Path]:
    """Extract the regular files of ``archive_path`` that ``wanted(name)`` accepts (the tar 'data' filter)."""
    try:
        with tarfile.open(archive_path) as archive:
            members = _members(archive, wanted)
            archive.extractall(into, members=members, filter="data")
    except (tarfile.TarError, EOFError) as err:
        raise DownloadError(f"{archive_path}: damaged archive ({err})") from None
    return [into / m.name for m in members]


def _is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_SUFFIXES)


def download_places365_val(root: str | os.PathLike = "data/places2", progress: bool = True) -> Path:
    """Download, verify and unpack the Places365 validation set under ``root``; returns ``root/val_large``.

    Also writes the Standard lists (``places365_val.txt``, ``places365_train_standard.txt``, categories)
    into ``root``. Already unpacked: nothing is downloaded.
    """
    root = Path(root)
    images = root / "val_large"
    with writable_folder(root), download_lock(images):
        if not (root / "places365_val.txt").is_file():
            lists = _archive(root, "filelist_places365-standard.tar", progress)
            with tempfile.TemporaryDirectory(dir=root, prefix=".lists-") as tmp:
                for path in _extract(lists, Path(tmp), lambda name: name.endswith(".txt")):
                    os.replace(path, root / path.name)
            lists.unlink()
        if images.is_dir():
            return images
        archive = _archive(root, "val_large.tar", progress)
        with tempfile.TemporaryDirectory(dir=root, prefix=".val_large-") as tmp:
            extracted = _extract(archive, Path(tmp), _is_image)
            unpacked = Path(tmp) / "val_large"
            if not extracted or not unpacked.is_dir():
                raise DownloadError(f"{archive}: no val_large/ images in the archive")
            os.replace(unpacked, images)
        archive.unlink()
    return images


def _image_size(path: Path) -> tuple[int, int] | None:
    """(width, height) of a readable image, None when it cannot be decoded."""
    from PIL import Image

    try:
        with Image.open(path) as picture:
            size = picture.size
            picture.verify()
        return size
    except Exception:  # any unreadable or damaged file counts the same
        return None


def check_celeba(folder: str | os.PathLike, expected: int | None = None) -> str:
    """Check a CelebA folder (image count, sizes, every file readable); returns a one-line report.

    Raises ValueError (one line) when the folder holds no images, an image cannot be read, or the count
    differs from ``expected``.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder}: no such folder")
    files = sorted(p for p in folder.iterdir() if p.is_file() and _is_image(p.name))
    if not files:
        raise ValueError(f"{folder}: no images (.jpg, .png) in the folder")
    sizes = {path: _image_size(path) for path in files}
    broken = [path.name for path, size in sizes.items() if size is None]
    if broken:
        raise ValueError(
            f"{folder}: {len(broken)} of {len(files)} images cannot be read (first: {broken[0]})"
        )
    if expected is not None and len(files) != expected:
        raise ValueError(f"{folder}: {len(files)} images, expected {expected}")
    counts = Counter(sizes.values()).most_common(3)
    shown = ", ".join(f"{w}x{h} ({n})" for (w, h), n in counts)
    layout = next(
        (
            name
            for name, (count, size) in CELEBA_LAYOUTS.items()
            if count == len(files) and size in (None, counts[0][0])
        ),
        None,
    )
    known = f"; matches {layout}" if layout else ""
    return f"{folder}: {len(files)} images, all readable; sizes {shown}{known}"


__all__ = ["PLACES365_ARCHIVES", "PLACES365_URL", "check_celeba", "download_places365_val"]
