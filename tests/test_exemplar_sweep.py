"""scripts/exemplar_sweep.py's bounds (``oracle:C``, ``envelope``, ``topup``) and band correlations, on images whose
answer is known."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

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


def test_envelope_puts_the_truths_local_contrast_where_the_truth_has_it():
    truth, hole = _photo_like(), _hole()
    truth[:, 64:] = cv2.GaussianBlur(truth, (0, 0), 8)[:, 64:]  # textured left half, smooth right half
    fill = cv2.GaussianBlur(truth, (0, 0), 8)
    result = sweep.envelope_detail(truth, hole, fill)
    np.testing.assert_array_equal(result[~hole], fill[~hole])
    left, right = hole.copy(), hole.copy()
    left[:, 56:], right[:, :72] = False, False
    energy = {
        name: [np.square(_band(image)[region]).mean() for region in (left, right)]
        for name, image in (("result", result), ("truth", truth))
    }
    assert energy["truth"][0] > 20 * energy["truth"][1]
    assert 0.6 < energy["result"][0] / energy["truth"][0] < 1.4  # the textured side as textured as the truth
    assert energy["result"][1] < energy["result"][0] / 10  # and the smooth side smooth
    added = result.astype(np.float32) - fill
    assert (
        np.abs(np.corrcoef(added[hole].ravel(), (truth.astype(np.float32) - fill)[hole].ravel())[0, 1]) < 0.15
    )


def _as_data(truth: np.ndarray, hole: np.ndarray) -> dict[str, torch.Tensor]:
    return {"rgb": torch.from_numpy(truth[None]), "hole": torch.from_numpy(hole[None])}


def test_band_correlations_are_one_for_the_truth_and_about_zero_for_texture_from_elsewhere():
    truth, hole = _photo_like(size=192), np.zeros((192, 192), bool)
    hole[40:150, 40:150] = True
    rows = sweep.band_correlations(_as_data(truth, hole), truth[None])
    assert len(rows) == len(sweep.BAND_SIGMAS)
    for row in rows:
        near, far = (float(cell) for cell in row.strip("|").split("|")[1:])
        assert near == pytest.approx(1.0) and far == pytest.approx(1.0)
    shuffled = sweep.oracle_detail(truth, hole, cv2.GaussianBlur(truth, (0, 0), 8), correlation=0.0)
    finest = sweep.band_correlations(_as_data(truth, hole), shuffled[None])[0]
    assert abs(float(finest.strip("|").split("|")[2])) < 0.1


def test_a_bound_with_too_many_parameters_is_refused():
    truth, hole = _photo_like()[None], _hole()[None]
    with pytest.raises(SystemExit, match="topup:X"):
        sweep.complete("topup:4:2", truth, hole, truth)
    with pytest.raises(SystemExit, match="oracle:X:X"):
        sweep.complete("oracle", truth, hole, truth)
