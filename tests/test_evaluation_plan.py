"""Pair plans: which image meets which mask under each pairing."""

from __future__ import annotations

from pathlib import Path

import pytest

from dfnet.evaluation import (
    EvaluationError,
    MaskEntry,
    PairPlan,
)


def _entries(*bins) -> list[MaskEntry]:
    return [MaskEntry(Path(f"m{i}.png"), 0.0, b) for i, b in enumerate(bins)]


def test_cycle_pairing_assigns_mask_i_mod_m_to_image_i_skipping_unusable_masks():
    plan = PairPlan(5, _entries(0, None, 2, 1), "cycle")
    assert list(plan) == [(0, 0), (1, 2), (2, 3), (3, 0), (4, 2)]


def test_every_bin_pairing_shows_every_image_in_every_bin():
    plan = PairPlan(3, _entries(1, 0, 1, None, 0, 1), "every-bin")
    assert plan.bins == [0, 1]
    # bin 0 masks: 1, 4; bin 1 masks: 0, 2, 5; image i takes the (i mod M_b)-th mask of each bin
    assert list(plan) == [(0, 1), (0, 0), (1, 4), (1, 2), (2, 1), (2, 5)]


def test_all_pairing_is_every_image_with_every_usable_mask():
    plan = PairPlan(2, _entries(0, None, 4), "all")
    assert list(plan) == [(0, 0), (0, 2), (1, 0), (1, 2)]
    with pytest.raises(IndexError):
        plan[4]


def test_pairing_needs_usable_masks_and_a_known_mode():
    with pytest.raises(EvaluationError, match="bins"):
        PairPlan(3, _entries(None, None))
    with pytest.raises(EvaluationError, match="pairing"):
        PairPlan(3, _entries(0), "random")
