"""Metrics against hand-computed values; the FID Inception's published layout; LPIPS weight loading."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch
from scipy.ndimage import distance_transform_edt

from dfnet.inception import (
    FID_WEIGHTS_ENV,
    FID_WEIGHTS_NAME,
    FIDInceptionV3,
    FIDWeightsError,
    _pool_3x3,
    find_fid_weights,
    load_fid_inception,
)
from dfnet.metrics import (
    FeatureStatistics,
    MetricTotals,
    boundary_band,
    frechet_distance,
    measure_batch,
    per_image_bpe_sums,
    per_image_l1,
    per_image_psnr,
    per_image_ssim,
)


def _square_hole(side: int = 20, lo: int = 5, hi: int = 15) -> torch.Tensor:
    hole = torch.zeros(1, 1, side, side, dtype=torch.bool)
    hole[..., lo:hi, lo:hi] = True
    return hole


# ---------------------------------------------------------------------------------------------
# L1, PSNR, SSIM
# ---------------------------------------------------------------------------------------------
def test_l1_is_the_mean_absolute_error_over_all_pixels_and_channels():
    target = torch.zeros(2, 3, 4, 4)
    result = target.clone()
    result[0] = 0.25  # every value off by 0.25
    result[1, 1, 0, 0] = 0.96  # one value of 48 off by 0.96 -> 0.02
    assert per_image_l1(result, target).tolist() == pytest.approx([0.25, 0.02])


def test_l1_accepts_uint8_images():
    target = torch.zeros(1, 3, 2, 2, dtype=torch.uint8)
    result = torch.full((1, 3, 2, 2), 51, dtype=torch.uint8)  # 51 / 255 = 0.2
    assert per_image_l1(result, target).item() == pytest.approx(0.2)


def test_psnr_of_a_constant_error_and_of_a_perfect_result():
    target = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0)) * 0.5
    result = torch.stack([target[0] + 0.1, target[1]])
    psnr = per_image_psnr(result, target)
    assert psnr[0].item() == pytest.approx(20.0, abs=1e-4)  # MSE 0.01 -> 10 log10(1 / 0.01)
    assert psnr[1].item() == pytest.approx(100.0)  # floored MSE 1e-10


def test_ssim_of_constant_images_follows_the_formula():
    a, b = 0.6, 0.3
    c1 = (0.01 * 1.0) ** 2  # K1 * peak, squared; the variance terms cancel (C2 / C2)
    expected = (2 * a * b + c1) / (a * a + b * b + c1)
    images = [torch.full((1, 3, 24, 24), v, dtype=torch.float64) for v in (a, b)]
    assert per_image_ssim(*images).item() == pytest.approx(expected, abs=1e-9)
    assert per_image_ssim(*(x.float() for x in images)).item() == pytest.approx(expected, abs=5e-4)  # float32


def test_ssim_is_one_for_identical_images_and_lower_for_noise():
    image = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    noisy = (image + 0.2 * torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))).clamp(0, 1)
    assert per_image_ssim(image, image).tolist() == pytest.approx([1.0, 1.0], abs=1e-5)
    assert (per_image_ssim(noisy, image) < 0.9).all()


# ---------------------------------------------------------------------------------------------
# BPE: the band counted by hand
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("width", "count"), [(1, 100 - 64), (2, 100 - 36), (4, 100 - 4), (5, 100)])
def test_band_of_a_square_hole_is_rings_of_the_given_width(width, count):
    band = boundary_band(_square_hole(), width)
    assert int(band.sum()) == count
    ring = torch.zeros(20, 20, dtype=torch.bool)
    ring[5:15, 5:15] = True
    ring[5 + width : 15 - width, 5 + width : 15 - width] = False
    assert torch.equal(band[0, 0], ring)


def test_band_uses_euclidean_distance_around_a_single_known_pixel():
    hole = torch.ones(1, 1, 9, 9, dtype=torch.bool)
    hole[..., 4, 4] = False  # the only known pixel
    # distance 1: the 4 edge neighbours (not the diagonals at sqrt 2)
    assert int(boundary_band(hole, 1).sum()) == 4
    # distance <= 2: lattice points of the radius-2 disk (13) minus the centre
    assert int(boundary_band(hole, 2).sum()) == 12
    assert not boundary_band(hole, 1)[0, 0, 3, 3]  # diagonal neighbour, distance sqrt(2)
    assert boundary_band(hole, 2)[0, 0, 3, 3]


def test_image_border_is_not_a_hole_boundary():
    hole = torch.ones(1, 8, 8, dtype=torch.bool)
    hole[:, :, 0] = False  # known first column only
    band = boundary_band(hole, 2)
    assert band[0, 0, :, 1:3].all() and int(band.sum()) == 16  # columns 1 and 2, nothing at the borders


def test_band_matches_a_distance_transform():
    rng = np.random.default_rng(3)
    hole = rng.random((2, 1, 40, 40)) < 0.6
    band = boundary_band(torch.from_numpy(hole), 3).numpy()
    for i in range(2):
        distance = distance_transform_edt(hole[i, 0])  # distance of each hole pixel to the nearest known one
        assert np.array_equal(band[i, 0], hole[i, 0] & (distance <= 3))


def test_bpe_is_the_mean_error_over_band_pixels_only():
    hole = _square_hole()
    target = torch.zeros(1, 3, 20, 20)
    result = torch.zeros(1, 3, 20, 20)
    band = boundary_band(hole, 1)[0, 0]
    inner = hole[0, 0] & ~band
    for c, error in enumerate((0.1, 0.2, 0.3)):  # channel mean 0.2 on the band
        result[0, c][band] = error
    result[0][:, inner] = 0.9  # deep hole pixels do not count
    result[0][:, ~hole[0, 0]] = 0.5  # neither do known pixels
    error_sum, pixels = per_image_bpe_sums(result, target, hole, 1)
    assert pixels.item() == 36
    assert (error_sum / pixels).item() == pytest.approx(0.2)


def test_band_width_must_be_positive():
    with pytest.raises(ValueError, match="at least 1"):
        boundary_band(_square_hole(), 0)


# ---------------------------------------------------------------------------------------------
# Accumulation over a data set
# ---------------------------------------------------------------------------------------------
def test_totals_pool_bpe_pixels_and_average_the_rest_over_images():
    hole = torch.cat([_square_hole(), _square_hole(20, 8, 10)])  # 36-pixel band, then a 2x2 hole (4 pixels)
    target = torch.zeros(2, 3, 20, 20)
    result = torch.cat([torch.full((1, 3, 20, 20), 0.1), torch.full((1, 3, 20, 20), 0.6)])
    result = torch.where(hole, result, target)
    totals = MetricTotals()
    measured = measure_batch(result, target, hole, bpe_band=1)
    totals.add(measured.select(torch.tensor([True, False])))
    totals.add(measured.select(torch.tensor([False, True])))
    values = totals.compute()
    assert totals.count == 2
    assert values["bpe"] == pytest.approx((36 * 0.1 + 4 * 0.6) / 40)  # pooled over all band pixels
    assert values["l1"] == pytest.approx((100 * 0.1 / 400 + 4 * 0.6 / 400) / 2)
    assert values["fid"] is None and values["lpips"] is None


def test_empty_totals_have_no_values():
    keys = ("l1", "bpe", "fid", "psnr", "ssim", "lpips", "grad_ratio", "detail", "swd")
    assert MetricTotals().compute() == dict.fromkeys(keys)


# ---------------------------------------------------------------------------------------------
# Fréchet distance and running feature statistics
# ---------------------------------------------------------------------------------------------
def _scipy_fid(a: np.ndarray, b: np.ndarray) -> float:
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    return float(
        ((mu1 - mu2) ** 2).sum()
        + np.trace(s1)
        + np.trace(s2)
        - 2 * np.trace(scipy.linalg.sqrtm(s1 @ s2).real)
    )


@pytest.mark.parametrize(("dim", "n"), [(8, 50), (64, 300)])
def test_frechet_distance_matches_scipy_sqrtm(dim, n):
    rng = np.random.default_rng(dim)
    a = rng.normal(size=(n, dim))
    b = rng.normal(size=(n, dim)) * 1.5 + 0.3 + 0.4 * a[:, ::-1]
    mine = frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))
    assert mine == pytest.approx(_scipy_fid(a, b), abs=1e-6)


def test_running_statistics_equal_the_whole_set_statistics():
    rng = np.random.default_rng(7)
    a, b = rng.normal(size=(203, 32)) * 3 + 1, rng.normal(size=(150, 32))
    stats_a, stats_b = FeatureStatistics(32), FeatureStatistics(32)
    for start in range(0, 203, 17):  # uneven batches
        stats_a.add(torch.from_numpy(a[start : start + 17]))
    stats_b.add(torch.from_numpy(b))
    assert stats_a.count == 203
    np.testing.assert_allclose(stats_a.mean.numpy(), a.mean(0), atol=1e-12)
    np.testing.assert_allclose(stats_a.covariance(), np.cov(a, rowvar=False), atol=1e-10)
    assert stats_a.frechet_distance(stats_b) == pytest.approx(_scipy_fid(a, b), abs=1e-6)
    assert stats_a.frechet_distance(stats_a) == pytest.approx(0.0, abs=1e-6)


def test_feature_statistics_check_shapes_and_counts():
    stats = FeatureStatistics(4)
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        stats.add(torch.zeros(3, 5))
    stats.add(torch.zeros(1, 4))
    with pytest.raises(ValueError, match="two"):
        stats.covariance()


# ---------------------------------------------------------------------------------------------
# The FID InceptionV3
# ---------------------------------------------------------------------------------------------
def _conv(name: str, cin: int, cout: int, kh: int, kw: int | None = None) -> tuple:
    return (name, cin, cout, kh, kh if kw is None else kw)


def _published_convs() -> list[tuple]:
    """Every conv+BN unit of the TF 2015 Inception as published: (name, in, out, kernel h, kernel w)."""
    convs = [
        _conv("Conv2d_1a_3x3", 3, 32, 3),
        _conv("Conv2d_2a_3x3", 32, 32, 3),
        _conv("Conv2d_2b_3x3", 32, 64, 3),
        _conv("Conv2d_3b_1x1", 64, 80, 1),
        _conv("Conv2d_4a_3x3", 80, 192, 3),
    ]
    for block, cin, pool in (("Mixed_5b", 192, 32), ("Mixed_5c", 256, 64), ("Mixed_5d", 288, 64)):
        convs += [
            _conv(f"{block}.branch1x1", cin, 64, 1),
            _conv(f"{block}.branch5x5_1", cin, 48, 1),
            _conv(f"{block}.branch5x5_2", 48, 64, 5),
            _conv(f"{block}.branch3x3dbl_1", cin, 64, 1),
            _conv(f"{block}.branch3x3dbl_2", 64, 96, 3),
            _conv(f"{block}.branch3x3dbl_3", 96, 96, 3),
            _conv(f"{block}.branch_pool", cin, pool, 1),
        ]
    convs += [
        _conv("Mixed_6a.branch3x3", 288, 384, 3),
        _conv("Mixed_6a.branch3x3dbl_1", 288, 64, 1),
        _conv("Mixed_6a.branch3x3dbl_2", 64, 96, 3),
        _conv("Mixed_6a.branch3x3dbl_3", 96, 96, 3),
    ]
    for block, c7 in (("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160), ("Mixed_6e", 192)):
        convs += [
            _conv(f"{block}.branch1x1", 768, 192, 1),
            _conv(f"{block}.branch7x7_1", 768, c7, 1),
            _conv(f"{block}.branch7x7_2", c7, c7, 1, 7),
            _conv(f"{block}.branch7x7_3", c7, 192, 7, 1),
            _conv(f"{block}.branch7x7dbl_1", 768, c7, 1),
            _conv(f"{block}.branch7x7dbl_2", c7, c7, 7, 1),
            _conv(f"{block}.branch7x7dbl_3", c7, c7, 1, 7),
            _conv(f"{block}.branch7x7dbl_4", c7, c7, 7, 1),
            _conv(f"{block}.branch7x7dbl_5", c7, 192, 1, 7),
            _conv(f"{block}.branch_pool", 768, 192, 1),
        ]
    convs += [
        _conv("Mixed_7a.branch3x3_1", 768, 192, 1),
        _conv("Mixed_7a.branch3x3_2", 192, 320, 3),
        _conv("Mixed_7a.branch7x7x3_1", 768, 192, 1),
        _conv("Mixed_7a.branch7x7x3_2", 192, 192, 1, 7),
        _conv("Mixed_7a.branch7x7x3_3", 192, 192, 7, 1),
        _conv("Mixed_7a.branch7x7x3_4", 192, 192, 3),
    ]
    for block, cin in (("Mixed_7b", 1280), ("Mixed_7c", 2048)):
        convs += [
            _conv(f"{block}.branch1x1", cin, 320, 1),
            _conv(f"{block}.branch3x3_1", cin, 384, 1),
            _conv(f"{block}.branch3x3_2a", 384, 384, 1, 3),
            _conv(f"{block}.branch3x3_2b", 384, 384, 3, 1),
            _conv(f"{block}.branch3x3dbl_1", cin, 448, 1),
            _conv(f"{block}.branch3x3dbl_2", 448, 384, 3),
            _conv(f"{block}.branch3x3dbl_3a", 384, 384, 1, 3),
            _conv(f"{block}.branch3x3dbl_3b", 384, 384, 3, 1),
            _conv(f"{block}.branch_pool", cin, 192, 1),
        ]
    return convs


def _published_shapes() -> dict[str, tuple[int, ...]]:
    """Key -> shape of pt_inception-2015-12-05-6726825d.pth (BatchNorm counters aside)."""
    shapes = {}
    for name, cin, cout, kh, kw in _published_convs():
        shapes[f"{name}.conv.weight"] = (cout, cin, kh, kw)
        for stat in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{name}.bn.{stat}"] = (cout,)
    shapes["fc.weight"] = (1008, 2048)
    shapes["fc.bias"] = (1008,)
    return shapes


@pytest.fixture(scope="module")
def inception() -> FIDInceptionV3:
    torch.manual_seed(0)
    return FIDInceptionV3().eval()


def test_inception_state_dict_has_the_published_keys_and_shapes(inception):
    state = inception.state_dict()
    published = _published_shapes()
    assert len(published) == 94 * 5 + 2
    got = {k: tuple(v.shape) for k, v in state.items() if not k.endswith("num_batches_tracked")}
    assert got == published
    counters = {k.removesuffix(".num_batches_tracked") for k in state if k.endswith("num_batches_tracked")}
    assert counters == {
        k.removesuffix(".conv.weight") + ".bn" for k in published if k.endswith(".conv.weight")
    }
    assert sum(p.numel() for p in inception.parameters()) == 23_850_960
    assert all(m.eps == 1e-3 for m in inception.modules() if isinstance(m, torch.nn.BatchNorm2d))


def test_inception_features_are_2048_wide_for_any_input_size(inception):
    with torch.inference_mode():
        features = inception(torch.rand(2, 3, 64, 80))
        from_uint8 = inception(torch.full((1, 3, 32, 32), 255, dtype=torch.uint8))
    assert features.shape == (2, 2048) and from_uint8.shape == (1, 2048)
    assert torch.isfinite(features).all()


def test_inception_input_is_resized_to_299_and_scaled_to_minus_one_one():
    white = FIDInceptionV3.preprocess(torch.full((1, 3, 50, 70), 255, dtype=torch.uint8))
    black = FIDInceptionV3.preprocess(torch.zeros(1, 3, 50, 70))
    assert white.shape == (1, 3, 299, 299)
    # bilinear weights of a constant image sum to 1 up to float rounding, which depends on the thread count
    torch.testing.assert_close(white, torch.ones_like(white), atol=1e-6, rtol=0)
    torch.testing.assert_close(black, -torch.ones_like(black), atol=1e-6, rtol=0)


def test_pool_branches_ignore_padding_and_the_last_block_uses_max(inception):
    x = torch.tensor([[[[1.0, 2.0], [3.0, 6.0]]]])
    # without counting padding every 3x3 window covers the whole 2x2 image: mean 3
    assert torch.equal(_pool_3x3(x, "avg"), torch.full_like(x, 3.0))
    assert torch.equal(_pool_3x3(x, "max"), torch.full_like(x, 6.0))
    assert inception.Mixed_7b.pool == "avg" and inception.Mixed_7c.pool == "max"


def test_inception_loads_a_weight_file_with_or_without_batchnorm_counters(tmp_path, inception):
    state = {k: v.clone() for k, v in inception.state_dict().items() if not k.endswith("num_batches_tracked")}
    state["fc.bias"] += 1.0
    path = tmp_path / "weights.pth"
    torch.save(state, path)
    loaded = load_fid_inception(path)
    assert torch.equal(loaded.fc.bias, state["fc.bias"]) and not loaded.training


def test_inception_refuses_files_with_other_keys(tmp_path, inception):
    state = dict(inception.state_dict())
    state["AuxLogits.fc.weight"] = torch.zeros(1000, 768)
    torch.save(state, tmp_path / "aux.pth")
    with pytest.raises(FIDWeightsError, match="unexpected"):
        load_fid_inception(tmp_path / "aux.pth")
    del state["AuxLogits.fc.weight"], state["fc.weight"]
    torch.save(state, tmp_path / "missing.pth")
    with pytest.raises(FIDWeightsError, match="missing"):
        load_fid_inception(tmp_path / "missing.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(FIDWeightsError, match="cannot read"):
        load_fid_inception(tmp_path / "junk.pth")


def test_fid_weights_are_found_by_path_env_or_hub_cache_and_never_invented(tmp_path, monkeypatch):
    monkeypatch.delenv(FID_WEIGHTS_ENV, raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    assert find_fid_weights() is None
    cached = tmp_path / "torch" / "hub" / "checkpoints" / FID_WEIGHTS_NAME
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"x")
    assert find_fid_weights() == cached
    given = tmp_path / "given.pth"
    given.write_bytes(b"x")
    monkeypatch.setenv(FID_WEIGHTS_ENV, str(given))
    assert find_fid_weights() == given
    with pytest.raises(FileNotFoundError, match="does not exist"):
        find_fid_weights(tmp_path / "typo.pth")
    monkeypatch.setenv(FID_WEIGHTS_ENV, str(tmp_path / "typo.pth"))
    with pytest.raises(FileNotFoundError, match=FID_WEIGHTS_ENV):
        find_fid_weights()


def _grid_features(images: torch.Tensor) -> torch.Tensor:
    """A cheap stand-in feature network: 2x2 average-pooled colours, 12 values per image."""
    return torch.nn.functional.adaptive_avg_pool2d(images, 2).flatten(1)


def test_measure_batch_collects_fid_features_of_both_sets():
    target = torch.rand(30, 3, 16, 16, generator=torch.Generator().manual_seed(4))
    hole = torch.zeros(30, 1, 16, 16, dtype=torch.bool)
    hole[..., 2:9, 3:10] = True
    result = torch.where(hole, 0.5, target)
    measured = measure_batch(result, target, hole, fid_features=_grid_features)
    assert measured.real_features.shape == (30, 12) and measured.real_features.dtype == torch.float64
    totals = MetricTotals(12)
    totals.add(measured.select(torch.arange(11)))
    totals.add(measured.select(torch.arange(11, 30)))
    real, fake = _grid_features(target).double().numpy(), _grid_features(result).double().numpy()
    assert totals.compute()["fid"] == pytest.approx(_scipy_fid(fake, real), abs=1e-6)


# ---------------------------------------------------------------------------------------------
# LPIPS (VGG), when weight files are given
# ---------------------------------------------------------------------------------------------
def _lpips_files(tmp_path, monkeypatch):
    from dfnet.metrics import LPIPS_CHANNELS
    from dfnet.vgg import VGG16_ENV, VGG16Features

    vgg = VGG16Features(("pool5",))
    vgg.init_random(seed=3)
    torch.save(vgg.state_dict(), tmp_path / "vgg16.pth")
    monkeypatch.setenv(VGG16_ENV, str(tmp_path / "vgg16.pth"))
    lins = {f"lin{i}.model.1.weight": torch.full((1, c, 1, 1), 1.0 / c) for i, c in enumerate(LPIPS_CHANNELS)}
    torch.save(lins, tmp_path / "lpips_vgg.pth")
    return tmp_path / "lpips_vgg.pth"


def test_lpips_follows_its_formula_with_published_weight_names(tmp_path, monkeypatch):
    from dfnet.metrics import load_lpips_vgg

    network = load_lpips_vgg(_lpips_files(tmp_path, monkeypatch))
    a = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(5))
    b = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(6))
    with torch.inference_mode():
        distance = network(a, b)
        assert network(a, a).tolist() == pytest.approx([0.0, 0.0], abs=1e-6)
        # by hand: lin weights 1/C make each layer the spatial mean of |unit(a) - unit(b)|^2 / C
        expected = torch.zeros(2)
        for fa, fb in zip(network.activations(a), network.activations(b), strict=True):
            ua = fa / (fa.norm(dim=1, keepdim=True) + 1e-10)
            ub = fb / (fb.norm(dim=1, keepdim=True) + 1e-10)
            expected += ((ua - ub) ** 2).sum(1).mean((1, 2)) / fa.shape[1]
    assert distance.tolist() == pytest.approx(expected.tolist(), rel=1e-5)
    assert (distance > 0).all()


def test_lpips_refuses_bad_lin_weights(tmp_path, monkeypatch):
    from dfnet.metrics import LPIPSWeightsError, load_lpips_vgg

    _lpips_files(tmp_path, monkeypatch)
    torch.save({"lin0.model.1.weight": torch.zeros(1, 3, 1, 1)}, tmp_path / "bad.pth")
    with pytest.raises(LPIPSWeightsError, match="lin0"):
        load_lpips_vgg(tmp_path / "bad.pth")
    with pytest.raises(FileNotFoundError):
        load_lpips_vgg(tmp_path / "absent.pth")
