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
- MAT: fenglinglwb/MAT @ d273d89, ``networks/mat.py`` (``Generator(z_dim=512, c_dim=0, w_dim=512,
  img_resolution=512)``: ``MappingNet``, ``SynthesisNet`` = ``FirstStage`` (``Conv2dLayerPartial``,
  ``BasicLayer``, ``SwinTransformerBlock``, ``WindowAttention``, ``PatchMerging``, ``PatchUpsampling``,
  ``DecStyleBlock``) + ``Encoder``, ``ToStyle``, ``Decoder``), ``networks/basic_module.py``
  (``FullyConnectedLayer``, ``Conv2dLayer``, ``ModulatedConv2d``, ``StyleConv``, ``ToRGB``) and the pure-PyTorch
  paths of ``torch_utils/ops`` (``conv2d_resample``, ``upfirdn2d`` with the [1, 3, 3, 1] filter, ``bias_act``);
  called as ``generate_image.py`` does: image in [-1, 1], mask 1 = known, ``noise_mode="const"``,
  ``truncation_psi=1``. 61,562,518 parameters at 512, as their ``Generator`` counts.
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


# ---------------------------------------------------------------------------------------------
# MAT: mask-aware transformer between a partial-convolution encoder and a style-modulated decoder,
# then a convolutional refinement stage (StyleGAN2-style equalised learning rate throughout)
# ---------------------------------------------------------------------------------------------


def _lrelu(x: Tensor) -> Tensor:
    """StyleGAN2's 'lrelu': leaky ReLU 0.2 times its default gain sqrt(2) (no clamp in MAT's generator)."""
    return F.leaky_relu(x, 0.2) * _LRELU_GAIN


def _fir(x: Tensor, fir: Tensor, pad: int | tuple[int, int], gain: float = 1.0, up: int = 1) -> Tensor:
    """upfirdn2d without decimation: zero insertion by ``up``, zero padding (before, after), the 4x4 binomial
    filter ``fir`` (1, 1, 4, 4) per channel, times ``gain``."""
    n, c, h, w = x.shape
    if up > 1:
        x = F.pad(x.reshape(n, c, h, 1, w, 1), (0, up - 1, 0, 0, 0, up - 1)).reshape(n, c, h * up, w * up)
    before, after = (pad, pad) if isinstance(pad, int) else pad
    x = F.pad(x, (before, after, before, after))
    return F.conv2d(x, (fir * gain).expand(c, 1, 4, 4), groups=c)


