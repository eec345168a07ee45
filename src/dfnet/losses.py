"""DFNet's multi-scale training losses, as defined in Section 3.3 of the paper.

For the fusion results ``Î_k`` (finest first, ``k = 0`` is full resolution) and the target ``I``
resized to each result's size (``I_k``). The paper writes one symbol, ``I_k``, for the input a fusion block
blends at scale k and for the target at that scale, and the released code makes both with the same bilinear
resize; so by default (``target_resize="fusion"``) the target is resized by the very function the fusion
blocks use (:func:`dfnet.model.resize_to`: bilinear, align_corners=False, no antialiasing), and a block
that passes known pixels through matches its target there exactly. ``"area"`` (a box average; the bundled
model's stages were trained with it) and ``"bilinear"`` (antialiased) stay selectable:

- ``l1_k = mean |I_k - Î_k|`` over channels, height, width and batch.
- ``perceptual_k = Σ_j mean |φ_j(I_k) - φ_j(Î_k)|``, ``φ_j`` the VGG16 pool1, pool2, pool3 outputs.
  The VGG16 sees ``vgg_input="imagenet"`` (default): RGB in [0, 1] normalised with the ImageNet mean/std,
  or ``"raw"``: RGB in [0, 1] as is, which is what the released training feeds it and what
  λ = (6, 0.1, 240, 0.1) were tuned on (the paper configs use it).
- ``style_k = Σ_j mean |G_j(I_k) - G_j(Î_k)|`` with the Gram matrix ``G = F Fᵀ / (C·H·W)`` of the
  (C, H·W) feature matrix ``F`` of each image.
- ``tv_k`` on the **prediction** only: ``mean |Î[h, w] - Î[h-1, w]| + mean |Î[h, w] - Î[h, w-1]|``, i.e.
  the mean absolute difference of each pixel to its top neighbour (over the pixels that have one)
  plus the same to its left neighbour. (The released code computes it on the target, where it has
  no gradient; and it swaps prediction and target in the VGG terms. Neither defect is reproduced.)

``structure = λ_l1 · mean_{k<p} l1_k`` and ``texture = mean_{k<q} (λ_p·perceptual_k + λ_s·style_k +
λ_tv·tv_k)``; the total is their sum, and a part whose scale count is zero is left out.

Not in the paper, off by default: ``boundary = λ_b · BPE(Î_0)``, the mean absolute error of the
full-resolution result over the hole pixels within ``boundary_width`` pixels of a known pixel (the band
of :func:`dfnet.metrics.boundary_band`). The plain L1 spreads its gradient over the whole image, so the
few pixels next to the boundary, where a fill is judged first, get little of it; this term gives them a
share of their own. It needs the hole mask and is added to the total.

Precision: the VGG terms are computed with autocast disabled. By default (``vgg_precision="fp32"``) the
VGG16 features, Gram matrices and their differences are all float32: Gram entries sum H·W products,
which overflows float16 at 512×512, and the style weight (240) amplifies any rounding.
``vgg_precision="bf16"`` runs only the VGG16 convolutions in bfloat16 (float32's exponent range, so no
overflow) and casts the features back to float32 before the losses and Gram matrices. Three scales of a
VGG16 forward on prediction and target can cost more than a narrow DFNet; see docs/benchmarks.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dfnet.choices import check_choice
from dfnet.metrics import DEFAULT_BPE_BAND, per_image_bpe_sums
from dfnet.model import resize_to
from dfnet.vgg import VGG16Features

ResizeMode = Literal["fusion", "area", "bilinear"]
VGGPrecision = Literal["fp32", "bf16"]
VGGInput = Literal["imagenet", "raw"]
LOSS_TERMS = ("total", "structure", "texture", "l1", "perceptual", "style", "tv", "boundary")


@dataclass(frozen=True)
class LossConfig:
    """Loss weights and scale sets; the defaults are the paper's final model, λ = (6, 0.1, 240, 0.1), (6, 3)."""

    lambda_l1: float = 6.0
    lambda_perceptual: float = 0.1
    lambda_style: float = 240.0
    lambda_tv: float = 0.1
    structure_scales: int = 6  # p: the structure loss uses the p finest fusion results
    texture_scales: int = 3  # q: the texture loss uses the q finest fusion results
    target_resize: ResizeMode = (
        "fusion"  # fusion: the fusion blocks' own resize; area; bilinear (antialiased)
    )
    lambda_boundary: float = 0.0  # not in the paper: weight of the full-resolution boundary-band L1
    boundary_width: int = DEFAULT_BPE_BAND  # band width in pixels for lambda_boundary
    vgg_precision: VGGPrecision = "fp32"  # bf16: VGG16 convolutions in bfloat16, losses in float32
    vgg_input: VGGInput = "imagenet"  # raw: [0, 1] RGB without mean/std, as released

    def __post_init__(self) -> None:
        if self.structure_scales < 0 or self.texture_scales < 0:
            raise ValueError(
                "loss.structure_scales and loss.texture_scales (p, q) must be >= 0, "
                f"got ({self.structure_scales}, {self.texture_scales})"
            )
        if self.structure_scales == 0 and self.texture_scales == 0:
            raise ValueError("loss.structure_scales = loss.texture_scales = 0 leaves nothing to train")
        check_choice("loss.target_resize", self.target_resize, ResizeMode)
        check_choice("loss.vgg_input", self.vgg_input, VGGInput)
        names = ("lambda_l1", "lambda_perceptual", "lambda_style", "lambda_tv", "lambda_boundary")
        negative = [f"loss.{name}" for name in names if getattr(self, name) < 0]
        if negative:
            raise ValueError(f"{', '.join(negative)} must be >= 0")
        if self.boundary_width < 1:
            raise ValueError(f"loss.boundary_width must be at least 1 pixel, got {self.boundary_width}")
        check_choice("loss.vgg_precision", self.vgg_precision, VGGPrecision)

    @property
    def needs_vgg(self) -> bool:
        """Whether the texture loss (and so VGG16) is used at all."""
        return self.texture_scales > 0 and (self.lambda_perceptual > 0 or self.lambda_style > 0)

    def check_scales(self, available: int) -> None:
        """Raise ValueError unless p and q fit a network with ``available`` fusion blocks."""
        if max(self.structure_scales, self.texture_scales) > available:
            raise ValueError(
                f"loss.structure_scales, loss.texture_scales: (p, q) = ({self.structure_scales}, "
                f"{self.texture_scales}) needs that many fusion results, "
                f"but the model has {available} fusion block(s) (model.fusion_layers)"
            )


