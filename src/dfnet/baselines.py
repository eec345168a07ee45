"""Inpainting methods for evaluation: a common interface, DFNet, OpenCV's Telea, Navier-Stokes, shift-map and FSR,
and push-pull.

:data:`METHODS` names them, one registry for :func:`dfnet.evaluation.make_method` and ``dfnet eval --method``.

A method completes a batch of uint8 images (N, 3, H, W) with hole masks (N, 1, H, W) (True = hole)
and returns uint8 composites: every known pixel equals the input's, only hole pixels are new.
"""

from __future__ import annotations

import math
import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from functools import partial

import cv2
import numpy as np
import torch
from torch import Tensor

from dfnet.exemplar import ExemplarDetail, add_exemplar_detail_batch, describe_texture
from dfnet.model import fill_hole

# OpenCV's inpainting neighbourhood radius; 3 px is the value of OpenCV's own examples.
DEFAULT_RADIUS = 3.0


def paste_known_pixels(images: Tensor, completed: Tensor, hole_mask: Tensor) -> Tensor:
    """Composite: hole pixels from ``completed``, known pixels from ``images`` (same dtype)."""
    return torch.where(hole_mask.bool().expand_as(images), completed.to(images.dtype), images)


class InpaintMethod(ABC):
    """Something that fills holes; ``name`` labels its rows in reports."""

    name: str

    @abstractmethod
    def complete(self, images: Tensor, hole_mask: Tensor) -> Tensor:
        """uint8 (N, 3, H, W) + bool (N, 1, H, W) -> uint8 composites (N, 3, H, W), on ``images``' device."""

    def describe(self) -> dict:
        """Settings worth recording in a report."""
        return {"name": self.name}


class ArrayInpaint(InpaintMethod):
    """A method that fills one uint8 (H, W, 3) RGB array at a time (:meth:`complete_array`), on the CPU."""

    @abstractmethod
    def complete_array(self, rgb: np.ndarray, hole_mask: np.ndarray) -> np.ndarray:
        """Inpaint one uint8 (H, W, 3) RGB image with a bool (H, W) hole mask."""

    def complete(self, images: Tensor, hole_mask: Tensor) -> Tensor:
        rgb = images.permute(0, 2, 3, 1).cpu().numpy()
        holes = hole_mask[:, 0].bool().cpu().numpy()
        # an image without a hole is returned as it is (xphoto's shift-map crashes the process on one)
        filled = [
            self.complete_array(img, hole) if hole.any() else img
            for img, hole in zip(rgb, holes, strict=True)
        ]
        out = torch.from_numpy(np.stack(filled)).permute(0, 3, 1, 2).to(images.device)
        return paste_known_pixels(images, out, hole_mask)


class OpenCVInpaint(ArrayInpaint):
    """``cv2.inpaint`` with the Telea (fast marching) or Navier-Stokes algorithm, image by image."""

    ALGORITHMS = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}

    def __init__(
        self, algorithm: str = "telea", radius: float = DEFAULT_RADIUS, name: str | None = None
    ) -> None:
        if algorithm not in self.ALGORITHMS:
            raise ValueError(f"unknown OpenCV algorithm {algorithm!r}; choose from {sorted(self.ALGORITHMS)}")
        self.algorithm, self.radius = algorithm, radius
        self.name = name or algorithm

    def complete_array(self, rgb: np.ndarray, hole_mask: np.ndarray) -> np.ndarray:
        """Inpaint one uint8 (H, W, 3) image; colour order does not matter, channels are filled alike."""
        mask = hole_mask.astype(np.uint8) * 255
        filled = cv2.inpaint(np.ascontiguousarray(rgb), mask, self.radius, self.ALGORITHMS[self.algorithm])
        return np.where(hole_mask[:, :, None], filled, rgb)

    def describe(self) -> dict:
        return {"name": self.name, "algorithm": f"cv2.inpaint {self.algorithm}", "radius": self.radius}


class XPhotoInpaint(ArrayInpaint):
    """OpenCV contrib's texture-synthesising ``cv2.xphoto.inpaint``: shift-map (He & Sun 2012) or FSR.

    FSR (frequency-selective reconstruction, Genser et al. 2018) has a fast and a best mode; the best
    one takes minutes per 512×512 image, so ``dfnet eval`` offers only the fast one (docs/evaluation.md).
    Shift-map is given the image in CIELab, as its documentation asks; FSR in BGR, as its asks.
    Hole pixels are set to 0 first, so nothing of the ground truth can leak into the result.
    """

    # algorithm -> (xphoto constant name, colour conversion to and from the space it works in)
    ALGORITHMS = {
        "shiftmap": ("INPAINT_SHIFTMAP", cv2.COLOR_RGB2Lab, cv2.COLOR_Lab2RGB),
        "fsr-fast": ("INPAINT_FSR_FAST", cv2.COLOR_RGB2BGR, cv2.COLOR_BGR2RGB),
        "fsr-best": ("INPAINT_FSR_BEST", cv2.COLOR_RGB2BGR, cv2.COLOR_BGR2RGB),
    }

    def __init__(self, algorithm: str = "shiftmap", name: str | None = None) -> None:
        if algorithm not in self.ALGORITHMS:
            raise ValueError(f"unknown xphoto algorithm {algorithm!r}; choose from {sorted(self.ALGORITHMS)}")
        self.algorithm = algorithm
        self.name = name or algorithm

    def complete_array(self, rgb: np.ndarray, hole_mask: np.ndarray) -> np.ndarray:
        constant, to_space, from_space = self.ALGORITHMS[self.algorithm]
        source = cv2.cvtColor(np.where(hole_mask[:, :, None], np.uint8(0), rgb), to_space)
        filled = np.zeros_like(source)
        known = (~hole_mask).astype(np.uint8) * 255  # xphoto's mask is non-zero where pixels are valid
        cv2.xphoto.inpaint(source, known, filled, getattr(cv2.xphoto, constant))
        return np.where(hole_mask[:, :, None], cv2.cvtColor(filled, from_space), rgb)

    def describe(self) -> dict:
        return {"name": self.name, "algorithm": f"cv2.xphoto.inpaint {self.ALGORITHMS[self.algorithm][0]}"}


