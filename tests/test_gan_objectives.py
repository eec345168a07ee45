"""Adversarial losses on hand-computed logits, the R1 penalty against explicit autograd, and the update step."""

from __future__ import annotations

import io
import math

import pytest
import torch
from torch import Tensor, nn

from dfnet.gan.discriminator import (
    DiscriminatorConfig,
    DiscriminatorOutput,
    PatchDiscriminator,
    build_discriminator_optimizer,
)
from dfnet.gan.objectives import (
    adversarial_step,
    discriminator_loss,
    discriminator_step,
    feature_matching_loss,
    frozen,
    generator_adversarial_loss,
    generator_adversarial_terms,
    patch_hole_weights,
    r1_penalty,
)
from dfnet.model import composite

pytestmark = pytest.mark.usefixtures("one_thread_per_module")
LOG2 = math.log(2.0)


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def centre_hole(n: int, size: int) -> Tensor:
    """(n, 1, size, size) hole masks with the centre half-size square as the hole."""
    hole_mask = torch.zeros(n, 1, size, size)
    hole_mask[..., size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = 1
    return hole_mask


class LinearDiscriminator(nn.Module):
    """Logits = a 1x1 convolution of the RGB image (mask ignored): ∇ₓ Σ logits is the weight at every pixel."""

    def __init__(self, weight: list[float]) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 1, kernel_size=1)
        with torch.no_grad():
            self.conv.weight.copy_(torch.tensor(weight).view(1, 3, 1, 1))

    def forward(self, image: Tensor, hole_mask: Tensor | None = None) -> DiscriminatorOutput:
        logits = self.conv(image)
        return DiscriminatorOutput(logits, [logits])


