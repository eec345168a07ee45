"""The FID InceptionV3: the TensorFlow 2015 Inception network as ported to PyTorch for FID.

FID numbers are only comparable when they come from this exact network: the TF graph
``inception-2015-12-05`` whose weights the FID literature distributes as
``pt_inception-2015-12-05-6726825d.pth``. It differs from the ImageNet InceptionV3 of model zoos in
a few places, all reproduced here:

- 1008 output classes (the unused ``fc`` layer is kept so the weight file loads with its own keys);
- the average pools of the A, C and first E blocks do not count the zero padding
  (``count_include_pad=False``);
- the pool branch of the last E block (``Mixed_7c``) uses max pooling instead of average pooling.

Input handling follows the reference PyTorch port: images in [0, 1] are resized to 299x299 with
bilinear interpolation (``align_corners=False``, no antialiasing), scaled to [-1, 1], and the
features are the 2048-d global average pool in front of ``fc``.

Nothing is downloaded here: :func:`find_fid_weights` looks for the file at a given path, at
``$DFNET_FID_WEIGHTS``, in the torch hub checkpoint cache or in dfnet's model cache (``dfnet models
download fid-inception``), and returns None when it is absent.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dfnet.files import file_sha256

FID_WEIGHTS_NAME = "pt_inception-2015-12-05-6726825d.pth"
FID_WEIGHTS_SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"
FID_WEIGHTS_ENV = "DFNET_FID_WEIGHTS"
FID_INPUT_SIZE = 299
FEATURE_DIM = 2048
NUM_CLASSES = 1008
BN_EPS = 1e-3

Kernel = int | tuple[int, int]


class FIDWeightsError(ValueError):
    """A file that cannot be used as the FID Inception weights (one-line, user-facing message)."""


class BasicConv(nn.Module):
    """Convolution without bias, BatchNorm (eps 1e-3), ReLU: the unit every Inception block is built of."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel: Kernel, stride: int = 1, padding: Kernel = 0
    ):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=BN_EPS)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x)))


def _row(in_channels: int, out_channels: int) -> BasicConv:
    """A 1x7 convolution with 'same' padding."""
    return BasicConv(in_channels, out_channels, (1, 7), padding=(0, 3))


def _column(in_channels: int, out_channels: int) -> BasicConv:
    """A 7x1 convolution with 'same' padding."""
    return BasicConv(in_channels, out_channels, (7, 1), padding=(3, 0))


def _pool_3x3(x: Tensor, kind: str) -> Tensor:
    """The stride-1 3x3 pooling of a pool branch; 'avg' ignores the padding like the TF graph."""
    if kind == "max":
        return F.max_pool2d(x, 3, stride=1, padding=1)
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


