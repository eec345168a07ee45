"""Image file sets: folders, text lists (``path [label]`` per line) and the kinds manifest of a photo data set."""

from __future__ import annotations

import csv
import os
from pathlib import Path

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")


def find_images(root: str | os.PathLike) -> list[Path]:
    """All images under ``root`` (recursive; jpg, png, webp, bmp), sorted by relative path."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such image folder")
    found = []
    for directory, subdirs, names in os.walk(root, followlinks=True):
        subdirs.sort()
        found.extend(Path(directory, n) for n in sorted(names) if Path(n).suffix.lower() in IMAGE_SUFFIXES)
    return found


def _list_entry(line: str) -> str:
    """The path of a list line ``path [label]`` (a trailing integer label is dropped)."""
    parts = line.rsplit(maxsplit=1)
    if len(parts) == 2 and parts[1].lstrip("-").isdigit():
        return parts[0]
    return line


def read_image_list(list_file: str | os.PathLike, root: str | os.PathLike | None = None) -> list[Path]:
    """Image paths of a list file: one ``path [label]`` a line, blank and ``#`` lines skipped.

    Paths are relative to ``root`` (a leading '/' as in Places2 lists still means relative to ``root``);
    without ``root``, relative paths are relative to the list file's folder and absolute ones stay absolute.
    """
    list_file = Path(list_file)
    if not list_file.is_file():
        raise FileNotFoundError(f"{list_file}: no such image list")
    base = Path(root) if root is not None else list_file.parent
    paths = []
    with open(list_file, encoding="utf-8") as f:
        for raw in f:
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            entry = _list_entry(line)
            paths.append(base / entry.lstrip("/") if root is not None else base / entry)
    return paths


def manifest_kinds(manifest: Path) -> dict[str, str]:
    """{file name: kind ("scene" or "texture")} from a photo data set's manifest.csv (dfnet.photo_dataset)."""
    if not manifest.is_file():
        raise FileNotFoundError(f"{manifest}: texture_share needs the photo data set's manifest.csv")
    with manifest.open(newline="", encoding="utf-8") as f:
        return {Path(row["file"]).name: row.get("kind") or "scene" for row in csv.DictReader(f)}


def balance_kinds(files: list[Path], kinds: dict[str, str], texture_share: float) -> list[Path]:
    """Scenes and textures (by file name; unlisted files are scenes), the rarer kind repeated a whole
    number of times so that textures are about ``texture_share`` of the list."""
    textures = [f for f in files if kinds.get(f.name) == "texture"]
    scenes = [f for f in files if kinds.get(f.name) != "texture"]
    if not textures or not scenes:
        raise ValueError(f"texture_share needs scenes and textures; found {len(scenes)} and {len(textures)}")
    wanted_ratio = texture_share / (1 - texture_share)  # textures per scene
    if len(textures) / len(scenes) > wanted_ratio:
        return scenes * max(1, round(len(textures) / (wanted_ratio * len(scenes)))) + textures
    return scenes + textures * max(1, round(wanted_ratio * len(scenes) / len(textures)))