def _conv_resample(
    x: Tensor, weight: Tensor, fir: Tensor | None, up: int = 1, down: int = 1, groups: int = 1
) -> Tensor:
    """StyleGAN2's conv2d_resample for the cases MAT's generator uses: a k x k convolution (padding k // 2);
    with ``down`` 2 (k = 3) filter first, then stride 2; with ``up`` 2 (k = 3) transposed stride-2 convolution
    of the flipped kernel, then the filter with gain 4."""
    k = weight.shape[-1]
    if down > 1:
        return F.conv2d(_fir(x, fir, k // 2 + 1), weight, stride=2, groups=groups)
    if up > 1:
        o_per_group, i_per_group = weight.shape[0] // groups, weight.shape[1]
        weight = weight.reshape(groups, o_per_group, i_per_group, k, k).transpose(1, 2)
        weight = weight.reshape(groups * i_per_group, o_per_group, k, k).flip([2, 3])
        return _fir(F.conv_transpose2d(x, weight, stride=2, groups=groups), fir, 1, gain=4.0)
    return F.conv2d(x, weight, padding=k // 2, groups=groups)


class MatLinear(nn.Module):
    """FullyConnectedLayer: equalised learning rate (runtime weight gain lr / sqrt(in)), optional lrelu."""

    def __init__(
        self, c_in: int, c_out: int, act: bool = False, lr_multiplier: float = 1.0, bias_init: float = 0.0
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(c_out, c_in) / lr_multiplier)
        self.bias = nn.Parameter(torch.full((c_out,), bias_init))
        self.weight_gain, self.bias_gain, self.act = lr_multiplier / math.sqrt(c_in), lr_multiplier, act

    def forward(self, x: Tensor) -> Tensor:
        x = F.linear(x, self.weight * self.weight_gain, self.bias * self.bias_gain)
        return _lrelu(x) if self.act else x


class MatConv(nn.Module):
    """Conv2dLayer: equalised-learning-rate k x k convolution, optional 2x up/down, bias, lrelu."""

    def __init__(self, c_in: int, c_out: int, kernel: int = 3, up: int = 1, down: int = 1) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(c_out, c_in, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(c_out))
        self.gain, self.up, self.down = 1 / math.sqrt(c_in * kernel**2), up, down
        self.register_buffer("fir", _binomial(1, 1.0), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        x = _conv_resample(x, self.weight * self.gain, self.fir, self.up, self.down)
        return _lrelu(x + self.bias[:, None, None])


class PartialConv(nn.Module):
    """Conv2dLayerPartial (3x3): the convolution rescaled by 9 / (known pixels under the kernel), zero where
    none is known; returns the updated known mask (1 where any input pixel under the kernel was known)."""

    def __init__(self, c_in: int, c_out: int, up: int = 1, down: int = 1) -> None:
        super().__init__()
        self.conv = MatConv(c_in, c_out, 3, up=up, down=down)

    def forward(self, x: Tensor, known: Tensor | None) -> tuple[Tensor, Tensor | None]:
        x = self.conv(x)
        if known is None:
            return x, None
        covered = F.conv2d(known, known.new_ones(1, 1, 3, 3), stride=self.conv.down, padding=1)
        updated = covered.clamp(0, 1)
        return x * (9 / (covered + 1e-8) * updated), updated


def _to_windows(x: Tensor, size: int) -> Tensor:
    """(B, H, W, C) -> (B * windows, size * size, C), windows in row-major order."""
    b, h, w, c = x.shape
    x = x.view(b, h // size, size, w // size, size, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, size * size, c)


def _from_windows(x: Tensor, size: int, h: int, w: int) -> Tensor:
    """Inverse of ``_to_windows``: (B * windows, size * size, C) -> (B, H, W, C)."""
    c = x.shape[-1]
    x = x.view(-1, h // size, w // size, size, size, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, h, w, c)


def _shift_attention_bias(resolution: int, window: int, shift: int) -> Tensor:
    """Shifted windows: -100 between tokens that came from different regions of the rolled map, else 0;
    (windows, window², window²)."""
    bands = torch.zeros(resolution, dtype=torch.long)
    bands[resolution - window : resolution - shift] = 1
    bands[resolution - shift :] = 2
    region = (bands[:, None] * 3 + bands[None, :]).float()[None, :, :, None]
    ids = _to_windows(region, window)[..., 0]
    return torch.where(ids[:, None, :] != ids[:, :, None], -100.0, 0.0)


class MaskedWindowAttention(nn.Module):
    """Multi-head attention inside a window: queries and keys from L2-normalised tokens, values from the tokens;
    keys of unknown tokens get -100; afterwards a window with any known token is known everywhere."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads, self.scale = heads, (dim // heads) ** -0.5
        self.q, self.k, self.v, self.proj = (MatLinear(dim, dim) for _ in range(4))

    def forward(
        self, x: Tensor, known: Tensor | None, shift_bias: Tensor | None
    ) -> tuple[Tensor, Tensor | None]:
        b, n, c = x.shape
        normed = F.normalize(x, dim=-1)
        q = self.q(normed).view(b, n, self.heads, -1).transpose(1, 2)
        k = self.k(normed).view(b, n, self.heads, -1).permute(0, 2, 3, 1)
        v = self.v(x).view(b, n, self.heads, -1).transpose(1, 2)
        attn = (q @ k) * self.scale
        if shift_bias is not None:
            windows = shift_bias.shape[0]
            attn = (attn.view(-1, windows, self.heads, n, n) + shift_bias[None, :, None]).view(
                b, self.heads, n, n
            )
        if known is not None:
            key_known = known[:, None, None, :, 0]
            attn = attn + key_known.masked_fill(key_known == 0, -100.0).masked_fill(key_known == 1, 0.0)
            known = known.sum(dim=1, keepdim=True).clamp(0, 1).expand(b, n, 1)
        x = (attn.softmax(dim=-1) @ v).transpose(1, 2).reshape(b, n, c)
        return self.proj(x), known


class SwinBlock(nn.Module):
    """MAT's SwinTransformerBlock: (shifted) window attention, then fuse(cat(input, attention)) with lrelu and
    an MLP (ratio 2, lrelu); no layer norms and no residual around the MLP (drop path is inactive at inference)."""

    def __init__(self, dim: int, resolution: int, heads: int, window: int, shift: int) -> None:
        super().__init__()
        if resolution <= window:  # the whole map is one window, nothing to shift
            window, shift = resolution, 0
        self.window, self.shift = window, shift
        self.attn = MaskedWindowAttention(dim, heads)
        self.fuse = MatLinear(2 * dim, dim, act=True)
        self.mlp = nn.Sequential(MatLinear(dim, 2 * dim, act=True), MatLinear(2 * dim, dim))
        bias = _shift_attention_bias(resolution, window, shift) if shift else None
        self.register_buffer("shift_bias", bias, persistent=False)

    def forward(self, x: Tensor, size: int, known: Tensor | None) -> tuple[Tensor, Tensor | None]:
        b, _, c = x.shape
        grid = x.view(b, size, size, c)
        mask = known.view(b, size, size, 1) if known is not None else None
        if self.shift:
            grid = torch.roll(grid, (-self.shift, -self.shift), (1, 2))
            mask = torch.roll(mask, (-self.shift, -self.shift), (1, 2)) if mask is not None else None
        attended, mask = self.attn(
            _to_windows(grid, self.window),
            _to_windows(mask, self.window) if mask is not None else None,
            self.shift_bias,
        )
        grid = _from_windows(attended, self.window, size, size)
        mask = _from_windows(mask, self.window, size, size) if mask is not None else None
        if self.shift:
            grid = torch.roll(grid, (self.shift, self.shift), (1, 2))
            mask = torch.roll(mask, (self.shift, self.shift), (1, 2)) if mask is not None else None
        x = self.mlp(self.fuse(torch.cat([x, grid.reshape(b, -1, c)], dim=-1)))
        return x, mask.reshape(b, -1, 1) if mask is not None else None


def _to_map(tokens: Tensor, size: int) -> Tensor:
    return tokens.transpose(1, 2).reshape(tokens.shape[0], -1, size, size)


def _to_tokens(x: Tensor) -> Tensor:
    return x.flatten(2).transpose(1, 2)


class TransformerStage(nn.Module):
    """BasicLayer: optional 2x resampling (partial 3x3 convolution), ``depth`` blocks alternating plain and
    half-shifted windows, a partial 3x3 convolution, and a residual from after the resampling."""

    def __init__(self, dim: int, resolution: int, depth: int, heads: int, window: int, scale: float) -> None:
        super().__init__()
        self.scale = scale
        self.resample = (
            None
            if scale == 1
            else PartialConv(dim, dim, down=2)
            if scale < 1
            else PartialConv(dim, dim, up=2)
        )
        self.blocks = nn.ModuleList(
            SwinBlock(dim, resolution, heads, window, 0 if i % 2 == 0 else window // 2) for i in range(depth)
        )
        self.conv = PartialConv(dim, dim)

    def forward(self, x: Tensor, size: int, known: Tensor | None) -> tuple[Tensor, int, Tensor | None]:
        if self.resample is not None:
            x, known = self.resample(_to_map(x, size), _to_map(known, size) if known is not None else None)
            size = int(size * self.scale)
            x, known = _to_tokens(x), _to_tokens(known) if known is not None else None
        identity = x
        for block in self.blocks:
            x, known = block(x, size, known)
        x, known = self.conv(_to_map(x, size), _to_map(known, size) if known is not None else None)
        return _to_tokens(x) + identity, size, _to_tokens(known) if known is not None else None


class ModulatedConv(nn.Module):
    """ModulatedConv2d: per-sample input-channel scales from an affine map of the style (bias 1), optional
    demodulation, grouped over the batch; optional 2x upsampling."""

    def __init__(
        self, c_in: int, c_out: int, kernel: int, style_dim: int, demodulate: bool = True, up: int = 1
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(1, c_out, c_in, kernel, kernel))
        self.affine = MatLinear(style_dim, c_in, bias_init=1.0)
        self.gain, self.demodulate, self.up = 1 / math.sqrt(c_in * kernel**2), demodulate, up
        self.register_buffer("fir", _binomial(1, 1.0), persistent=False)

    def forward(self, x: Tensor, style: Tensor) -> Tensor:
        b, c, h, w = x.shape
        weight = self.weight * self.gain * self.affine(style).view(b, 1, c, 1, 1)
        if self.demodulate:
            weight = weight * (weight.square().sum(dim=[2, 3, 4], keepdim=True) + 1e-8).rsqrt()
        out = _conv_resample(x.reshape(1, b * c, h, w), weight.flatten(0, 1), self.fir, up=self.up, groups=b)
        return out.view(b, -1, *out.shape[2:])


class StyleConv(nn.Module):
    """StyleConv: modulated 3x3 convolution, constant noise (noise_mode="const") times a learnt strength,
    bias, lrelu."""

    def __init__(self, c_in: int, c_out: int, style_dim: int, resolution: int, up: int = 1, noise: bool = True) -> None:  # fmt: skip
        super().__init__()
        self.conv = ModulatedConv(c_in, c_out, 3, style_dim, up=up)
        if noise:
            self.register_buffer("noise_const", torch.randn(resolution, resolution))
            self.noise_strength = nn.Parameter(torch.zeros([]))
        else:
            self.noise_const = None
        self.bias = nn.Parameter(torch.zeros(c_out))

    def forward(self, x: Tensor, style: Tensor) -> Tensor:
        x = self.conv(x, style)
        if self.noise_const is not None:
            x = x + self.noise_const * self.noise_strength
        return _lrelu(x + self.bias[:, None, None])


class ToRGB(nn.Module):
    """ToRGB: modulated 1x1 convolution without demodulation, bias, plus the previous picture upsampled 2x."""

    def __init__(self, c_in: int, style_dim: int) -> None:
        super().__init__()
        self.conv = ModulatedConv(c_in, 3, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(3))

    def forward(self, x: Tensor, style: Tensor, previous: Tensor | None) -> Tensor:
        rgb = self.conv(x, style) + self.bias[:, None, None]
        if previous is None:
            return rgb
        return rgb + _fir(previous, self.conv.fir, (2, 1), gain=4.0, up=2)


class StyleUpBlock(nn.Module):
    """DecStyleBlock / DecBlock: 2x up style convolution, + encoder skip, style convolution, ToRGB."""

    def __init__(self, c_in: int, c_out: int, style_dim: int, resolution: int, noise: bool) -> None:
        super().__init__()
        self.conv0 = StyleConv(c_in, c_out, style_dim, resolution, up=2, noise=noise)
        self.conv1 = StyleConv(c_out, c_out, style_dim, resolution, noise=noise)
        self.to_rgb = ToRGB(c_out, style_dim)

    def forward(self, x: Tensor, rgb: Tensor | None, style: Tensor, skip: Tensor) -> tuple[Tensor, Tensor]:
        x = self.conv1(self.conv0(x, style) + skip, style)
        return x, self.to_rgb(x, style, rgb)


def _noise_blend(x: Tensor, noise: Tensor) -> Tensor:
    """MAT's feature dropout, on also at inference: each element keeps ``x`` or takes ``noise``, 1/2 each."""
    keep = F.dropout(torch.full_like(x, 0.5), p=0.5, training=True)
    return x * keep + noise * (1 - keep)


class MatMapping(nn.Module):
    """MappingNet (z_dim 512, no label): normalise z, 8 lrelu layers at learning-rate multiplier 0.01. MAT
    broadcasts this one w to all its style slots and truncation_psi = 1 leaves it as it is, so one w is
    returned."""

    def __init__(self, z_dim: int = 512, w_dim: int = 512, layers: int = 8) -> None:
        super().__init__()
        widths = [z_dim] + [w_dim] * layers
        self.layers = nn.Sequential(
            *(MatLinear(a, b, act=True, lr_multiplier=0.01) for a, b in zip(widths, widths[1:], strict=False))
        )
        self.register_buffer("w_avg", torch.zeros(w_dim))  # truncation centre; unused at psi = 1

    def forward(self, z: Tensor) -> Tensor:
        return self.layers(z * (z.square().mean(dim=1, keepdim=True) + 1e-8).rsqrt())


class MatFirstStage(nn.Module):
    """FirstStage (dim 180): partial convolutions down to 64x64, five transformer stages 64-32-16-32-64
    (depths 2, 3, 4, 3, 2; windows 8, 16, 16, 16, 8; 6 heads; the known mask is followed in the first two),
    a global style from the 16x16 tokens and w, and a style-modulated decoder back to full size."""

    def __init__(self, resolution: int, w_dim: int = 512, dim: int = 180) -> None:
        super().__init__()
        downs = int(math.log2(resolution // 64))
        self.conv_first = PartialConv(4, dim)
        self.enc_conv = nn.ModuleList(PartialConv(dim, dim, down=2) for _ in range(downs))
        self.stages, res = nn.ModuleList(), 64
        for depth, scale, window in zip(
            (2, 3, 4, 3, 2), (1, 0.5, 0.5, 2, 2), (8, 16, 16, 16, 8), strict=True
        ):
            res = int(res * scale)
            self.stages.append(TransformerStage(dim, res, depth, 6, window, scale))
        self.down_conv = nn.Sequential(
            *(MatConv(dim, dim, down=2) for _ in range(4)), nn.AdaptiveAvgPool2d(1)
        )
        self.to_style = MatLinear(dim, 2 * dim, act=True)
        self.ws_style = MatLinear(w_dim, dim, act=True)
        self.to_square = MatLinear(dim, 16 * 16, act=True)
        self.dec_conv = nn.ModuleList(
            StyleUpBlock(dim, dim, 3 * dim, 64 * 2 ** (i + 1), noise=False) for i in range(downs)
        )

    def forward(self, image: Tensor, known: Tensor, w: Tensor) -> Tensor:
        x, mask = self.conv_first(torch.cat([known - 0.5, image * known], dim=1), known)
        skips = [x]
        for i, conv in enumerate(self.enc_conv):
            x, mask = conv(x, mask)
            if i < len(self.enc_conv) - 1:
                skips.append(x)
        size, x, mask = x.shape[-1], _to_tokens(x), _to_tokens(mask)
        middle = len(self.stages) // 2
        for i, stage in enumerate(self.stages):
            x, size, mask = stage(x, size, mask if i < middle else None)
            if i < middle:
                skips.append(x)
            elif i > middle:
                x = x + skips[middle - i]
            else:
                w_style = self.ws_style(w)
                square = F.interpolate(self.to_square(w_style)[:, None], size=x.shape[1], mode="linear")
                x = _noise_blend(x, square[:, 0, :, None])
                global_style = self.to_style(self.down_conv(_to_map(x, size)).flatten(1))
                style = torch.cat([global_style, w_style], dim=1)
        x, rgb = _to_map(x, size), None
        for i, block in enumerate(self.dec_conv):
            x, rgb = block(x, rgb, style, skips[len(self.dec_conv) - i - 1])
        return rgb * (1 - known) + image * known


class MatRefinement(nn.Module):
    """The second stage of SynthesisNet: a convolutional encoder (full size to 16x16, channels
    min(32768 / resolution, 512)) of the first stage's composite, a global style from 16x16, and a
    style-modulated decoder (constant noise) back to full size with the encoder features as skips."""

    def __init__(self, resolution: int, w_dim: int = 512) -> None:
        super().__init__()
        levels = int(math.log2(resolution))
        self.from_rgb = nn.Sequential(MatConv(7, _channels(resolution), 1), MatConv(_channels(resolution), _channels(resolution)))  # fmt: skip
        self.enc = nn.ModuleList(
            nn.Sequential(
                MatConv(_channels(2 * r), _channels(r), down=2), MatConv(_channels(r), _channels(r))
            )
            for r in (2**i for i in range(levels - 1, 3, -1))
        )
        self.to_square = MatLinear(w_dim, 16 * 16, act=True)
        self.to_style_conv = nn.Sequential(
            *(MatConv(512, 512, down=2) for _ in range(3)), nn.AdaptiveAvgPool2d(1)
        )
        self.to_style = MatLinear(512, 1024, act=True)
        style_dim = w_dim + 1024
        self.first_conv = MatConv(512, 512)
        self.first_style_conv = StyleConv(512, 512, style_dim, 16)
        self.first_rgb = ToRGB(512, style_dim)
        self.dec = nn.ModuleList(
            StyleUpBlock(_channels(r // 2), _channels(r), style_dim, r, noise=True)
            for r in (2**i for i in range(5, levels + 1))
        )

    def forward(self, image: Tensor, known: Tensor, coarse: Tensor, w: Tensor) -> Tensor:
        x = torch.cat([known - 0.5, image * known + coarse * (1 - known), image * known], dim=1)
        features = [self.from_rgb(x)]
        for block in self.enc:
            features.append(block(features[-1]))
        square = F.interpolate(
            self.to_square(w).view(-1, 1, 16, 16), size=features[-1].shape[-2:], mode="bilinear"
        )
        x = features[-1] = _noise_blend(features[-1], square)
        style = torch.cat([w, self.to_style(self.to_style_conv(x).flatten(1))], dim=1)
        x = self.first_style_conv(self.first_conv(x) + x, style)
        rgb = self.first_rgb(x, style, None)
        for block, skip in zip(self.dec, reversed(features[:-1]), strict=True):
            x, rgb = block(x, rgb, style, skip)
        return rgb * (1 - known) + image * known


class MAT(nn.Module):
    """MAT's Generator(z_dim=512, c_dim=0, w_dim=512, img_resolution): (image in [-1, 1] (N, 3, R, R), known
    mask (N, 1, R, R), z (N, 512)) -> completed image (N, 3, R, R), known pixels kept; R a power of two >= 128."""

    def __init__(self, resolution: int = 512, z_dim: int = 512, w_dim: int = 512) -> None:
        super().__init__()
        if resolution < 128 or 2 ** int(math.log2(resolution)) != resolution:
            raise ValueError(f"resolution must be a power of two >= 128, got {resolution}")
        self.z_dim = z_dim
        self.mapping = MatMapping(z_dim, w_dim)
        self.first_stage = MatFirstStage(resolution, w_dim)
        self.refinement = MatRefinement(resolution, w_dim)

    def forward(self, image: Tensor, known: Tensor, z: Tensor) -> Tensor:
        w = self.mapping(z)
        return self.refinement(image, known, self.first_stage(image, known, w), w)


def mat_input(rgb: Tensor, hole: Tensor) -> tuple[Tensor, Tensor]:
    """MAT's inputs (generate_image.py): the picture in [-1, 1] and the known mask (1 = known, 0 = hole)."""
    return rgb * 2 - 1, 1 - hole
