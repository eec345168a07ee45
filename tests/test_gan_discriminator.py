"""The PatchGAN discriminator: output grid, receptive field, mask conditioning, spectral norm, state round trip."""

from __future__ import annotations

import io

import pytest
import torch

from dfnet.gan.discriminator import DiscriminatorConfig, PatchDiscriminator, build_discriminator_optimizer

pytestmark = pytest.mark.usefixtures("one_thread_per_module")


def images(n: int, size: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` random RGB images and hole masks (a centred square hole) of ``size``."""
    gen = torch.Generator().manual_seed(seed)
    hole_mask = torch.zeros(n, 1, size, size)
    hole_mask[..., size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = 1
    return torch.rand(n, 3, size, size, generator=gen), hole_mask


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_logit_grid_and_feature_channels(depth: int) -> None:
    torch.manual_seed(0)
    network = PatchDiscriminator(DiscriminatorConfig(width=4, depth=depth))
    image, hole_mask = images(2, 32)
    output = network(image, hole_mask)
    side = 32 // 2**depth
    assert tuple(output.logits.shape) == (2, 1, side, side)
    assert [f.shape[1] for f in output.features] == [4 * min(2**i, 8) for i in range(depth + 1)]
    assert [f.shape[-1] for f in output.features] == [32 // 2 ** min(i + 1, depth) for i in range(depth + 1)]


def test_receptive_field_is_54_pixels_at_depth_3() -> None:
    """4 -> 10 -> 22 (stride-2 kernel-4 convs) -> 38 -> 54 (two kernel-3 convs at stride 8)."""
    torch.manual_seed(0)
    network = PatchDiscriminator(DiscriminatorConfig(width=2, depth=3, spectral_norm=False))
    image = torch.rand(1, 3, 128, 128, requires_grad=True)
    logits = network(image, torch.zeros(1, 1, 128, 128)).logits
    logits[0, 0, 8, 8].backward()
    rows = image.grad[0].abs().sum(dim=(0, 2)).nonzero().flatten()
    cols = image.grad[0].abs().sum(dim=(0, 1)).nonzero().flatten()
    assert rows.max() - rows.min() + 1 == 54
    assert cols.max() - cols.min() + 1 == 54


def test_mask_conditioning() -> None:
    torch.manual_seed(0)
    conditioned = PatchDiscriminator(DiscriminatorConfig(width=4, depth=2)).eval()
    image, hole_mask = images(1, 16)
    assert conditioned.blocks[0][0].in_channels == 4
    with pytest.raises(ValueError, match="pass hole_mask"):
        conditioned(image)
    assert not torch.equal(conditioned(image, hole_mask).logits, conditioned(image, 1 - hole_mask).logits)
    plain = PatchDiscriminator(DiscriminatorConfig(width=4, depth=2, condition_on_mask=False))
    assert plain.blocks[0][0].in_channels == 3
    assert plain(image).logits.shape == (1, 1, 4, 4)


def test_spectral_norm_bounds_every_layer_near_one() -> None:
    torch.manual_seed(0)
    network = PatchDiscriminator(DiscriminatorConfig(width=4, depth=2))
    image, hole_mask = images(1, 16)
    for _ in range(30):  # power iterations run in training-mode forwards
        network(image, hole_mask)
    convs = [block[0] for block in network.blocks] + [network.to_logits]
    sigmas = [torch.linalg.matrix_norm(conv.weight.detach().flatten(1), ord=2).item() for conv in convs]
    assert sigmas == pytest.approx([1.0] * len(convs), abs=0.02)
    raw = PatchDiscriminator(DiscriminatorConfig(width=4, depth=2, spectral_norm=False))
    assert not hasattr(raw.to_logits, "parametrizations")


def test_state_round_trip_with_weights_only_load() -> None:
    """Weights and the spectral-norm power-iteration vectors survive torch.save / weights_only load."""
    torch.manual_seed(0)
    config = DiscriminatorConfig(width=4, depth=2)
    network = PatchDiscriminator(config)
    optimizer = build_discriminator_optimizer(network, config)
    image, hole_mask = images(2, 16)
    network(image, hole_mask).logits.mean().backward()
    optimizer.step()
    state = {"discriminator": network.state_dict(), "optimizer": optimizer.state_dict()}
    assert any(key.endswith("_u") for key in state["discriminator"])
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=True)
    torch.manual_seed(1)  # another initialisation: everything must come from the file
    restored = PatchDiscriminator(config)
    restored.load_state_dict(loaded["discriminator"])
    restored_optimizer = build_discriminator_optimizer(restored, config)
    restored_optimizer.load_state_dict(loaded["optimizer"])
    for model in (network, restored):  # training mode: the power iteration uses the restored vectors
        model.train()
    assert torch.equal(network(image, hole_mask).logits, restored(image, hole_mask).logits)
    saved_moments = [s["exp_avg"] for s in optimizer.state_dict()["state"].values()]
    restored_moments = [s["exp_avg"] for s in restored_optimizer.state_dict()["state"].values()]
    assert len(saved_moments) == len(list(network.parameters()))
    assert all(torch.equal(a, b) for a, b in zip(saved_moments, restored_moments, strict=True))
    assert restored_optimizer.param_groups[0]["betas"] == (0.5, 0.999)


def test_bf16_autocast_forward() -> None:
    torch.manual_seed(0)
    network = PatchDiscriminator(DiscriminatorConfig(width=4, depth=2))
    image, hole_mask = images(1, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        output = network(image, hole_mask)
    assert output.logits.dtype == torch.bfloat16 and torch.isfinite(output.logits.float()).all()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"lambda_adversarial": -1.0}, "must be >= 0"),
        ({"r1_weight": -0.1}, "must be >= 0"),
        ({"r1_every": 0}, "r1_every"),
        ({"adversarial_region": "known"}, "adversarial_region"),
        ({"lr": 0.0}, "lr"),
        ({"betas": (0.9, 1.0)}, "betas"),
        ({"betas": (0.9,)}, "betas"),
        ({"width": 0}, "width"),
        ({"depth": 7}, "depth"),
    ],
)
def test_config_validation(changes: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DiscriminatorConfig(**changes)


def test_config_defaults_off_and_betas_become_floats() -> None:
    config = DiscriminatorConfig(betas=[0, 0.99])
    assert config.betas == (0.0, 0.99) and not config.enabled and config.in_channels == 4
