"""Hole masks, one module per part (this package re-exports their public names): the paper's hole-ratio bins, a free-form stroke generator, mask sets and training mask sources.

Masks are ``bool`` arrays of shape (H, W) with ``True`` = hole (white in files), as everywhere in dfnet.

* :func:`generate_mask` draws one DeepFill v2 style free-form mask (strokes of connected segments with
  alternately reflected turns, round joints, random flips), optionally inside one of the five paper bins.
  Everything random comes from the ``numpy.random.Generator`` passed in; vertices are rounded to whole
  pixels and drawn with OpenCV's integer line/circle rasteriser, so a seed gives the same masks on any
  machine.
* :func:`generate_masks` / :func:`write_mask_set` make a balanced mask set (PNG files + ``index.csv`` with
  columns ``file,hole_ratio,bin``); :func:`read_mask_index` reads one back.
* :class:`MaskSource` is what a training data set draws masks from: :class:`GeneratedMaskSource` (strokes on
  the fly) or :class:`MaskSetSource` (a fixed set with this project's augmentation, or the paper's:
  :func:`paper_augment_mask`), chosen by a :class:`MaskConfig`. The paper's own set is :data:`PAPER_MASK_COUNT` masks drawn with
  :data:`PAPER_STROKES` (``dfnet masks generate --paper``).
"""

from dfnet.masks.augment import (
    MaskAugmentConfig,
    PaperAugmentConfig,
    augment_mask,
    paper_affine,
    paper_augment_mask,
)
from dfnet.masks.bins import (
    ALL_BINS,
    HOLE_RATIO_BINS,
    bin_label,
    bin_of,
    hole_fraction,
    mask_shape,
    parse_bins,
)
from dfnet.masks.mask_sets import (
    INDEX_COLUMNS,
    INDEX_FILE,
    MASK_SUFFIXES,
    MaskRecord,
    MaskSetExistsError,
    PackedMasks,
    bin_counts,
    read_mask_index,
    scan_mask_dir,
    write_mask_index,
    write_mask_set,
)
from dfnet.masks.strokes import (
    PAPER_MASK_COUNT,
    PAPER_STROKES,
    REFERENCE_SIDE,
    GeneratedMask,
    StrokeConfig,
    generate_mask,
    generate_masks,
    mask_rng,
)
from dfnet.masks.training_sources import (
    MASK_SOURCES,
    GeneratedMaskSource,
    MaskAugment,
    MaskConfig,
    MaskSetSource,
    MaskSource,
    build_mask_source,
    sample_hole_ratios,
)

__all__ = [
    "ALL_BINS",
    "GeneratedMask",
    "GeneratedMaskSource",
    "HOLE_RATIO_BINS",
    "INDEX_COLUMNS",
    "INDEX_FILE",
    "MASK_SOURCES",
    "MASK_SUFFIXES",
    "MaskAugment",
    "MaskAugmentConfig",
    "MaskConfig",
    "MaskRecord",
    "MaskSetExistsError",
    "MaskSetSource",
    "MaskSource",
    "PAPER_MASK_COUNT",
    "PAPER_STROKES",
    "PackedMasks",
    "PaperAugmentConfig",
    "REFERENCE_SIDE",
    "StrokeConfig",
    "augment_mask",
    "bin_counts",
    "bin_label",
    "bin_of",
    "build_mask_source",
    "generate_mask",
    "generate_masks",
    "hole_fraction",
    "mask_rng",
    "mask_shape",
    "paper_affine",
    "paper_augment_mask",
    "parse_bins",
    "read_mask_index",
    "sample_hole_ratios",
    "scan_mask_dir",
    "write_mask_index",
    "write_mask_set",
]
