"""Config values checked against the type annotations of their dataclass fields.

YAML and ``key=value`` overrides can hold anything; this turns a value of the wrong type into one
line naming the field (``trainer.max_epochs must be an integer, got 'abc'``) when the config is
loaded, instead of a failure without a name once training has started.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping, MutableMapping
from typing import Any, Literal, Union


class ConfigTypeError(ValueError):
    """A config value whose type does not match its field (one-line, user-facing message)."""


def _is_union(expected: Any) -> bool:
    return typing.get_origin(expected) in (Union, types.UnionType)


def matches(value: Any, expected: Any) -> bool:
    """True when ``value`` fits the annotation ``expected`` (ints count as floats; floats must be finite)."""
    origin, args = typing.get_origin(expected), typing.get_args(expected)
    if expected is Any:
        return True
    if expected is type(None) or expected is None:
        return value is None
    if _is_union(expected):
        return any(matches(value, arg) for arg in args)
    if origin is Literal:
        return value in args
    if expected is bool:
        return isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if expected is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if expected is str:
        return isinstance(value, str)
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            return False
        if origin is tuple and args and args[-1] is not Ellipsis:
            return len(value) == len(args) and all(matches(v, a) for v, a in zip(value, args, strict=True))
        return all(matches(v, args[0]) for v in value) if args else True
    if dataclasses.is_dataclass(expected):
        return isinstance(value, (Mapping, expected))
    if origin is dict or expected is dict:
        return isinstance(value, Mapping)
    return True  # a type this checker does not know: the dataclass itself decides


def describe(expected: Any) -> str:
    """How an error message names a type: 'an integer', 'a number or null', 'one of 'a', 'b''."""
    origin, args = typing.get_origin(expected), typing.get_args(expected)
    if _is_union(expected):
        return " or ".join(describe(arg) for arg in args)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (tuple, list):
        if origin is tuple and args and args[-1] is not Ellipsis:
            return f"a list of {len(args)} ({', '.join(describe(a) for a in args)})"
        return f"a list of {describe(args[0]).removeprefix('an ').removeprefix('a ')}s" if args else "a list"
    names = {bool: "true or false", int: "an integer", float: "a finite number", str: "text"}
    if expected in names:
        return names[expected]
    if expected is type(None) or expected is None:
        return "null"
    return "a mapping" if dataclasses.is_dataclass(expected) else getattr(expected, "__name__", str(expected))


def _takes_text_only(expected: Any) -> bool:
    """A field of type ``str`` (or ``str | None``) that has no numeric alternative."""
    args = typing.get_args(expected) if _is_union(expected) else (expected,)
    return str in args and not any(a in (int, float) for a in args)


def check_field_types(cls: type, values: MutableMapping[str, Any], section: str = "") -> None:
    """Raise ConfigTypeError naming ``section.field`` for the first value that does not fit its field.

    A number given for a text field is taken as its text (YAML reads ``precision: 32`` as a number).
    Keys that are not fields are left to the caller (which reports unknown options); fields that are
    dataclasses themselves are checked recursively when given as mappings.
    """
    hints = typing.get_type_hints(cls)
    for name, value in list(values.items()):
        if name not in hints:
            continue
        where = f"{section}.{name}" if section else name
        expected = hints[name]
        if _takes_text_only(expected) and isinstance(value, (int, float)) and not isinstance(value, bool):
            values[name] = value = str(value)
        if not matches(value, expected):
            raise ConfigTypeError(f"{where} must be {describe(expected)}, got {value!r}")
        if dataclasses.is_dataclass(expected) and isinstance(value, MutableMapping):
            check_field_types(expected, value, where)
