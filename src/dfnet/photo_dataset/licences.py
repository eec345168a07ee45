"""Licences of packaged files: DEP-5 and free-form debian/copyright files, plasma's upstream metadata."""

from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from dfnet.photo_dataset.photos import ARCHIVE_MARK, PLASMA_DIR


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


def source_tree_path(path: str) -> str:
    """An installed path with any game archive left out ("base/0textures.pk3!/textures/x.png" ->
    "base/textures/x.png"), as the source tree that copyright files describe has the files unpacked."""
    return re.sub(r"[^/]+" + re.escape(ARCHIVE_MARK), "", path)


def pattern_matches(pattern: str, path: str) -> bool:
    """Does a copyright 'Files:' pattern (source-tree relative) match an installed file path?

    Installed paths differ from source paths by a prefix (usr/share/backgrounds/ vs 16.04/), so the
    pattern is matched against the same number of trailing path components; a pattern whose file
    name has no wildcard also matches any file of that name, except inside a game archive, whose
    folders are the source tree's (and whose file names repeat from folder to folder).
    """
    pattern = pattern.removeprefix("./")
    parts = PurePosixPath(source_tree_path(path)).parts
    pattern_parts = PurePosixPath(pattern).parts
    tail = "/".join(parts[-len(pattern_parts) :])
    if fnmatch.fnmatchcase(tail, pattern):
        return True
    if ARCHIVE_MARK in path:
        return False
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
    match = PLASMA_DIR.search(path)
    if not match:
        return "", ""
    folder = root / path[: match.start(1)] / match.group(1)
    for name in ("metadata.json", "metadata.desktop"):
        if (folder / name).is_file():
            return plasma_metadata((folder / name).read_text(encoding="utf-8", errors="replace"))
    return "", ""
