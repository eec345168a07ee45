"""Where training masks come from: generated on the fly or drawn from a set, chosen by a :class:`MaskConfig`."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from dfnet.masks.augment import MaskAugmentConfig, PaperAugmentConfig
from dfnet.masks.bins import ALL_BINS, hole_fraction, mask_shape, parse_bins
from dfnet.masks.mask_sets import PackedMasks
from dfnet.masks.strokes import StrokeConfig, generate_mask


@runtime_checkable
class MaskSource(Protocol):
    """Anything that draws a training hole mask of a given (height, width) from a generator."""

    def sample(self, rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
        """A bool (height, width) hole mask."""
        ...


class GeneratedMaskSource:
    """Free-form masks generated on the fly, each in a bin drawn uniformly from ``bins`` (None = unbinned)."""

    def __init__(self, bins: Sequence[int] | None = ALL_BINS, strokes: StrokeConfig | None = None):
        self.bins = parse_bins(bins) if bins is not None else None
        self.strokes = strokes or StrokeConfig()

    def sample(self, rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
        """A fresh free-form mask."""
        target = self.bins[int(rng.integers(0, len(self.bins)))] if self.bins else None
        return generate_mask(size, rng, target, self.strokes)


MaskAugment = MaskAugmentConfig | PaperAugmentConfig


class MaskSetSource:
    """Masks drawn uniformly from a fixed set (the paper: 1000 masks), each augmented when drawn: this
    project's :class:`MaskAugmentConfig` (default) or the paper's :class:`PaperAugmentConfig`."""

    def __init__(self, masks: PackedMasks | Sequence[np.ndarray], augment: MaskAugment | None = None):
        self.masks = masks if isinstance(masks, PackedMasks) else PackedMasks(masks)
        if len(self.masks) == 0:
            raise ValueError("the mask set is empty")
        self.augment = augment or MaskAugmentConfig()

    @classmethod
    def from_dir(cls, path_or_dir: str | os.PathLike, augment: MaskAugment | None = None) -> MaskSetSource:
        """Load a mask set directory (index.csv or plain mask images) at its own resolution."""
        return cls(PackedMasks.from_dir(path_or_dir), augment)

    def sample(self, rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
        """An augmented mask of the set, resized to ``size``."""
        return self.augment.apply(self.masks[int(rng.integers(0, len(self.masks)))], rng, size)


def sample_hole_ratios(
    source: MaskSource, size: int | Sequence[int], draws: int, seed: int = 0
) -> np.ndarray:
    """Hole ratios of ``draws`` masks drawn from ``source`` at ``size`` (one seeded generator): its histogram."""
    rng = np.random.Generator(np.random.PCG64(seed))
    shape = mask_shape(size)
    return np.array([hole_fraction(source.sample(rng, shape).view(np.uint8)) for _ in range(draws)])


MASK_SOURCES = ("generate", "set", "paper_set")


@dataclass
class MaskConfig:
    """Where training masks come from: ``source="generate"`` (on the fly), ``"set"`` (``mask_dir``, this
    project's augmentation ``augment``) or ``"paper_set"`` (``mask_dir``, the paper's ``paper_augment``)."""

    source: str = "generate"
    mask_dir: str | None = (
        None  # a mask set directory (index.csv or mask images) for source="set"/"paper_set"
    )
    bins: tuple[int, ...] | None = ALL_BINS  # bins drawn from when generating (and for generated val sets)
    strokes: StrokeConfig = field(default_factory=StrokeConfig)
    augment: MaskAugmentConfig = field(default_factory=MaskAugmentConfig)
    paper_augment: PaperAugmentConfig = field(default_factory=PaperAugmentConfig)

    def __post_init__(self) -> None:
        if self.source not in MASK_SOURCES:
            raise ValueError(f"mask source must be one of {', '.join(MASK_SOURCES)}, got {self.source!r}")
        if self.source in ("set", "paper_set") and not self.mask_dir:
            raise ValueError(f"mask source {self.source!r} needs mask_dir")
        self.bins = parse_bins(self.bins)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (for YAML/JSON and checkpoints)."""
        return asdict(self)


def build_mask_source(config: MaskConfig) -> MaskSource:
    """The training mask source a :class:`MaskConfig` describes."""
    if config.source in ("set", "paper_set"):
        augment = config.paper_augment if config.source == "paper_set" else config.augment
        return MaskSetSource.from_dir(config.mask_dir, augment)
    return GeneratedMaskSource(config.bins, config.strokes)
