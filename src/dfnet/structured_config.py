"""Typed dataclass configs built from plain values (YAML, ``key=value`` overrides) with OmegaConf.

The dataclasses are the schema: :func:`schema` turns one into an OmegaConf structured config, which
checks each value against its field's annotation as it is merged in (``trainer.max_epochs=abc`` is
refused when the config is loaded, not once training has started) and offers dotted updates and
``${...}`` interpolation; :func:`build` then calls the dataclass constructors, so every
``__post_init__`` check still runs. Every failure is one line naming the field.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, TypeVar, Union

from omegaconf import DictConfig, OmegaConf
from omegaconf.base import Container
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException, ValidationError

T = TypeVar("T")
MAX_SHOWN = 80  # characters of an offending value quoted in a message


class ConfigValueError(ValueError):
    """A config value that does not fit its field (one-line, user-facing message)."""


def schema(cls: type) -> DictConfig:
    """The structured config of dataclass ``cls`` at its defaults, open to updates.

    OmegaConf marks the nodes of frozen dataclasses read-only; the dataclass itself stays frozen.
    """
    config = OmegaConf.structured(cls)
    _allow_updates(config)
    return config


def _allow_updates(node: Any) -> None:
    node._set_flag("readonly", None)
    if isinstance(node, DictConfig):
        for key in node:
            _allow_updates(node._get_node(key))
    elif isinstance(node, Container):  # a list or tuple
        for index in range(len(node)):
            _allow_updates(node._get_node(index))


def merge(config: DictConfig, values: Mapping[str, Any], where: str = "") -> None:
    """Merge plain nested ``values`` into ``config`` (sections key by key, lists replaced).

    An empty section (``optim:`` with every key commented out, read as null) changes nothing.
    """
    for key, value in _leaves(values, ""):
        if value is None and isinstance(OmegaConf.select(config, key, default=None), DictConfig):
            continue
        update(config, key, value, where)


def _leaves(values: Mapping[str, Any], prefix: str) -> list[tuple[str, Any]]:
    """(dotted key, value) of every value that is not itself a mapping, so an error names its key."""
    found: list[tuple[str, Any]] = []
    for key, value in values.items():
        if isinstance(value, Mapping) and value:
            found += _leaves(value, f"{prefix}{key}.")
        else:
            found.append((f"{prefix}{key}", value))
    return found


def update(config: DictConfig, key: str, value: Any, where: str = "") -> None:
    """Set the dotted ``key`` of ``config`` to ``value`` (a mapping merges into a section)."""
    values: dict[str, Any] = {}
    target = values
    *sections, last = key.split(".")
    for section in sections:
        target = target.setdefault(section, {})
    target[last] = value
    annotation = _annotation(config, key.split("."))
    if isinstance(value, bool) and _takes_text_only(annotation):  # OmegaConf would store 'True'
        message = f"{key} must be {describe(annotation)}, got {value!r}"
        raise ConfigValueError(f"{where}: {message}" if where else message)
    with _one_line(config, values, where):
        OmegaConf.update(config, key, value, merge=True)


def _takes_text_only(annotation: Any) -> bool:
    """A field of type ``str`` (or ``str | None``): no number or truth value means anything there."""
    options = typing.get_args(annotation) if _is_union(annotation) else (annotation,)
    return str in options and not any(option in (bool, int, float) for option in options)


def build(config: DictConfig, cls: type[T]) -> T:
    """The dataclass ``cls`` that ``config`` describes (``__post_init__`` checks included)."""
    with _one_line(config, {}, ""):
        _check_finite(config, "")
        try:
            built = OmegaConf.to_object(config)
        except (TypeError, ValueError) as err:
            if isinstance(err, OmegaConfBaseException):
                raise
            raise ConfigValueError(_named(_failing_section(config), err)) from None
    if not isinstance(built, cls):
        raise ConfigValueError(f"expected a {cls.__name__} config, got {type(built).__name__}")
    return built


def from_plain(cls: type[T], values: Mapping[str, Any] | None, where: str = "") -> T:
    """Dataclass ``cls`` from a plain nested dict (YAML, JSON): missing keys keep their defaults."""
    if values is not None and not isinstance(values, Mapping):
        raise ConfigValueError(f"{where or cls.__name__} must be a mapping, got {_shown(values)}")
    config = schema(cls)
    merge(config, values or {}, where)
    return build(config, cls)


def _failing_section(config: DictConfig, where: str = "") -> str:
    """The dotted name of the innermost section whose dataclass refuses its values ('' for the root)."""
    for key in config:
        child = config._get_node(key)
        if isinstance(child, DictConfig) and dataclasses.is_dataclass(OmegaConf.get_type(child)):
            try:
                OmegaConf.to_object(child)
            except (TypeError, ValueError):
                return _failing_section(child, f"{where}{key}.")
    return where.rstrip(".")


def _named(section: str, err: BaseException) -> str:
    """A dataclass's own message, prefixed with its section unless it names it already."""
    lines = str(err).strip().splitlines()
    message = lines[0] if lines else type(err).__name__
    return f"{section}: {message}" if section and section not in message else message


