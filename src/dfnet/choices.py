"""One source for each list of choices: the values of a ``Literal`` type, and the error for a value outside them."""

from __future__ import annotations

from typing import Any, get_args


def literal_values(kind: Any) -> tuple[Any, ...]:
    """The values a ``Literal[...]`` type allows, in the order written (``typing.get_args``)."""
    values = get_args(kind)
    if not values:
        raise TypeError(f"{kind!r} is not a Literal type with values")
    return values


def one_of(values: tuple[Any, ...]) -> str:
    """``'a', 'b' or 'c'``: the values as an error message lists them."""
    quoted = [repr(v) for v in values]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"


def check_choice(name: str, value: Any, kind: Any, error: type[ValueError] = ValueError) -> None:
    """Raise ``error`` ("NAME must be 'a' or 'b', got 'c'") unless ``value`` is one of the Literal ``kind``'s values."""
    values = literal_values(kind)
    if value not in values:
        raise error(f"{name} must be {one_of(values)}, got {value!r}")
