"""The paper's losses on hand-made tensors, and the project's VGG16 (torchvision key layout, local weights)."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F

from dfnet.losses import (
    DFNetLoss,
    LossConfig,
    boundary_l1_loss,
    gram_matrix,
    l1_loss,
    perceptual_loss,
    resize_target,
    style_loss,
    total_variation_loss,
)
from dfnet.vgg import (
    VGG16_ENV,
    VGG16_FILENAME,
    VGG16Features,
    VGGWeightsError,
    find_vgg16_weights,
    load_vgg16_features,
)

CONV_INDICES = (0, 2, 5, 7, 10, 12, 14)  # torchvision VGG16 convs up to pool3
pytestmark = pytest.mark.usefixtures("one_thread_per_module")  # tiny convolutions: fastest on one thread


def t(values: list, shape: tuple[int, ...]) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32).reshape(shape)


class ListVGG(torch.nn.Module):
    """A stand-in feature extractor: the image itself and its 2x2 average pool, as two 'layers'."""

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [x, F.avg_pool2d(x, 2)]


# --------------------------------------------------------------------------------------------
# Single terms
# --------------------------------------------------------------------------------------------
def test_l1_is_mean_absolute_error() -> None:
    assert l1_loss(t([0, 1, -2, 3], (1, 1, 2, 2)), torch.zeros(1, 1, 2, 2)).item() == pytest.approx(1.5)


def test_total_variation_top_and_left_neighbours() -> None:
    # [[0, 1], [3, 5]]: top differences |3-0|, |5-1| -> mean 3.5; left |1-0|, |5-3| -> mean 1.5.
    assert total_variation_loss(t([0, 1, 3, 5], (1, 1, 2, 2))).item() == pytest.approx(5.0)
    # 2x3, two channels: channel 0 rows [0,2,4],[1,3,5]; channel 1 constant.
    x = torch.stack([t([0, 2, 4, 1, 3, 5], (2, 3)), torch.full((2, 3), 7.0)])[None]
    # top: channel 0 all 1 (3 values), channel 1 all 0 -> 0.5; left: channel 0 all 2 (4), channel 1 0 -> 1.0
    assert total_variation_loss(x).item() == pytest.approx(1.5)


def test_gram_matrix_normalised_by_chw() -> None:
    features = t([1, 2, 3, 4], (1, 2, 1, 2))  # C=2, H=1, W=2: rows (1, 2) and (3, 4)
    expected = t([5, 11, 11, 25], (1, 2, 2)) / 4
    assert torch.allclose(gram_matrix(features), expected)


def test_perceptual_and_style_sum_over_layers() -> None:
    prediction = [t([1, 2, 3, 4], (1, 2, 1, 2)), t([2.0], (1, 1, 1, 1))]
    target = [torch.zeros(1, 2, 1, 2), t([-1.0], (1, 1, 1, 1))]
    # perceptual: mean(1, 2, 3, 4) = 2.5 plus |2 - (-1)| = 3
    assert perceptual_loss(prediction, target).item() == pytest.approx(5.5)
    # style: layer 1 Gram [[1.25, 2.75], [2.75, 6.25]] vs 0 -> mean 3.25; layer 2 Gram 4/1 vs 1/1 -> 3
    assert style_loss(prediction, target).item() == pytest.approx(6.25)


def test_resize_target_area_is_box_average() -> None:
    image = t(list(range(16)), (1, 1, 4, 4))
    assert torch.allclose(resize_target(image, (2, 2)), t([2.5, 4.5, 10.5, 12.5], (1, 1, 2, 2)))
    assert resize_target(image, (4, 4)) is image


def test_resize_target_bilinear_is_antialiased() -> None:
    # Columns 0-3 are 0, 4-7 are 1. Downscaling by 4, the antialiased bilinear filter is a triangle of
    # radius 4 input pixels: for the left output pixel (centre x=2) the weights of the input centres
    # 0.5..5.5 are .625 .875 .875 .625 .375 .125 (sum 3.5), so it is (.375 + .125) / 3.5 = 1/7.
    halves = t([0, 0, 0, 0, 1, 1, 1, 1] * 8, (1, 1, 8, 8))
    small = resize_target(halves, (2, 2), "bilinear")
    assert torch.allclose(small, t([1 / 7, 6 / 7] * 2, (1, 1, 2, 2)), atol=1e-6)


def test_resize_target_fusion_is_the_fusion_blocks_bilinear() -> None:
    # Downscaling by 4 without antialiasing samples the two middle pixels of each 4-pixel run:
    # output x = 0 sits at input x = 1.5, between columns 1 and 2, so the halves image gives 0 and 1.
    halves = t([0, 0, 0, 0, 1, 1, 1, 1] * 8, (1, 1, 8, 8))
    small = resize_target(halves, (2, 2))  # the default
    assert torch.equal(small, t([0, 1] * 2, (1, 1, 2, 2)))
    ramp = t(list(range(16)), (1, 1, 4, 4))
    assert torch.equal(resize_target(ramp, (1, 1), "fusion"), t([7.5], (1, 1, 1, 1)))  # centre of 5, 6, 9, 10
    assert torch.equal(resize_target(ramp, (1, 1), "area"), t([7.5], (1, 1, 1, 1)))
    corner = torch.zeros(1, 1, 4, 4)
    corner[..., 0, 0] = 16.0
    assert resize_target(corner, (1, 1), "fusion").item() == 0.0  # the corner pixel is not sampled
    assert resize_target(corner, (1, 1), "area").item() == 1.0
    with pytest.raises(ValueError, match="target_resize"):
        LossConfig(target_resize="nearest")


@pytest.mark.parametrize("target_resize", ["fusion", "area"])
def test_mask_fusion_with_the_resized_target_as_raw_completion_scores_zero(target_resize: str) -> None:
    """fusion=mask, raw completion = the resized target: the blended result equals the target at every scale
    only when the target is resized like the fusion block resizes its input (the default)."""
    from dfnet.model import FusionBlock

    torch.manual_seed(0)
    target = torch.rand(2, 3, 64, 64)
    hole_mask = torch.zeros(2, 1, 64, 64)
    hole_mask[0, :, 0:32, 32:64] = 1  # holes aligned to the coarsest (32-pixel) grid: alpha is 0 or 1
    hole_mask[1, :, 32:64, :] = 1
    masked_image = target * (1 - hole_mask)
    block = FusionBlock(8, "mask", 3, 32)
    single = DFNetLoss(LossConfig(structure_scales=1, texture_scales=0, target_resize=target_resize))
    results = []
    for k in range(6):
        size = (64 >> k, 64 >> k)
        raw = resize_target(target, size, target_resize)
        result, alpha = block.compose(raw, masked_image, hole_mask)
        assert set(alpha.unique().tolist()) <= {0.0, 1.0}
        results.append(result)
    per_scale = [single([result], target)["structure"].item() for result in results]
    total = DFNetLoss(LossConfig(structure_scales=6, texture_scales=0, target_resize=target_resize))
    if target_resize == "fusion":
        assert per_scale == [0.0] * 6
        assert total(results, target)["structure"].item() == 0.0
    else:  # area targets average 4**k pixels where the known ones pass through as 4 bilinear samples
        assert per_scale[0] == per_scale[1] == 0.0  # at 1/2 both are the 2x2 mean
        assert min(per_scale[2:]) > 0.01


def _independent_vgg_features(vgg: VGG16Features, image: torch.Tensor, normalise: bool) -> list[torch.Tensor]:
    """pool1-3 of torchvision's VGG16 layout written out with functional calls on the state dict."""
    state = vgg.state_dict()
    x = image
    if normalise:
        x = (x - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor(
            [0.229, 0.224, 0.225]
        ).view(1, 3, 1, 1)
    pools = []
    for block in ((0, 2), (5, 7), (10, 12, 14)):
        for i in block:
            x = F.relu(F.conv2d(x, state[f"features.{i}.weight"], state[f"features.{i}.bias"], padding=1))
        x = F.max_pool2d(x, 2)
        pools.append(x)
    return pools


@pytest.mark.parametrize("vgg_input", ["imagenet", "raw"])
def test_vgg_input_terms_match_an_independent_computation(vgg_input: str) -> None:
    torch.manual_seed(0)
    vgg = VGG16Features()
    vgg.init_random(seed=3)
    prediction, target = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    config = LossConfig(structure_scales=1, texture_scales=1, vgg_input=vgg_input)
    terms = DFNetLoss(config, vgg=vgg)([prediction], target)
    normalise = vgg_input == "imagenet"
    ours = _independent_vgg_features(vgg, prediction, normalise)
    theirs = _independent_vgg_features(vgg, target, normalise)
    perceptual = sum((a - b).abs().mean() for a, b in zip(ours, theirs, strict=True))

    def gram(f: torch.Tensor) -> torch.Tensor:
        n, c, h, w = f.shape
        return torch.einsum("nchw,ndhw->ncd", f, f) / (c * h * w)

    style = sum((gram(a) - gram(b)).abs().mean() for a, b in zip(ours, theirs, strict=True))
    assert terms["perceptual"].item() == pytest.approx(perceptual.item(), rel=1e-5)
    assert terms["style"].item() == pytest.approx(style.item(), rel=1e-4)
    assert terms["l1"].item() == pytest.approx((prediction - target).abs().mean().item(), rel=1e-6)
    other = "raw" if normalise else "imagenet"
    swapped = DFNetLoss(LossConfig(structure_scales=1, texture_scales=1, vgg_input=other), vgg=vgg)(
        [prediction], target
    )
    assert abs(swapped["style"].item() / terms["style"].item() - 1) > 0.1  # the choice matters
    with pytest.raises(ValueError, match="vgg_input"):
        LossConfig(vgg_input="caffe")


# --------------------------------------------------------------------------------------------
# The combined multi-scale loss
# --------------------------------------------------------------------------------------------
def test_combined_loss_hand_computed() -> None:
    target = torch.zeros(1, 3, 4, 4)
    results = [torch.full((1, 3, 4, 4), 0.5), torch.full((1, 3, 2, 2), 0.25)]
    loss = DFNetLoss(LossConfig(structure_scales=2, texture_scales=1), vgg=ListVGG())
    terms = loss(results, target)
    assert terms["l1"].item() == pytest.approx((0.5 + 0.25) / 2)
    assert terms["structure"].item() == pytest.approx(6 * 0.375)
    # perceptual: 0.5 (image layer) + 0.5 (pooled layer). Style: the constant-0.5 image has Gram entries
    # 16 * 0.25 / (3 * 16) = 1/12 and the pooled one 4 * 0.25 / (3 * 4) = 1/12; the target's are 0.
    assert terms["perceptual"].item() == pytest.approx(1.0)
    assert terms["style"].item() == pytest.approx(2 / 12)
    assert terms["tv"].item() == pytest.approx(0.0)
    assert terms["texture"].item() == pytest.approx(0.1 * 1.0 + 240 * 2 / 12)
    assert terms["total"].item() == pytest.approx(2.25 + 0.1 + 40)


def test_structure_averages_the_p_finest_scales_against_resized_targets() -> None:
    target = t(list(range(16)), (1, 1, 4, 4)).expand(1, 3, 4, 4)
    results = [target.clone(), torch.zeros(1, 3, 2, 2), torch.full((1, 3, 1, 1), 100.0)]
    loss = DFNetLoss(LossConfig(structure_scales=2, texture_scales=0, lambda_l1=2.0))
    terms = loss(results, target)
    # scale 0 exact; scale 1 against block means (2.5, 4.5, 10.5, 12.5) -> 7.5; scale 2 is not in P.
    assert terms["l1"].item() == pytest.approx(7.5 / 2)
    assert terms["total"].item() == pytest.approx(7.5)
    assert terms["texture"].item() == 0.0


def test_texture_averages_the_q_finest_scales() -> None:
    ramp = t([0, 1, 2, 3], (1, 1, 1, 4)).expand(1, 3, 4, 4)  # left differences 1, top 0 -> TV 1
    results = [ramp.clone(), ramp[..., ::2, ::2] * 2]  # 2x2 with left difference 4 -> TV 4
    cfg = LossConfig(structure_scales=0, texture_scales=2, lambda_perceptual=0, lambda_style=0, lambda_tv=1)
    terms = DFNetLoss(cfg)(results, torch.zeros(1, 3, 4, 4))
    assert terms["tv"].item() == pytest.approx((1 + 4) / 2)
    assert terms["total"].item() == pytest.approx(2.5)


def test_tv_gives_prediction_gradient_and_target_none() -> None:
    prediction = torch.rand(1, 3, 8, 8, requires_grad=True)
    target = torch.rand(1, 3, 8, 8, requires_grad=True)
    terms = DFNetLoss(LossConfig(structure_scales=0, texture_scales=1), vgg=ListVGG())([prediction], target)
    terms["total"].backward()
    assert prediction.grad is not None and prediction.grad.abs().sum() > 0
    assert target.grad is None  # the target is ground truth: no gradient reaches it (no swapped roles)


def test_scale_counts_are_validated() -> None:
    with pytest.raises(ValueError, match="needs that many fusion results"):
        DFNetLoss(LossConfig(structure_scales=3, texture_scales=0))(
            [torch.zeros(1, 3, 4, 4)] * 2, torch.zeros(1, 3, 4, 4)
        )
    with pytest.raises(ValueError, match="nothing to train"):
        LossConfig(structure_scales=0, texture_scales=0)
    with pytest.raises(ValueError, match="needs a VGG16Features"):
        DFNetLoss(LossConfig())


def test_vgg_runs_in_float32_under_autocast() -> None:
    torch.manual_seed(0)
    vgg = VGG16Features()
    vgg.init_random()
    results = [torch.rand(1, 3, 32, 32), torch.rand(1, 3, 16, 16)]
    target = torch.rand(1, 3, 32, 32)
    loss = DFNetLoss(LossConfig(structure_scales=2, texture_scales=2), vgg=vgg)
    reference = loss(results, target)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = loss([r.bfloat16() for r in results], target)
    assert mixed["total"].dtype == torch.float32
    # the only difference is the bf16 rounding of the predictions themselves
    assert mixed["style"].item() == pytest.approx(reference["style"].item(), rel=0.05)
    assert mixed["perceptual"].item() == pytest.approx(reference["perceptual"].item(), rel=0.05)


@pytest.mark.parametrize("outer_autocast", [False, True])
def test_vgg_precision_bf16_runs_only_the_convolutions_in_bfloat16(outer_autocast: bool) -> None:
    torch.manual_seed(0)
    vgg = VGG16Features()
    vgg.init_random()
    conv_dtypes: list[torch.dtype] = []
    hooks = [
        m.register_forward_hook(lambda _m, _i, out: conv_dtypes.append(out.dtype))
        for m in vgg.modules()
        if isinstance(m, torch.nn.Conv2d)
    ]
    results = [torch.rand(2, 3, 32, 32, requires_grad=True), torch.rand(2, 3, 16, 16)]
    target = torch.rand(2, 3, 32, 32)

    def terms(precision: str) -> tuple[dict, set]:
        conv_dtypes.clear()
        loss = DFNetLoss(LossConfig(structure_scales=2, texture_scales=2, vgg_precision=precision), vgg=vgg)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=outer_autocast):
            out = loss(results, target)
        return out, set(conv_dtypes)

    full, full_dtypes = terms("fp32")
    half, half_dtypes = terms("bf16")
    assert full_dtypes == {torch.float32} and half_dtypes == {torch.bfloat16}
    assert half["total"].dtype == torch.float32 and half["style"].dtype == torch.float32
    assert half["style"].item() == pytest.approx(full["style"].item(), rel=0.05)
    assert half["perceptual"].item() == pytest.approx(full["perceptual"].item(), rel=0.05)
    assert half["style"].item() != full["style"].item()  # the bf16 path did run
    (grad,) = torch.autograd.grad(half["total"], results[0])
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    for hook in hooks:
        hook.remove()
    with pytest.raises(ValueError, match="vgg_precision"):
        LossConfig(vgg_precision="fp16")


