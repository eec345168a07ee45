"""The DFNet architecture: released size, shapes of every variant, the fusion formula, input checks."""

from __future__ import annotations

import pytest
import torch

from dfnet.model import (
    DFNet,
    DFNetConfig,
    FusionBlock,
    blend,
    composite,
    count_parameters,
    fill_boundary_ring,
    fill_hole,
    pushpull_fill,
    same_padding,
    set_initial_alpha,
    smooth_hole,
)


def test_default_network_has_released_parameter_count():
    model = DFNet()
    assert count_parameters(model) == 32_880_504
    assert len(model.state_dict()) == 215


@pytest.mark.parametrize(
    "kernel,stride,expected", [(7, 2, (2, 3)), (5, 2, (1, 2)), (3, 2, (0, 1)), (3, 1, (1, 1)), (1, 1, (0, 0))]
)
def test_same_padding_is_tensorflow_style(kernel, stride, expected):
    assert same_padding(kernel, stride) == expected


def test_stride2_same_conv_matches_explicit_asymmetric_padding():
    torch.manual_seed(0)
    model = DFNet(DFNetConfig(width=0.125))
    conv = model.encoder[0].conv
    x = torch.rand(1, 4, 32, 32)
    expected = torch.nn.functional.conv2d(
        torch.nn.functional.pad(x, (2, 3, 2, 3)), conv.conv.weight, conv.conv.bias, stride=2
    )
    torch.testing.assert_close(conv(x), expected)
    assert conv(x).shape[-2:] == (16, 16)


VARIANTS = [
    DFNetConfig(width=0.125),
    DFNetConfig(width=0.125, alpha_channels=1),
    DFNetConfig(width=0.125, fusion="mask"),
    DFNetConfig(width=0.125, fusion="none", fusion_layers=(0,)),
    DFNetConfig(width=0.125, fusion_layers=(0,)),
    DFNetConfig(width=0.125, fusion_layers=(0, 1, 2)),
    DFNetConfig(width=0.125, fusion_layers=tuple(range(8))),
    DFNetConfig(width=0.125, hole_fill="pushpull"),
    DFNetConfig(width=0.125, hole_fill="ring_pushpull"),
]


@pytest.mark.parametrize(
    "config", VARIANTS, ids=lambda c: f"{c.fusion}-a{c.alpha_channels}-f{len(c.fusion_layers)}-{c.hole_fill}"
)
@pytest.mark.parametrize("size", [256, 512])
def test_variant_shapes(config, size):
    model = DFNet(config).eval()
    image = torch.rand(2, 3, size, size)
    hole = (torch.rand(2, 1, size, size) > 0.7).float()
    with torch.no_grad():
        out = model(image, hole)
    assert len(out.results) == len(out.alphas) == len(out.raws) == len(config.fusion_layers)
    for layer, result, alpha, raw in zip(
        config.fusion_layers, out.results, out.alphas, out.raws, strict=True
    ):
        side = size // 2**layer
        assert result.shape == raw.shape == (2, 3, side, side)
        expected_alpha = 3 if config.fusion == "learned" and config.alpha_channels == 3 else 1
        assert alpha.shape == (2, expected_alpha, side, side)
        assert float(result.min()) >= 0 and float(result.max()) <= 1
    with torch.no_grad():
        final = model.complete(image, hole)
    torch.testing.assert_close(final, out.results[0])


def test_width_multiplier_scales_channels():
    assert DFNetConfig(width=0.5).encoder_channels() == [32, 64, 128, 256, 256, 256, 256, 256]
    assert count_parameters(DFNet(DFNetConfig(width=0.5))) < count_parameters(DFNet()) / 3


def test_blend_formula_on_hand_made_tensors():
    alpha = torch.tensor([[[[0.0, 0.25], [0.5, 1.0]]]])
    raw = torch.full((1, 1, 2, 2), 0.8)
    masked = torch.tensor([[[[0.4, 0.4], [0.0, 0.2]]]])
    expected = torch.tensor([[[[0.4, 0.25 * 0.8 + 0.75 * 0.4], [0.5 * 0.8, 0.8]]]])
    torch.testing.assert_close(blend(alpha, raw, masked), expected)