def resize_target(target: Tensor, size: Sequence[int], mode: ResizeMode = "fusion") -> Tensor:
    """The target at a fusion result's size: the fusion blocks' resize, area (box average) or antialiased bilinear."""
    size = (int(size[0]), int(size[1]))
    if tuple(target.shape[-2:]) == size:
        return target
    if mode == "fusion":
        return resize_to(target, size)
    if mode == "area":
        return F.interpolate(target, size=size, mode="area")
    return F.interpolate(target, size=size, mode="bilinear", align_corners=False, antialias=True)


def l1_loss(prediction: Tensor, target: Tensor) -> Tensor:
    """Mean absolute error over every element."""
    return (prediction - target).abs().mean()


def boundary_l1_loss(prediction: Tensor, target: Tensor, hole_mask: Tensor, width: int) -> Tensor:
    """Mean absolute error over the channels of the hole pixels within ``width`` px of a known pixel.

    ``hole_mask`` is (N, 1, H, W), 1 = hole; the mean pools the band pixels of the whole batch and
    is 0 when the batch has none.
    """
    band_error, band_pixels = per_image_bpe_sums(prediction, target, hole_mask, width)
    return band_error.sum() / band_pixels.sum().clamp(min=1.0)


def gram_matrix(features: Tensor) -> Tensor:
    """Per-image Gram matrix F Fᵀ / (C·H·W) of (N, C, H, W) features, shape (N, C, C)."""
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w)
    return torch.bmm(flat, flat.transpose(1, 2)) / (c * h * w)


def perceptual_loss(prediction_features: Sequence[Tensor], target_features: Sequence[Tensor]) -> Tensor:
    """Sum over layers of the mean absolute difference between features."""
    return sum(l1_loss(p, t) for p, t in zip(prediction_features, target_features, strict=True))


def style_loss(prediction_features: Sequence[Tensor], target_features: Sequence[Tensor]) -> Tensor:
    """Sum over layers of the mean absolute difference between Gram matrices."""
    return sum(
        l1_loss(gram_matrix(p), gram_matrix(t))
        for p, t in zip(prediction_features, target_features, strict=True)
    )


def total_variation_loss(prediction: Tensor) -> Tensor:
    """Mean |pixel - top neighbour| plus mean |pixel - left neighbour| of a prediction (N, C, H, W)."""
    vertical = (prediction[..., 1:, :] - prediction[..., :-1, :]).abs().mean()
    horizontal = (prediction[..., :, 1:] - prediction[..., :, :-1]).abs().mean()
    return vertical + horizontal


