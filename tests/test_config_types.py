"""dfnet.config_types: config values checked against their dataclass fields, with one-line messages."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import pytest

from dfnet.config_types import ConfigTypeError, check_field_types, describe, matches


@dataclass(frozen=True)
class Optim:
    kind: Literal["adam", "sgd"] = "adam"
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)


@dataclass(frozen=True)
class Trainer:
    max_epochs: int = 20
    precision: str = "32"
    devices: int | str = 1
    name: str | None = None
    milestones: list[int] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Root:
    trainer: Trainer = field(default_factory=Trainer)
    optim: Optim = field(default_factory=Optim)
    seed: int | None = None


class Opaque:
    """A type the checker does not know: the dataclass's own checks decide."""


@pytest.mark.parametrize(
    ("value", "expected", "fits"),
    [
        (3, int, True),
        (True, int, False),  # YAML's true is not a count
        (3.0, int, False),
        (3, float, True),  # an integer is a number
        (True, float, False),
        (math.inf, float, False),
        (math.nan, float, False),
        ("3", float, False),
        (False, bool, True),
        (0, bool, False),
        ("adam", Literal["adam", "sgd"], True),
        ("rmsprop", Literal["adam", "sgd"], False),
        (None, int | None, True),
        (None, int, False),
        ("auto", int | str, True),
        ([0.9, 0.99], tuple[float, float], True),
        ((0.9, 0.99), tuple[float, float], True),
        ([0.9], tuple[float, float], False),
        ([0.9, "x"], tuple[float, float], False),
        ([1, 2, 3], tuple[int, ...], True),
        ([1, 2.5], tuple[int, ...], False),
        ([], list[int], True),
        ("12", list[int], False),  # text is not a list of characters here
        ({"lr": 1}, Optim, True),
        (Optim(), Optim, True),
        (5, Optim, False),
        ({}, dict[str, Any], True),
        ([], dict[str, Any], False),
        (object(), Any, True),
        (object(), Opaque, True),
    ],
)
def test_matches(value: Any, expected: Any, fits: bool) -> None:
    assert matches(value, expected) is fits


@pytest.mark.parametrize(
    ("expected", "text"),
    [
        (int, "an integer"),
        (float, "a finite number"),
        (bool, "true or false"),
        (str, "text"),
        (int | None, "an integer or null"),
        (float | str, "a finite number or text"),
        (Literal["adam", "sgd"], "one of 'adam', 'sgd'"),
        (tuple[float, float], "a list of 2 (a finite number, a finite number)"),
        (tuple[int, ...], "a list of integers"),
        (list[float], "a list of finite numbers"),
        (Optim, "a mapping"),
        (Opaque, "Opaque"),
    ],
)
def test_describe(expected: Any, text: str) -> None:
    assert describe(expected) == text


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"trainer": {"max_epochs": "abc"}}, "trainer.max_epochs must be an integer, got 'abc'"),
        ({"trainer": {"max_epochs": True}}, "trainer.max_epochs must be an integer, got True"),
        (
            {"trainer": {"milestones": [5, "x"]}},
            "trainer.milestones must be a list of integers, got [5, 'x']",
        ),
        ({"trainer": 5}, "trainer must be a mapping, got 5"),
        ({"optim": {"kind": "rmsprop"}}, "optim.kind must be one of 'adam', 'sgd', got 'rmsprop'"),
        ({"optim": {"lr": float("inf")}}, "optim.lr must be a finite number, got inf"),
        (
            {"optim": {"betas": [0.9]}},
            "optim.betas must be a list of 2 (a finite number, a finite number), got [0.9]",
        ),
        ({"seed": "zero"}, "seed must be an integer or null, got 'zero'"),
    ],
)
def test_a_value_of_the_wrong_type_is_named_with_its_dotted_path(values: dict, message: str) -> None:
    with pytest.raises(ConfigTypeError) as info:
        check_field_types(Root, values)
    assert str(info.value) == message


def test_the_section_prefixes_the_field_name() -> None:
    with pytest.raises(ConfigTypeError, match=r"^run\.trainer\.max_epochs must be an integer, got 2\.5$"):
        check_field_types(Trainer, {"max_epochs": 2.5}, section="run.trainer")


def test_a_number_for_a_text_field_becomes_its_text_and_nothing_else_changes() -> None:
    values = {"precision": 16, "name": 7, "devices": 8, "max_epochs": 3, "unknown_key": object()}
    check_field_types(Trainer, values)
    assert values["precision"] == "16"  # YAML reads `precision: 16` as a number
    assert values["name"] == "7"  # str | None: text as well
    assert values["devices"] == 8  # int | str keeps the number: it has a numeric alternative
    assert values["max_epochs"] == 3
    assert "unknown_key" in values  # unknown keys are the caller's to report


def test_nested_mappings_are_checked_and_converted_in_place() -> None:
    values = {"trainer": {"precision": 32, "max_epochs": 4}, "optim": {"lr": 2e-4, "betas": [0.5, 0.9]}}
    check_field_types(Root, values)
    assert values == {
        "trainer": {"precision": "32", "max_epochs": 4},
        "optim": {"lr": 2e-4, "betas": [0.5, 0.9]},
    }


def test_booleans_for_text_fields_are_refused_not_converted() -> None:
    values = {"precision": True}
    with pytest.raises(ConfigTypeError, match=r"^precision must be text, got True$"):
        check_field_types(Trainer, values)
