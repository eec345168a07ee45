"""Dataclass configs through OmegaConf: type checks as values merge, one-line errors naming the field."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pytest

from dfnet.structured_config import ConfigValueError, build, describe, from_plain, merge, schema, update


@dataclass(frozen=True)
class Inner:
    size: int = 3
    scale: tuple[float, float] = (0.5, 2.0)

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ValueError("need size >= 1")


@dataclass(frozen=True)
class Outer:
    name: str = "x"
    mode: Literal["a", "b"] = "a"
    limit: int | float | None = None
    inner: Inner = field(default_factory=Inner)


def test_values_merge_update_and_build_the_frozen_dataclasses() -> None:
    config = schema(Outer)
    merge(config, {"inner": {"size": 5}, "name": 7})  # a number for a text field is its text
    update(config, "inner.scale", [1, 3])
    update(config, "limit", "${inner.size}")  # interpolation
    built = build(config, Outer)
    assert built == Outer(name="7", limit=5, inner=Inner(size=5, scale=(1.0, 3.0)))
    assert from_plain(Outer, None) == Outer()
    assert from_plain(Outer, {"inner": None, "limit": None}) == Outer()  # an empty section changes nothing


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"inner": {"size": "many"}}, "inner.size must be an integer, got 'many'"),
        (
            {"inner": {"scale": [1, 2, 3]}},
            "inner.scale must be a list of 2 (a finite number, a finite number), got [1, 2, 3]",
        ),
        ({"inner": {"scale": [1, float("inf")]}}, "inner.scale[1] must be a finite number, got inf"),
        ({"limit": float("nan")}, "limit must be a finite number, got nan"),
        ({"mode": "c"}, "mode must be one of 'a', 'b', got 'c'"),
        ({"inner": 4}, "inner must be a mapping, got 4"),
        ({"inner": {"colour": 1}}, "unknown option inner.colour (known: scale, size)"),
        ({"inner": {"size": 0}}, "inner: need size >= 1"),  # __post_init__, named by its section
        (
            {"name": "x" * 500, "limit": "y" * 500},
            "limit must be an integer or a finite number or null, got 'yyyy",
        ),
    ],
)
def test_errors_are_one_line_naming_the_field(values: dict, message: str) -> None:
    with pytest.raises(ConfigValueError) as err:
        from_plain(Outer, values, "")
    text = str(err.value)
    assert text.startswith(message) and "\n" not in text and len(text) < 200, text


def test_errors_name_the_file_they_come_from() -> None:
    with pytest.raises(ConfigValueError, match=r"^a.yaml: inner.size must be an integer, got 1.5$"):
        from_plain(Outer, {"inner": {"size": 1.5}}, "a.yaml")


def test_describe_names_types_as_users_write_them() -> None:
    assert describe(int | None) == "an integer or null"
    assert describe(tuple[int, ...]) == "a list of integers"
    assert describe(Inner) == "a mapping"


@dataclass(frozen=True)
class Trainer:
    max_epochs: int = 20
    precision: str = "32"
    devices: int | str = 1
    name: str | None = None
    milestones: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class Optim:
    kind: Literal["adam", "sgd"] = "adam"
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)


@dataclass(frozen=True)
class Root:
    trainer: Trainer = field(default_factory=Trainer)
    optim: Optim = field(default_factory=Optim)
    seed: int | None = None


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"trainer": {"max_epochs": "abc"}}, "trainer.max_epochs must be an integer, got 'abc'"),
        ({"trainer": {"max_epochs": True}}, "trainer.max_epochs must be an integer, got True"),
        ({"trainer": {"max_epochs": 2.5}}, "trainer.max_epochs must be an integer, got 2.5"),
        (
            {"trainer": {"milestones": [5, "x"]}},
            "trainer.milestones must be a list of integers, got [5, 'x']",
        ),
        ({"trainer": {"precision": True}}, "trainer.precision must be text, got True"),
        ({"trainer": {"name": False}}, "trainer.name must be text or null, got False"),
        ({"trainer": 5}, "trainer must be a mapping, got 5"),
        ({"optim": {"kind": "rmsprop"}}, "optim.kind must be one of 'adam', 'sgd', got 'rmsprop'"),
        ({"optim": {"lr": float("inf")}}, "optim.lr must be a finite number, got inf"),
        ({"optim": {"lr": True}}, "optim.lr must be a finite number, got True"),
        (
            {"optim": {"betas": [0.9]}},
            "optim.betas must be a list of 2 (a finite number, a finite number), got [0.9]",
        ),
        ({"seed": "zero"}, "seed must be an integer or null, got 'zero'"),
    ],
)
def test_a_value_of_the_wrong_type_is_named_with_its_dotted_path(values: dict, message: str) -> None:
    with pytest.raises(ConfigValueError) as info:
        from_plain(Root, values)
    assert str(info.value) == message


def test_a_number_for_a_text_field_becomes_its_text() -> None:
    built = from_plain(Trainer, {"precision": 16, "name": 7, "devices": 8, "max_epochs": 3})
    assert built == Trainer(max_epochs=3, precision="16", devices=8, name="7")  # YAML reads `16` as a number


@pytest.mark.parametrize(
    ("annotation", "text"),
    [
        (int, "an integer"),
        (float, "a finite number"),
        (bool, "true or false"),
        (str, "text"),
        (float | str, "a finite number or text"),
        (Literal["adam", "sgd"], "one of 'adam', 'sgd'"),
        (tuple[float, float], "a list of 2 (a finite number, a finite number)"),
        (list[float], "a list of finite numbers"),
    ],
)
def test_describe_every_kind_of_annotation(annotation, text: str) -> None:
    assert describe(annotation) == text