class BlockA(nn.Module):
    """Mixed_5b/5c/5d: 1x1, 5x5, double 3x3 and pool branches (35x35 grid)."""

    def __init__(self, in_channels: int, pool_features: int):
        super().__init__()
        self.branch1x1 = BasicConv(in_channels, 64, 1)
        self.branch5x5_1 = BasicConv(in_channels, 48, 1)
        self.branch5x5_2 = BasicConv(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv(in_channels, 64, 1)
        self.branch3x3dbl_2 = BasicConv(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv(96, 96, 3, padding=1)
        self.branch_pool = BasicConv(in_channels, pool_features, 1)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat(
            [
                self.branch1x1(x),
                self.branch5x5_2(self.branch5x5_1(x)),
                self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                self.branch_pool(_pool_3x3(x, "avg")),
            ],
            1,
        )


class BlockB(nn.Module):
    """Mixed_6a: grid reduction 35x35 -> 17x17."""

    def __init__(self, in_channels: int):
        super().__init__()
        self.branch3x3 = BasicConv(in_channels, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv(in_channels, 64, 1)
        self.branch3x3dbl_2 = BasicConv(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv(96, 96, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat(
            [
                self.branch3x3(x),
                self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                F.max_pool2d(x, 3, stride=2),
            ],
            1,
        )


class BlockC(nn.Module):
    """Mixed_6b..6e: factorised 7x7 branches (17x17 grid)."""

    def __init__(self, in_channels: int, channels_7x7: int):
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv(in_channels, 192, 1)
        self.branch7x7_1 = BasicConv(in_channels, c7, 1)
        self.branch7x7_2 = _row(c7, c7)
        self.branch7x7_3 = _column(c7, 192)
        self.branch7x7dbl_1 = BasicConv(in_channels, c7, 1)
        self.branch7x7dbl_2 = _column(c7, c7)
        self.branch7x7dbl_3 = _row(c7, c7)
        self.branch7x7dbl_4 = _column(c7, c7)
        self.branch7x7dbl_5 = _row(c7, 192)
        self.branch_pool = BasicConv(in_channels, 192, 1)

    def forward(self, x: Tensor) -> Tensor:
        single = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        double = self.branch7x7dbl_1(x)
        for layer in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            double = layer(double)
        return torch.cat([self.branch1x1(x), single, double, self.branch_pool(_pool_3x3(x, "avg"))], 1)


class BlockD(nn.Module):
    """Mixed_7a: grid reduction 17x17 -> 8x8."""

    def __init__(self, in_channels: int):
        super().__init__()
        self.branch3x3_1 = BasicConv(in_channels, 192, 1)
        self.branch3x3_2 = BasicConv(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv(in_channels, 192, 1)
        self.branch7x7x3_2 = _row(192, 192)
        self.branch7x7x3_3 = _column(192, 192)
        self.branch7x7x3_4 = BasicConv(192, 192, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        branch7 = x
        for layer in (self.branch7x7x3_1, self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4):
            branch7 = layer(branch7)
        return torch.cat(
            [self.branch3x3_2(self.branch3x3_1(x)), branch7, F.max_pool2d(x, 3, stride=2)],
            1,
        )


class BlockE(nn.Module):
    """Mixed_7b/7c: expanded 3x3 branches (8x8 grid); ``pool`` is 'avg' for 7b and 'max' for 7c."""

    def __init__(self, in_channels: int, pool: str):
        super().__init__()
        self.pool = pool
        self.branch1x1 = BasicConv(in_channels, 320, 1)
        self.branch3x3_1 = BasicConv(in_channels, 384, 1)
        self.branch3x3_2a = BasicConv(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv(in_channels, 448, 1)
        self.branch3x3dbl_2 = BasicConv(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv(in_channels, 192, 1)

    def forward(self, x: Tensor) -> Tensor:
        single = self.branch3x3_1(x)
        double = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        return torch.cat(
            [
                self.branch1x1(x),
                self.branch3x3_2a(single),
                self.branch3x3_2b(single),
                self.branch3x3dbl_3a(double),
                self.branch3x3dbl_3b(double),
                self.branch_pool(_pool_3x3(x, self.pool)),
            ],
            1,
        )


class FIDInceptionV3(nn.Module):
    """The FID feature extractor; attribute names match the keys of the standard weight file."""

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv(80, 192, 3)
        self.Mixed_5b = BlockA(192, pool_features=32)
        self.Mixed_5c = BlockA(256, pool_features=64)
        self.Mixed_5d = BlockA(288, pool_features=64)
        self.Mixed_6a = BlockB(288)
        self.Mixed_6b = BlockC(768, channels_7x7=128)
        self.Mixed_6c = BlockC(768, channels_7x7=160)
        self.Mixed_6d = BlockC(768, channels_7x7=160)
        self.Mixed_6e = BlockC(768, channels_7x7=192)
        self.Mixed_7a = BlockD(768)
        self.Mixed_7b = BlockE(1280, pool="avg")
        self.Mixed_7c = BlockE(2048, pool="max")
        self.fc = nn.Linear(FEATURE_DIM, NUM_CLASSES)

    @staticmethod
    def preprocess(images: Tensor) -> Tensor:
        """uint8 or [0, 1] float (N, 3, H, W) -> 299x299 bilinear, scaled to [-1, 1]."""
        if images.dtype == torch.uint8:
            images = images.float() / 255.0
        images = images.float()
        if images.shape[-2:] != (FID_INPUT_SIZE, FID_INPUT_SIZE):
            size = (FID_INPUT_SIZE, FID_INPUT_SIZE)
            images = F.interpolate(images, size=size, mode="bilinear", align_corners=False)
        return images * 2.0 - 1.0

    def pool_features(self, x: Tensor) -> Tensor:
        """Run the network on preprocessed input up to the 2048-d global average pool."""
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, 3, stride=2)
        for name in ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c"):
            x = getattr(self, f"Mixed_{name}")(x)
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)

    def forward(self, images: Tensor) -> Tensor:
        """FID features (N, 2048) of images given as uint8 or [0, 1] float (N, 3, H, W)."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images must have shape (N, 3, H, W), got {tuple(images.shape)}")
        return self.pool_features(self.preprocess(images))


def _comparable_keys(state: Mapping[str, Tensor]) -> dict[str, tuple[int, ...]]:
    """Keys and shapes that must match, leaving out BatchNorm counters some exports omit."""
    return {k: tuple(v.shape) for k, v in state.items() if not k.endswith("num_batches_tracked")}


def check_fid_state_dict(model: FIDInceptionV3, state: Mapping[str, Tensor], source: str) -> None:
    """Raise FIDWeightsError unless ``state`` has exactly the network's keys and shapes."""
    expected, got = _comparable_keys(model.state_dict()), _comparable_keys(state)
    missing = sorted(set(expected) - set(got))
    unexpected = sorted(set(got) - set(expected))
    wrong = sorted(k for k in set(expected) & set(got) if expected[k] != got[k])
    for problem, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape for", wrong)):
        if keys:
            raise FIDWeightsError(
                f"{source}: not the FID Inception weights ({len(keys)} {problem} keys, e.g. {keys[0]})"
            )


def hub_checkpoint_path() -> Path:
    """Where torch hub would have cached the weight file ($TORCH_HOME/hub/checkpoints/...)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / FID_WEIGHTS_NAME


def find_fid_weights(path: str | os.PathLike | None = None) -> Path | None:
    """The weight file from ``path``, else ``$DFNET_FID_WEIGHTS``, else the hub cache; None when absent.

    A path that is named explicitly (argument or environment variable) but missing is an error,
    so a typo never silently turns FID off.
    """
    for named, origin in ((path, "FID weights"), (os.environ.get(FID_WEIGHTS_ENV) or None, FID_WEIGHTS_ENV)):
        if named is not None:
            named = Path(named).expanduser()
            if not named.is_file():
                raise FileNotFoundError(f"{origin}: {named} does not exist")
            return named
    cached = hub_checkpoint_path()
    if cached.is_file():
        return cached
    from dfnet.registry import cached_aux_file

    return cached_aux_file("fid-inception")  # downloaded by `dfnet models download fid-inception`


def read_fid_state(path: str | os.PathLike) -> Mapping[str, Tensor]:
    """The state dict of a FID weight file (weights-only load), or a one-line FIDWeightsError."""
    try:
        state = torch.load(Path(path), map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file gets the same one-line message
        raise FIDWeightsError(f"{path}: cannot read FID weights ({type(err).__name__})") from err
    if not isinstance(state, Mapping):
        raise FIDWeightsError(f"{path}: not a state dict")
    return state


def load_fid_inception(path: str | os.PathLike, device: str | torch.device = "cpu") -> FIDInceptionV3:
    """Build the FID network and load the weight file (strict key/shape check), in eval mode."""
    path = Path(path)
    state = read_fid_state(path)
    model = FIDInceptionV3()
    check_fid_state_dict(model, state, str(path))
    model.load_state_dict(state, strict=False)  # keys checked above; BN counters may be absent
    if path.name == FID_WEIGHTS_NAME and file_sha256(path) != FID_WEIGHTS_SHA256:
        warnings.warn(
            f"{path}: SHA-256 differs from the published file; FID may not be comparable", stacklevel=2
        )
    return model.to(device).eval()


__all__ = [
    "FEATURE_DIM",
    "FIDInceptionV3",
    "FIDWeightsError",
    "FID_INPUT_SIZE",
    "FID_WEIGHTS_ENV",
    "FID_WEIGHTS_NAME",
    "check_fid_state_dict",
    "find_fid_weights",
    "load_fid_inception",
    "read_fid_state",
]
