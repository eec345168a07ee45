"""Which image is completed with which mask (:class:`PairPlan`) and loading one pair (:class:`PairDataset`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from dfnet.evaluation.inputs import EvaluationError, MaskEntry, load_eval_image, load_eval_mask
from dfnet.imageio import ImageLoadError

PAIRINGS = ("cycle", "every-bin", "all")


class PairPlan(Sequence):
    """Deterministic (image index, mask index) pairs; computed on demand, never materialised.

    - ``cycle``: image i gets mask i mod M (one pair per image);
    - ``every-bin``: each image once per bin, image i with the (i mod M_b)-th mask of bin b
      (every bin sees every image: N x B pairs, image-major);
    - ``all``: each image with every mask (N x M pairs, image-major).

    Masks outside the paper's bins (empty, or 50 % hole or more) are left out beforehand.
    """

    def __init__(self, num_images: int, masks: Sequence[MaskEntry], pairing: str = "cycle") -> None:
        if pairing not in PAIRINGS:
            raise EvaluationError(f"unknown pairing {pairing!r}; choose from {', '.join(PAIRINGS)}")
        self.num_images, self.pairing = num_images, pairing
        self.usable = [i for i, m in enumerate(masks) if m.bin is not None]
        if not self.usable:
            raise EvaluationError("no mask has a hole ratio inside the paper's bins (0 % < ratio < 50 %)")
        self.by_bin = {}
        for i in self.usable:
            self.by_bin.setdefault(masks[i].bin, []).append(i)
        self.bins = sorted(self.by_bin)

    def __len__(self) -> int:
        per_image = {"cycle": 1, "every-bin": len(self.bins), "all": len(self.usable)}[self.pairing]
        return self.num_images * per_image

    def __getitem__(self, k: int) -> tuple[int, int]:
        if not 0 <= k < len(self):
            raise IndexError(k)
        if self.pairing == "cycle":
            return k, self.usable[k % len(self.usable)]
        if self.pairing == "all":
            return k // len(self.usable), self.usable[k % len(self.usable)]
        image, bin_index = divmod(k, len(self.bins))
        in_bin = self.by_bin[self.bins[bin_index]]
        return image, in_bin[image % len(in_bin)]


class PairDataset(torch.utils.data.Dataset):
    """Loads pair k of a plan: uint8 image (3, S, S), bool hole mask (1, S, S), its bin and index.

    An unreadable image gives ``{"pair": k, "error": message}`` instead; :func:`collate_pairs` sets
    such pairs aside so the run goes on and reports them.
    """

    def __init__(
        self,
        images: Sequence[Path],
        masks: Sequence[MaskEntry],
        plan: PairPlan,
        size: int,
        resize: str = "resize_crop",
        invert_mask: bool = False,
    ) -> None:
        self.images, self.masks, self.plan, self.size = images, masks, plan, size
        self.resize, self.invert_mask = resize, invert_mask

    def __len__(self) -> int:
        return len(self.plan)

    def __getitem__(self, k: int) -> dict:
        image_index, mask_index = self.plan[k]
        try:
            rgb = load_eval_image(self.images[image_index], self.size, self.resize)
            hole = load_eval_mask(self.masks[mask_index].path, self.size, self.resize, self.invert_mask)
        except (ImageLoadError, OSError) as err:
            return {"pair": k, "error": str(err).splitlines()[0]}
        return {
            "image": torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1),
            "hole": torch.from_numpy(hole)[None],
            "bin": self.masks[mask_index].bin,
            "pair": k,
        }

    def pair_name(self, k: int) -> str:
        """A file name stem for pair k: index, image stem and mask stem."""
        image_index, mask_index = self.plan[k]
        return f"{k:06d}_{self.images[image_index].stem}_{self.masks[mask_index].path.stem}"


def collate_pairs(samples: list[dict]) -> dict:
    """Default collation of the readable pairs, plus ``skipped``: the errors of the unreadable ones."""
    readable = [s for s in samples if "error" not in s]
    batch = torch.utils.data.default_collate(readable) if readable else {}
    batch["skipped"] = [s["error"] for s in samples if "error" in s]
    return batch
