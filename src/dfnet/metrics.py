"""Image-completion metrics of the paper (L1, BPE, FID) plus PSNR, SSIM, optional LPIPS and texture metrics.

Everything works on batches on any device and accumulates over a data set in running sums, so a
data set is never held in memory:

- :func:`measure_batch` turns one batch of (result, ground truth, hole mask) into per-image numbers
  and, when a feature network is given, FID features (:class:`BatchMeasurements`);
- :class:`MetricTotals` sums any number of such measurements (or subsets of them, e.g. one
  hole-ratio bin) and :meth:`MetricTotals.compute` gives the data-set values.

Images are float tensors (N, 3, H, W) in [0, 1] (uint8 tensors are accepted and scaled); hole
masks are (N, 1, H, W) or (N, H, W) with 1/True = hole. The texture metrics (gradient ratio,
detail, SWD) are defined in :mod:`dfnet.texture_metrics`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from dfnet.texture_metrics import per_image_gradient_sums, per_image_texture

# Width (pixels) of the BPE band: hole pixels whose Euclidean distance to the nearest known pixel
# is at most this. See docs/evaluation.md for why 3.
DEFAULT_BPE_BAND = 3
# PSNR of a perfect reconstruction is infinite; MSE is floored so averages stay finite (100 dB).
PSNR_MIN_MSE = 1e-10

FeatureFn = Callable[[Tensor], Tensor]


def as_float_images(images: Tensor) -> Tensor:
    """uint8 images -> float32 in [0, 1]; float32/float64 images are kept, other floats become float32."""
    if images.dtype == torch.uint8:
        return images.float() / 255.0
    return images if images.dtype in (torch.float32, torch.float64) else images.float()


def as_hole_mask(hole_mask: Tensor) -> Tensor:
    """(N, H, W) or (N, 1, H, W) of any dtype -> bool (N, 1, H, W), True = hole."""
    if hole_mask.ndim == 3:
        hole_mask = hole_mask[:, None]
    if hole_mask.ndim != 4 or hole_mask.shape[1] != 1:
        raise ValueError(f"hole_mask must have shape (N, 1, H, W), got {tuple(hole_mask.shape)}")
    return hole_mask > 0.5 if hole_mask.dtype.is_floating_point else hole_mask.bool()


def _check_pair(result: Tensor, target: Tensor) -> None:
    if result.shape != target.shape or result.ndim != 4 or result.shape[1] != 3:
        raise ValueError(
            f"result {tuple(result.shape)} and target {tuple(target.shape)} must both be (N, 3, H, W)"
        )


def per_image_l1(result: Tensor, target: Tensor) -> Tensor:
    """Mean absolute error over all pixels and channels of each image, in [0, 1]: shape (N,)."""
    _check_pair(result, target)
    return (as_float_images(result) - as_float_images(target)).abs().flatten(1).mean(1)


def disk_offsets(radius: int) -> Tensor:
    """A (2r+1, 2r+1) float kernel that is 1 where dy^2 + dx^2 <= r^2 (a digital Euclidean disk)."""
    span = torch.arange(-radius, radius + 1)
    return ((span[:, None] ** 2 + span[None, :] ** 2) <= radius**2).float()


def boundary_band(hole_mask: Tensor, width: int = DEFAULT_BPE_BAND) -> Tensor:
    """Hole pixels whose Euclidean distance to the nearest known pixel is <= ``width``: bool (N, 1, H, W).

    A hole pixel is in the band exactly when a known pixel lies in the disk of radius ``width``
    around it, so the band is ``hole & dilate(known, disk)``. Pixels outside the image are not
    known pixels: the image border is not a hole boundary.
    """
    if width < 1:
        raise ValueError(f"BPE band width must be at least 1 pixel, got {width}")
    hole = as_hole_mask(hole_mask)
    known = (~hole).float()
    kernel = disk_offsets(width).to(known.device)[None, None]
    near_known = F.conv2d(known, kernel, padding=width) > 0.5
    return hole & near_known


def per_image_bpe_sums(
    result: Tensor, target: Tensor, hole_mask: Tensor, width: int = DEFAULT_BPE_BAND
) -> tuple[Tensor, Tensor]:
    """Per image: (sum over band pixels of the channel-mean absolute error, number of band pixels)."""
    _check_pair(result, target)
    band = boundary_band(hole_mask, width)
    pixel_error = (as_float_images(result) - as_float_images(target)).abs().mean(1, keepdim=True)
    return (pixel_error * band).flatten(1).sum(1), band.flatten(1).sum(1).float()


def per_image_psnr(result: Tensor, target: Tensor) -> Tensor:
    """PSNR in dB with peak 1.0 over all pixels and channels of each image: shape (N,)."""
    _check_pair(result, target)
    mse = (as_float_images(result) - as_float_images(target)).pow(2).flatten(1).mean(1)
    return -10.0 * torch.log10(mse.clamp_min(PSNR_MIN_MSE))


def per_image_ssim(result: Tensor, target: Tensor) -> Tensor:
    """SSIM (Gaussian window 11, sigma 1.5, K1 0.01, K2 0.03, peak 1.0), averaged over channels: (N,)."""
    from torchmetrics.functional.image import structural_similarity_index_measure

    _check_pair(result, target)
    return structural_similarity_index_measure(
        as_float_images(result), as_float_images(target), data_range=1.0, reduction="none"
    ).reshape(-1)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Fréchet distance between Gaussians: |mu1-mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2)).

    tr((S1 S2)^(1/2)) is computed in float64 as the sum of square roots of the eigenvalues of the
    symmetric matrix S1^(1/2) S2 S1^(1/2), which has the same spectrum as S1 S2 and, unlike a
    general matrix square root, never produces complex round-off.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != mu1.shape * 2:
        raise ValueError(f"mismatched statistics: {mu1.shape}, {sigma1.shape}, {mu2.shape}, {sigma2.shape}")
    values, vectors = np.linalg.eigh((sigma1 + sigma1.T) / 2)
    root1 = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    product = root1 @ sigma2 @ root1
    trace_root = np.sqrt(np.clip(np.linalg.eigvalsh((product + product.T) / 2), 0, None)).sum()
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_root)


class FeatureStatistics:
    """Running mean and covariance of feature vectors in float64 (Chan et al.'s pairwise update)."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.count = 0
        self.mean = torch.zeros(dim, dtype=torch.float64)
        self.scatter = torch.zeros(dim, dim, dtype=torch.float64)  # sum of outer products of deviations

    def add(self, features: Tensor) -> None:
        """Fold a batch (N, dim) into the running statistics."""
        if features.ndim != 2 or features.shape[1] != self.dim:
            raise ValueError(f"features must have shape (N, {self.dim}), got {tuple(features.shape)}")
        n = features.shape[0]
        if n == 0:
            return
        batch = features.detach().cpu().double()
        batch_mean = batch.mean(0)
        centred = batch - batch_mean
        delta = batch_mean - self.mean
        total = self.count + n
        self.scatter += centred.T @ centred + torch.outer(delta, delta) * (self.count * n / total)
        self.mean += delta * (n / total)
        self.count = total

    def covariance(self) -> np.ndarray:
        """Unbiased sample covariance (divides by count - 1), as the FID reference does."""
        if self.count < 2:
            raise ValueError("the covariance needs at least two feature vectors")
        return (self.scatter / (self.count - 1)).numpy()

    def frechet_distance(self, other: FeatureStatistics) -> float:
        """FID between the Gaussians fitted to this set and ``other``."""
        return frechet_distance(self.mean.numpy(), self.covariance(), other.mean.numpy(), other.covariance())


@dataclass
class BatchMeasurements:
    """Per-image numbers of one batch (CPU tensors); features are None when FID is not computed."""

    l1: Tensor
    bpe_error: Tensor
    bpe_pixels: Tensor
    psnr: Tensor
    ssim: Tensor
    grad_result: Tensor  # sum of the result's luma gradient magnitude over hole pixels
    grad_target: Tensor  # the same for the ground truth
    detail: Tensor
    swd: Tensor
    lpips: Tensor | None = None
    real_features: Tensor | None = None
    fake_features: Tensor | None = None

    def __len__(self) -> int:
        return int(self.l1.shape[0])

    def select(self, index: Tensor) -> BatchMeasurements:
        """The measurements of a subset of the images (boolean mask or index tensor)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return BatchMeasurements(**{k: None if v is None else v[index] for k, v in values.items()})


@torch.inference_mode()
def measure_batch(
    result: Tensor,
    target: Tensor,
    hole_mask: Tensor,
    bpe_band: int = DEFAULT_BPE_BAND,
    fid_features: FeatureFn | None = None,
    lpips: Callable[[Tensor, Tensor], Tensor] | None = None,
) -> BatchMeasurements:
    """Every metric of one batch of completed images against their ground truth."""
    result, target, hole_mask = as_float_images(result), as_float_images(target), as_hole_mask(hole_mask)
    bpe_error, bpe_pixels = per_image_bpe_sums(result, target, hole_mask, bpe_band)
    grad_result, grad_target = per_image_gradient_sums(result, target, hole_mask)
    detail, swd = per_image_texture(result, target, hole_mask)
    out = BatchMeasurements(
        l1=per_image_l1(result, target),
        bpe_error=bpe_error,
        bpe_pixels=bpe_pixels,
        psnr=per_image_psnr(result, target),
        ssim=per_image_ssim(result, target),
        grad_result=grad_result,
        grad_target=grad_target,
        detail=detail,
        swd=swd,
        lpips=None if lpips is None else lpips(result, target).reshape(-1),
        real_features=None if fid_features is None else fid_features(target),
        fake_features=None if fid_features is None else fid_features(result),
    )
    return BatchMeasurements(**{f.name: _to_cpu(getattr(out, f.name)) for f in fields(out)})


def _to_cpu(x: Tensor | None) -> Tensor | None:
    return None if x is None else x.detach().cpu().double()  # to CPU first: MPS has no float64


# Per-image values that MetricTotals sums for every image (LPIPS only when computed).
SUMMED = ("l1", "psnr", "ssim", "bpe_error", "bpe_pixels", "grad_result", "grad_target", "detail", "swd")


class MetricTotals:
    """Running sums of :class:`BatchMeasurements` for one group of images (e.g. a hole-ratio bin)."""

    def __init__(self, feature_dim: int | None = None) -> None:
        self.count = 0
        self.sums = dict.fromkeys(SUMMED, 0.0) | {"lpips": 0.0}
        self.lpips_count = 0
        self.real = FeatureStatistics(feature_dim) if feature_dim else None
        self.fake = FeatureStatistics(feature_dim) if feature_dim else None

    def add(self, batch: BatchMeasurements) -> None:
        """Accumulate a batch (or a subset of one)."""
        if len(batch) == 0:
            return
        self.count += len(batch)
        for name in SUMMED:
            self.sums[name] += float(getattr(batch, name).sum())
        if batch.lpips is not None:
            self.sums["lpips"] += float(batch.lpips.sum())
            self.lpips_count += len(batch)
        if self.real is not None and batch.real_features is not None:
            self.real.add(batch.real_features)
            self.fake.add(batch.fake_features)

    def compute(self) -> dict[str, float | None]:
        """Data-set values; a metric that cannot be computed (no images, no FID network) is None.

        L1, PSNR, SSIM, LPIPS, detail and SWD are means over images. BPE pools all band pixels of
        the group: the paper's formula applied to the whole group at once. The gradient ratio is the
        ratio of the group's summed hole gradients (None when the truth has none). FID needs two
        images or more.
        """
        n = self.count

        def mean(name: str, count: int) -> float | None:
            return self.sums[name] / count if count else None

        fid = None
        if self.real is not None and self.real.count >= 2:
            fid = self.real.frechet_distance(self.fake)
        bpe = self.sums["bpe_error"] / self.sums["bpe_pixels"] if self.sums["bpe_pixels"] else None
        grad = self.sums["grad_result"] / self.sums["grad_target"] if self.sums["grad_target"] else None
        return {
            "l1": mean("l1", n),
            "bpe": bpe,
            "fid": fid,
            "psnr": mean("psnr", n),
            "ssim": mean("ssim", n),
            "lpips": mean("lpips", self.lpips_count),
            "grad_ratio": grad,
            "detail": mean("detail", n),
            "swd": mean("swd", n),
        }


# ---------------------------------------------------------------------------------------------
# LPIPS (VGG variant), from local weight files only
# ---------------------------------------------------------------------------------------------
# LPIPS-VGG compares unit-normalised VGG16 activations after relu1_2, relu2_2, relu3_3, relu4_3 and
# relu5_3 (indices 3, 8, 15, 22, 29 of torchvision's ``features``), weights the squared differences
# per channel with learned non-negative 1x1 "lin" layers, averages over space and sums the layers.
# Its input scaling (shift -.030/-.088/-.188, scale .458/.448/.450 on [-1, 1] images) is exactly
# ImageNet mean/std normalisation of [0, 1] images, which dfnet.vgg.VGG16Features applies.
LPIPS_TAPS = (3, 8, 15, 22, 29)
LPIPS_CHANNELS = (64, 128, 256, 512, 512)
LPIPS_EPS = 1e-10


class LPIPSWeightsError(ValueError):
    """A file that cannot be used as LPIPS lin weights (one-line, user-facing message)."""


class LPIPSVGG(torch.nn.Module):
    """LPIPS v0.1 with the VGG16 backbone of :mod:`dfnet.vgg`."""

    def __init__(self) -> None:
        from dfnet.vgg import VGG16Features

        super().__init__()
        self.vgg = VGG16Features(("pool5",))
        self.lins = torch.nn.ModuleList(torch.nn.Conv2d(c, 1, 1, bias=False) for c in LPIPS_CHANNELS)
        self.requires_grad_(False)

    def activations(self, images: Tensor) -> list[Tensor]:
        """VGG16 activations at the five LPIPS taps for images in [0, 1]."""
        x = (images - self.vgg.mean) / self.vgg.std
        taps = []
        for index, layer in enumerate(self.vgg.features[: LPIPS_TAPS[-1] + 1]):
            x = layer(x)
            if index in LPIPS_TAPS:
                taps.append(x)
        return taps

    def forward(self, result: Tensor, target: Tensor) -> Tensor:
        """LPIPS distance of each pair of images in [0, 1]: shape (N,)."""
        total = torch.zeros(result.shape[0], device=result.device)
        for lin, a, b in zip(self.lins, self.activations(result), self.activations(target), strict=True):
            unit_a = a / (a.pow(2).sum(1, keepdim=True).sqrt() + LPIPS_EPS)
            unit_b = b / (b.pow(2).sum(1, keepdim=True).sqrt() + LPIPS_EPS)
            total += lin((unit_a - unit_b).pow(2)).mean((1, 2, 3))
        return total

    def load_lins(self, state: Mapping[str, Tensor], source: str) -> None:
        """Load the lin layers from the published file's keys ``lin{i}.model.1.weight``."""
        for i, lin in enumerate(self.lins):
            key = f"lin{i}.model.1.weight"
            if key not in state or tuple(state[key].shape) != tuple(lin.weight.shape):
                raise LPIPSWeightsError(f"{source}: not LPIPS VGG lin weights (bad or missing {key})")
            lin.weight.data.copy_(state[key].float())


def load_lpips_vgg(lin_weights: str | os.PathLike, vgg_weights: str | os.PathLike | None = None) -> LPIPSVGG:
    """LPIPS-VGG from the lin-layer file (``vgg.pth`` of LPIPS v0.1) and the ImageNet VGG16 file."""
    from dfnet.vgg import find_vgg16_weights, missing_weights_message, read_vgg16_state

    lin_weights = Path(lin_weights)
    if not lin_weights.is_file():
        raise FileNotFoundError(f"LPIPS weights: {lin_weights} does not exist")
    vgg_path = find_vgg16_weights(vgg_weights)
    if vgg_path is None:
        raise LPIPSWeightsError("LPIPS needs the VGG16 weights too: " + missing_weights_message())
    network = LPIPSVGG()
    network.vgg.load_weights(read_vgg16_state(vgg_path), str(vgg_path))
    try:
        state = torch.load(lin_weights, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file gets the same one-line message
        raise LPIPSWeightsError(f"{lin_weights}: cannot read LPIPS weights ({type(err).__name__})") from err
    network.load_lins(state if isinstance(state, Mapping) else {}, str(lin_weights))
    return network.eval()


__all__ = [
    "DEFAULT_BPE_BAND",
    "BatchMeasurements",
    "FeatureStatistics",
    "LPIPSVGG",
    "MetricTotals",
    "boundary_band",
    "frechet_distance",
    "load_lpips_vgg",
    "measure_batch",
    "per_image_bpe_sums",
    "per_image_l1",
    "per_image_psnr",
    "per_image_ssim",
]
