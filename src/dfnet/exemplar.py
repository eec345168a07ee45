"""Exemplar detail: copy fine texture from the photo's own known pixels into a smooth completion.

A network trained for L1 fills a hole with the mean of all plausible textures: the right colours and
structure, but smooth. This module adds the missing fine band back, taken from real pixels of the same
photo (the exemplar idea of Efros & Freeman's image quilting and of PatchMatch, used here for the detail
band only, with the network's completion as the guide):

1. split the completion into a smooth base (Gaussian, ``sigma``) and its detail band (the rest);
2. cover the hole with ``patch``-sized windows every ``stride`` pixels; for each, find the fully known
   window of the photo (top-left every ``candidate_stride`` pixels) whose detail band best matches the
   window's *known* pixels and whose smooth base best matches the completion's (so grass gets grass
   detail, sky gets none, and texture continues across the hole's border);
3. overlap-add the chosen windows' detail bands with Hann weights, normalised so that unrelated textures
   keep their contrast where windows overlap (root of the summed squared weights) and neighbouring windows
   that copy with the same offset (one coherent copy) keep unit gain;
4. add ``strength`` times that detail to the completion in the hole, ramped in over ``feather`` pixels
   from the border (thin holes, where the completion is already close to the truth, get little).

Known pixels are never changed. The result is deterministic (candidate subsampling uses ``seed``).
Trade-off, measured in docs/experiments.md: more ``strength`` gives more natural texture and a higher
gradient ratio, and a higher L1 (an invented texture is never pixel-exact); ``strength=0`` is the
network's own completion.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch import Tensor

from dfnet.strategies import Box, context_window, hole_extent, hole_regions
from dfnet.texture_metrics import LUMA_WEIGHTS

# The guide (smooth base) is compared on a grid of GUIDE_CELL × GUIDE_CELL pixel means inside each window.
GUIDE_CELL = 4
# Largest strength: twice the exemplar's contrast (dfnet.cli.common.TEXTURE_MAX repeats it without torch).
MAX_STRENGTH = 2.0
# Target windows searched per matrix product: bounds memory at (chunk × candidates) floats.
TARGET_CHUNK = 512


@dataclass(frozen=True)
class ExemplarDetail:
    """Options of :func:`add_exemplar_detail` (pixels at the image's own resolution)."""

    strength: float = 1.0  # 0 = off, 1 = the exemplar's full contrast (coherent copies at unit gain)
    sigma: float = 2.0  # detail band: what a Gaussian of this sigma removes
    patch: int = 16  # window side; a multiple of 2 * GUIDE_CELL
    stride: int = 8  # target windows every `stride` px (patch / 2: Hann windows overlap by half)
    candidate_stride: int = 8  # source windows every `candidate_stride` px
    max_candidates: int = 8192  # seeded random subset above this (bounds time on large photos)
    guide_weight: float = 1.0  # weight of the smooth-base match against the known-detail match
    choices: int = 16  # each target starts from a seeded random pick among its best `choices` sources
    coherence: float = 4.0  # propagation bonus per agreeing neighbour, in grey levels (0 = off)
    passes: int = 2  # propagation passes
    refine: int = 4  # each pass also tries the copy moved by this many px up, down, left, right (0 = off)
    feather: float = 8.0  # detail ramps from 0 at the hole's border to full at this distance
    seed: int = 0
    # Detail for each hole region is copied from a square context window around it (context x the region's
    # extent, at least `window` px on a side), so large photos with small holes cost what the holes cost. In
    # a picture no larger than `window` every window is the whole picture (one computation for all holes).
    window: int = 512
    context: float = 2.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.strength <= MAX_STRENGTH:
            raise ValueError(f"exemplar strength must be in [0, {MAX_STRENGTH:g}], got {self.strength}")
        if not 0.0 < self.sigma <= 64.0:
            raise ValueError(f"exemplar sigma must be in (0, 64], got {self.sigma}")
        if self.patch < 2 * GUIDE_CELL or self.patch % (2 * GUIDE_CELL) or self.patch > 256:
            raise ValueError(
                f"exemplar patch must be a multiple of {2 * GUIDE_CELL} up to 256, got {self.patch}"
            )
        for name in ("stride", "candidate_stride", "max_candidates"):
            if getattr(self, name) < 1:
                raise ValueError(f"exemplar {name} must be at least 1, got {getattr(self, name)}")
        if self.stride > self.patch:
            raise ValueError(f"exemplar stride {self.stride} leaves gaps between windows of {self.patch}")
        if not 0.0 <= self.coherence <= 255.0 or not 0 <= self.passes <= 16 or not 1 <= self.choices <= 256:
            raise ValueError(
                "exemplar coherence must be in [0, 255], passes in [0, 16] and choices in [1, 256]"
            )
        if self.guide_weight < 0 or self.feather < 0:
            raise ValueError("exemplar guide_weight and feather must be non-negative")
        if self.window < self.patch or self.context < 1:
            raise ValueError(
                f"exemplar window must be at least the patch ({self.patch}) and context at least 1, "
                f"got {self.window} and {self.context}"
            )


# Named settings for users (``--texture fine|coarse``), measured on 50 held-out pairs (docs/benchmarks.md, "Exemplar
# detail: speed and the coherent-copy gain"), L1 per hole-ratio bin against the network alone: fine copies the band
# under about 2 px (gradient ratio 0.78, detail measure 0.51, L1 +4-8 %); coarse the band under about 4 px as well
# (tree trunks and grass heads instead of grain: gradient ratio 0.90, detail 0.31, L1 +7-13 %; misplaced copies of
# lines show more).
TEXTURE_PRESETS: dict[str, ExemplarDetail] = {
    "fine": ExemplarDetail(),
    "coarse": ExemplarDetail(sigma=4.0),
}


def describe_texture(options: ExemplarDetail | None) -> dict | None:
    """The exemplar-detail settings as a report records them (None = off)."""
    return None if options is None else dataclasses.asdict(options)


def split_detail(image: np.ndarray, sigma: float, overwrite: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(smooth base, detail band) of a float (H, W, C) image: Gaussian blur and image minus blur
    (``overwrite``: the band is written over ``image``, one full-size array fewer)."""
    smooth = cv2.GaussianBlur(image, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    return smooth, np.subtract(image, smooth, out=image if overwrite else None)


def select_pixels(hole_mask: np.ndarray, inside: np.ndarray, outside: np.ndarray) -> np.ndarray:
    """``inside`` where the bool ``hole_mask`` (H, W) is set, else ``outside`` (H, W, C): as ``np.where`` with
    the mask broadcast over channels (for uint8, a copy of ``outside`` written by :func:`write_hole_pixels`)."""
    if inside.dtype != np.uint8 or outside.dtype != np.uint8 or hole_mask.ndim != 2:
        return np.where(hole_mask[..., None], inside, outside)
    result = outside.copy()
    write_hole_pixels(result, hole_mask, inside)
    return result


def write_hole_pixels(out: np.ndarray, hole_mask: np.ndarray, inside: np.ndarray) -> None:
    """Set the pixels of ``out`` (H, W, C) where the bool ``hole_mask`` (H, W) is set to ``inside``'s,
    over the box around the mask's pixels only (a large photo with small holes); uint8 by bit masks (several
    times faster than a boolean index or ``np.copyto`` with a broadcast mask)."""
    extent = hole_extent(hole_mask)
    if extent is None:
        return
    region = (slice(extent[0], extent[1]), slice(extent[2], extent[3]))
    mask, target, source = hole_mask[region], out[region], inside[region]
    if target.dtype != np.uint8 or source.dtype != np.uint8:
        np.copyto(target, source, where=mask[..., None])
        return
    bits = cv2.merge([mask.astype(np.uint8) * np.uint8(255)] * target.shape[-1]).reshape(target.shape)
    target ^= (target ^ source) & bits


def hann_window(side: int) -> np.ndarray:
    """Separable sin² window (side, side); at half overlap its shifted copies sum to 1 along each axis."""
    ramp = np.sin(np.pi * (np.arange(side) + 0.5) / side) ** 2
    return np.outer(ramp, ramp).astype(np.float32)


def window_starts(size: int, patch: int, stride: int) -> np.ndarray:
    """Top-left coordinates every ``stride`` px, plus ``size - patch`` so the last window reaches the edge."""
    starts = np.arange(0, size - patch + 1, stride)
    return starts if starts[-1] == size - patch else np.append(starts, size - patch)


def _window_array(array: np.ndarray, ys: np.ndarray, xs: np.ndarray, patch: int, step: int = 1) -> np.ndarray:
    """The (patch × patch) windows of a (H, W[, C]) array at top-lefts (ys[i], xs[i]), every ``step``-th row
    and column, flattened in (row, column, channel) order: (n, (patch / step)²·C)."""
    height, width = array.shape[:2]
    side = -(-patch // step)  # samples per window side
    strides = array.strides
    view = np.lib.stride_tricks.as_strided(  # (H', W', side, side[, C]): only the samples, in output order
        array,
        (height - patch + 1, width - patch + 1, side, side, *array.shape[2:]),
        (strides[0], strides[1], step * strides[0], step * strides[1], *strides[2:]),
        writeable=False,
    )
    samples = side * side * int(np.prod(array.shape[2:]))  # spelled out: no windows is (0, samples) too
    return view[ys, xs].reshape(len(ys), samples)  # one gather of exactly the samples needed


def _windows(array: np.ndarray, ys: np.ndarray, xs: np.ndarray, patch: int, step: int = 1) -> Tensor:
    """:func:`_window_array` as a torch tensor (for the matrix products of the search)."""
    return torch.from_numpy(_window_array(array, ys, xs, patch, step))


class GuideCells:
    """The smooth base's GUIDE_CELL × GUIDE_CELL means (cell at its top-left), gathered as windows' guides.

    A window's guide is its cells every GUIDE_CELL-th row and column. They are read from a plane per phase
    (top-left modulo GUIDE_CELL) in which a window's row is adjacent floats; a plane is built on first use
    (a sixteenth of the image; windows on the search grid use one or two phases)."""

    def __init__(self, smooth: np.ndarray) -> None:
        self.means = cv2.boxFilter(
            smooth, -1, (GUIDE_CELL, GUIDE_CELL), anchor=(0, 0), borderType=cv2.BORDER_REPLICATE
        )
        self._planes: dict[int, np.ndarray] = {}  # by phase: (y % G) * G + x % G

    def windows(self, ys: np.ndarray, xs: np.ndarray, patch: int) -> np.ndarray:
        """Guides of the (patch × patch) windows at top-lefts (ys, xs): (n, (patch / GUIDE_CELL)² · 3)."""
        ys, xs = np.asarray(ys), np.asarray(xs)
        phases = (ys % GUIDE_CELL) * GUIDE_CELL + xs % GUIDE_CELL
        present = np.unique(phases)
        if len(present) == 1:
            return self._gather(int(present[0]), ys, xs, patch)
        guides = np.empty((len(ys), (patch // GUIDE_CELL) ** 2 * self.means.shape[2]), np.float32)
        for phase in present:
            pick = phases == phase
            guides[pick] = self._gather(int(phase), ys[pick], xs[pick], patch)
        return guides

    def _gather(self, phase: int, ys: np.ndarray, xs: np.ndarray, patch: int) -> np.ndarray:
        if phase not in self._planes:
            row, col = divmod(phase, GUIDE_CELL)
            self._planes[phase] = np.ascontiguousarray(self.means[row::GUIDE_CELL, col::GUIDE_CELL])
        return _window_array(self._planes[phase], ys // GUIDE_CELL, xs // GUIDE_CELL, patch // GUIDE_CELL)


def _hole_in_windows(hole_mask: np.ndarray, patch: int) -> np.ndarray:
    """For every top-left (y, x) with a full window inside the image: does the window hold a hole pixel?"""
    counts = cv2.integral(hole_mask.astype(np.uint8))  # (H+1, W+1)
    inside = (
        counts[patch:, patch:] - counts[:-patch, patch:] - counts[patch:, :-patch] + counts[:-patch, :-patch]
    )
    return inside > 0


def _best_sources(
    target_detail: Tensor,
    target_known: Tensor,
    target_guide: Tensor,
    source_detail: Tensor,
    source_guide: Tensor,
    guide_weight: float,
    choices: int,
    generator: torch.Generator,
) -> Tensor:
    """Per target, a random one of its ``choices`` best sources by masked mean SSD of the detail plus guide
    SSD (a single best would give every similar target the same tile).

    The cost is ranked as one matrix product per group of targets: ||a - b||² = |a|² - 2ab + |b|², with the
    terms that are the same for every source of a target (|a|²) left out, since they do not change its
    ranking. Windows inside the hole have no known pixels: they use the guide's columns alone."""
    scale = guide_weight / target_guide.shape[1]
    centre = source_guide.mean(0)  # distances are shift-invariant; centring keeps float32 sums small
    source_guide, target_guide = source_guide - centre, target_guide - centre
    guide_columns = torch.cat([source_guide, source_guide.square().sum(1, keepdim=True)], 1)
    sources = torch.cat([guide_columns, source_detail.square(), source_detail], 1)  # (S, D)
    border = target_known.sum(1) > 0
    count = target_known[border].sum(1, keepdim=True)
    inner_targets = torch.cat([-2.0 * scale * target_guide, torch.full((len(target_guide), 1), scale)], 1)
    border_targets = torch.cat(
        [inner_targets[border], target_known[border] / count, -2.0 * target_detail[border] / count], 1
    )
    top = torch.empty((len(target_guide), min(choices, len(source_detail))), dtype=torch.int64)
    for rows, weights, columns in (
        (torch.nonzero(~border)[:, 0], inner_targets[~border], guide_columns.T),  # contiguous: faster
        (torch.nonzero(border)[:, 0], border_targets, sources.T),
    ):
        for start in range(0, len(rows), TARGET_CHUNK):
            part = slice(start, start + TARGET_CHUNK)
            top[rows[part]] = _smallest(weights[part] @ columns, top.shape[1])
    best = []
    for start in range(0, len(top), TARGET_CHUNK):  # the same draws as one chunk at a time
        part = top[start : start + TARGET_CHUNK]
        pick = torch.randint(0, part.shape[1], (len(part),), generator=generator)
        best.append(part[torch.arange(len(part)), pick])
    return torch.cat(best)


def _smallest(cost: Tensor, k: int) -> Tensor:
    """Column indices of the ``k`` smallest costs per row, in ascending order (as ``topk``), found among the
    ``k`` column groups with the smallest minima: a group without one of the k smallest has k groups below it."""
    rows, columns = cost.shape
    groups = columns // k
    if groups < 2 * k:
        return cost.topk(min(k, columns), largest=False).indices
    minima = cost[:, : k * groups].view(rows, k, groups).amin(1)  # group g: columns g, g + groups, ...
    best = minima.topk(k, largest=False, sorted=False).indices
    candidates = (best[:, None, :] + groups * torch.arange(k)[:, None]).reshape(rows, -1)
    candidates = torch.cat([candidates, torch.arange(k * groups, columns).expand(rows, -1)], 1)
    return candidates.gather(1, cost.gather(1, candidates).topk(k, largest=False).indices)


@dataclass(frozen=True)
class _TargetWindows:
    """Target windows' known mask, known luma detail and guide, gathered once and scored against many sources."""

    known: np.ndarray
    detail: np.ndarray  # luma detail at the known pixels, 0 in the hole
    guide: np.ndarray
    count: np.ndarray  # known pixels per window

    def __getitem__(self, rows: np.ndarray) -> _TargetWindows:
        return _TargetWindows(self.known[rows], self.detail[rows], self.guide[rows], self.count[rows])


@dataclass(frozen=True)
class _Features:
    """What the cost of copying source window (sy, sx) to target window (ty, tx) is computed from."""

    luma_detail: np.ndarray
    known: np.ndarray
    cells: GuideCells
    hole_at: np.ndarray  # per top-left: does that window hold a hole pixel
    patch: int
    guide_weight: float

    def valid(self, sy: np.ndarray, sx: np.ndarray) -> np.ndarray:
        """Source windows inside the image and free of hole pixels."""
        inside = (sy >= 0) & (sx >= 0) & (sy < self.hole_at.shape[0]) & (sx < self.hole_at.shape[1])
        ok = np.zeros(sy.shape, bool)
        ok[inside] = ~self.hole_at[sy[inside], sx[inside]]
        return ok

    def targets(self, ty: np.ndarray, tx: np.ndarray) -> _TargetWindows:
        """The target side of :meth:`cost` for windows at top-lefts (ty, tx)."""
        known = _window_array(self.known, ty, tx, self.patch)
        detail = _window_array(self.luma_detail, ty, tx, self.patch) * known
        guide = self.cells.windows(ty, tx, self.patch)
        return _TargetWindows(known, detail, guide, known.sum(1))

    def cost(
        self, targets: _TargetWindows, sy: np.ndarray, sx: np.ndarray, rows: np.ndarray | None = None
    ) -> np.ndarray:
        """Pairwise cost (the same as :func:`_best_sources` uses) of each (target ``rows[k]``, source k) pair
        (``rows`` None: target k)."""
        rows = np.arange(len(sy)) if rows is None else rows
        guide = targets.guide[rows]
        guide -= self.cells.windows(sy, sx, self.patch)
        cost = self.guide_weight * np.square(guide, out=guide).mean(1)
        count = targets.count[rows]
        border = np.flatnonzero(count > 0)  # inside the hole the known-detail term is 0: skip its gather
        error = _window_array(self.luma_detail, sy[border], sx[border], self.patch)
        error *= targets.known[rows[border]]
        error -= targets.detail[rows[border]]
        cost[border] += np.square(error, out=error).sum(1) / count[border]
        return cost


NEIGHBOURS = ((-1, 0), (1, 0), (0, -1), (0, 1))


def _propagate(
    features: _Features,
    targets: _TargetWindows,
    grid_y: np.ndarray,
    grid_x: np.ndarray,
    is_target: np.ndarray,
    offsets: np.ndarray,
    options: ExemplarDetail,
) -> np.ndarray:
    """Let target windows take a neighbour's offset (PatchMatch's propagation, red-black order) or move their
    own by ``refine`` px (a local search) when its cost, less a bonus of ``coherence`` grey levels squared per
    agreeing neighbour, is lower: copies come in coherent pieces, not repeated tiles. ``targets``: the windows
    at (grid_y, grid_x)[is_target], in that order."""
    rows, cols = is_target.shape
    bonus = (options.coherence / 255.0) ** 2  # a neighbour that copies the same way is worth this much SSD
    step = options.refine
    jitters = [np.array(j) for j in ((-step, 0), (step, 0), (0, -step), (0, step))] if step else []
    padded_target = np.pad(is_target, 1)
    parity = np.add.outer(np.arange(rows), np.arange(cols)) % 2
    index = np.full(is_target.shape, -1)
    index[is_target] = np.arange(int(is_target.sum()))
    current_cost = features.cost(  # of each target's offset now: kept up to date, never recomputed
        targets, grid_y[is_target] + offsets[is_target, 0], grid_x[is_target] + offsets[is_target, 1]
    )
    for _ in range(options.passes):
        for colour in (0, 1):
            iy, ix = np.nonzero(is_target & (parity == colour))
            if len(iy) == 0:
                continue
            ty, tx = grid_y[iy, ix], grid_x[iy, ix]
            padded = np.pad(offsets, ((1, 1), (1, 1), (0, 0)))
            around = [
                (padded[iy + 1 + dy, ix + 1 + dx], padded_target[iy + 1 + dy, ix + 1 + dx])
                for dy, dx in NEIGHBOURS
            ]
            current = offsets[iy, ix]
            choices = np.stack(
                [current] + [o for o, _ in around] + [current + j for j in jitters]
            )  # (C, n, 2)
            present = np.stack(
                [np.ones(len(iy), bool)] + [p for _, p in around] + [np.ones(len(iy), bool)] * len(jitters)
            )
            key = _offset_key(choices)  # (C, n): compared as one integer per offset
            agree = sum(here[None] & (_offset_key(other)[None] == key) for other, here in around)
            sy, sx = ty[None] + choices[..., 0], tx[None] + choices[..., 1]
            usable = present & features.valid(sy, sx)
            rows = index[iy, ix]
            cost = np.broadcast_to(current_cost[rows], choices.shape[:2]).copy()
            which, row = np.nonzero(usable & (key != key[0][None]))  # a new offset: cost it
            cost[which, row] = features.cost(targets, sy[which, row], sx[which, row], rows[row])
            best = np.argmin(np.where(usable, cost - bonus * agree, np.inf), 0)
            offsets[iy, ix] = choices[best, np.arange(len(iy))]
            current_cost[rows] = cost[best, np.arange(len(iy))]
    return offsets


def _offset_key(offsets: np.ndarray) -> np.ndarray:
    """One int64 per (dy, dx) pair (last axis), equal exactly where the offsets are."""
    return offsets[..., 0] * (1 << 32) + offsets[..., 1]


def _overlap_add(
    detail: np.ndarray,
    sources: tuple[np.ndarray, np.ndarray],
    targets: tuple[np.ndarray, np.ndarray],
    patch: int,
) -> np.ndarray:
    """Sum of Hann-weighted source windows at the targets, normalised so that every copy keeps unit gain.

    Windows that copy with the same offset are one coherent copy (their weights add up to 1 where they
    overlap: its gain must stay 1); copies with different offsets are unrelated (their variances add). So
    each pixel is divided by the root of the sum, over its distinct offsets, of the squared summed weight.
    """
    window = hann_window(patch)
    ty, tx = (np.asarray(a, np.int64) for a in targets)
    copied = _window_array(detail, *sources, patch).reshape(len(ty), patch, patch, detail.shape[2])
    copied *= window[:, :, None]
    total = np.zeros(detail.shape, np.float32)
    _add_at_windows(total, ty, tx, copied)
    power = np.zeros(detail.shape[:2], np.float32)
    _add_at_windows(power, ty, tx, np.square(window))
    _add_coherent_power(power, sources, targets, window)
    # numpy's float32 root and division, correctly rounded: torch's sqrt runs through a vector-math library whose
    # code path can differ between its threads on a process's first call (up to 3e-4 off on part of the picture,
    # a grey level in the result), so the same photo would not always get the same texture
    np.sqrt(np.maximum(power, np.float32(1e-12), out=power), out=power)
    total /= power[:, :, None]
    return total


def _add_at_windows(canvas: np.ndarray, ys: np.ndarray, xs: np.ndarray, values: np.ndarray) -> None:
    """``canvas[y : y + p, x : x + p] += values[k]`` for the (p × p) windows at top-lefts (ys[k], xs[k]), which
    may overlap (``values``: (n, p, p, ...) or one (p, p, ...) for all). Windows whose top-lefts agree modulo p
    never overlap: each such group is one indexed add into a view of the canvas as p × p blocks."""
    per_window = values.ndim > canvas.ndim
    patch = values.shape[1] if per_window else values.shape[0]
    height, width = canvas.shape[:2]
    strides = canvas.strides
    residues = (ys % patch) * patch + xs % patch
    for residue in np.unique(residues):
        pick = residues == residue
        top, left = divmod(int(residue), patch)
        blocks = np.lib.stride_tricks.as_strided(  # [block row, row, block col, col, ...] from (top, left)
            canvas[top:, left:],
            ((height - top) // patch, patch, (width - left) // patch, patch, *canvas.shape[2:]),
            (patch * strides[0], strides[0], patch * strides[1], strides[1], *strides[2:]),
        )
        block_y, block_x = ys[pick] // patch, xs[pick] // patch
        blocks[block_y, :, block_x] += values[pick] if per_window else values


def _add_coherent_power(
    power: np.ndarray,
    sources: tuple[np.ndarray, np.ndarray],
    targets: tuple[np.ndarray, np.ndarray],
    window: np.ndarray,
) -> None:
    """Add 2 w_i w_j over the overlap of every pair of target windows i, j that copy with the same offset:
    (sum of w over a coherent group)^2 = sum of w^2 + the cross terms. ``power``: (H, W)."""
    patch = window.shape[0]
    ty, tx = (np.asarray(a, np.int64) for a in targets)
    offset_y, offset_x = np.asarray(sources[0]) - ty, np.asarray(sources[1]) - tx
    first, second = _overlapping_pairs(ty, tx, patch)
    same = (offset_y[first] == offset_y[second]) & (offset_x[first] == offset_x[second])
    first, second = first[same], second[same]
    dy, dx = ty[second] - ty[first], tx[second] - tx[first]  # dy >= 0
    padded = np.pad(window, patch)  # window j seen from window i's pixels: 0 outside it
    for delta_y, delta_x in set(zip(dy.tolist(), dx.tolist(), strict=True)):
        pick = (dy == delta_y) & (dx == delta_x)
        other = padded[patch - delta_y : 2 * patch - delta_y, patch - delta_x : 2 * patch - delta_x]
        i = first[pick]
        _add_at_windows(power, ty[i], tx[i], 2.0 * window * other)


def _overlapping_pairs(ty: np.ndarray, tx: np.ndarray, patch: int) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (i, j), each pair once, of windows at top-lefts on a grid whose patches overlap."""
    rows, row = np.unique(ty, return_inverse=True)
    cols, col = np.unique(tx, return_inverse=True)
    reach = max(
        int((np.searchsorted(starts, starts + patch) - np.arange(len(starts))).max())
        for starts in (rows, cols)
    )
    at = np.full((len(rows) + reach, len(cols) + 2 * reach), -1)
    at[row, col + reach] = np.arange(len(ty))
    firsts, seconds = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]  # a lone window has no pairs
    for dr in range(reach):
        for dc in range(-reach + 1, reach):
            if dr == 0 and dc <= 0:
                continue
            other = at[row + dr, col + reach + dc]
            keep = other >= 0
            keep[keep] &= (np.abs(ty[other[keep]] - ty[keep]) < patch) & (
                np.abs(tx[other[keep]] - tx[keep]) < patch
            )
            firsts.append(np.flatnonzero(keep))
            seconds.append(other[keep])
    return np.concatenate(firsts), np.concatenate(seconds)


def exemplar_detail_band(
    image: np.ndarray, hole_mask: np.ndarray, completion: np.ndarray, options: ExemplarDetail
) -> np.ndarray | None:
    """The detail band to add in the hole (float32 (H, W, 3), 0 outside it), or None where the photo has
    too little known area (no fully known window) or the image is smaller than one window."""
    height, width = hole_mask.shape
    patch = options.patch
    if height < patch or width < patch or not hole_mask.any():
        return None
    # C order whatever the inputs' layout: gathers from channel-planar arrays are slow
    composite = select_pixels(hole_mask, completion, image).astype(np.float32, order="C")
    composite /= np.float32(255.0)  # in place: every large temporary costs page faults
    smooth, detail = split_detail(composite, options.sigma, overwrite=True)
    luma_detail = detail @ np.asarray(LUMA_WEIGHTS, np.float32)
    cells = GuideCells(smooth)
    hole_at = _hole_in_windows(hole_mask, patch)

    grid_y, grid_x = np.meshgrid(
        window_starts(height, patch, options.stride),
        window_starts(width, patch, options.stride),
        indexing="ij",
    )
    grid_shape = grid_y.shape
    is_target = hole_at[grid_y, grid_x]
    ty, tx = grid_y[is_target], grid_x[is_target]
    sy, sx = np.meshgrid(
        np.arange(0, height - patch + 1, options.candidate_stride),
        np.arange(0, width - patch + 1, options.candidate_stride),
        indexing="ij",
    )
    is_source = ~hole_at[sy, sx]
    sy, sx = sy[is_source], sx[is_source]
    if len(sy) == 0:
        return None
    if len(sy) > options.max_candidates:
        keep = np.random.default_rng(options.seed).choice(len(sy), options.max_candidates, replace=False)
        sy, sx = sy[np.sort(keep)], sx[np.sort(keep)]

    known = (~hole_mask).astype(np.float32)
    features = _Features(luma_detail, known, cells, hole_at, patch, options.guide_weight)
    targets = features.targets(ty, tx)  # gathered once for the search and the propagation
    chosen = _best_sources(
        torch.from_numpy(targets.detail),
        torch.from_numpy(targets.known),
        torch.from_numpy(targets.guide),
        _windows(luma_detail, sy, sx, patch),
        torch.from_numpy(cells.windows(sy, sx, patch)),
        options.guide_weight,
        options.choices,
        torch.Generator().manual_seed(options.seed),
    ).numpy()
    offsets = np.zeros((*grid_shape, 2), np.int64)
    offsets[is_target] = np.stack([sy[chosen] - ty, sx[chosen] - tx], 1)
    offsets = _propagate(features, targets, grid_y, grid_x, is_target, offsets, options)
    oy, ox = offsets[is_target].T
    band = _overlap_add(detail, (ty + oy, tx + ox), (ty, tx), patch)
    band *= border_ramp(hole_mask, options.feather)[..., None]
    return band


def border_ramp(hole_mask: np.ndarray, feather: float) -> np.ndarray:
    """0 outside the hole, distance-to-known / ``feather`` inside, capped at 1 (all ones for feather 0)."""
    if feather <= 0:
        return hole_mask.astype(np.float32)
    distance = cv2.distanceTransform(hole_mask.astype(np.uint8), cv2.DIST_L2, 3)
    return np.clip(distance / np.float32(feather), 0.0, 1.0)


def detail_windows(hole_mask: np.ndarray, options: ExemplarDetail) -> list[tuple[Box, np.ndarray]]:
    """(context window (y0, y1, x0, x1), the hole pixels inside it that take their detail from it) per
    distinct window: one per 8-connected hole region, regions with the same window share it."""
    height, width = hole_mask.shape
    if max(height, width) <= options.window:  # every region's window is the whole picture
        return [((0, height, 0, width), hole_mask.astype(bool, copy=False))] if hole_mask.any() else []
    regions = hole_regions(hole_mask)
    served: dict[Box, list[int]] = {}
    for number, box in enumerate(regions.boxes, start=1):
        served.setdefault(context_window(box, hole_mask.shape, options.context, options.window), []).append(
            number
        )
    return [(window, regions.pixels_of(numbers, window)) for window, numbers in served.items()]


def _add_detail_into(
    result: np.ndarray,
    image: np.ndarray,
    hole_mask: np.ndarray,
    completion: np.ndarray,
    options: ExemplarDetail,
) -> None:
    """Write ``completion`` + exemplar detail into the hole pixels of ``result``, window by window."""
    for (y0, y1, x0, x1), served in detail_windows(hole_mask, options):
        region = (slice(y0, y1), slice(x0, x1))
        band = exemplar_detail_band(image[region], hole_mask[region], completion[region], options)
        if band is None:
            continue
        band *= np.float32(255.0 * options.strength)
        # dense (cheaper than gathering the served pixels); rounded half to even and saturated to uint8
        filled = cv2.add(completion[region], band, dtype=cv2.CV_8U)
        write_hole_pixels(result[region], served, filled)


def add_exemplar_detail(
    image: np.ndarray, hole_mask: np.ndarray, completion: np.ndarray, options: ExemplarDetail | None = None
) -> np.ndarray:
    """Add exemplar detail to a uint8 completion (H, W, 3) of ``image`` with bool ``hole_mask`` (True =
    hole); known pixels come back bit-identical to ``image``. Only the context windows around the holes
    (:func:`detail_windows`) are worked on."""
    if image.shape != completion.shape or image.shape[:2] != hole_mask.shape or image.ndim != 3:
        raise ValueError(
            f"image {image.shape}, completion {completion.shape} and hole mask {hole_mask.shape} must agree"
        )
    return add_exemplar_detail_batch(image[None], hole_mask[None], completion[None], options)[0]


def add_exemplar_detail_batch(
    images: np.ndarray, hole_masks: np.ndarray, completions: np.ndarray, options: ExemplarDetail | None
) -> np.ndarray:
    """:func:`add_exemplar_detail` on each image of uint8 (N, H, W, 3) batches with bool holes (N, H, W)."""
    options = options or ExemplarDetail()
    result = np.empty(images.shape, np.result_type(images, completions))
    for i, hole_mask in enumerate(hole_masks):
        hole_mask = hole_mask.astype(bool, copy=False)
        image, completion = pixel_order(images[i]), pixel_order(completions[i])
        result[i] = image
        write_hole_pixels(result[i], hole_mask, completion)
        if options.strength > 0:
            _add_detail_into(result[i], image, hole_mask, completion, options)
    return result


def pixel_order(image: np.ndarray) -> np.ndarray:
    """A (H, W, C) image in C order (pixels' channels adjacent): every later step reads it that way, and a
    channel-planar view (an (C, H, W) tensor's ``permute(1, 2, 0)``) is interleaved in one fast pass."""
    if image.flags.c_contiguous:
        return image
    planes = [image[..., c] for c in range(image.shape[-1])]
    if image.dtype == np.uint8 and 1 < len(planes) <= 4 and all(p.flags.c_contiguous for p in planes):
        return cv2.merge(planes)
    return np.ascontiguousarray(image)


__all__ = [
    "MAX_STRENGTH",
    "TEXTURE_PRESETS",
    "ExemplarDetail",
    "add_exemplar_detail",
    "add_exemplar_detail_batch",
    "border_ramp",
    "describe_texture",
    "detail_windows",
    "exemplar_detail_band",
    "hann_window",
    "select_pixels",
    "write_hole_pixels",
    "split_detail",
    "window_starts",
]