def test_fusion_block_learned_uses_formula_with_its_own_alpha():
    torch.manual_seed(1)
    block = FusionBlock(feature_channels=8, kind="learned", alpha_channels=3, hidden=32).eval()
    features = torch.randn(1, 8, 16, 16)
    masked = torch.rand(1, 3, 32, 32)  # resized to 16x16 inside the block
    result, alpha, raw = block(features, masked, torch.zeros(1, 1, 32, 32))
    scaled = torch.nn.functional.interpolate(masked, size=(16, 16), mode="bilinear", align_corners=False)
    torch.testing.assert_close(raw, torch.sigmoid(block.to_raw(features)))
    torch.testing.assert_close(alpha, block.alpha_net(torch.cat([scaled, raw], 1)))
    torch.testing.assert_close(result, alpha * raw + (1 - alpha) * scaled)


def test_mask_fusion_keeps_known_pixels_and_takes_raw_in_hole():
    block = FusionBlock(feature_channels=4, kind="mask", alpha_channels=3, hidden=32)
    hole = torch.zeros(1, 1, 8, 8)
    hole[..., 2:5, 3:6] = 1
    masked = torch.rand(1, 3, 8, 8) * (1 - hole)
    result, alpha, raw = block(torch.randn(1, 4, 8, 8), masked, hole)
    torch.testing.assert_close(alpha, hole)
    torch.testing.assert_close(result, torch.where(hole.bool(), raw, masked))


def test_none_fusion_is_plain_unet_output():
    block = FusionBlock(feature_channels=4, kind="none", alpha_channels=3, hidden=32)
    features = torch.randn(1, 4, 8, 8)
    result, _, raw = block(features, torch.rand(1, 3, 8, 8), torch.zeros(1, 1, 8, 8))
    torch.testing.assert_close(result, torch.sigmoid(block.to_raw(features)))
    assert block.alpha_net is None and torch.equal(result, raw)


@pytest.mark.parametrize("hole_fill", ["zero", "pushpull", "ring_pushpull"])
def test_network_never_sees_hole_pixels(hole_fill):
    torch.manual_seed(0)
    tiny_model = DFNet(DFNetConfig(width=0.125, hole_fill=hole_fill)).eval()
    image = torch.rand(1, 3, 256, 256)
    hole = torch.zeros(1, 1, 256, 256)
    hole[..., 100:150, 80:200] = 1
    other = torch.where(hole.bool(), torch.rand_like(image), image)
    with torch.no_grad():
        torch.testing.assert_close(tiny_model.complete(image, hole), tiny_model.complete(other, hole))


def test_composite_takes_known_pixels_from_input():
    image, result = torch.zeros(1, 3, 4, 4), torch.ones(1, 3, 4, 4)
    hole = torch.zeros(1, 1, 4, 4)
    hole[..., 1, 2] = 1
    out = composite(image, result, hole)
    assert out.sum() == 3 and torch.all(out[..., 1, 2] == 1)


@pytest.mark.parametrize("shape", [(1, 3, 128, 128), (1, 3, 256, 300), (1, 3, 257, 256)])
def test_bad_sizes_raise_clear_value_error(tiny_model, shape):
    with pytest.raises(ValueError, match="multiples of 256"):
        tiny_model(torch.rand(shape), torch.zeros(shape[0], 1, *shape[2:]))


def test_bad_channels_and_mismatched_mask_raise(tiny_model):
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        tiny_model(torch.rand(1, 4, 256, 256), torch.zeros(1, 1, 256, 256))
    with pytest.raises(ValueError, match="differ"):
        tiny_model(torch.rand(1, 3, 256, 256), torch.zeros(1, 1, 512, 256))


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"fusion_layers": (1, 2)}, "layer 0"),
        ({"fusion_layers": (0, 8)}, "0..7"),
        ({"alpha_channels": 2}, "1 or 3"),
        ({"fusion": "soft"}, "fusion must be"),
        ({"hole_fill": "mean"}, "hole_fill must be"),
    ],
)
def test_config_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DFNetConfig(**kwargs)


