"""Bounded readers for text the tool parses from files it did not write (weights metadata, indexes).

Python's ``json`` recurses once per nesting level, so ``[`` repeated 100,000 times raises
RecursionError deep inside the parser. Reading through here checks the size and the nesting depth
first, with a loop rather than recursion, and turns every failure into a one-line ``ValueError``
that names where the text came from.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_JSON_DEPTH = 32
MAX_JSON_BYTES = 1024 * 1024  # a DFNet config is a few hundred bytes
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)


def json_depth(text: str) -> int:
    """The deepest nesting of arrays and objects in JSON ``text`` (brackets inside strings ignored)."""
    depth = deepest = 0
    for char in _STRING.sub('""', text):
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def read_json(
    text: str, source: str, max_depth: int = MAX_JSON_DEPTH, max_bytes: int = MAX_JSON_BYTES
) -> Any:
    """Parse JSON ``text`` from ``source`` (a file and field, for messages) within size and depth limits."""
    size = len(text.encode("utf-8", errors="replace"))
    if size > max_bytes:
        raise ValueError(f"{source}: {size:,} bytes of JSON, more than the {max_bytes:,} allowed")
    depth = json_depth(text)
    if depth > max_depth:
        raise ValueError(f"{source}: JSON nested {depth:,} levels deep, more than the {max_depth} allowed")
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(
            f"{source}: not valid JSON ({err.msg} at line {err.lineno} column {err.colno})"
        ) from None
