"""Lists of choices: the values of a Literal, the error for a value outside them, and the configs that use them."""

from __future__ import annotations

from typing import Literal

import pytest

from dfnet.choices import check_choice, literal_values, one_of
from dfnet.losses import LossConfig, ResizeMode, VGGPrecision
from dfnet.model import DFNetConfig, FusionKind, HoleFill


def test_literal_values_keep_the_written_order() -> None:
    assert literal_values(FusionKind) == ("learned", "mask", "none")
    assert literal_values(HoleFill) == ("zero", "pushpull", "ring_pushpull")
    assert literal_values(VGGPrecision) == ("fp32", "bf16")
    assert literal_values(ResizeMode) == ("fusion", "area", "bilinear")
    with pytest.raises(TypeError, match="not a Literal"):
        literal_values(str)


def test_one_of_lists_the_values_as_a_sentence() -> None:
    assert one_of(("a",)) == "'a'"
    assert one_of(("a", "b")) == "'a' or 'b'"
    assert one_of(("a", "b", "c")) == "'a', 'b' or 'c'"


def test_check_choice_accepts_the_values_and_names_them_otherwise() -> None:
    check_choice("colour", "red", Literal["red", "green"])
    with pytest.raises(KeyError):  # the error type is the caller's
        check_choice("colour", "blue", Literal["red", "green"], KeyError)
    with pytest.raises(ValueError) as err:
        check_choice("colour", "blue", Literal["red", "green"])
    assert str(err.value) == "colour must be 'red' or 'green', got 'blue'"


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: DFNetConfig(fusion="soft"), "fusion must be 'learned', 'mask' or 'none', got 'soft'"),
        (
            lambda: DFNetConfig(hole_fill="mean"),
            "hole_fill must be 'zero', 'pushpull' or 'ring_pushpull', got 'mean'",
        ),
        (lambda: LossConfig(vgg_precision="fp16"), "loss.vgg_precision must be 'fp32' or 'bf16', got 'fp16'"),
        (
            lambda: LossConfig(target_resize="nearest"),
            "loss.target_resize must be 'fusion', 'area' or 'bilinear', got 'nearest'",
        ),
        (lambda: LossConfig(vgg_input="bgr"), "loss.vgg_input must be 'imagenet' or 'raw', got 'bgr'"),
    ],
)
def test_configs_reject_values_outside_their_literal_with_the_same_message(build, message: str) -> None:
    with pytest.raises(ValueError) as err:
        build()
    assert str(err.value) == message


def test_configs_accept_every_value_of_their_literal() -> None:
    for fusion in literal_values(FusionKind):
        for hole_fill in literal_values(HoleFill):
            assert DFNetConfig(fusion=fusion, hole_fill=hole_fill).hole_fill == hole_fill
    for precision in literal_values(VGGPrecision):
        assert LossConfig(vgg_precision=precision).vgg_precision == precision
