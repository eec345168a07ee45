"""A plain, eager, fp32 DFNet in the *released* layout and conventions.

Written independently of ``dfnet.model`` from the published facts (module names as in
``official-state-dict.txt``, BGR input, mask 1 = known). It serves two purposes:

- tests load released-layout state dicts into it with ``strict=True`` and compare its
  composite with the project's (checkpoint compatibility, colour and mask conventions);
- benchmarks use it as the straightforward baseline that optimised paths are measured against.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PaddedConv(nn.Module):
    """Conv with TF 'same' padding; asymmetric padding lives in a Sequential(pad, conv) as released."""

    def __init__(self, c_in: int, c_out: int, k: int, stride: int) -> None:
        super().__init__()
        total = k - stride
        if total % 2 == 0:
            self.conv = nn.Conv2d(c_in, c_out, k, stride, total // 2)
        else:
            left = total // 2
            self.conv = nn.Sequential(
                nn.ConstantPad2d((left, left + 1, left, left + 1), 0.0), nn.Conv2d(c_in, c_out, k, stride)
            )

    def forward(self, x):
        return self.conv(x)


class Encode(nn.Module):
    def __init__(self, c_in: int, c_out: int, k: int, first: bool) -> None:
        super().__init__()
        layers = [PaddedConv(c_in, c_out, k, 2)]
        if not first:
            layers += [nn.BatchNorm2d(c_out), nn.ReLU()]
        self.encode = nn.Sequential(*layers)

    def forward(self, x):
        return self.encode(x)


class Decode(nn.Module):
    def __init__(self, c_up: int, c_skip: int, c_out: int) -> None:
        super().__init__()
        self.decode = nn.Sequential(
            PaddedConv(c_up + c_skip, c_out, 3, 1), nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2)
        )

    def forward(self, x, skip):
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        return self.decode(torch.cat([x, skip], 1))


class Blend(nn.Module):
    def __init__(self, c_alpha: int) -> None:
        super().__init__()
        self.blend = nn.Sequential(
            PaddedConv(6, 32, 1, 1),
            nn.BatchNorm2d(32),
            nn.LeakyReLU(0.2),
            PaddedConv(32, c_alpha, 3, 1),
            nn.BatchNorm2d(c_alpha),
            nn.LeakyReLU(0.2),
            PaddedConv(c_alpha, c_alpha, 1, 1),
            nn.Sigmoid(),
        )

    def forward(self, x):
        return self.blend(x)


class Fuse(nn.Module):
    def __init__(self, c_feat: int, c_alpha: int) -> None:
        super().__init__()
        self.map2img = nn.Sequential(PaddedConv(c_feat, 3, 1, 1), nn.Sigmoid())
        self.blend = Blend(c_alpha)

    def forward(self, img_miss, feat):
        img = F.interpolate(img_miss, feat.shape[-2:], mode="bilinear", align_corners=False)
        raw = self.map2img(feat)
        alpha = self.blend(torch.cat([img, raw], 1))
        return alpha * raw + (1 - alpha) * img, alpha, raw


class ReferenceDFNet(nn.Module):
    """Released DFNet: forward(img_miss_bgr, known_mask) -> (results, alphas, raws), finest first."""

    def __init__(
        self, kernels=(7, 5, 5, 3, 3, 3, 3, 3), base: int = 64, c_alpha: int = 3, fused=(0, 1, 2, 3, 4, 5)
    ):
        super().__init__()
        self.n = len(kernels)
        outs = [min(base * 2**i, base * 8) for i in range(self.n)]
        c_ins = [4, *outs]
        for i, k in enumerate(kernels):
            setattr(self, f"en_{i}", Encode(c_ins[i], outs[i], k, first=i == 0))
        for i in range(self.n):
            c_up = outs[-1] if i == self.n - 1 else c_ins[i + 1]
            setattr(self, f"de_{i}", Decode(c_up, c_ins[i], c_ins[i]))
        self.fused = tuple(fused)
        for i in self.fused:
            setattr(self, f"fuse_{i}", Fuse(c_ins[i], c_alpha))

    def forward(self, img_miss, mask):
        x = torch.cat([img_miss, mask], 1)
        feats = [x]
        for i in range(self.n):
            x = getattr(self, f"en_{i}")(x)
            feats.append(x)
        results, alphas, raws = [], [], []
        for i in reversed(range(self.n)):
            x = getattr(self, f"de_{i}")(x, feats[i])
            if i in self.fused:
                r, a, w = getattr(self, f"fuse_{i}")(img_miss, x)
                results.append(r)
                alphas.append(a)
                raws.append(w)
        return results[::-1], alphas[::-1], raws[::-1]


def released_test_composite(model: ReferenceDFNet, image_bgr_u8, mask_u8):
    """What the released test script writes: uint8 BGR composite from a uint8 BGR image and a
    uint8 mask (255 = known)."""
    import numpy as np

    img = torch.from_numpy(image_bgr_u8.astype(np.float32) / 255.0).permute(2, 0, 1)[None]
    mask = torch.from_numpy((mask_u8 > 127).astype(np.float32))[None, None]
    img_miss = img * mask
    with torch.no_grad():
        result = model(img_miss, mask)[0][0]
    comp = img * mask + result * (1 - mask)
    out = comp[0].permute(1, 2, 0).numpy() * 255.0
    return out.clip(0, 255).astype(np.uint8)