# --------------------------------------------------------------------------------------------
# VGG16
# --------------------------------------------------------------------------------------------
def test_vgg_key_layout_matches_torchvision() -> None:
    keys = set(VGG16Features().state_dict())
    assert keys == {f"features.{i}.{p}" for i in CONV_INDICES for p in ("weight", "bias")}


def test_vgg_feature_shapes_and_normalisation() -> None:
    vgg = VGG16Features()
    vgg.init_random()
    x = torch.rand(2, 3, 32, 32)
    pool1, pool2, pool3 = vgg(x)
    assert pool1.shape == (2, 64, 16, 16) and pool2.shape == (2, 128, 8, 8) and pool3.shape == (2, 256, 4, 4)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    f = vgg.features
    manual = F.relu(f[0]((x - mean) / std))
    manual = F.max_pool2d(F.relu(f[2](manual)), 2)
    assert torch.allclose(pool1, manual, atol=1e-5)


def _torchvision_like_file(path, seed: int = 1) -> dict[str, torch.Tensor]:
    """A full VGG16 state dict as torchvision saves it; layers past pool3 and the classifier are small fakes."""
    gen = torch.Generator().manual_seed(seed)
    state = {k: torch.randn(v.shape, generator=gen) for k, v in VGG16Features().state_dict().items()}
    for i in (17, 19, 21, 24, 26, 28):
        state[f"features.{i}.weight"] = torch.zeros(1)
        state[f"features.{i}.bias"] = torch.zeros(1)
    for i in (0, 3, 6):
        state[f"classifier.{i}.weight"] = torch.zeros(2, 2)
        state[f"classifier.{i}.bias"] = torch.zeros(2)
    torch.save(state, path)
    return state


