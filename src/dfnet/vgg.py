"""VGG16 feature extractor for the perceptual and style losses, defined here (no torchvision).

The layers follow torchvision's ``vgg16().features`` exactly, so the standard ImageNet weight file
``vgg16-397923af.pth`` (keys ``features.{i}.weight`` / ``features.{i}.bias``) loads unchanged; its
classifier keys and any layer deeper than the ones built are ignored. Only the layers up to pool3
(index 16) are built by default, since DFNet's losses use pool1, pool2 and pool3.

Nothing is downloaded here. The weight file is looked up, in order, at: the path given by the caller
(training config ``vgg.weights``), the ``DFNET_VGG16_WEIGHTS`` environment variable, and torch's hub
cache ``$TORCH_HOME/hub/checkpoints/vgg16-397923af.pth`` (``TORCH_HOME`` defaults to
``$XDG_CACHE_HOME/torch`` or ``~/.cache/torch``), and dfnet's model cache, where ``dfnet models download
vgg16`` puts it (:mod:`dfnet.registry`). Random weights are only used when the caller allows
them explicitly (tests, smoke runs); that is logged as a warning because such losses are meaningless.

Seeded random texture weights (``random:<seed>``, not in the paper). DFNet's style and perceptual
losses need ImageNet VGG16 weights, which cannot always be had. Networks with random, untrained convolutions still carry texture statistics: the Gram matrices of their
rectified feature maps describe a texture well enough to synthesise it (He, Wang & Hopcroft 2016, "A
powerful generative model using random weights for the deep image representation"; Ustyuzhaninov et
al. 2017, "What does it take to generate natural textures?").
:func:`random_texture_vgg16` builds :class:`VGG16Features` with such weights, selected by the weights value ``random:<seed>``
(training config ``vgg.weights: random:0``), as a deliberate, documented option. It is not the
``vgg.allow_random`` fallback, which stays a loudly-warned stand-in for tests and smoke runs.

Initialisation: Kaiming-normal with fan-in mode and ReLU gain, ``w ~ N(0, 2 / (C_in · 3 · 3))``, zero
biases. For any input, a convolution with such weights doubles the mean squared activation in
expectation over the weights, and the ReLU of its sign-symmetric output halves it again, so the
activations keep their scale from layer to layer; the max-pools raise it somewhat. Measured in
tests/test_vgg_random_weights.py (seeds 0-2): the RMS of every ReLU and pool output up to pool3 stays
within 0.7-1.4x the normalised input's on a smooth picture and 0.9-2.5x on a fine noise texture, whose peaks
the max-pools pick. The fan-out He initialisation of the smoke-test fallback
(:meth:`VGG16Features.init_random`) instead shrinks it to 0.08-0.3x, making its Gram matrices some
30x smaller. The weights are drawn from a private CPU generator seeded with ``seed``,
so every process and every run (and every DDP rank) gets the same network without any file.
"""

from __future__ import annotations

import logging
import math
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

log = logging.getLogger(__name__)

VGG16_FILENAME = "vgg16-397923af.pth"
VGG16_ENV = "DFNET_VGG16_WEIGHTS"
# torchvision's configuration "D": conv output channels, "M" = 2x2 max-pool.
VGG16_LAYOUT: tuple[int | str, ...] = (
    *(64, 64, "M"),
    *(128, 128, "M"),
    *(256, 256, 256, "M"),
    *(512, 512, 512, "M"),
    *(512, 512, 512, "M"),
)
# Index in ``features`` of each pooling layer's output.
POOL_INDICES: dict[str, int] = {"pool1": 4, "pool2": 9, "pool3": 16, "pool4": 23, "pool5": 30}
DEFAULT_LAYERS: tuple[str, ...] = ("pool1", "pool2", "pool3")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
RANDOM_SEED = 0


class VGGWeightsError(ValueError):
    """The VGG16 weight file is missing or unusable (one-line, user-facing message)."""