class TinyGenerator(nn.Module):
    """A 3x3 convolution of the masked image: stands in for DFNet."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 3, kernel_size=3, padding=1)

    def forward(self, image: Tensor, hole_mask: Tensor) -> Tensor:
        return torch.sigmoid(self.conv(torch.cat([image * (1 - hole_mask), hole_mask], dim=1)))


# --------------------------------------------------------------------------------------------
# Losses on hand-made logits
# --------------------------------------------------------------------------------------------
def test_zero_logits_give_log_2() -> None:
    zero = torch.zeros(2, 1, 3, 3)
    assert generator_adversarial_loss(zero).item() == pytest.approx(LOG2)
    assert discriminator_loss(zero, zero).item() == pytest.approx(2 * LOG2)


def test_losses_on_hand_computed_logits() -> None:
    fake = torch.tensor([1.0, -2.0]).view(1, 1, 1, 2)
    real = torch.tensor([3.0, 0.5]).view(1, 1, 1, 2)
    assert generator_adversarial_loss(fake).item() == pytest.approx((softplus(-1) + softplus(2)) / 2)
    expected = (softplus(-3) + softplus(-0.5)) / 2 + (softplus(1) + softplus(-2)) / 2
    assert discriminator_loss(real, fake).item() == pytest.approx(expected)
    # A confident, right discriminator: its loss vanishes and the generator's is large.
    assert discriminator_loss(torch.full((1, 1, 2, 2), 20.0), torch.full((1, 1, 2, 2), -20.0)).item() < 1e-8
    assert generator_adversarial_loss(torch.full((1, 1, 2, 2), -20.0)).item() == pytest.approx(20.0)


def test_hole_weights_are_area_fractions_on_the_logit_grid() -> None:
    hole_mask = torch.zeros(1, 1, 4, 4)
    hole_mask[..., :2, :2] = 1  # first 2x2 cell all hole
    hole_mask[..., 2, 3] = 1  # one pixel of the last cell
    weights = patch_hole_weights(hole_mask, torch.zeros(1, 1, 2, 2))
    assert weights.flatten().tolist() == [1.0, 0.0, 0.0, 0.25]


def test_hole_weighted_losses() -> None:
    fake = torch.tensor([1.0, -2.0]).view(1, 1, 1, 2)
    real = torch.zeros(1, 1, 1, 2)
    weights = torch.tensor([1.0, 0.25]).view(1, 1, 1, 2)
    assert generator_adversarial_loss(fake, weights).item() == pytest.approx(
        (softplus(-1) + 0.25 * softplus(2)) / 2
    )
    # The second patch is fake by a quarter and real by three quarters.
    fake_part = (softplus(1) + 0.25 * softplus(-2) + 0.75 * softplus(2)) / 2
    assert discriminator_loss(real, fake, weights).item() == pytest.approx(LOG2 + fake_part)


def test_feature_matching_is_mean_layer_l1_with_real_detached() -> None:
    fake = [torch.ones(1, 2, 2, 2, requires_grad=True), torch.zeros(1, 1, 1, 1, requires_grad=True)]
    real = [torch.zeros(1, 2, 2, 2, requires_grad=True), torch.full((1, 1, 1, 1), 3.0, requires_grad=True)]
    loss = feature_matching_loss(fake, real)
    assert loss.item() == pytest.approx((1.0 + 3.0) / 2)
    loss.backward()
    assert fake[0].grad is not None and all(r.grad is None for r in real)
    with pytest.raises(ValueError, match="at least one"):
        feature_matching_loss([], [])


# --------------------------------------------------------------------------------------------
# R1
# --------------------------------------------------------------------------------------------
def test_r1_of_a_linear_discriminator_is_pixels_times_weight_norm() -> None:
    discriminator = LinearDiscriminator([1.0, -2.0, 0.5])
    real = torch.rand(2, 3, 4, 5)
    assert r1_penalty(discriminator, real, None).item() == pytest.approx(20 * (1 + 4 + 0.25))


def test_r1_matches_explicit_jacobian_in_value_and_parameter_gradient() -> None:
    torch.manual_seed(0)
    config = DiscriminatorConfig(width=2, depth=1, spectral_norm=False)
    discriminator = PatchDiscriminator(config).double()
    real = torch.rand(2, 3, 8, 8, dtype=torch.float64)
    hole_mask = centre_hole(2, 8).double()

    penalty = r1_penalty(discriminator, real, hole_mask)
    (penalty_grad,) = torch.autograd.grad(penalty, discriminator.to_logits.weight)

    explicit = []
    for i in range(2):  # one image at a time: the full Jacobian of its summed logits

        def summed_logits(x: Tensor, i: int = i) -> Tensor:
            return discriminator(x, hole_mask[i : i + 1]).logits.sum()

        jacobian = torch.autograd.functional.jacobian(summed_logits, real[i : i + 1], create_graph=True)
        explicit.append(jacobian.pow(2).sum())
    explicit_penalty = torch.stack(explicit).mean()
    (explicit_grad,) = torch.autograd.grad(explicit_penalty, discriminator.to_logits.weight)
    assert penalty.item() == pytest.approx(explicit_penalty.item(), rel=1e-5)
    assert torch.allclose(penalty_grad.double(), explicit_grad, rtol=1e-4)
    assert explicit_grad.abs().sum() > 0


def test_r1_ignores_autocast() -> None:
    torch.manual_seed(0)
    discriminator = PatchDiscriminator(DiscriminatorConfig(width=2, depth=1, spectral_norm=False))
    real, hole_mask = torch.rand(1, 3, 8, 8), centre_hole(1, 8)
    plain = r1_penalty(discriminator, real, hole_mask)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = r1_penalty(discriminator, real.bfloat16(), hole_mask)
    assert mixed.dtype == torch.float32
    assert mixed.item() == pytest.approx(plain.item(), rel=1e-2)  # the input went through bfloat16


def test_lazy_r1_runs_every_r1_every_steps_with_that_weight() -> None:
    torch.manual_seed(0)
    config = DiscriminatorConfig(width=2, depth=1, r1_weight=0.5, r1_every=4)
    discriminator = PatchDiscriminator(config)
    optimizer = build_discriminator_optimizer(discriminator, config)
    real, fake, hole_mask = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8), centre_hole(1, 8)
    for step, runs in ((0, True), (1, False), (3, False), (4, True)):
        backed: list[Tensor] = []
        terms = discriminator_step(
            discriminator, optimizer, real, fake, hole_mask, config, step, backward=backed.append
        )
        assert (terms["r1"].item() > 0) == runs
        assert backed[0].item() == pytest.approx((terms["d_loss"] + 0.5 * 4 * terms["r1"]).item(), rel=1e-6)


# --------------------------------------------------------------------------------------------
# Steps
# --------------------------------------------------------------------------------------------
def test_frozen_restores_requires_grad_flags() -> None:
    module = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    module[1].bias.requires_grad_(False)
    with frozen(module):
        assert not any(p.requires_grad for p in module.parameters())
    assert [p.requires_grad for p in module.parameters()] == [True, True, True, False]


def test_one_step_updates_both_networks_and_keeps_their_gradients_apart() -> None:
    torch.manual_seed(0)
    config = DiscriminatorConfig(width=4, depth=2, lambda_feature_matching=1.0, r1_weight=0.1, r1_every=1)
    discriminator, generator = PatchDiscriminator(config), TinyGenerator()
    d_optimizer = build_discriminator_optimizer(discriminator, config)
    g_optimizer = torch.optim.Adam(generator.parameters(), lr=1e-3)
    real, hole_mask = torch.rand(2, 3, 16, 16), centre_hole(2, 16)
    d_before = [p.detach().clone() for p in discriminator.parameters()]
    g_before = [p.detach().clone() for p in generator.parameters()]

    fake = composite(real, generator(real, hole_mask), hole_mask)
    terms = adversarial_step(discriminator, d_optimizer, real, fake, hole_mask, config, step=0)
    assert all(p.grad is None for p in generator.parameters())  # the discriminator step saw a detached fake
    d_grads = [p.grad.clone() for p in discriminator.parameters()]
    assert all(p.requires_grad for p in discriminator.parameters())

    g_optimizer.zero_grad()
    terms["adversarial_total"].backward()
    g_optimizer.step()
    assert all(torch.equal(p.grad, g) for p, g in zip(discriminator.parameters(), d_grads, strict=True))
    assert all(not torch.equal(p, b) for p, b in zip(discriminator.parameters(), d_before, strict=True))
    assert all(not torch.equal(p, b) for p, b in zip(generator.parameters(), g_before, strict=True))
    assert terms["adversarial_total"].item() == pytest.approx(
        0.1 * terms["adversarial"].item() + terms["feature_matching"].item()
    )
    assert {"d_loss", "d_real_logit", "d_fake_logit", "r1", "adversarial", "feature_matching"} <= set(terms)
    assert terms["r1"].item() > 0 and terms["feature_matching"].item() > 0


def test_hole_region_ignores_known_patches_and_image_region_does_not() -> None:
    """With the whole image known the composite is the real image: no hole patch, no generator loss."""
    torch.manual_seed(0)
    real, no_hole = torch.rand(1, 3, 16, 16), torch.zeros(1, 1, 16, 16)
    for region, zero in (("hole", True), ("image", False)):
        config = DiscriminatorConfig(width=2, depth=2, adversarial_region=region, lambda_feature_matching=0)
        discriminator = PatchDiscriminator(config)
        terms = generator_adversarial_terms(discriminator, real, real.clone(), no_hole, config)
        assert (terms["adversarial"].item() == 0) == zero
        assert terms["feature_matching"].item() == 0


def test_bf16_autocast_gives_float32_losses_close_to_float32() -> None:
    torch.manual_seed(0)
    config = DiscriminatorConfig(width=4, depth=2)
    discriminator = PatchDiscriminator(config).eval()  # eval: no power iteration between the two runs
    real, hole_mask = torch.rand(2, 3, 16, 16), centre_hole(2, 16)
    fake = composite(real, torch.rand(2, 3, 16, 16), hole_mask)
    reference = generator_adversarial_terms(discriminator, real, fake, hole_mask, config)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = generator_adversarial_terms(discriminator, real, fake, hole_mask, config)
    for key, value in mixed.items():
        assert value.dtype == torch.float32, key
        assert value.item() == pytest.approx(reference[key].item(), rel=0.05, abs=1e-3), key


def test_toy_generator_learns_the_data_colour_and_its_adversarial_loss_falls() -> None:
    """A learnable colour (plus fixed noise) against a scratch discriminator on 8x8 images of one colour.

    The discriminator is first trained alone against the grey start, so the generator's loss starts
    high; joint training must bring the colour to the data's (max channel error 0.3 at the start) and
    the loss down towards the equilibrium ``log 2 · hole fraction`` = 0.17 (a quarter of the patches
    are hole here). Seeds 0-2 all give first/last loss ratios of 1.8 and colour errors below 0.03.
    """
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    config = DiscriminatorConfig(width=8, depth=1, lr=3e-3, lambda_adversarial=1.0, lambda_feature_matching=0)
    discriminator = PatchDiscriminator(config)
    d_optimizer = build_discriminator_optimizer(discriminator, config)
    target = torch.tensor([0.8, 0.2, 0.5]).view(1, 3, 1, 1)
    colour = nn.Parameter(torch.full((1, 3, 1, 1), 0.5))
    g_optimizer = torch.optim.Adam([colour], lr=3e-3, betas=(0.5, 0.999))
    hole_mask = centre_hole(8, 8)

    def batch() -> tuple[Tensor, Tensor]:
        real = target + 0.1 * torch.randn(8, 3, 8, 8, generator=gen)
        return real, composite(real, colour + 0.1 * torch.randn(8, 3, 8, 8, generator=gen), hole_mask)

    for step in range(80):
        real, fake = batch()
        discriminator_step(discriminator, d_optimizer, real, fake.detach(), hole_mask, config, step)
    losses: list[float] = []
    for step in range(80, 180):
        real, fake = batch()
        terms = adversarial_step(discriminator, d_optimizer, real, fake, hole_mask, config, step)
        g_optimizer.zero_grad()
        terms["adversarial_total"].backward()
        g_optimizer.step()
        losses.append(terms["adversarial"].item())
    first, last = sum(losses[:20]) / 20, sum(losses[-20:]) / 20
    assert first > 1.5 * last, (first, last)
    assert (colour - target).abs().max().item() < 0.06


def test_resumed_training_matches_uninterrupted_training_exactly() -> None:
    """Both networks' weights (spectral-norm vectors included) and both Adam states, saved and loaded with
    weights_only, are all a resume needs: two more steps after a reload equal two more steps without one."""
    torch.manual_seed(0)
    config = DiscriminatorConfig(width=4, depth=2, r1_weight=0.01, r1_every=2)
    discriminator, generator = PatchDiscriminator(config), TinyGenerator()
    d_optimizer = build_discriminator_optimizer(discriminator, config)
    g_optimizer = torch.optim.Adam(generator.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    batches = [torch.rand(2, 3, 16, 16, generator=gen) for _ in range(5)]
    hole_mask = centre_hole(2, 16)

    def train(
        d: nn.Module, g: nn.Module, d_opt: torch.optim.Optimizer, g_opt: torch.optim.Optimizer, steps: range
    ):
        for step in steps:
            real = batches[step]
            fake = composite(real, g(real, hole_mask), hole_mask)
            terms = adversarial_step(d, d_opt, real, fake, hole_mask, config, step)
            g_opt.zero_grad()
            terms["adversarial_total"].backward()
            g_opt.step()

    train(discriminator, generator, d_optimizer, g_optimizer, range(3))
    buffer = io.BytesIO()
    torch.save(
        {
            "discriminator": discriminator.state_dict(),
            "generator": generator.state_dict(),
            "d_optimizer": d_optimizer.state_dict(),
            "g_optimizer": g_optimizer.state_dict(),
        },
        buffer,
    )
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)
    torch.manual_seed(1)  # fresh initialisations: everything must come from the file
    discriminator2, generator2 = PatchDiscriminator(config), TinyGenerator()
    discriminator2.load_state_dict(saved["discriminator"])
    generator2.load_state_dict(saved["generator"])
    d_optimizer2 = build_discriminator_optimizer(discriminator2, config)
    g_optimizer2 = torch.optim.Adam(generator2.parameters(), lr=1e-3)
    d_optimizer2.load_state_dict(saved["d_optimizer"])
    g_optimizer2.load_state_dict(saved["g_optimizer"])

    train(discriminator, generator, d_optimizer, g_optimizer, range(3, 5))
    train(discriminator2, generator2, d_optimizer2, g_optimizer2, range(3, 5))
    for original, resumed in ((discriminator, discriminator2), (generator, generator2)):
        state, state2 = original.state_dict(), resumed.state_dict()
        assert all(torch.equal(state[key], state2[key]) for key in state)