class DFNetLoss(nn.Module):
    """Structure + texture loss over DFNet's multi-scale results; returns every term for logging."""

    def __init__(self, config: LossConfig | None = None, vgg: VGG16Features | None = None) -> None:
        super().__init__()
        self.config = config = config or LossConfig()
        if config.needs_vgg and vgg is None:
            raise ValueError(
                "the texture loss needs a VGG16Features network (see dfnet.vgg.load_vgg16_features)"
            )
        self.vgg = vgg if config.needs_vgg else None

    def structure_terms(self, results: Sequence[Tensor], targets: Sequence[Tensor]) -> Tensor:
        """Mean over the p finest scales of the L1 loss (unweighted)."""
        p = self.config.structure_scales
        return torch.stack([l1_loss(results[k].float(), targets[k]) for k in range(p)]).mean()

    def vgg_features(self, images: Tensor) -> list[Tensor]:
        """VGG16 features of ``images`` as float32 (convolutions in bfloat16 when ``vgg_precision="bf16"``).

        ``vgg_input="raw"`` calls the network with ``imagenet_normalize=False``; the default call leaves any
        feature extractor that takes just the images usable."""
        bf16 = self.config.vgg_precision == "bf16"
        with torch.autocast(images.device.type, dtype=torch.bfloat16, enabled=bf16):
            raw = {"imagenet_normalize": False} if self.config.vgg_input == "raw" else {}
            return [f.float() for f in self.vgg(images.float(), **raw)]

    def texture_terms(self, results: Sequence[Tensor], targets: Sequence[Tensor]) -> dict[str, Tensor]:
        """Mean over the q finest scales of the perceptual, style and TV losses (unweighted)."""
        cfg = self.config
        perceptual, style, tv = [], [], []
        for k in range(cfg.texture_scales):
            prediction = results[k].float()
            tv.append(total_variation_loss(prediction))
            if self.vgg is None:
                continue
            with torch.autocast(prediction.device.type, enabled=False):
                with torch.no_grad():
                    target_features = self.vgg_features(targets[k])
                prediction_features = self.vgg_features(prediction)
                perceptual.append(perceptual_loss(prediction_features, target_features))
                style.append(style_loss(prediction_features, target_features))
        zero = results[0].new_zeros((), dtype=torch.float32)
        return {
            "perceptual": torch.stack(perceptual).mean() if perceptual else zero,
            "style": torch.stack(style).mean() if style else zero,
            "tv": torch.stack(tv).mean(),
        }

    def forward(
        self, results: Sequence[Tensor], target: Tensor, hole_mask: Tensor | None = None
    ) -> dict[str, Tensor]:
        """All loss terms for ``results`` (finest first) against the full-resolution ``target``.

        Keys: ``total`` (to minimise), ``structure`` and ``texture`` (weighted), ``l1``,
        ``perceptual``, ``style``, ``tv`` (unweighted means over their scale sets; 0 when unused) and
        ``boundary`` (unweighted; 0 unless ``lambda_boundary > 0``, which needs ``hole_mask``, 1 = hole).
        """
        cfg = self.config
        cfg.check_scales(len(results))
        if cfg.lambda_boundary > 0 and hole_mask is None:
            raise ValueError("loss.lambda_boundary > 0 needs the hole mask: call the loss with hole_mask")
        needed = max(cfg.structure_scales, cfg.texture_scales)
        target = target.detach().float()  # ground truth: never a source of gradient
        targets = [resize_target(target, results[k].shape[-2:], cfg.target_resize) for k in range(needed)]
        zero = target.new_zeros(())
        terms = {"l1": zero, "perceptual": zero, "style": zero, "tv": zero, "boundary": zero}
        structure = texture = zero
        if cfg.structure_scales:
            terms["l1"] = self.structure_terms(results, targets)
            structure = cfg.lambda_l1 * terms["l1"]
        if cfg.texture_scales:
            terms.update(self.texture_terms(results, targets))
            texture = (
                cfg.lambda_perceptual * terms["perceptual"]
                + cfg.lambda_style * terms["style"]
                + cfg.lambda_tv * terms["tv"]
            )
        boundary = zero
        if cfg.lambda_boundary > 0:
            terms["boundary"] = boundary_l1_loss(results[0].float(), target, hole_mask, cfg.boundary_width)
            boundary = cfg.lambda_boundary * terms["boundary"]
        return {"total": structure + texture + boundary, "structure": structure, "texture": texture, **terms}


__all__ = [
    "LOSS_TERMS",
    "DFNetLoss",
    "LossConfig",
    "VGGInput",
    "boundary_l1_loss",
    "gram_matrix",
    "l1_loss",
    "perceptual_loss",
    "resize_target",
    "style_loss",
    "total_variation_loss",
]