class PushPullInpaint(InpaintMethod):
    """The fill a ``hole_fill="pushpull"`` DFNet starts from (:func:`dfnet.model.fill_hole`), as a method."""

    def __init__(self, ring: bool = False, name: str | None = None) -> None:
        self.ring = ring
        self.name = name or ("ring-pushpull" if ring else "pushpull")

    def complete(self, images: Tensor, hole_mask: Tensor) -> Tensor:
        known_mask = 1.0 - hole_mask.float()
        levels = math.ceil(math.log2(max(images.shape[-2:])))  # down to a single pixel
        filled = fill_hole(images.float() / 255.0 * known_mask, known_mask, levels, self.ring)
        return paste_known_pixels(images, (filled.clamp(0, 1) * 255.0).round(), hole_mask)

    def complete_array(self, rgb: np.ndarray, hole_mask: np.ndarray) -> np.ndarray:
        """Inpaint one uint8 (H, W, 3) image with a bool (H, W) hole mask."""
        images = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None]
        completed = self.complete(images, torch.from_numpy(hole_mask)[None, None])
        return completed[0].permute(1, 2, 0).numpy()

    def describe(self) -> dict:
        return {"name": self.name, "algorithm": "dfnet.model.fill_hole", "ring": self.ring}


class DFNetMethod(InpaintMethod):
    """A DFNet checkpoint (safetensors, project checkpoint or released .pth) as an evaluation method."""

    def __init__(
        self,
        model_path: str | os.PathLike,
        device: torch.device,
        name: str = "dfnet",
        texture: str | float | None = "auto",
    ) -> None:
        from dfnet.checkpoint import load_model
        from dfnet.inference import resolve_source, resolve_texture

        _, path = resolve_source(model_path)  # "default" is the bundled model
        self.name, self.model_path, self.device = name, path, device
        self.model = load_model(path).to(device).eval()
        self.texture = resolve_texture(texture, bundled=str(model_path) == "default")

    @torch.inference_mode()
    def complete(self, images: Tensor, hole_mask: Tensor) -> Tensor:
        image = images.float() / 255.0
        result = self.model.complete(image, hole_mask.float())
        completed = paste_known_pixels(
            images, (result.clamp(0, 1) * 255.0).round().to(torch.uint8), hole_mask
        )
        if self.texture is None:
            return completed
        return _with_exemplar_detail(images, completed, hole_mask, self.texture)

    def describe(self) -> dict:
        return {
            "name": self.name,
            "model": str(self.model_path),
            "config": self.model.config.to_dict(),
            "texture": describe_texture(self.texture),
        }


def _with_exemplar_detail(
    images: Tensor, completed: Tensor, hole_mask: Tensor, options: ExemplarDetail
) -> Tensor:
    """:func:`dfnet.exemplar.add_exemplar_detail_batch` on uint8 (N, 3, H, W) tensors."""
    originals, fills = (t.permute(0, 2, 3, 1).cpu().numpy() for t in (images, completed))
    out = add_exemplar_detail_batch(originals, hole_mask[:, 0].cpu().numpy(), fills, options)
    return torch.from_numpy(out).permute(0, 3, 1, 2).to(completed.device)


# factory(device, model path, report name, DFNet texture option)
MethodFactory = Callable[[torch.device, str | None, str | None, str | float | None], InpaintMethod]

# The classical methods by the name ``dfnet eval --method`` knows them: name -> factory(name=report name).
CLASSICAL_METHODS: dict[str, Callable[..., InpaintMethod]] = {
    "telea": partial(OpenCVInpaint, "telea"),
    "ns": partial(OpenCVInpaint, "ns"),
    "shiftmap": partial(XPhotoInpaint, "shiftmap"),
    "fsr-fast": partial(XPhotoInpaint, "fsr-fast"),
    "pushpull": partial(PushPullInpaint, ring=False),
    "ring-pushpull": partial(PushPullInpaint, ring=True),
}


def _classical(factory: Callable[..., InpaintMethod]) -> MethodFactory:
    """A classical method's factory in the registry's signature (it needs no device or model)."""
    return lambda device, model, name, texture: factory(name=name)


# name -> factory(device, model path, report name): what ``dfnet eval --method`` offers
METHODS: dict[str, MethodFactory] = {
    "dfnet": lambda device, model, name, texture: DFNetMethod(model, device, name or "dfnet", texture),
    **{kind: _classical(factory) for kind, factory in CLASSICAL_METHODS.items()},
}


__all__ = [
    "DEFAULT_RADIUS",
    "METHODS",
    "CLASSICAL_METHODS",
    "ArrayInpaint",
    "DFNetMethod",
    "InpaintMethod",
    "OpenCVInpaint",
    "PushPullInpaint",
    "XPhotoInpaint",
    "paste_known_pixels",
]
