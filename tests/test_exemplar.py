"""Exemplar detail (dfnet.exemplar): known pixels untouched, texture copied where the photo has it."""

import numpy as np
import pytest
import torch

from dfnet import exemplar
from dfnet.exemplar import (
    ExemplarDetail,
    add_exemplar_detail,
    border_ramp,
    exemplar_detail_band,
    hann_window,
    split_detail,
    window_starts,
)
from dfnet.texture_metrics import per_image_gradient_sums

SKY = (150, 180, 220)
GRASS = (90, 140, 60)


def textured_photo(size: int = 96, seed: int = 0) -> np.ndarray:
    """Left half: a flat blue 'sky'; right half: green 'grass' with strong random pixel noise."""
    rng = np.random.default_rng(seed)
    image = np.empty((size, size, 3), np.uint8)
    image[:, : size // 2] = SKY
    noise = rng.integers(-40, 41, (size, size - size // 2, 1))
    image[:, size // 2 :] = np.clip(np.asarray(GRASS) + noise, 0, 255).astype(np.uint8)
    return image


def block_hole(size: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    hole = np.zeros((size, size), bool)
    hole[y0:y1, x0:x1] = True
    return hole


def smooth_fill(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """A network-like smooth completion: each half's mean colour in the hole (no detail at all)."""
    completion = image.copy()
    left = np.zeros_like(hole)
    left[:, : hole.shape[1] // 2] = True
    completion[hole & left] = SKY
    completion[hole & ~left] = GRASS
    return completion


def gradient_ratio(result: np.ndarray, truth: np.ndarray, hole: np.ndarray) -> float:
    import torch

    def as_tensor(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(a).permute(2, 0, 1)[None].float() / 255

    ours, theirs = per_image_gradient_sums(
        as_tensor(result), as_tensor(truth), torch.from_numpy(hole)[None, None]
    )
    return float(ours / theirs)


def test_hann_windows_at_half_overlap_sum_to_one():
    window = hann_window(16)
    ramp = np.sqrt(np.diag(window))  # separable: window[n, n] = ramp[n]²
    assert np.allclose(ramp[:8] + ramp[8:], 1.0, atol=1e-6)  # sin² + cos²
    assert np.allclose(window, np.outer(ramp, ramp), atol=1e-6) and window.max() <= 1.0


def test_window_starts_reach_the_edge():
    assert window_starts(40, 16, 8).tolist() == [0, 8, 16, 24]
    assert window_starts(45, 16, 8).tolist() == [0, 8, 16, 24, 29]
    assert window_starts(16, 16, 8).tolist() == [0]


def test_split_detail_adds_back_to_the_image():
    image = np.random.default_rng(1).random((20, 24, 3), dtype=np.float32)
    smooth, detail = split_detail(image, 2.0)
    assert np.allclose(smooth + detail, image, atol=1e-6)
    flat_smooth, flat_detail = split_detail(np.full((20, 24, 3), 0.3, np.float32), 2.0)
    assert np.abs(flat_detail).max() < 1e-6 and np.allclose(flat_smooth, 0.3)


def test_border_ramp_is_distance_over_feather_capped_at_one():
    hole = block_hole(32, 8, 24, 8, 24)  # 16 px square: distances 1..8 from the known ring
    ramp = border_ramp(hole, 4.0)
    assert ramp[~hole].max() == 0.0
    assert ramp[8, 16] == pytest.approx(0.25, abs=0.02)  # first hole row: distance 1
    assert ramp[16, 16] == 1.0
    assert np.array_equal(border_ramp(hole, 0.0), hole.astype(np.float32))


def test_known_pixels_are_bit_identical_and_strength_zero_is_the_completion():
    image = textured_photo()
    hole = block_hole(96, 30, 70, 55, 90)
    completion = smooth_fill(image, hole)
    out = add_exemplar_detail(image, hole, completion)
    assert np.array_equal(out[~hole], image[~hole])
    assert not np.array_equal(out[hole], completion[hole])
    off = add_exemplar_detail(image, hole, completion, ExemplarDetail(strength=0.0))
    assert np.array_equal(off, completion)


def test_texture_is_copied_into_the_grass_and_not_into_the_sky():
    image = textured_photo()
    grass_hole = block_hole(96, 30, 70, 58, 90)
    sky_hole = block_hole(96, 30, 70, 6, 38)
    hole = grass_hole | sky_hole
    completion = smooth_fill(image, hole)
    out = add_exemplar_detail(image, hole, completion, ExemplarDetail(strength=1.0, feather=0.0))
    # the smooth fill has no gradient in the grass hole; the detailed one about as much as the truth
    assert gradient_ratio(completion, image, grass_hole) < 0.3
    assert 0.7 < gradient_ratio(out, image, grass_hole) < 1.3
    # the sky stays flat: its only sources of detail are flat
    assert np.abs(out[sky_hole].astype(int) - SKY).max() <= 2


def test_the_result_is_deterministic_and_the_seed_matters():
    image = textured_photo()
    hole = block_hole(96, 20, 80, 55, 92)
    completion = smooth_fill(image, hole)
    first = add_exemplar_detail(image, hole, completion, ExemplarDetail(seed=3))
    assert np.array_equal(first, add_exemplar_detail(image, hole, completion, ExemplarDetail(seed=3)))
    assert not np.array_equal(first, add_exemplar_detail(image, hole, completion, ExemplarDetail(seed=4)))


def lag_correlation(band: np.ndarray, lag: int) -> float:
    """Mean correlation of a 2-D array with itself shifted by ``lag`` px across and down."""
    across = np.corrcoef(band[:, :-lag].ravel(), band[:, lag:].ravel())[0, 1]
    down = np.corrcoef(band[:-lag].ravel(), band[lag:].ravel())[0, 1]
    return float(across + down) / 2


def test_copies_are_not_one_repeated_tile():
    """Each target taking its single best source tiles one source every 8 px (measured 0.56 correlation at
    that lag here); the random pick among the best and the propagation keep it near the truth's 0."""
    image = textured_photo(128)
    hole = block_hole(128, 16, 112, 72, 120)
    completion = smooth_fill(image, hole)
    inside = (slice(16, 112), slice(72, 120), 0)
    tiled = exemplar_detail_band(
        image, hole, completion, ExemplarDetail(feather=0.0, choices=1, coherence=0.0)
    )
    assert lag_correlation(tiled[inside], 8) > 0.4  # the failure this guards against, reproduced
    band = exemplar_detail_band(image, hole, completion, ExemplarDetail(feather=0.0))
    assert abs(lag_correlation(band[inside], 8)) < 0.2


def test_no_detail_without_a_fully_known_window():
    image = textured_photo(32)
    hole = block_hole(32, 4, 28, 4, 28)  # every 16 px window touches the hole
    completion = smooth_fill(image, hole)
    assert exemplar_detail_band(image, hole, completion, ExemplarDetail()) is None
    assert np.array_equal(add_exemplar_detail(image, hole, completion), completion)
    tiny = textured_photo(8)
    small_hole = block_hole(8, 2, 5, 2, 5)
    assert np.array_equal(
        add_exemplar_detail(tiny, small_hole, smooth_fill(tiny, small_hole)), smooth_fill(tiny, small_hole)
    )


@pytest.mark.parametrize(
    "options",
    [
        {"strength": -0.1},
        {"strength": 2.5},
        {"sigma": 0.0},
        {"patch": 12},
        {"stride": 0},
        {"stride": 32},
        {"coherence": -1.0},
        {"passes": 17},
        {"choices": 0},
        {"feather": -1.0},
    ],
)
def test_bad_options_are_refused(options):
    with pytest.raises(ValueError, match="exemplar"):
        ExemplarDetail(**options)


def test_shapes_must_agree():
    image = textured_photo(32)
    with pytest.raises(ValueError, match="must agree"):
        add_exemplar_detail(image, np.zeros((31, 32), bool), image)


def test_the_cli_bound_and_presets_repeat_the_library_ones():
    from dfnet.cli.common import TEXTURE_MAX, TEXTURE_PRESET_NAMES
    from dfnet.exemplar import MAX_STRENGTH, TEXTURE_PRESETS

    assert TEXTURE_MAX == MAX_STRENGTH
    assert tuple(TEXTURE_PRESETS) == TEXTURE_PRESET_NAMES


def test_the_search_and_the_propagation_score_a_copy_alike():
    """_best_sources (all pairs at once, as matrix products) and _Features.cost (pair by pair) are one cost."""
    rng = np.random.default_rng(3)
    patch, size = 16, 48
    luma_detail = rng.normal(0, 0.05, (size, size)).astype(np.float32)
    cells = exemplar.GuideCells(rng.random((size, size, 3)).astype(np.float32))
    hole = np.zeros((size, size), bool)
    hole[20:30, 18:34] = True
    known = (~hole).astype(np.float32)
    hole_at = exemplar._hole_in_windows(hole, patch)
    features = exemplar._Features(luma_detail, known, cells, hole_at, patch, guide_weight=0.7)
    ty, tx = np.array([10, 14, 16, 20]), np.array([12, 16, 20, 24])
    sy, sx = (a.ravel() for a in np.meshgrid(np.arange(0, 33, 2), np.arange(0, 33, 2), indexing="ij"))
    free = features.valid(sy, sx)
    sy, sx = sy[free], sx[free]
    best = exemplar._best_sources(
        exemplar._windows(luma_detail * known, ty, tx, patch),
        exemplar._windows(known, ty, tx, patch),
        torch.from_numpy(cells.windows(ty, tx, patch)),
        exemplar._windows(luma_detail, sy, sx, patch),
        torch.from_numpy(cells.windows(sy, sx, patch)),
        guide_weight=0.7,
        choices=1,
        generator=torch.Generator().manual_seed(0),
    ).numpy()
    for i in range(len(ty)):
        costs = features.cost(features.targets(np.full(len(sy), ty[i]), np.full(len(sy), tx[i])), sy, sx)
        assert best[i] == np.argmin(costs)
        assert np.sort(costs)[1] > costs[best[i]]  # a clear winner: the agreement is not a tie


def full_picture_detail(image, hole, completion, options):
    """The detail added over the whole picture at once (what the windowed path must reproduce)."""
    band = exemplar_detail_band(image, hole, completion, options)
    filled = np.clip(
        np.rint(completion.astype(np.float32) + np.float32(255 * options.strength) * band), 0, 255
    )
    return np.where(hole[..., None], filled.astype(np.uint8), image)


def test_a_picture_no_larger_than_the_window_gets_the_full_picture_result():
    image = textured_photo(96)
    hole = block_hole(96, 10, 30, 60, 80) | block_hole(96, 60, 80, 55, 75) | block_hole(96, 40, 50, 10, 20)
    completion = smooth_fill(image, hole)
    options = ExemplarDetail(window=96)
    assert [w for w, _ in exemplar.detail_windows(hole, options)] == [(0, 96, 0, 96)]  # computed once
    out = add_exemplar_detail(image, hole, completion, options)
    assert np.array_equal(out, full_picture_detail(image, hole, completion, options))


def test_each_hole_region_takes_its_detail_from_its_own_window():
    """In a larger picture a hole gets the same pixels as in its window alone, wherever the window lies."""
    scene = textured_photo(64, seed=2)
    hole = block_hole(64, 24, 40, 24, 40)  # centred: its window is the scene
    options = ExemplarDetail(window=64)
    alone = add_exemplar_detail(scene, hole, smooth_fill(scene, hole), options)
    big = np.tile(textured_photo(64, seed=9), (3, 4, 1))
    big_hole = np.zeros(big.shape[:2], bool)
    big[100:164, 70:134] = scene
    big_hole[100:164, 70:134] = hole
    big_hole[5:15, 220:230] = True  # a second region far away, with a window of its own
    completion = big.copy()
    completion[100:164, 70:134] = smooth_fill(scene, hole)
    windows = [w for w, _ in exemplar.detail_windows(big_hole, options)]
    assert windows == [(0, 64, 192, 256), (100, 164, 70, 134)]  # the first shifted to fit the picture
    out = add_exemplar_detail(big, big_hole, completion, options)
    assert np.array_equal(out[100:164, 70:134], alone)
    assert np.array_equal(out[~big_hole], big[~big_hole])


def test_a_coherent_copy_keeps_unit_gain():
    """Neighbouring windows that copy with the same offset rebuild the source exactly (their sin² weights sum
    to 1): the overlap-add must not amplify them (a root-sum-of-squares normalisation gives 1.0-2.0x in an
    8-px grid)."""
    rng = np.random.default_rng(1)
    detail = rng.normal(0, 0.05, (96, 96, 3)).astype(np.float32)
    starts = window_starts(48, 16, 8)
    ty, tx = (a.ravel() for a in np.meshgrid(starts, starts, indexing="ij"))
    band = exemplar._overlap_add(detail, (ty + 40, tx + 32), (ty, tx), 16)
    inner = (slice(8, 40), slice(8, 40))  # covered by two windows along each axis
    gain = band[inner] / detail[48:80, 40:72]
    np.testing.assert_allclose(gain, 1.0, rtol=1e-4)


def test_unrelated_copies_keep_their_contrast():
    """Windows copying from unrelated places: the sum is divided by the root of the summed squared weights,
    so white noise keeps its standard deviation where windows overlap."""
    rng = np.random.default_rng(2)
    detail = rng.normal(0, 1.0, (2000, 2000, 1)).astype(np.float32)
    starts = window_starts(64, 16, 8)
    ty, tx = (a.ravel() for a in np.meshgrid(starts, starts, indexing="ij"))
    sy, sx = rng.integers(0, 1984, (2, len(ty)))  # every window from somewhere else
    band = exemplar._overlap_add(detail, (sy, sx), (ty, tx), 16)
    assert band[8:56, 8:56].std() == pytest.approx(1.0, abs=0.06)


def test_windows_added_in_blocks_match_one_window_at_a_time():
    """_add_at_windows: overlapping windows on the search grid, the last row and column off its lattice (a
    50-px image with 16-px windows every 8 px ends at 34), add exactly as a loop over the windows."""
    rng = np.random.default_rng(4)
    starts = window_starts(50, 16, 8)
    assert starts[-1] == 34 and starts[-2] == 32
    ys, xs = (a.ravel() for a in np.meshgrid(starts, starts, indexing="ij"))
    keep = rng.random(len(ys)) < 0.7
    ys, xs = ys[keep], xs[keep]
    values = rng.normal(0, 1, (len(ys), 16, 16, 3)).astype(np.float32)
    expected = np.zeros((50, 50, 3), np.float32)
    for y, x, value in zip(ys, xs, values, strict=True):
        expected[y : y + 16, x : x + 16] += value
    canvas = np.zeros((50, 50, 3), np.float32)
    exemplar._add_at_windows(canvas, ys, xs, values)
    np.testing.assert_allclose(canvas, expected, atol=1e-5)
    counts = np.zeros((50, 50), np.float32)  # one shared value for every window: coverage counts
    exemplar._add_at_windows(counts, ys, xs, np.ones((16, 16), np.float32))
    np.testing.assert_array_equal(counts, _coverage(ys, xs, 16, 50))


def _coverage(ys: np.ndarray, xs: np.ndarray, patch: int, size: int) -> np.ndarray:
    covered = np.zeros((size, size), np.float32)
    for y, x in zip(ys, xs, strict=True):
        covered[y : y + patch, x : x + patch] += 1
    return covered


def test_guide_cells_are_gathered_as_the_box_means_every_fourth_pixel():
    """GuideCells: a window's guide is the 4 x 4 box means at its rows and columns 0, 4, 8, 12,
    whatever the top-left's phase, also for image sides that are not multiples of 4."""
    rng = np.random.default_rng(5)
    smooth = rng.random((37, 42, 3)).astype(np.float32)
    cells = exemplar.GuideCells(smooth)
    ys, xs = np.array([0, 3, 21, 5, 18, 4]), np.array([0, 26, 1, 13, 7, 8])  # phase (0, 0) twice
    got = cells.windows(ys, xs, 16)
    np.testing.assert_array_equal(cells.windows(ys[:1], xs[:1], 16), got[:1])  # one phase alone
    for k, (y, x) in enumerate(zip(ys, xs, strict=True)):
        means = [
            smooth[y + 4 * a : y + 4 * a + 4, x + 4 * b : x + 4 * b + 4].mean((0, 1))
            for a in range(4)
            for b in range(4)
        ]
        np.testing.assert_allclose(got[k], np.concatenate(means), rtol=1e-5)


def test_the_band_does_not_depend_on_torch_vector_math(monkeypatch):
    """The overlap-add's normalisation is numpy's correctly rounded float32 arithmetic. torch's sqrt goes through a
    vector-math library whose code path differed between threads on a process's first call (a 12-bit-like
    approximation, up to 3e-4 relative error on half the picture), so the first photo of a run sometimes got other
    grey levels: the band must stay bit-identical when torch's square roots are that far off."""
    rng = np.random.default_rng(3)
    detail = rng.normal(0, 0.05, (64, 64, 3)).astype(np.float32)
    starts = window_starts(48, 16, 8)
    ty, tx = (a.ravel() for a in np.meshgrid(starts, starts, indexing="ij"))
    sources = tuple(rng.integers(0, 49, (2, len(ty))))  # unrelated copies: overlaps are normalised
    expected = exemplar._overlap_add(detail, sources, (ty, tx), 16)

    def off_by_3e_4(exact):
        return lambda self, *args, **kwargs: exact(self, *args, **kwargs) * (1 + 3e-4)

    for name in ("sqrt", "sqrt_", "rsqrt", "rsqrt_"):
        monkeypatch.setattr(torch.Tensor, name, off_by_3e_4(getattr(torch.Tensor, name)))
    monkeypatch.setattr(torch, "sqrt", off_by_3e_4(torch.sqrt))
    assert np.array_equal(exemplar._overlap_add(detail, sources, (ty, tx), 16), expected)


def test_a_lone_window_is_copied_exactly():
    """One window alone is divided by the root of its own squared weight: with correctly rounded arithmetic
    sqrt(w·w) is w again, so power-of-two detail (w·d exact) comes back bit for bit."""
    rng = np.random.default_rng(5)
    detail = (rng.choice([-1.0, 1.0], (40, 40, 3)) * 2.0 ** rng.integers(-7, 0, (40, 40, 3))).astype(
        np.float32
    )
    band = exemplar._overlap_add(detail, (np.array([20]), np.array([9])), (np.array([0]), np.array([4])), 16)
    assert np.array_equal(band[:16, 4:20], detail[20:36, 9:25])
    assert not band[16:].any() and not band[:, :4].any() and not band[:, 20:].any()


def test_a_photo_one_window_wide_gets_its_detail():
    """A 16x24 photo whose hole lies in a single target window (no neighbours to propagate from or overlap
    with) gets detail from the one fully known window, and its known pixels stay as they were."""
    noise = np.random.default_rng(6).integers(-40, 41, (16, 24, 1))
    image = np.clip(np.asarray(GRASS) + noise, 0, 255).astype(np.uint8)
    hole = block_hole(24, 4, 8, 2, 6)[:16]  # only the window at x = 0 holds it; the one at x = 8 is known
    completion = np.where(hole[..., None], np.uint8(GRASS), image)
    out = add_exemplar_detail(image, hole, completion, ExemplarDetail())
    assert np.array_equal(out[~hole], image[~hole])
    assert not np.array_equal(out[hole], completion[hole])


def test_smallest_costs_match_a_full_selection():
    """The grouped selection of the search returns exactly topk's k smallest, in order, wide or narrow."""
    generator = torch.Generator().manual_seed(0)
    for columns in (2739, 1000, 300, 40):
        cost = torch.rand(64, columns, generator=generator)
        cost[:5, :32] -= 2.0  # rows whose best all sit in a few neighbouring columns
        expected = cost.topk(16, largest=False).indices
        assert torch.equal(exemplar._smallest(cost, 16), expected)


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_select_pixels_matches_np_where(dtype):
    rng = np.random.default_rng(3)
    hole_mask = rng.random((9, 7)) < 0.4
    inside = rng.integers(0, 256, (9, 7, 3)).astype(dtype)
    outside = rng.integers(0, 256, (9, 7, 3)).astype(dtype)[:, ::-1]  # a non-contiguous view works too
    selected = exemplar.select_pixels(hole_mask, inside, outside)
    np.testing.assert_array_equal(selected, np.where(hole_mask[..., None], inside, outside))
    assert selected.dtype == dtype


def test_hole_pixels_are_written_in_place_around_the_holes_only():
    """write_hole_pixels changes exactly the hole pixels of the array it is given (a view into a larger one),
    and nothing for an empty mask."""
    rng = np.random.default_rng(6)
    picture = rng.integers(0, 256, (300, 400, 3)).astype(np.uint8)
    before = picture.copy()
    inside = rng.integers(0, 256, (100, 120, 3)).astype(np.uint8)
    hole_mask = np.zeros((100, 120), bool)
    hole_mask[40:45, 70:90] = True
    hole_mask[90, 3] = True
    view = picture[50:150, 100:220]
    exemplar.write_hole_pixels(view, hole_mask, inside)
    expected = before.copy()
    expected[50:150, 100:220] = np.where(hole_mask[..., None], inside, before[50:150, 100:220])
    np.testing.assert_array_equal(picture, expected)
    exemplar.write_hole_pixels(view, np.zeros((100, 120), bool), inside)
    np.testing.assert_array_equal(picture, expected)