def test_config_round_trips_through_dict():
    config = DFNetConfig(
        width=0.25, fusion_layers=(0, 1, 2), alpha_channels=1, fusion="mask", hole_fill="pushpull"
    )
    assert DFNetConfig.from_dict(config.to_dict()) == config


def test_set_initial_alpha_starts_every_alpha_map_constant_and_trainable() -> None:
    model = DFNet(DFNetConfig(width=0.125, fusion_layers=(0, 2))).eval()
    assert set_initial_alpha(model, 0.8) == 2
    image, hole_mask = torch.rand(1, 3, 256, 256), (torch.rand(1, 1, 256, 256) > 0.5).float()
    out = model(image, hole_mask)
    for alpha in out.alphas:
        torch.testing.assert_close(alpha, torch.full_like(alpha, 0.8))
    # The zeroed weights still get a gradient, so the maps can move away from the constant.
    out.results[0].sum().backward()
    assert model.fusion["0"].alpha_net[-2].conv.weight.grad.abs().sum() > 0
    assert set_initial_alpha(DFNet(DFNetConfig(width=0.125, fusion="mask")), 0.8) == 0
    with pytest.raises(ValueError, match="between 0 and 1"):
        set_initial_alpha(model, 1.0)


def _known_mask_with_holes(*holes: tuple[int, int], size: int = 4) -> torch.Tensor:
    known_mask = torch.ones(1, 1, size, size)
    for y, x in holes:
        known_mask[..., y, x] = 0
    return known_mask


def test_pushpull_fill_gives_a_corner_hole_the_mean_of_its_2x2_block() -> None:
    image = torch.arange(48, dtype=torch.float32).reshape(1, 3, 4, 4)
    known_mask = _known_mask_with_holes((0, 0))
    filled = pushpull_fill(image * known_mask, known_mask, levels=2, smoothing_steps=0)
    # the block's other pixels are 1, 4, 5 (channel 0), 17, 20, 21 and 33, 36, 37; bilinear upsampling of the 2x2 level
    # returns the corner cell itself at the corner pixel
    torch.testing.assert_close(filled[0, :, 0, 0], torch.tensor([10.0, 58.0, 106.0]) / 3)
    torch.testing.assert_close(filled * known_mask, image * known_mask)


def test_smooth_hole_gives_a_hole_pixel_the_mean_of_its_four_neighbours() -> None:
    image = torch.arange(25, dtype=torch.float32).reshape(1, 1, 5, 5) ** 2
    known_mask = _known_mask_with_holes((2, 2), size=5)
    smoothed = smooth_hole(image * known_mask, known_mask, steps=1)
    assert smoothed[0, 0, 2, 2] == (7**2 + 17**2 + 11**2 + 13**2) / 4
    assert torch.equal(smoothed * known_mask, image * known_mask)


def test_smoothed_pushpull_reproduces_a_linear_ramp_inside_a_hole() -> None:
    ramp = torch.linspace(0, 1, 32).expand(1, 3, 32, 32).contiguous()
    known_mask = torch.ones(1, 1, 32, 32)
    known_mask[..., 10:18, 12:20] = 0
    rough = pushpull_fill(ramp * known_mask, known_mask, levels=5, smoothing_steps=0)
    smooth = pushpull_fill(ramp * known_mask, known_mask, levels=5, smoothing_steps=200)
    assert (smooth - ramp).abs().max() < 1e-3 < (rough - ramp).abs().max()


def test_pushpull_fill_stays_within_the_known_colours() -> None:
    gen = torch.Generator().manual_seed(0)
    image = torch.rand(2, 3, 64, 64, generator=gen)
    known_mask = (torch.rand(2, 1, 64, 64, generator=gen) > 0.8).float()
    filled = pushpull_fill(image * known_mask, known_mask, levels=6)
    assert torch.equal(filled * known_mask, image * known_mask)
    for channel in range(3):
        known_values = image[:, channel][known_mask[:, 0] > 0]
        hole_values = filled[:, channel][known_mask[:, 0] == 0]
        assert hole_values.min() >= known_values.min() - 1e-6
        assert hole_values.max() <= known_values.max() + 1e-6


