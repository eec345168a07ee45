"""Properties of the size strategies with structured masks (rectangles, border-touching, all hole)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st


@st.composite
def rectangle_masks(draw) -> tuple[np.ndarray, np.ndarray]:
    """A batch of 1-3 images of one size with masks made of rectangles (possibly the whole image)."""
    height, width, count = draw(st.integers(1, 60)), draw(st.integers(1, 60)), draw(st.integers(1, 3))
    holes = np.zeros((count, height, width), bool)
    for i in range(count):
        for _ in range(draw(st.integers(0, 4))):
            y0, x0 = draw(st.integers(0, height - 1)), draw(st.integers(0, width - 1))
            y1, x1 = draw(st.integers(y0 + 1, height)), draw(st.integers(x0 + 1, width))
            holes[i, y0:y1, x0:x1] = True
    seed = draw(st.integers(0, 2**16))
    images = np.random.default_rng(seed).integers(0, 256, (count, height, width, 3), dtype=np.uint8)
    return images, holes


@settings(max_examples=40, deadline=None)
@given(case=rectangle_masks(), strategy=st.sampled_from(["original", "resize", "crop", "auto"]))
def test_strategies_keep_known_pixels_and_fill_every_hole(case, strategy):
    from dfnet.strategies import Filled, Network, run_strategy

    images, holes = case
    calls = []

    def fill(batch: np.ndarray, hole: np.ndarray, details: bool) -> Filled:
        calls.append(batch.shape)
        assert batch.shape[1] % 16 == 0 and batch.shape[2] % 16 == 0
        return Filled(np.where(hole[..., None], np.float32(0.8), batch).astype(np.float32))

    options = {"original": {}, "resize": {"max_side": 24}, "crop": {"min_window": 8}, "auto": {"trigger": 32}}
    done = run_strategy(strategy, images, holes, Network(fill, 16, 32), **options[strategy])
    assert done.result.shape == images.shape and done.result.dtype == np.uint8
    assert np.array_equal(done.result[~holes], images[~holes])
    if not holes.any():
        assert calls == []  # nothing to fill: the network is not run
    if strategy == "original":  # native resolution: the network's fill arrives unchanged
        assert np.all(done.result[holes] == 204)