def _build_features(last_index: int) -> nn.Sequential:
    """torchvision's VGG16 ``features`` up to and including ``last_index``."""
    layers: list[nn.Module] = []
    in_channels = 3
    for item in VGG16_LAYOUT:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(in_channels, int(item), kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            in_channels = int(item)
        if len(layers) > last_index:
            break
    return nn.Sequential(*layers[: last_index + 1])


class VGG16Features(nn.Module):
    """Frozen VGG16 returning the named pooling outputs of an RGB image in [0, 1].

    ImageNet mean/std normalisation happens inside (unless ``imagenet_normalize=False``: the released DFNet
    training feeds [0, 1] RGB as is), so callers pass the same images the model sees.
    """

    def __init__(self, layers: Sequence[str] = DEFAULT_LAYERS) -> None:
        super().__init__()
        unknown = [name for name in layers if name not in POOL_INDICES]
        if unknown or not layers:
            raise ValueError(f"VGG16 layers must be among {sorted(POOL_INDICES)}, got {list(layers)}")
        self.layers = tuple(layers)
        self.indices = tuple(POOL_INDICES[name] for name in self.layers)
        self.features = _build_features(max(self.indices))
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> VGG16Features:
        """Always stays in eval mode: it is a fixed feature extractor."""
        return super().train(False)

    def forward(self, image: Tensor, imagenet_normalize: bool = True) -> list[Tensor]:
        """Features at ``self.layers`` (in that order) for ``image`` (N, 3, H, W) in [0, 1]."""
        x = (image - self.mean) / self.std if imagenet_normalize else image
        outputs: dict[int, Tensor] = {}
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in self.indices:
                outputs[index] = x
        return [outputs[i] for i in self.indices]

    def init_random(self, seed: int = RANDOM_SEED) -> None:
        """Deterministic He initialisation (as torchvision does), identical on every process and run."""
        generator = torch.Generator().manual_seed(seed)
        for module in self.features:
            if isinstance(module, nn.Conv2d):
                fan_out = module.out_channels * module.kernel_size[0] * module.kernel_size[1]
                std = (2.0 / fan_out) ** 0.5
                with torch.no_grad():
                    module.weight.copy_(torch.randn(module.weight.shape, generator=generator) * std)
                    module.bias.zero_()

    def load_weights(self, state: Mapping[str, Tensor], source: str) -> None:
        """Load the ``features.*`` entries this network needs; other keys (classifier, deeper layers) are ignored."""
        expected = self.state_dict()
        missing = [k for k in expected if k not in state]
        if missing:
            raise VGGWeightsError(
                f"{source}: not a VGG16 weight file ({len(missing)} of the needed keys missing, first: {missing[0]})"
            )
        for key, value in expected.items():
            if tuple(state[key].shape) != tuple(value.shape):
                raise VGGWeightsError(
                    f"{source}: shape mismatch for {key}: file {tuple(state[key].shape)}, VGG16 {tuple(value.shape)}"
                )
        self.load_state_dict({k: state[k].float() for k in expected})


def torch_hub_checkpoint_dir() -> Path:
    """Where torch keeps downloaded weights: ``$TORCH_HOME/hub/checkpoints``."""
    torch_home = os.environ.get("TORCH_HOME")
    if not torch_home:
        cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        torch_home = os.path.join(cache, "torch")
    return Path(torch_home) / "hub" / "checkpoints"


def find_vgg16_weights(path: str | os.PathLike | None = None) -> Path | None:
    """The VGG16 weight file to use, or None when none exists; an explicit path or env var must exist."""
    for origin, candidate in (("vgg.weights", path), (VGG16_ENV, os.environ.get(VGG16_ENV))):
        if candidate:
            candidate = Path(candidate).expanduser()
            if not candidate.is_file():
                raise VGGWeightsError(f"VGG16 weights not found at {candidate} (given by {origin})")
            return candidate
    default = torch_hub_checkpoint_dir() / VGG16_FILENAME
    if default.is_file():
        return default
    from dfnet.registry import cached_aux_file

    return cached_aux_file("vgg16")  # downloaded by `dfnet models download vgg16`


def read_vgg16_state(path: Path) -> dict[str, Tensor]:
    """Read a VGG16 state dict from a torchvision ``.pth`` (weights_only) or a safetensors file."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as err:  # any unreadable file ends in the same one-line message
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:160]
        raise VGGWeightsError(f"{path}: cannot read VGG16 weights ({first})") from None
    if not isinstance(state, Mapping):
        raise VGGWeightsError(f"{path}: expected a state dict, found {type(state).__name__}")
    return {k.removeprefix("module."): v for k, v in state.items() if isinstance(v, Tensor)}


def missing_weights_message() -> str:
    """The one-line explanation of where the VGG16 weights must go."""
    return (
        f"VGG16 weights ({VGG16_FILENAME}, torchvision's ImageNet VGG16) are needed for the perceptual and "
        "style losses: run `dfnet models download vgg16`, or put the file at "
        f"{torch_hub_checkpoint_dir() / VGG16_FILENAME}, or set {VGG16_ENV} "
        "or the config value vgg.weights to its path (vgg.allow_random=true trains with random VGG "
        "weights, for tests only)"
    )


RANDOM_WEIGHTS_PREFIX = "random:"


def random_weights_seed(weights: str | os.PathLike | None) -> int | None:
    """The seed of a ``random:<seed>`` weights value; None for a path or None."""
    if not isinstance(weights, str) or not weights.startswith(RANDOM_WEIGHTS_PREFIX):
        return None
    seed = weights.removeprefix(RANDOM_WEIGHTS_PREFIX).strip()
    if not seed.isdigit():
        raise VGGWeightsError(
            f"VGG16 weights {weights!r}: expected random:<seed>, the seed a whole number >= 0"
        )
    return int(seed)


def init_texture_weights(network: VGG16Features, seed: int) -> None:
    """Kaiming-normal (fan-in, ReLU gain) convolution weights from a generator seeded with ``seed``; zero biases."""
    generator = torch.Generator().manual_seed(seed)
    for module in network.features:
        if isinstance(module, nn.Conv2d):
            fan_in = module.in_channels * module.kernel_size[0] * module.kernel_size[1]
            weight = torch.randn(module.weight.shape, generator=generator) * math.sqrt(2.0 / fan_in)
            with torch.no_grad():
                module.weight.copy_(weight)
                module.bias.zero_()


def random_texture_vgg16(seed: int = 0, layers: Sequence[str] = DEFAULT_LAYERS) -> VGG16Features:
    """A frozen VGG16 with seeded random texture weights (see the module docstring), identical for a given seed."""
    network = VGG16Features(layers)
    init_texture_weights(network, seed)
    log.info("VGG16 with random texture weights (seed %d): a weights-free texture statistic", seed)
    return network


def load_vgg16_features(
    weights: str | os.PathLike | None = None,
    allow_random: bool = False,
    layers: Sequence[str] = DEFAULT_LAYERS,
) -> VGG16Features:
    """A frozen VGG16 with ImageNet weights from a local file, or random weights if explicitly allowed.

    ``weights = "random:<seed>"`` asks for seeded random texture weights instead (:func:`random_texture_vgg16`).
    """
    seed = random_weights_seed(weights)
    if seed is not None:
        return random_texture_vgg16(seed, layers)
    network = VGG16Features(layers)
    path = find_vgg16_weights(weights)
    if path is not None:
        network.load_weights(read_vgg16_state(path), str(path))
        log.info("VGG16 weights loaded from %s", path)
        return network
    if not allow_random:
        raise VGGWeightsError(
            f"{missing_weights_message()}; or, without that file, vgg.weights=random:<seed> for the "
            "seeded random texture weights"
        )
    message = (
        "VGG16 WEIGHTS NOT FOUND: using RANDOM VGG16 weights because vgg.allow_random is set. The perceptual "
        "and style losses are meaningless; use this for tests and smoke runs only."
    )
    log.warning("!" * 20 + " " + message + " " + "!" * 20)
    warnings.warn(message, stacklevel=2)
    network.init_random()
    return network


__all__ = [
    "DEFAULT_LAYERS",
    "RANDOM_WEIGHTS_PREFIX",
    "POOL_INDICES",
    "VGG16Features",
    "VGG16_ENV",
    "VGG16_FILENAME",
    "VGGWeightsError",
    "find_vgg16_weights",
    "init_texture_weights",
    "load_vgg16_features",
    "random_texture_vgg16",
    "random_weights_seed",
    "torch_hub_checkpoint_dir",
]
