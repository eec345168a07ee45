"""Adversarial losses and the discriminator update for the optional GAN training (not in the paper).

The discriminator (:class:`dfnet.gan.discriminator.PatchDiscriminator`) scores patches of the *composited*
result (known pixels from the input, hole pixels from the network) against real images, both with the
same hole mask. With ``N`` patch logits ``d`` and ``softplus(x) = log(1 + eˣ)``:

- generator, non-saturating: ``mean softplus(-d_fake)``;
- discriminator: ``mean softplus(-d_real) + mean softplus(d_fake)``;
- feature matching: the mean over the discriminator's hidden layers of ``mean |f(fake) - f(real)|``,
  real features detached. Outside the receptive field of the holes the composite equals the real
  image, so this term is zero there by construction and needs no mask;
- R1: ``γ · mean over images of ‖∇ₓ Σ d_real‖²`` (LaMa's convention, no ½), the gradient taken with
  respect to the RGB input only. With lazy regularisation (StyleGAN2) it is added every ``r1_every``
  discriminator steps, multiplied by ``r1_every`` so its average weight stays ``γ``.

``adversarial_region = "hole"`` (the default) follows LaMa: the hole mask is area-pooled to the logit
grid, giving each patch its hole fraction ``w`` in [0, 1]. The generator loss becomes
``mean w · softplus(-d_fake)`` (known patches are copies of the input and carry no generator signal),
and in the discriminator loss a composited patch is fake by its hole fraction and real by the rest:
``mean (w · softplus(d_fake) + (1 - w) · softplus(-d_fake))``. Both are means over all patches, so,
like DFNet's L1 term, the adversarial loss scales with the hole area. ``"image"`` treats every patch
of the composite as fake (DeepFill v2's SN-PatchGAN labelling).

Precision: logits and features are cast to float32 before any loss, so the losses are float32 under
bf16 autocast; the R1 penalty runs its own discriminator forward in float32 with autocast disabled,
because a gradient penalty is a second-order quantity that bfloat16's 8-bit mantissa would swamp.

Update order for one training batch (:func:`adversarial_step`): one discriminator step on the real
images and the detached composite, then the generator's adversarial terms against the updated
discriminator (as PyTorch's DCGAN example), with the discriminator's parameters frozen so the
generator's backward pass leaves the discriminator's gradients alone.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dfnet.gan.discriminator import DiscriminatorConfig, DiscriminatorOutput

Discriminator = Callable[[Tensor, Tensor | None], DiscriminatorOutput]
Backward = Callable[[Tensor], None]


def patch_hole_weights(hole_mask: Tensor, logits: Tensor) -> Tensor:
    """Each patch logit's hole fraction in [0, 1]: the (N, 1, H, W) hole mask area-pooled to the logit grid."""
    return F.interpolate(hole_mask.float(), size=tuple(logits.shape[-2:]), mode="area")


def generator_adversarial_loss(fake_logits: Tensor, hole_weights: Tensor | None = None) -> Tensor:
    """Non-saturating generator loss ``mean softplus(-d_fake)``, weighted per patch by the hole fraction if given."""
    loss = F.softplus(-fake_logits.float())
    return (loss * hole_weights if hole_weights is not None else loss).mean()


def discriminator_loss(
    real_logits: Tensor, fake_logits: Tensor, hole_weights: Tensor | None = None
) -> Tensor:
    """``mean softplus(-d_real) + mean softplus(d_fake)``; with hole weights ``w`` a fake patch is fake by
    ``w`` and real by ``1 - w``."""
    real_loss = F.softplus(-real_logits.float()).mean()
    fake_logits = fake_logits.float()
    fake_loss = F.softplus(fake_logits)
    if hole_weights is not None:
        fake_loss = hole_weights * fake_loss + (1 - hole_weights) * F.softplus(-fake_logits)
    return real_loss + fake_loss.mean()


def feature_matching_loss(fake_features: Sequence[Tensor], real_features: Sequence[Tensor]) -> Tensor:
    """Mean over layers of the mean absolute difference of discriminator features; real features detached."""
    if not fake_features:
        raise ValueError("feature matching needs at least one discriminator feature map")
    return torch.stack(
        [
            (fake.float() - real.detach().float()).abs().mean()
            for fake, real in zip(fake_features, real_features, strict=True)
        ]
    ).mean()


def r1_penalty(discriminator: Discriminator, real: Tensor, hole_mask: Tensor | None) -> Tensor:
    """``mean over images of ‖∇ₓ Σ D(x)‖²`` at the real images ``x`` (RGB only), in float32 (at least) without autocast.

    Differentiable with respect to the discriminator's parameters (the gradient graph is kept).
    """
    dtype = torch.promote_types(real.dtype, torch.float32)  # float32, or float64 for a float64 network
    real = real.detach().to(dtype).requires_grad_(True)
    mask = hole_mask.detach().to(dtype) if hole_mask is not None else None
    with torch.autocast(real.device.type, enabled=False):
        logits = discriminator(real, mask).logits.to(dtype)
        (gradient,) = torch.autograd.grad(logits.sum(), real, create_graph=True)
    return gradient.pow(2).flatten(1).sum(1).mean()


