"""benchmarks/bench_exemplar.py's baseline: an earlier dfnet.exemplar, with the modules it imported then."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_exemplar import load_baseline  # noqa: E402

import dfnet.strategies  # noqa: E402
from dfnet import exemplar  # noqa: E402
from dfnet.exemplar import ExemplarDetail  # noqa: E402

# The last revision whose exemplar unpacked dfnet.strategies.hole_regions as (labels, boxes); its results are
# the same as today's, bit for bit.
TUPLE_REGIONS_REVISION = "74c8c94"


def _has_revision(revision: str) -> bool:
    found = subprocess.run(["git", "cat-file", "-e", f"{revision}^{{commit}}"], cwd=ROOT, capture_output=True)
    return found.returncode == 0


@pytest.mark.skipif(not _has_revision(TUPLE_REGIONS_REVISION), reason="a clone without that history")
def test_a_baseline_runs_on_the_modules_of_its_own_revision():
    """The baseline of 74c8c94 works on a picture larger than its window (it labels hole regions with that
    revision's strategies module), gives today's result, and leaves this process's dfnet modules as they were."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (96, 160, 3)).astype(np.uint8)
    hole = np.zeros((96, 160), bool)
    hole[20:30, 20:34] = True
    hole[60:70, 120:140] = True
    completion = np.where(hole[..., None], np.uint8(128), image)
    options = ExemplarDetail(window=64)
    strategies_before = sys.modules["dfnet.strategies"]
    baseline = load_baseline(TUPLE_REGIONS_REVISION)
    assert sys.modules["dfnet.strategies"] is strategies_before is dfnet.strategies
    assert baseline is not exemplar
    then = baseline.add_exemplar_detail(image, hole, completion, baseline.ExemplarDetail(window=64))
    now = exemplar.add_exemplar_detail(image, hole, completion, options)
    assert not np.array_equal(now, completion)  # detail was added
    np.testing.assert_array_equal(then, now)