def test_vgg_loads_full_torchvision_file(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv(VGG16_ENV, raising=False)
    path = tmp_path / VGG16_FILENAME
    state = _torchvision_like_file(path)
    vgg = load_vgg16_features(path)
    assert torch.equal(vgg.features[14].weight, state["features.14.weight"])
    assert not any(p.requires_grad for p in vgg.parameters())
    vgg.train()
    assert not vgg.training


def test_vgg_weight_lookup_order(tmp_path, monkeypatch) -> None:
    hub = tmp_path / "torchhome" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torchhome"))
    monkeypatch.delenv(VGG16_ENV, raising=False)
    assert find_vgg16_weights() is None
    (hub / VGG16_FILENAME).write_bytes(b"x")
    assert find_vgg16_weights() == hub / VGG16_FILENAME
    env_file = tmp_path / "env.pth"
    env_file.write_bytes(b"x")
    monkeypatch.setenv(VGG16_ENV, str(env_file))
    assert find_vgg16_weights() == env_file
    assert find_vgg16_weights(hub / VGG16_FILENAME) == hub / VGG16_FILENAME  # explicit path wins
    with pytest.raises(VGGWeightsError, match="given by vgg.weights"):
        find_vgg16_weights(tmp_path / "nope.pth")


def test_vgg_missing_weights_error_or_loud_random(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.delenv(VGG16_ENV, raising=False)
    with pytest.raises(VGGWeightsError) as info:
        load_vgg16_features()
    message = str(info.value)
    assert str(tmp_path / "hub" / "checkpoints" / VGG16_FILENAME) in message and "\n" not in message
    with pytest.warns(UserWarning, match="RANDOM VGG16"):
        first = load_vgg16_features(allow_random=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        second = load_vgg16_features(allow_random=True)
    assert torch.equal(first.features[0].weight, second.features[0].weight)  # same on every process


def test_vgg_rejects_wrong_file(tmp_path) -> None:
    bad = tmp_path / "bad.pth"
    torch.save({"features.0.weight": torch.zeros(3)}, bad)
    with pytest.raises(VGGWeightsError, match="not a VGG16 weight file"):
        load_vgg16_features(bad)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(VGGWeightsError, match="cannot read"):
        load_vgg16_features(garbage)


# --------------------------------------------------------------------------------------------
# The boundary-band term (not in the paper; off by default)
# --------------------------------------------------------------------------------------------
def test_boundary_l1_averages_the_band_pixels_only() -> None:
    # A 1x5 strip: known | hole hole hole | known. With width 1 the band is hole pixels 1 and 3.
    hole_mask = t([0, 1, 1, 1, 0], (1, 1, 1, 5))
    target = torch.zeros(1, 3, 1, 5)
    prediction = t([9, 0.2, 5, 0.4, 9], (1, 1, 1, 5)).expand(1, 3, 1, 5)
    assert boundary_l1_loss(prediction, target, hole_mask, width=1).item() == pytest.approx(0.3)
    # Width 2 reaches the centre pixel too.
    assert boundary_l1_loss(prediction, target, hole_mask, width=2).item() == pytest.approx(5.6 / 3)


def test_boundary_l1_is_zero_without_a_band() -> None:
    prediction = torch.rand(2, 3, 4, 4)
    assert (
        boundary_l1_loss(prediction, torch.zeros_like(prediction), torch.zeros(2, 1, 4, 4), 3).item() == 0.0
    )


def test_boundary_term_joins_the_total_with_its_weight() -> None:
    hole_mask = t([0, 1, 1, 1, 0], (1, 1, 1, 5))
    target = torch.zeros(1, 3, 1, 5)
    result = t([0, 0.2, 0.5, 0.4, 0], (1, 1, 1, 5)).expand(1, 3, 1, 5)
    cfg = LossConfig(
        structure_scales=1, texture_scales=0, lambda_l1=1.0, lambda_boundary=2.0, boundary_width=1
    )
    terms = DFNetLoss(cfg)([result], target, hole_mask)
    assert terms["l1"].item() == pytest.approx(1.1 / 5)
    assert terms["boundary"].item() == pytest.approx(0.3)
    assert terms["total"].item() == pytest.approx(1.1 / 5 + 2 * 0.3)
    # Off by default: same call, no boundary term, and no mask needed.
    plain = DFNetLoss(LossConfig(structure_scales=1, texture_scales=0, lambda_l1=1.0))([result], target)
    assert plain["boundary"].item() == 0.0 and plain["total"].item() == pytest.approx(1.1 / 5)


def test_boundary_term_needs_the_hole_mask() -> None:
    cfg = LossConfig(structure_scales=1, texture_scales=0, lambda_boundary=1.0)
    with pytest.raises(ValueError, match="hole mask"):
        DFNetLoss(cfg)([torch.zeros(1, 3, 4, 4)], torch.zeros(1, 3, 4, 4))
    with pytest.raises(ValueError, match="boundary_width"):
        LossConfig(boundary_width=0)
