"""Bounded readers for the YAML and JSON the tool parses: hostile input is refused fast, in one line.

Every YAML config and every JSON metadata string goes through here. Limits: file size, nesting
depth and, for YAML, the number of values once anchors and aliases are expanded, so a few hundred
bytes of nested aliases ("billion laughs") are refused in milliseconds instead of growing into
gigabytes. Messages name the file (or the source of a string) and never print the expanded value.
"""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path
from typing import Any, Protocol

import yaml

MAX_BYTES = 1 << 20  # a config file or metadata string; the largest shipped config is under 2 KB
MAX_DEPTH = 32  # nested mappings and lists; a config needs 4
MAX_VALUES = 100_000  # values after alias expansion; a config holds a few hundred


class SafeLoadError(ValueError):
    """A file or string refused by a bounded reader (one-line, user-facing message)."""


class Readable(Protocol):
    """A file path or a packaged resource (``importlib.resources`` traversable)."""

    def open(self, mode: str = ...) -> Any: ...


class _Loader(yaml.SafeLoader):
    """YAML safe loader that also reads ``2e-4`` (no dot) as a float, as people write learning rates."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def read_yaml(path: str | os.PathLike | Readable, source: str | None = None) -> Any:
    """The YAML document in ``path`` (a file or packaged resource), within the size, depth and alias limits.

    An empty file is refused: a config that says nothing is more likely a truncated copy than a wish
    for the defaults.
    """
    name = source or str(path)
    raw = _read_bytes(path, name)
    if not raw.strip():
        raise SafeLoadError(f"{name}: the file is empty")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise SafeLoadError(
            f"{name}: not a UTF-8 text file (byte 0x{raw[err.start]:02x} at offset {err.start})"
        ) from None
    return loads_yaml(text, name)


def _read_bytes(path: str | os.PathLike | Readable, name: str) -> bytes:
    if isinstance(path, (str, os.PathLike)):
        try:
            mode = os.stat(path).st_mode
        except OSError as err:
            raise SafeLoadError(f"{name}: cannot read ({err.strerror or err})") from None
        if not stat.S_ISREG(mode):  # a FIFO or device would block or never end
            raise SafeLoadError(f"{name}: not a regular file")
        path = Path(path)
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
    except OSError as err:
        raise SafeLoadError(f"{name}: cannot read ({err.strerror or err})") from None
    if len(raw) > MAX_BYTES:
        raise SafeLoadError(f"{name}: larger than {MAX_BYTES // 1024} KiB, too large for a config file")
    return raw


def loads_yaml(text: str, source: str) -> Any:
    """One YAML document from ``text`` (``source`` names it in errors), within the depth and alias limits."""
    if len(text) > MAX_BYTES:
        raise SafeLoadError(f"{source}: longer than {MAX_BYTES // 1024} KiB")
    loader = _Loader(text)
    try:
        node = loader.get_single_node()  # the node graph: an alias is one more reference, not a copy
        if node is None:
            return None
        _check_size(node, source)
        return loader.construct_document(node)
    except RecursionError:
        raise SafeLoadError(f"{source}: nested more than {MAX_DEPTH} levels deep") from None
    except yaml.YAMLError as err:
        raise SafeLoadError(f"{source}: not valid YAML ({_first_line(err)})") from None
    finally:
        loader.dispose()


def _check_size(root: yaml.Node, source: str) -> None:
    """Refuse a node graph deeper than MAX_DEPTH or holding more than MAX_VALUES values once expanded."""
    sizes: dict[int, int] = {}  # expanded value count per node, each node counted once however often aliased

    def size(node: yaml.Node, depth: int) -> int:
        if depth > MAX_DEPTH:
            raise SafeLoadError(f"{source}: nested more than {MAX_DEPTH} levels deep")
        if id(node) in sizes:
            return sizes[id(node)]
        sizes[id(node)] = MAX_VALUES + 1  # a node that contains itself expands without end
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(child, depth + 1) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(size(key, depth + 1) + size(value, depth + 1) for key, value in node.value)
        if total > MAX_VALUES:
            raise SafeLoadError(
                f"{source}: more than {MAX_VALUES:,} values once anchors and aliases are expanded"
            )
        sizes[id(node)] = total
        return total

    size(root, 0)


def read_json(text: str | bytes, source: str) -> Any:
    """The JSON value in ``text`` (metadata stored in a file), within the size and depth limits."""
    if len(text) > MAX_BYTES:
        raise SafeLoadError(f"{source}: longer than {MAX_BYTES // 1024} KiB")
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as err:
            raise SafeLoadError(
                f"{source}: not UTF-8 (byte 0x{text[err.start]:02x} at offset {err.start})"
            ) from None
    if json_depth(text) > MAX_DEPTH:
        raise SafeLoadError(f"{source}: nested more than {MAX_DEPTH} levels deep")
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as err:
        raise SafeLoadError(f"{source}: not valid JSON ({_first_line(err)})") from None


_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_JSON_BRACKET = re.compile(r"[\[\]{}]")


def json_depth(text: str) -> int:
    """How deeply the lists and objects of a JSON text nest (brackets inside strings ignored)."""
    depth = deepest = 0
    for bracket in _JSON_BRACKET.findall(_JSON_STRING.sub("", text)):
        depth += 1 if bracket in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def _first_line(err: BaseException) -> str:
    if isinstance(err, yaml.MarkedYAMLError) and err.problem and err.problem_mark:
        mark = err.problem_mark
        return f"{err.problem} at line {mark.line + 1}, column {mark.column + 1}"
    lines = str(err).strip().splitlines()
    return lines[0][:200] if lines else type(err).__name__
