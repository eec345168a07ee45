"""A fixed, seeded random-weight VGG16 as a weights-free texture statistic (not in the paper).

DFNet's style and perceptual losses need ImageNet VGG16 weights, which cannot always be had. Networks
with random, untrained convolutions still carry texture statistics: the Gram matrices of their
rectified feature maps describe a texture well enough to synthesise it (He, Wang & Hopcroft 2016, "A
powerful generative model using random weights for the deep image representation"; Ustyuzhaninov et
al. 2017, "What does it take to generate natural textures?"). This module builds the project's
:class:`~dfnet.vgg.VGG16Features` with such weights, selected by the weights value ``random:<seed>``
(training config ``vgg.weights: random:0``), as a deliberate, documented option. It is not the
``vgg.allow_random`` fallback, which stays a loudly-warned stand-in for tests and smoke runs.

Initialisation: Kaiming-normal with fan-in mode and ReLU gain, ``w ~ N(0, 2 / (C_in · 3 · 3))``, zero
biases. For any input, a convolution with such weights doubles the mean squared activation in
expectation over the weights, and the ReLU of its sign-symmetric output halves it again, so the
activations keep their scale from layer to layer; the max-pools raise it somewhat. Measured in
tests/test_random_vgg.py (seeds 0-2): the RMS of every ReLU and pool output up to pool3 stays within
0.7-1.4x the normalised input's on a smooth picture and 0.9-2.5x on a fine noise texture, whose peaks
the max-pools pick. The fan-out He initialisation of the smoke-test fallback
(:meth:`VGG16Features.init_random`) instead shrinks it to 0.08-0.3x, making its Gram matrices some
30x smaller. The weights are drawn from a private CPU generator seeded with ``seed``,
so every process and every run (and every DDP rank) gets the same network without any file.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence

import torch
from torch import nn

from dfnet.vgg import DEFAULT_LAYERS, VGG16Features, VGGWeightsError

log = logging.getLogger(__name__)

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


__all__ = [
    "RANDOM_WEIGHTS_PREFIX",
    "init_texture_weights",
    "random_texture_vgg16",
    "random_weights_seed",
]
