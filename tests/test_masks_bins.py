"""The paper's hole-ratio bins (dfnet.masks.bins)."""

from __future__ import annotations

import pytest

from dfnet.masks import (
    bin_label,
    bin_of,
    parse_bins,
)


def test_bins_and_labels():
    assert [bin_of(r) for r in (0.0, 0.0999, 0.1, 0.35, 0.4999, 0.5, 0.9)] == [0, 0, 1, 3, 4, None, None]
    assert bin_label(1) == "[10%, 20%)"
    assert parse_bins("0, 2,4") == (0, 2, 4)
    for bad in ("5", "0,0", "a", ""):
        with pytest.raises(ValueError):
            parse_bins(bad)