def test_pushpull_fill_falls_back_to_the_mean_known_colour_at_the_coarsest_level() -> None:
    image = torch.tensor([[[[0.2, 0.6], [0.0, 0.0]]]])
    known_mask = torch.tensor([[[[1.0, 1.0], [0.0, 0.0]]]])
    torch.testing.assert_close(
        pushpull_fill(image, known_mask, levels=0), torch.tensor([[[[0.2, 0.6], [0.4, 0.4]]]])
    )
    nothing_known = pushpull_fill(torch.zeros(1, 3, 4, 4), torch.zeros(1, 1, 4, 4), levels=2)
    assert torch.equal(nothing_known, torch.zeros(1, 3, 4, 4))


def test_pushpull_network_feeds_the_filled_image_to_its_fusion_blocks() -> None:
    torch.manual_seed(0)
    model = DFNet(DFNetConfig(width=0.125, hole_fill="pushpull", fusion_layers=(0,))).eval()
    set_initial_alpha(model, 1e-4)  # alpha ~ 0: the result is (almost) the fusion block's input
    image, hole_mask = torch.rand(1, 3, 256, 256), torch.zeros(1, 1, 256, 256)
    hole_mask[..., 40:90, 100:180] = 1
    known_mask = 1 - hole_mask
    with torch.no_grad():
        result = model.complete(image, hole_mask)
    expected = fill_hole(image * known_mask, known_mask, levels=8, ring=False)
    torch.testing.assert_close(result, expected, atol=1e-3, rtol=0)


def test_fill_boundary_ring_takes_the_weighted_mean_of_known_neighbours() -> None:
    image = torch.zeros(1, 1, 4, 4)
    image[..., 0, 0], image[..., 0, 1], image[..., 1, 0] = 0.8, 0.4, 0.2  # (1, 1) sees these three
    known_mask = torch.zeros(1, 1, 4, 4)
    known_mask[..., 0, 0] = known_mask[..., 0, 1] = known_mask[..., 1, 0] = 1
    filled, ringed_known = fill_boundary_ring(image, known_mask)
    # (1, 1): neighbours (0, 1) and (1, 0) weigh 1, the diagonal (0, 0) weighs 1/2
    assert filled[0, 0, 1, 1] == pytest.approx((0.4 + 0.2 + 0.5 * 0.8) / 2.5)
    # (0, 2) sees (0, 1) at weight 1 only; (2, 2) touches no known pixel and stays a hole
    assert filled[0, 0, 0, 2] == pytest.approx(0.4)
    assert ringed_known[0, 0, 2, 2] == 0 and filled[0, 0, 2, 2] == 0
    assert ringed_known[0, 0, :2, :3].sum() == 6 and ringed_known.sum() == 3 + 5  # + (2, 0), (2, 1)


def test_ring_pushpull_network_differs_from_pushpull_only_by_its_fill() -> None:
    torch.manual_seed(0)
    plain = DFNet(DFNetConfig(width=0.125, hole_fill="pushpull")).eval()
    ringed = DFNet(DFNetConfig(width=0.125, hole_fill="ring_pushpull")).eval()
    ringed.load_state_dict(plain.state_dict())
    image, hole_mask = torch.rand(1, 3, 256, 256), torch.zeros(1, 1, 256, 256)
    hole_mask[..., 60:120, 30:90] = 1
    with torch.no_grad():
        assert not torch.allclose(plain.complete(image, hole_mask), ringed.complete(image, hole_mask))
        set_initial_alpha(ringed, 1e-4)
        result = ringed.complete(image, hole_mask)
    known_mask = 1 - hole_mask
    torch.testing.assert_close(result, fill_hole(image * known_mask, known_mask, 8), atol=1e-3, rtol=0)
