"""Texture metrics inside the hole, with no pretrained network: gradient ratio, band-energy detail, patch SWD.

L1, PSNR and SSIM reward a blurred fill (the mean of all plausible textures); these three measure
whether the hole has the truth's *amount* and *kind* of detail:

- :func:`per_image_gradient_sums`: summed luminance gradient magnitude in the hole, of the result and
  of the truth; a group's **gradient ratio** is the ratio of the two sums (1 = as detailed as the
  truth, below 1 = smoother, above 1 = busier);
- :func:`per_image_detail`: the mean over band-pass pyramid levels of |log| of the RMS-amplitude ratio
  of result and truth in the hole (0 = same energy in every band; blur and noise both score > 0);
- :func:`per_image_swd`: the sliced Wasserstein distance between the 7×7 RGB patches of the result's
  and the truth's band-pass pyramids in the hole (Karras et al. 2018, per image; 0 = same patch
  distribution).

Images are float (N, 3, H, W) in [0, 1] (uint8 accepted), hole masks (N, 1, H, W), True = hole.
Exact definitions and the reasons for the constants: docs/evaluation.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

# ITU-R BT.601 luma weights of R, G, B.
LUMA_WEIGHTS = (0.299, 0.587, 0.114)
# Band-pass levels: bands around 1-2, 2-4, 4-8 and 8-16 px at full resolution.
PYRAMID_LEVELS = 4
# Floor on a band's mean energy: one grey level squared, so flat holes (sky) do not give log(0).
ENERGY_FLOOR = (1.0 / 255.0) ** 2
# Sliced Wasserstein distance: patch side, patches per level and image, projections, seed.
SWD_PATCH = 7
SWD_PATCHES = 1024
SWD_PROJECTIONS = 128
SWD_SEED = 0


def luminance(images: Tensor) -> Tensor:
    """BT.601 luma of RGB images (N, 3, H, W) -> (N, 1, H, W)."""
    weights = torch.tensor(LUMA_WEIGHTS, dtype=images.dtype, device=images.device)
    return (images * weights[:, None, None]).sum(1, keepdim=True)


def gradient_magnitude(images: Tensor) -> Tensor:
    """|∇| of each channel by forward differences: sqrt(dx² + dy²), dx = I[y, x+1] - I[y, x] (0 on the last column/row)."""
    dx = F.pad(images[..., :, 1:] - images[..., :, :-1], (0, 1, 0, 0))
    dy = F.pad(images[..., 1:, :] - images[..., :-1, :], (0, 0, 0, 1))
    return (dx.square() + dy.square()).sqrt()


def per_image_gradient_sums(result: Tensor, target: Tensor, hole_mask: Tensor) -> tuple[Tensor, Tensor]:
    """Per image: (sum over hole pixels of the result's luma gradient magnitude, the same for the truth)."""
    hole = hole_mask.to(result.dtype)

    def hole_sum(images: Tensor) -> Tensor:
        return (gradient_magnitude(luminance(images)) * hole).flatten(1).sum(1)

    return hole_sum(result), hole_sum(target)


def _binomial_1d(images: Tensor, dim: int) -> Tensor:
    """[1 4 6 4 1] / 16 along ``dim`` (-1 or -2), edges replicated; shifted sums, much faster than conv2d on CPU."""
    n = images.shape[dim]
    first, last = images.narrow(dim, 0, 1), images.narrow(dim, n - 1, 1)
    padded = torch.cat([first, first, images, last, last], dim)
    taps = [padded.narrow(dim, k, n) for k in range(5)]
    return (taps[0] + taps[4] + 4.0 * (taps[1] + taps[3]) + 6.0 * taps[2]) / 16.0


def blur(images: Tensor) -> Tensor:
    """Separable 5-tap binomial blur ([1 4 6 4 1] / 16 each way, Burt & Adelson's kernel), edges replicated."""
    return _binomial_1d(_binomial_1d(images, -1), -2)


def bandpass_pyramid(images: Tensor, levels: int = PYRAMID_LEVELS) -> list[Tensor]:
    """Band-pass (Laplacian-style) pyramid: band k = G_k - blur(G_k), G_{k+1} = blur(G_k)[::2, ::2]."""
    bands = []
    for _ in range(levels):
        smooth = blur(images)
        bands.append(images - smooth)
        images = smooth[..., ::2, ::2]
    return bands


def hole_weights(hole_mask: Tensor, levels: int = PYRAMID_LEVELS) -> list[Tensor]:
    """Per pyramid level, the fraction of hole pixels in the 2^k × 2^k block a coefficient stands for."""
    weights = [hole_mask.float()]
    for _ in range(levels - 1):
        weights.append(F.avg_pool2d(weights[-1], 2, ceil_mode=True))
    return weights


@dataclass(frozen=True)
class HolePyramids:
    """RGB band-pass pyramids of results and their truths, and each coefficient's hole weight, per level."""

    result: list[Tensor]
    target: list[Tensor]
    weights: list[Tensor]

    @classmethod
    def build(
        cls, result: Tensor, target: Tensor, hole_mask: Tensor, levels: int = PYRAMID_LEVELS
    ) -> HolePyramids:
        """Both pyramids and the hole weights (built once, shared by the detail measure and the SWD)."""
        weights = [w.to(result.dtype) for w in hole_weights(hole_mask, levels)]
        return cls(bandpass_pyramid(result, levels), bandpass_pyramid(target, levels), weights)


def band_log_ratios(pyramids: HolePyramids) -> Tensor:
    """Per level and image, ½ ln((E_result + ε) / (E_truth + ε)), E = hole-weighted mean band energy of luma:
    (levels, N); negative = less contrast than the truth in that band."""
    ratios = []
    for band_r, band_t, w in zip(pyramids.result, pyramids.target, pyramids.weights, strict=True):
        total = w.flatten(1).sum(1).clamp_min(1e-12)  # no hole: both energies are 0, the ratio is 0
        energy_r = (luminance(band_r).square() * w).flatten(1).sum(1) / total
        energy_t = (luminance(band_t).square() * w).flatten(1).sum(1) / total
        ratios.append(0.5 * ((energy_r + ENERGY_FLOOR) / (energy_t + ENERGY_FLOOR)).log())
    return torch.stack(ratios)


def detail_scores(pyramids: HolePyramids) -> Tensor:
    """Mean over levels of the absolute :func:`band_log_ratios`: (N,)."""
    return band_log_ratios(pyramids).abs().mean(0)


def _patches_at(band: Tensor, ys: Tensor, xs: Tensor, side: int) -> Tensor:
    """The side × side patches of one image's band (C, H, W) centred at (ys, xs), edges replicated: (n, C·side²)."""
    r = side // 2
    padded = F.pad(band[None], (r, r, r, r), mode="replicate")[0]
    offsets = torch.arange(side, device=band.device)
    rows = (ys[:, None] + offsets)[:, :, None]  # (n, side, 1), in padded coordinates
    cols = (xs[:, None] + offsets)[:, None, :]  # (n, 1, side)
    return padded[:, rows, cols].permute(1, 0, 2, 3).flatten(1)


def sliced_wasserstein(a: Tensor, b: Tensor, directions: Tensor) -> Tensor:
    """Mean over unit ``directions`` (D, P) of the 1-D Wasserstein-1 distance of two equal-size sets (n, D)."""
    projected_a = (directions.T @ a.T).sort(-1).values  # (D, n): sorting along contiguous rows is fast
    projected_b = (directions.T @ b.T).sort(-1).values
    return (projected_a - projected_b).abs().mean()


def swd_directions(dim: int, count: int = SWD_PROJECTIONS, seed: int = SWD_SEED) -> Tensor:
    """``count`` random unit vectors in R^dim (columns of a (dim, count) float64 matrix), fixed by ``seed``."""
    directions = torch.randn(dim, count, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return directions / directions.norm(dim=0, keepdim=True)


def swd_scores(pyramids: HolePyramids, patches: int = SWD_PATCHES, side: int = SWD_PATCH) -> Tensor:
    """Mean over levels of the SWD between result and truth RGB band patches centred in the hole: (N,).

    At each level the patch centres are the coefficients whose block holds a hole pixel; when there
    are more than ``patches`` of them, the same seeded random subset is used for result and truth.
    """
    first = pyramids.result[0]
    # cast on the CPU first: MPS has no float64
    directions = swd_directions(first.shape[1] * side * side).to(first.dtype).to(first.device)
    scores = torch.zeros(len(pyramids.weights), first.shape[0], dtype=first.dtype, device=first.device)
    levels = zip(pyramids.result, pyramids.target, pyramids.weights, strict=True)
    for level, (band_r, band_t, weight) in enumerate(levels):
        for i in range(first.shape[0]):
            ys, xs = torch.nonzero(weight[i, 0] > 0, as_tuple=True)
            if ys.numel() == 0:
                continue  # no hole: the result is the truth
            if ys.numel() > patches:
                keep = torch.randperm(ys.numel(), generator=torch.Generator().manual_seed(SWD_SEED))[:patches]
                ys, xs = ys[keep.to(ys.device)], xs[keep.to(xs.device)]
            scores[level, i] = sliced_wasserstein(
                _patches_at(band_r[i], ys, xs, side), _patches_at(band_t[i], ys, xs, side), directions
            )
    return scores.mean(0)


def per_image_detail(
    result: Tensor, target: Tensor, hole_mask: Tensor, levels: int = PYRAMID_LEVELS
) -> Tensor:
    """The band-energy detail measure of each image (0 = as much detail as the truth in every band): (N,)."""
    return detail_scores(HolePyramids.build(result, target, hole_mask, levels))


def per_image_swd(result: Tensor, target: Tensor, hole_mask: Tensor, levels: int = PYRAMID_LEVELS) -> Tensor:
    """The sliced Wasserstein distance of band-pass patches in the hole of each image: (N,)."""
    return swd_scores(HolePyramids.build(result, target, hole_mask, levels))


def per_image_texture(result: Tensor, target: Tensor, hole_mask: Tensor) -> tuple[Tensor, Tensor]:
    """(detail, SWD) of each image, from one pair of pyramids."""
    pyramids = HolePyramids.build(result, target, hole_mask)
    return detail_scores(pyramids), swd_scores(pyramids)


__all__ = [
    "ENERGY_FLOOR",
    "HolePyramids",
    "LUMA_WEIGHTS",
    "PYRAMID_LEVELS",
    "SWD_PATCH",
    "SWD_PATCHES",
    "SWD_PROJECTIONS",
    "band_log_ratios",
    "bandpass_pyramid",
    "blur",
    "detail_scores",
    "gradient_magnitude",
    "hole_weights",
    "luminance",
    "per_image_detail",
    "per_image_gradient_sums",
    "per_image_swd",
    "per_image_texture",
    "sliced_wasserstein",
    "swd_scores",
    "swd_directions",
]
