"""A PatchGAN discriminator trained from scratch, for the optional adversarial loss (not in the paper).

DFNet's paper losses (L1, VGG perceptual/style, TV) reward the mean of the plausible fills, which in
large holes is a smooth smear. A discriminator that judges local patches gives the generator a texture
signal that needs no pretrained weights. This module holds the network and its configuration; the
losses and the update step are in :mod:`dfnet.gan.objectives`.

Architecture (pix2pix's PatchGAN without normalisation layers, as in DeepFill v2's SN-PatchGAN):
``depth`` convolutions of kernel 4, stride 2, padding 1 (each halves an even size exactly), channels
``width, 2·width, 4·width, ...`` capped at ``8·width``, then one kernel-3 convolution at the same
resolution and a kernel-3 convolution to one logit channel, LeakyReLU(0.2) after every convolution
but the last. The logits are an (N, 1, H/2^depth, W/2^depth) grid: one real/fake score per patch.
With the default ``depth = 3`` each logit sees a 54×54-pixel patch (receptive field 4 → 10 → 22 → 38
→ 54, stride 8). No BatchNorm: batch statistics would mix real and fake batches and need syncing
under DDP. Spectral normalisation (on by default) bounds every layer's Lipschitz constant, which
keeps a scratch discriminator from overpowering the generator early on; an R1 penalty
(:func:`dfnet.gan.objectives.r1_penalty`) is the alternative or complement.

Input: the RGB image in [0, 1] concatenated with the (N, 1, H, W) hole mask (1 = hole), the standard
for inpainting (DeepFill v2's SN-PatchGAN, LaMa): the discriminator is told where the fill is, so it
can judge the fill in its context instead of having to find it first. Real images get the *same* hole
mask as the composited fakes, so the mask channel by itself tells nothing about real versus fake.
``condition_on_mask = False`` gives the plain 3-channel RGB PatchGAN.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from dfnet.choices import check_choice

AdversarialRegion = Literal["hole", "image"]


@dataclass(frozen=True)
class DiscriminatorConfig:
    """The optional adversarial loss: discriminator shape, loss weights and its own Adam optimiser.

    Off by default (``enabled = False``), as in the paper configs. The weights are starting points,
    not tuned values: ``lambda_adversarial`` multiplies the non-saturating generator loss (≈ 0.69 at
    equilibrium) and ``lambda_feature_matching`` the mean L1 between discriminator features of real
    and composited images; the paper's L1 term is ``6 · mean |error|``.
    """

    enabled: bool = False
    lambda_adversarial: float = 0.1  # weight of the non-saturating generator loss
    lambda_feature_matching: float = 1.0  # weight of the discriminator feature-matching L1 (0 disables)
    r1_weight: float = 0.0  # γ of the R1 penalty γ·E‖∇D(real)‖² (LaMa uses 0.001); 0 disables
    r1_every: int = 16  # lazy R1 (StyleGAN2): every r1_every discriminator steps, weighted by r1_every
    # "hole": per-patch labels and the generator loss follow the hole mask pooled to the logit grid
    # (known patches of the composite count as real, as in LaMa); "image": every fake patch is fake.
    adversarial_region: AdversarialRegion = "hole"
    # discriminator Adam learning rate at the start; it decays with the generator's (optim.lr_decay every
    # optim.lr_step), so the two keep their ratio discriminator.lr / optim.lr for the whole run
    lr: float = 1e-4
    start_step: int = 0  # warm-up: generator-only steps (paper losses alone) before the discriminator starts
    betas: tuple[float, float] = (0.5, 0.999)  # discriminator Adam betas (DeepFill v2)
    width: int = 64  # channels of the first convolution
    depth: int = 3  # stride-2 convolutions: patch logits at 1/2^depth resolution
    spectral_norm: bool = True
    condition_on_mask: bool = True  # input RGB + hole mask (4 channels) rather than RGB

    def __post_init__(self) -> None:
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))
        if min(self.lambda_adversarial, self.lambda_feature_matching, self.r1_weight) < 0:
            raise ValueError(
                "discriminator loss weights (lambda_adversarial, lambda_feature_matching, r1_weight) must be >= 0"
            )
        if self.r1_every < 1:
            raise ValueError(f"discriminator.r1_every must be >= 1, got {self.r1_every}")
        check_choice("discriminator.adversarial_region", self.adversarial_region, AdversarialRegion)
        if self.start_step < 0:
            raise ValueError(f"discriminator.start_step must be >= 0, got {self.start_step}")
        if self.lr <= 0:
            raise ValueError(f"discriminator.lr must be > 0, got {self.lr}")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ValueError(f"discriminator.betas must be two numbers in [0, 1), got {self.betas}")
        if self.width < 1 or not 1 <= self.depth <= 6:
            raise ValueError(
                f"discriminator needs width >= 1 and 1 <= depth <= 6, got width {self.width}, depth {self.depth}"
            )

    @property
    def in_channels(self) -> int:
        """Input channels: RGB, plus the hole mask when conditioning on it."""
        return 4 if self.condition_on_mask else 3


class DiscriminatorOutput(NamedTuple):
    """Per-patch logits (N, 1, h, w) and every hidden activation, shallowest first (for feature matching)."""

    logits: Tensor
    features: list[Tensor]


def _conv(config: DiscriminatorConfig, inputs: int, outputs: int, kernel: int, stride: int) -> nn.Module:
    """A convolution with padding that halves (stride 2, kernel 4) or keeps (kernel 3) the size."""
    conv = nn.Conv2d(inputs, outputs, kernel_size=kernel, stride=stride, padding=1)
    return spectral_norm(conv) if config.spectral_norm else conv


class PatchDiscriminator(nn.Module):
    """PatchGAN discriminator: one real/fake logit per patch, plus its hidden features."""

    def __init__(self, config: DiscriminatorConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or DiscriminatorConfig()
        channels = [config.in_channels] + [config.width * min(2**i, 8) for i in range(config.depth + 1)]
        strides = [2] * config.depth + [1]
        self.blocks = nn.ModuleList(
            nn.Sequential(
                _conv(config, channels[i], channels[i + 1], 4 if stride == 2 else 3, stride),
                nn.LeakyReLU(0.2),
            )
            for i, stride in enumerate(strides)
        )
        self.to_logits = _conv(config, channels[-1], 1, 3, 1)

    def forward(self, image: Tensor, hole_mask: Tensor | None = None) -> DiscriminatorOutput:
        """Logits and features of ``image`` (N, 3, H, W) in [0, 1]; ``hole_mask`` (N, 1, H, W) if conditioned."""
        if self.config.condition_on_mask:
            if hole_mask is None:
                raise ValueError("this discriminator is conditioned on the hole mask: pass hole_mask")
            image = torch.cat([image, hole_mask.to(image.dtype)], dim=1)
        features = []
        x = image
        for block in self.blocks:
            x = block(x)
            features.append(x)
        return DiscriminatorOutput(self.to_logits(x), features)


def build_discriminator_optimizer(
    discriminator: PatchDiscriminator, config: DiscriminatorConfig
) -> torch.optim.Adam:
    """The discriminator's own Adam with ``config.lr`` and ``config.betas``."""
    return torch.optim.Adam(discriminator.parameters(), lr=config.lr, betas=config.betas)


__all__ = [
    "AdversarialRegion",
    "DiscriminatorConfig",
    "DiscriminatorOutput",
    "PatchDiscriminator",
    "build_discriminator_optimizer",
]