def _check_finite(node: Container, where: str) -> None:
    """Refuse inf and nan: OmegaConf's float fields accept them, no setting here means them."""
    is_mapping = isinstance(node, DictConfig)
    for key in list(node) if is_mapping else range(len(node)):
        child = node._get_node(key)
        name = f"{where}.{key}".lstrip(".") if is_mapping else f"{where}[{key}]"
        if isinstance(child, Container):
            _check_finite(child, name)
        elif isinstance(value := node[key], float) and not math.isfinite(value):
            raise ConfigValueError(f"{name} must be a finite number, got {value!r}")


class _one_line:  # noqa: N801 - used as a context manager, named like one
    """Turn OmegaConf's multi-line errors into one line naming the field."""

    def __init__(self, config: DictConfig, values: Mapping[str, Any], where: str):
        self.config, self.values, self.where = config, values, where

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type | None, err: BaseException | None, _tb: Any) -> bool:
        if err is None or not isinstance(err, OmegaConfBaseException):
            return False
        message = self._message(err)
        raise ConfigValueError(f"{self.where}: {message}" if self.where else message) from None

    def _message(self, err: OmegaConfBaseException) -> str:
        full_key = str(getattr(err, "full_key", "") or "")
        parts = [p for p in full_key.replace("[", ".").replace("]", "").split(".") if p]
        field_parts = _field_path(self.config, parts)
        name = ".".join(field_parts) or full_key
        if isinstance(err, (ConfigKeyError, AttributeError)) and not isinstance(err, ValidationError):
            known = _known_keys(self.config, field_parts[:-1])
            return f"unknown option {name} (known: {', '.join(known)})"
        if isinstance(err, ValidationError):
            annotation = _annotation(self.config, field_parts)
            value = _lookup(self.values, field_parts)
            if annotation is not None and value is not _MISSING:
                return f"{name} must be {describe(annotation)}, got {_shown(value)}"
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        return f"{name}: {first_line}" if name else first_line


_MISSING = object()


def _field_path(config: DictConfig, parts: list[str]) -> list[str]:
    """The leading parts of a key that name config fields (list indices dropped)."""
    found, node = [], config
    for part in parts:
        if not isinstance(node, DictConfig):
            break
        found.append(part)
        node = node._get_node(part) if part in node else None
    return found


def _known_keys(config: DictConfig, section: list[str]) -> list[str]:
    node: Any = config
    for part in section:
        node = node._get_node(part) if isinstance(node, DictConfig) and part in node else None
    return sorted(str(k) for k in node) if isinstance(node, DictConfig) else []


def _annotation(config: DictConfig, parts: list[str]) -> Any:
    """The type annotation of the field at ``parts`` in the dataclass schema behind ``config``."""
    cls: Any = OmegaConf.get_type(config)
    annotation = None
    for part in parts:
        if not dataclasses.is_dataclass(cls):
            return None
        annotation = typing.get_type_hints(cls).get(part)
        cls = annotation
    return annotation


def _lookup(values: Any, parts: list[str]) -> Any:
    for part in parts:
        if not isinstance(values, Mapping) or part not in values:
            return _MISSING
        values = values[part]
    return values


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= MAX_SHOWN else f"{text[:MAX_SHOWN]}... ({len(text)} characters)"


def _is_union(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (Union, types.UnionType)


def describe(annotation: Any) -> str:
    """How an error message names a type: 'an integer', 'a number or null', 'one of 'a', 'b''."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if _is_union(annotation):
        return " or ".join(describe(arg) for arg in args)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (tuple, list):
        if origin is tuple and args and args[-1] is not Ellipsis:
            return f"a list of {len(args)} ({', '.join(describe(a) for a in args)})"
        return f"a list of {describe(args[0]).removeprefix('an ').removeprefix('a ')}s" if args else "a list"
    names = {bool: "true or false", int: "an integer", float: "a finite number", str: "text"}
    if annotation in names:
        return names[annotation]
    if annotation is type(None) or annotation is None:
        return "null"
    return (
        "a mapping"
        if dataclasses.is_dataclass(annotation)
        else getattr(annotation, "__name__", str(annotation))
    )
