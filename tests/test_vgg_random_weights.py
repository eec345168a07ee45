"""The seeded random-weight VGG16: selection by ``random:<seed>``, determinism, activation scale, texture ranking."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dfnet.losses import gram_matrix, l1_loss, style_loss
from dfnet.vgg import (
    VGG16Features,
    VGGWeightsError,
    load_vgg16_features,
    random_texture_vgg16,
    random_weights_seed,
)

pytestmark = pytest.mark.usefixtures("one_thread_per_module")


def oriented_texture(seed: int, size: int = 64, direction: tuple[float, float] = (1.0, 1.0)) -> Tensor:
    """(1, 3, size, size) noise filtered by a Gabor kernel (period 5 px along ``direction``): a stationary texture."""
    noise = torch.randn(3, 1, size, size, generator=torch.Generator().manual_seed(seed))
    y, x = torch.meshgrid(torch.arange(9.0) - 4, torch.arange(9.0) - 4, indexing="ij")
    gabor = torch.cos(2 * math.pi * (direction[0] * x + direction[1] * y) / 5) * torch.exp(-(x**2 + y**2) / 8)
    filtered = F.conv2d(noise, gabor.view(1, 1, 9, 9), padding=4).view(1, 3, size, size)
    return (0.5 + 0.15 * filtered / filtered.std()).clamp(0, 1)


def gaussian_blur(image: Tensor, sigma: float = 1.5) -> Tensor:
    """Separable Gaussian blur (radius 4, reflect padding) of (N, 3, H, W)."""
    offsets = torch.arange(-4.0, 5.0)
    kernel = torch.exp(-(offsets**2) / (2 * sigma**2))
    kernel = (kernel / kernel.sum()).repeat(3, 1, 1, 1)
    padded = F.pad(image, (4, 4, 4, 4), mode="reflect")
    return F.conv2d(F.conv2d(padded, kernel.view(3, 1, 1, 9), groups=3), kernel.view(3, 1, 9, 1), groups=3)


def activation_rms(network: VGG16Features, image: Tensor) -> tuple[float, list[float]]:
    """RMS of the normalised input and of every ReLU and max-pool output up to pool3."""
    x = (image - network.mean) / network.std
    input_rms, rms = x.pow(2).mean().sqrt().item(), []
    with torch.no_grad():
        for layer in network.features:
            x = layer(x)
            if isinstance(layer, nn.ReLU | nn.MaxPool2d):
                rms.append(x.pow(2).mean().sqrt().item())
    return input_rms, rms


@pytest.fixture(scope="module")
def texture_vgg() -> VGG16Features:
    return random_texture_vgg16(0)


# --------------------------------------------------------------------------------------------
# Selection and determinism
# --------------------------------------------------------------------------------------------
def test_random_weights_seed_parsing(tmp_path) -> None:
    assert random_weights_seed("random:7") == 7
    assert random_weights_seed("random: 12") == 12
    assert random_weights_seed(None) is None
    assert random_weights_seed(str(tmp_path / "vgg16.pth")) is None
    assert random_weights_seed(tmp_path / "random:1") is None  # a Path is always a file name
    for bad in ("random:", "random:-1", "random:x", "random:1.5"):
        with pytest.raises(VGGWeightsError, match="random:<seed>"):
            random_weights_seed(bad)


def test_load_vgg16_features_builds_the_seeded_network_without_the_fallback_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the allow_random fallback warns; this deliberate option must not
        network = load_vgg16_features("random:3", layers=("pool1",))
    expected = random_texture_vgg16(3, layers=("pool1",))
    assert network.layers == ("pool1",) and not network.training
    assert all(not p.requires_grad for p in network.parameters())
    state, reference = network.state_dict(), expected.state_dict()
    assert all(torch.equal(state[key], reference[key]) for key in reference)


def test_same_seed_same_features_whatever_the_global_rng(texture_vgg: VGG16Features) -> None:
    image = oriented_texture(0, size=32)
    torch.manual_seed(123)  # the global generator must not matter
    again = random_texture_vgg16(0)
    for a, b in zip(texture_vgg(image), again(image), strict=True):
        assert torch.equal(a, b)
    other = random_texture_vgg16(1)
    assert not torch.equal(texture_vgg(image)[0], other(image)[0])


def test_weights_are_kaiming_fan_in_with_zero_bias(texture_vgg: VGG16Features) -> None:
    convs = [m for m in texture_vgg.features if isinstance(m, nn.Conv2d)]
    assert len(convs) == 7  # conv1_1 .. conv3_3
    for conv in convs:
        expected_std = math.sqrt(2 / (conv.in_channels * 9))
        assert conv.weight.std().item() == pytest.approx(
            expected_std, rel=0.05 if conv.in_channels > 3 else 0.1
        )
        assert conv.weight.mean().abs().item() < 0.1 * expected_std
        assert torch.count_nonzero(conv.bias) == 0


# --------------------------------------------------------------------------------------------
# Activation scale
# --------------------------------------------------------------------------------------------
def test_activations_keep_their_scale_through_pool3(
    texture_vgg: VGG16Features, photo_256: np.ndarray
) -> None:
    """Every ReLU and pool output up to pool3 has an RMS within 0.5-3x the normalised input's, while
    the fan-out fallback init ends below 0.3x at pool3.

    Measured over seeds 0-2: 0.9-2.5x on the texture (the max-pools pick the peaks of its fine detail),
    0.7-1.4x on the smooth photo; the fallback 0.08-0.3x.
    """
    photo = torch.from_numpy(photo_256).permute(2, 0, 1)[None].float().div(255)
    for image in (oriented_texture(0), F.interpolate(photo, size=(64, 64), mode="area")):
        input_rms, rms = activation_rms(texture_vgg, image)
        assert len(rms) == 10  # 7 ReLUs and 3 pools
        ratios = [r / input_rms for r in rms]
        assert min(ratios) > 0.5 and max(ratios) < 3.0, ratios
    fallback = VGG16Features()
    fallback.init_random()
    input_rms, rms = activation_rms(fallback, oriented_texture(0))
    assert rms[-1] / input_rms < 0.3


# --------------------------------------------------------------------------------------------
# Texture statistics
# --------------------------------------------------------------------------------------------
def test_style_loss_of_an_image_with_itself_is_zero(texture_vgg: VGG16Features) -> None:
    features = texture_vgg(oriented_texture(0))
    assert style_loss(features, features).item() == 0
    assert all(gram_matrix(f).abs().sum() > 0 for f in features)


def test_gram_statistics_rank_texture_not_pixels(texture_vgg: VGG16Features) -> None:
    """Another sample of the same texture is pixel-farther than the blurred original, yet much closer in
    Gram statistics; a texture of another orientation is farther still.

    Measured (seed 0, 64x64): pixel L1 0.165 (other sample) vs 0.114 (blurred); style 7.6e-4 vs 1.3e-2.
    """
    original, other_sample = oriented_texture(0), oriented_texture(1)
    blurred = gaussian_blur(original)
    rotated = oriented_texture(2, direction=(1.0, -1.0))
    assert l1_loss(blurred, original) < l1_loss(other_sample, original)
    features = texture_vgg(original)
    same_texture = style_loss(texture_vgg(other_sample), features).item()
    assert 5 * same_texture < style_loss(texture_vgg(blurred), features).item()
    assert 2 * same_texture < style_loss(texture_vgg(rotated), features).item()


@pytest.mark.slow
def test_style_descent_puts_texture_back_into_a_blurred_image(texture_vgg: VGG16Features) -> None:
    """Gradient descent on the random-VGG style loss alone, from the blurred texture towards another
    sample of it, restores high-frequency energy: the signal a smooth hole fill lacks."""
    target_features = [f.detach() for f in texture_vgg(oriented_texture(1, size=32))]
    original = oriented_texture(0, size=32)
    image = gaussian_blur(original).clone().requires_grad_(True)

    def detail(x: Tensor) -> float:
        return (x - gaussian_blur(x)).pow(2).mean().sqrt().item()

    start = detail(image.detach())
    optimizer = torch.optim.Adam([image], lr=0.01)
    for _ in range(40):
        optimizer.zero_grad()
        style_loss(texture_vgg(image), target_features).backward()
        optimizer.step()
    assert detail(image.detach()) > 2 * start
    assert detail(image.detach()) > 0.5 * detail(original)
