"""Minimal re-implementations of peer inpainting generators, for timing and counting only (random weights).

Written from the architecture of the public code; the layer shapes, and so parameter counts and MACs, follow it:

- LaMa big-lama: advimman/lama @ 786f593, ``saicinpainting/training/modules/ffc.py`` (``FFCResNetGenerator``,
  ``FFCResnetBlock``, ``FFC``, ``SpectralTransform``, ``FourierUnit``) with ``configs/training/big-lama.yaml``:
  input 4 (masked RGB + mask), output 3, ngf 64, 3 downsamplings, 18 residual blocks, sigmoid output; stem and
  downsampling convolutions purely local (ratio 0), except that the last downsampling already splits 0.75 of its
  output into the global (Fourier) branch; residual blocks ratio_gin = ratio_gout = 0.75, no LFU; BatchNorm and
  ReLU; reflect padding.
- MI-GAN 512: Picsart-AI-Research/MI-GAN @ ca4df2e, ``lib/model_zoo/migan_inference.py`` (``Generator``,
  ``Encoder``, ``Synthesis``, ``SeparableConv2d``, ``Downsample2d``, ``Upsample2d``; the re-parameterised
  inference form), input as in ``scripts/demo.py``: ``cat([mask - 0.5, rgb * mask])`` with rgb in [-1, 1].
  Channels min(32768 / resolution, 512); leaky ReLU 0.2 with gain sqrt(2), clamped at 256.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# ---------------------------------------------------------------------------------------------
# LaMa: fast Fourier convolutions
# ---------------------------------------------------------------------------------------------


class FourierUnit(nn.Module):
    """1x1 convolution on the real and imaginary parts of the 2-D real FFT (orthonormal), BN, ReLU, back."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2 * channels, 2 * channels, 1, bias=False)
        self.norm = nn.BatchNorm2d(2 * channels)

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        spectrum = torch.fft.rfft2(x, norm="ortho")
        parts = torch.stack((spectrum.real, spectrum.imag), dim=2).reshape(n, 2 * c, h, w // 2 + 1)
        parts = F.relu(self.norm(self.conv(parts))).reshape(n, c, 2, h, w // 2 + 1)
        return torch.fft.irfft2(torch.complex(parts[:, :, 0], parts[:, :, 1]), s=(h, w), norm="ortho")


class SpectralTransform(nn.Module):
    """The global-to-global path: halve the channels (1x1, BN, ReLU), Fourier unit with a residual, 1x1 back."""

    def __init__(self, channels_in: int, channels_out: int) -> None:
        super().__init__()
        half = channels_out // 2
        self.reduce = nn.Sequential(
            nn.Conv2d(channels_in, half, 1, bias=False), nn.BatchNorm2d(half), nn.ReLU()
        )
        self.fourier = FourierUnit(half)
        self.expand = nn.Conv2d(half, channels_out, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        x = self.reduce(x)
        return self.expand(x + self.fourier(x))


class FFCLayer(nn.Module):
    """A fast Fourier convolution with BN and ReLU per branch: local (l) and global (g) channel groups,
    l->l, l->g, g->l by ordinary convolutions, g->g by the spectral transform; (local, global) in and out."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel: int,
        ratio_in: float,
        ratio_out: float,
        stride: int = 1,
        padding: int = 0,
    ) -> None:
        super().__init__()
        self.g_in, self.g_out = int(c_in * ratio_in), int(c_out * ratio_out)
        l_in, l_out = c_in - self.g_in, c_out - self.g_out

        def conv(a: int, b: int) -> nn.Module | None:
            if a == 0 or b == 0:
                return None
            return nn.Conv2d(a, b, kernel, stride, padding, bias=False, padding_mode="reflect")

        self.l2l, self.l2g, self.g2l = conv(l_in, l_out), conv(l_in, self.g_out), conv(self.g_in, l_out)
        self.g2g = SpectralTransform(self.g_in, self.g_out) if self.g_in and self.g_out else None
        self.norm_l = nn.BatchNorm2d(l_out) if l_out else None
        self.norm_g = nn.BatchNorm2d(self.g_out) if self.g_out else None

    def forward(self, x: tuple[Tensor, Tensor | None]) -> tuple[Tensor | None, Tensor | None]:
        local, glob = x
        out_l = out_g = None
        if self.norm_l is not None:
            out_l = self.l2l(local) + (self.g2l(glob) if self.g2l is not None else 0)
            out_l = F.relu(self.norm_l(out_l))
        if self.norm_g is not None:
            out_g = (self.l2g(local) if self.l2g is not None else 0) + (
                self.g2g(glob) if self.g2g is not None else 0
            )
            out_g = F.relu(self.norm_g(out_g))
        return out_l, out_g


class FFCResidualBlock(nn.Module):
    """Two 3x3 FFC layers with an identity shortcut on both branches."""

    def __init__(self, channels: int, ratio: float) -> None:
        super().__init__()
        self.first = FFCLayer(channels, channels, 3, ratio, ratio, padding=1)
        self.second = FFCLayer(channels, channels, 3, ratio, ratio, padding=1)

    def forward(self, x: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        out_l, out_g = self.second(self.first(x))
        return x[0] + out_l, x[1] + out_g


class BigLama(nn.Module):
    """FFCResNetGenerator in the big-lama configuration; (N, 4, H, W) -> (N, 3, H, W) in [0, 1]."""

    def __init__(
        self, ngf: int = 64, n_downsampling: int = 3, n_blocks: int = 18, ratio: float = 0.75
    ) -> None:
        super().__init__()
        self.stem = FFCLayer(4, ngf, 7, 0.0, 0.0)
        downs = []
        for i in range(n_downsampling):
            last = i == n_downsampling - 1
            downs.append(FFCLayer(ngf * 2**i, ngf * 2 ** (i + 1), 3, 0.0, ratio if last else 0.0, 2, 1))
        self.down = nn.ModuleList(downs)
        width = ngf * 2**n_downsampling
        self.blocks = nn.ModuleList(FFCResidualBlock(width, ratio) for _ in range(n_blocks))
        ups: list[nn.Module] = []
        for i in range(n_downsampling):
            c = width // 2**i
            ups += [
                nn.ConvTranspose2d(c, c // 2, 3, 2, 1, output_padding=1),
                nn.BatchNorm2d(c // 2),
                nn.ReLU(),
            ]
        self.up = nn.Sequential(*ups)
        self.head = nn.Conv2d(ngf, 3, 7)

    def forward(self, x: Tensor) -> Tensor:
        features = self.stem((F.pad(x, (3, 3, 3, 3), mode="reflect"), None))
        for layer in self.down:
            features = layer(features)
        for block in self.blocks:
            features = block(features)
        x = self.up(torch.cat(features, dim=1))
        return torch.sigmoid(self.head(F.pad(x, (3, 3, 3, 3), mode="reflect")))


def lama_input(rgb: Tensor, hole: Tensor) -> Tensor:
    """LaMa's input: the picture (in [0, 1]) with the hole zeroed, and the hole mask (1 = hole)."""
    return torch.cat([rgb * (1 - hole), hole], dim=1)


# ---------------------------------------------------------------------------------------------
# MI-GAN: separable convolutions, StyleGAN-like encoder/synthesis, inference (re-parameterised) form
# ---------------------------------------------------------------------------------------------
_LRELU_GAIN, _CLAMP = math.sqrt(2.0), 256.0


def _act(x: Tensor) -> Tensor:
    return (F.leaky_relu(x, 0.2) * _LRELU_GAIN).clamp(-_CLAMP, _CLAMP)


def _binomial(channels: int, gain: float) -> Tensor:
    """The [1, 3, 3, 1] outer-product filter, normalised to sum ``gain``, one per channel (depthwise)."""
    taps = torch.tensor([1.0, 3.0, 3.0, 1.0])
    kernel = torch.outer(taps, taps)
    return (kernel / kernel.sum() * gain).expand(channels, 1, 4, 4).clone()


class Downsample(nn.Module):
    """Depthwise 4x4 binomial filter, stride 2."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.filter = nn.Conv2d(channels, channels, 4, 2, 1, groups=channels, bias=False)
        self.filter.weight = nn.Parameter(_binomial(channels, 1.0))

    def forward(self, x: Tensor) -> Tensor:
        return self.filter(x)


class Upsample(nn.Module):
    """Zero insertion (nearest x2 times a 1-of-4 pattern), then a depthwise 4x4 binomial filter with gain 4."""

    def __init__(self, channels: int, resolution: int) -> None:
        super().__init__()
        pattern = torch.tensor([[1.0, 0.0], [0.0, 0.0]]).repeat(resolution // 2, resolution // 2)
        self.register_buffer("pattern", pattern[None, None])
        self.filter = nn.Conv2d(channels, channels, 4, groups=channels, bias=False)
        self.filter.weight = nn.Parameter(_binomial(channels, 4.0))

    def forward(self, x: Tensor) -> Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode="nearest") * self.pattern
        return self.filter(F.pad(x, (2, 1, 2, 1)))


class SeparableConv(nn.Module):
    """Depthwise 3x3 (bias) + activation, optional downsampling, 1x1, optional upsampling and constant noise,
    activation."""

    def __init__(
        self, c_in: int, c_out: int, resolution: int | None = None, down: bool = False, up: bool = False,
        noise: bool = False,
    ) -> None:  # fmt: skip
        super().__init__()
        self.depthwise = nn.Conv2d(c_in, c_in, 3, padding=1, groups=c_in)
        self.pointwise = nn.Conv2d(c_in, c_out, 1, bias=False)
        self.down = Downsample(c_in) if down else None
        self.up = Upsample(c_out, resolution) if up else None
        if noise:
            self.register_buffer("noise", torch.randn(resolution, resolution))
            self.noise_strength = nn.Parameter(torch.zeros([]))
        else:
            self.noise = None

    def forward(self, x: Tensor) -> Tensor:
        x = _act(self.depthwise(x))
        if self.down is not None:
            x = self.down(x)
        x = self.pointwise(x)
        if self.up is not None:
            x = self.up(x)
        if self.noise is not None:
            x = x + self.noise * self.noise_strength
        return _act(x)


def _channels(resolution: int) -> int:
    return min(32768 // resolution, 512)


class EncoderBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, rgb_in: int | None = None, down: bool = True) -> None:
        super().__init__()
        self.from_rgb = nn.Conv2d(rgb_in, c_in, 1) if rgb_in else None
        self.conv1 = SeparableConv(c_in, c_in)
        self.conv2 = SeparableConv(c_in, c_out, down=down)

    def forward(self, x: Tensor | None, image: Tensor) -> tuple[Tensor, Tensor]:
        if self.from_rgb is not None:
            y = _act(self.from_rgb(image))
            x = y if x is None else x + y
        feature = self.conv1(x)
        return self.conv2(feature), feature


class SynthesisBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, resolution: int) -> None:
        super().__init__()
        first = resolution == 4
        self.conv1 = SeparableConv(c_in, c_out, resolution, up=not first, noise=not first)
        self.conv2 = SeparableConv(c_out, c_out, resolution, noise=not first)
        self.to_rgb = nn.Conv2d(c_out, 3, 1)
        self.up_rgb = None if first else Upsample(3, resolution)

    def forward(self, x: Tensor, skip: Tensor, image: Tensor | None) -> tuple[Tensor, Tensor]:
        x = self.conv2(self.conv1(x) + skip)
        rgb = self.to_rgb(x)
        return x, rgb if image is None else self.up_rgb(image) + rgb


class MIGAN(nn.Module):
    """MI-GAN's generator at ``resolution`` (a power of two); (N, 4, R, R) -> (N, 3, R, R) in about [-1, 1]."""

    def __init__(self, resolution: int = 512) -> None:
        super().__init__()
        levels = int(math.log2(resolution))
        if 2**levels != resolution or resolution < 8:
            raise ValueError(f"resolution must be a power of two >= 8, got {resolution}")
        self.encode_res = [2**i for i in range(levels, 1, -1)]  # resolution ... 4
        self.encoder = nn.ModuleList(
            EncoderBlock(_channels(r), _channels(r // 2), rgb_in=4 if i == 0 else None)
            for i, r in enumerate(self.encode_res[:-1])
        )
        self.encoder.append(EncoderBlock(_channels(4), _channels(4), down=False))
        self.synthesis = nn.ModuleList(
            SynthesisBlock(_channels(4), _channels(4), 4)
            if r == 4
            else SynthesisBlock(_channels(r // 2), _channels(r), r)
            for r in reversed(self.encode_res)
        )

    def forward(self, x: Tensor) -> Tensor:
        features, image = [], x
        h = None
        for block in self.encoder:
            h, feature = block(h, image)
            features.append(feature)
        rgb = None
        for block, skip in zip(self.synthesis, reversed(features), strict=True):
            h, rgb = block(h, skip, rgb)
        return rgb


def migan_input(rgb: Tensor, hole: Tensor) -> Tensor:
    """MI-GAN's input (scripts/demo.py): known mask - 0.5 and the known picture in [-1, 1]."""
    known = 1 - hole
    return torch.cat([known - 0.5, (rgb * 2 - 1) * known], dim=1)