def _region_weights(config: DiscriminatorConfig, hole_mask: Tensor, logits: Tensor) -> Tensor | None:
    """Per-patch hole fractions for ``adversarial_region = "hole"``, None for ``"image"``."""
    return patch_hole_weights(hole_mask, logits) if config.adversarial_region == "hole" else None


@contextlib.contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """Within the block, ``module``'s parameters need no gradient (restored afterwards)."""
    flags = [p.requires_grad for p in module.parameters()]
    module.requires_grad_(False)
    try:
        yield
    finally:
        for parameter, flag in zip(module.parameters(), flags, strict=True):
            parameter.requires_grad_(flag)


def discriminator_step(
    discriminator: nn.Module,
    optimizer: torch.optim.Optimizer,
    real: Tensor,
    fake: Tensor,
    hole_mask: Tensor,
    config: DiscriminatorConfig,
    step: int,
    backward: Backward = Tensor.backward,
) -> dict[str, Tensor]:
    """One discriminator update on ``real`` and the detached composite ``fake``; returns detached terms.

    ``step`` counts discriminator steps (lazy R1 runs when ``step % r1_every == 0``); ``backward`` is
    ``loss.backward`` or, in a Lightning module, ``self.manual_backward``. Keys: ``d_loss`` (without R1),
    ``d_real_logit`` and ``d_fake_logit`` (mean logits), ``r1`` (the unweighted penalty; 0 when not run).
    """
    optimizer.zero_grad(set_to_none=True)
    real_logits = discriminator(real, hole_mask).logits
    fake_logits = discriminator(fake.detach(), hole_mask).logits
    loss = discriminator_loss(real_logits, fake_logits, _region_weights(config, hole_mask, fake_logits))
    penalty = loss.new_zeros(())
    if config.r1_weight > 0 and step % config.r1_every == 0:
        penalty = r1_penalty(discriminator, real, hole_mask)
    backward(loss + config.r1_weight * config.r1_every * penalty)
    optimizer.step()
    return {
        "d_loss": loss.detach(),
        "d_real_logit": real_logits.detach().float().mean(),
        "d_fake_logit": fake_logits.detach().float().mean(),
        "r1": penalty.detach(),
    }


def generator_adversarial_terms(
    discriminator: nn.Module, real: Tensor, fake: Tensor, hole_mask: Tensor, config: DiscriminatorConfig
) -> dict[str, Tensor]:
    """The generator's adversarial terms for the composite ``fake`` (gradient flows to ``fake`` only).

    Keys: ``adversarial_total`` (``λ_adv · adversarial + λ_fm · feature_matching``, to add to the
    generator's loss) and the unweighted ``adversarial`` and ``feature_matching`` (0 when its weight is 0).
    """
    with frozen(discriminator):
        fake_output = discriminator(fake, hole_mask)
        adversarial = generator_adversarial_loss(
            fake_output.logits, _region_weights(config, hole_mask, fake_output.logits)
        )
        matching = adversarial.new_zeros(())
        if config.lambda_feature_matching > 0:
            with torch.no_grad():
                real_features = discriminator(real, hole_mask).features
            matching = feature_matching_loss(fake_output.features, real_features)
    total = config.lambda_adversarial * adversarial + config.lambda_feature_matching * matching
    return {"adversarial_total": total, "adversarial": adversarial, "feature_matching": matching}


def adversarial_step(
    discriminator: nn.Module,
    optimizer: torch.optim.Optimizer,
    real: Tensor,
    fake: Tensor,
    hole_mask: Tensor,
    config: DiscriminatorConfig,
    step: int,
    backward: Backward = Tensor.backward,
) -> dict[str, Tensor]:
    """One discriminator update, then the generator's adversarial terms against the updated discriminator.

    ``fake`` is the composite the generator produced (with its graph); the caller adds
    ``terms["adversarial_total"]`` to the generator loss, then does the generator's backward and step.
    Returns :func:`discriminator_step`'s detached terms and :func:`generator_adversarial_terms`'.
    """
    terms = discriminator_step(discriminator, optimizer, real, fake, hole_mask, config, step, backward)
    return {**terms, **generator_adversarial_terms(discriminator, real, fake, hole_mask, config)}


__all__ = [
    "adversarial_step",
    "discriminator_loss",
    "discriminator_step",
    "feature_matching_loss",
    "frozen",
    "generator_adversarial_loss",
    "generator_adversarial_terms",
    "patch_hole_weights",
    "r1_penalty",
]
