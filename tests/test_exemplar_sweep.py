"""scripts/exemplar_sweep.py's bounds: ``oracle:C`` and ``topup`` on images whose answer is known."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("exemplar_sweep", ROOT / "scripts" / "exemplar_sweep.py")
sweep = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sweep)


def _photo_like(seed: int = 0, size: int = 128) -> np.ndarray:
    """Smooth colour ramps plus fine random texture: a truth with energy in every band."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(60, 180, size, dtype=np.float32)
    base = np.stack(
        [ramp[None, :].repeat(size, 0), ramp[:, None].repeat(size, 1), np.full((size, size), 120.0)], -1
    )
    texture = cv2.GaussianBlur(rng.normal(0, 30, (size, size, 3)).astype(np.float32), (0, 0), 1.0)
    return np.clip(base + texture, 0, 255).astype(np.uint8)


def _hole(size: int = 128) -> np.ndarray:
    hole = np.zeros((size, size), bool)
    hole[32:96, 40:100] = True
    return hole


def _band(image: np.ndarray, sigma: float = 8.0) -> np.ndarray:
    image = image.astype(np.float32)
    return image - cv2.GaussianBlur(image, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)


def test_oracle_with_full_correlation_on_a_perfect_fill_gives_the_truth_back():
    truth, hole = _photo_like(), _hole()
    result = sweep.oracle_detail(truth, hole, truth.copy(), correlation=1.0)
    assert np.abs(result.astype(int) - truth.astype(int)).max() <= 1  # rounding only


def test_oracle_keeps_the_known_pixels_and_the_truths_energy_at_any_correlation():
    truth, hole = _photo_like(), _hole()
    fill = cv2.GaussianBlur(truth, (0, 0), 8)  # a smooth fill: no band of its own
    for correlation in (0.0, 0.5):
        result = sweep.oracle_detail(truth, hole, fill, correlation)
        np.testing.assert_array_equal(result[~hole], fill[~hole])
        energy = np.square(_band(result)[hole]).mean() / np.square(_band(truth)[hole]).mean()
        assert 0.8 < energy < 1.2


def test_oracle_correlation_is_what_was_asked():
    truth, hole = _photo_like(), _hole()
    fill = cv2.GaussianBlur(truth, (0, 0), 8)
    for correlation in (0.0, 0.5, 0.9):
        added = sweep.oracle_detail(truth, hole, fill, correlation).astype(np.float32) - fill
        missed = truth.astype(np.float32) - fill
        rho = np.corrcoef(added[hole].ravel(), missed[hole].ravel())[0, 1]
        assert abs(rho - correlation) < 0.12, (correlation, rho)


def test_topup_adds_nothing_when_the_fill_has_the_truths_energy_and_the_missing_energy_otherwise():
    truth, hole = _photo_like(), _hole()
    np.testing.assert_array_equal(sweep.topup_detail(truth, hole, truth.copy()), truth)
    smooth = cv2.GaussianBlur(truth, (0, 0), 8)
    result = sweep.topup_detail(truth, hole, smooth)
    np.testing.assert_array_equal(result[~hole], smooth[~hole])
    energy = np.square(_band(result)[hole]).mean() / np.square(_band(truth)[hole]).mean()
    assert 0.8 < energy < 1.2


def test_complete_reads_the_setting_names():
    truth, hole = _photo_like()[None], _hole()[None]
    fill = cv2.GaussianBlur(truth[0], (0, 0), 8)[None]
    assert sweep.complete("none", truth, hole, fill) is fill
    np.testing.assert_array_equal(
        sweep.complete("oracle:0.5:4", truth, hole, fill)[0],
        sweep.oracle_detail(truth[0], hole[0], fill[0], 0.5, 4),
    )
    np.testing.assert_array_equal(
        sweep.complete("topup:4", truth, hole, fill)[0], sweep.topup_detail(truth[0], hole[0], fill[0], 4)
    )
