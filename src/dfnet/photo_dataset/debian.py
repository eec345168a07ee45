"""Debian packages as a source of files: apt download, unpack with dpkg -x, list images, hash files."""

from __future__ import annotations

import hashlib
import subprocess
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from dfnet.photo_dataset.photos import ARCHIVE_DIR_SUFFIX, RASTER_SUFFIXES, VECTOR_SUFFIXES

ARCHIVE_SUFFIXES = (".pk3",)  # zip archives of Quake-engine games (Nexuiz, OpenArena)


@dataclass
class PackageResult:
    """What happened to one package, for report.json and the summary."""

    package: str
    kind: str = "scene"
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
    """Unpack a .deb with dpkg -x into dest, and the game archives in it; returns the package version."""
    dest.mkdir(parents=True, exist_ok=True)
    subprocess.run(["dpkg", "-x", str(deb), str(dest)], check=True)
    unpack_archives(dest)
    return subprocess.run(
        ["dpkg-deb", "-f", str(deb), "Version"], check=True, capture_output=True, text=True
    ).stdout.strip()


def unpack_archives(root: Path) -> list[Path]:
    """Extract every game archive (a .pk3 is a zip) under root to "<archive>!/", next to it.

    The files inside then have paths like ``usr/share/games/x/data/textures.pk3!/textures/wall.tga``
    (photos.ARCHIVE_MARK), which say where they come from.  Returns the archives extracted.
    """
    archives = sorted(p for p in root.rglob("*") if p.suffix.lower() in ARCHIVE_SUFFIXES and p.is_file())
    for archive in archives:
        with zipfile.ZipFile(archive) as zipped:
            zipped.extractall(Path(f"{archive}{ARCHIVE_DIR_SUFFIX}"))  # extractall keeps members inside
    return archives


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
