"""Inpainting for people who want results: PIL, numpy or paths in, the same kind out, any size.

``Inpainter`` wraps a DFNet (or an exported ONNX model) with a device and a precision and runs the
any-resolution strategies of :mod:`dfnet.strategies`. Known pixels of every result are
bit-identical to the input, whatever the resolution, strategy, precision or engine.

>>> inpainter = Inpainter.from_pretrained("model.safetensors", device="cpu")
>>> result = inpainter.inpaint("photo.png", "mask.png")            # PIL image
>>> done = inpainter.inpaint(rgb, hole_mask, return_details=True)   # numpy: Completion(result, raw, alpha)
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from dfnet.checkpoint import CheckpointError, load_model, metadata_int
from dfnet.exemplar import (
    MAX_STRENGTH,
    TEXTURE_PRESETS,
    ExemplarDetail,
    add_exemplar_detail_batch,
    describe_texture,
)
from dfnet.imageio import ImageSource, LoadedImage, load_image, load_mask
from dfnet.model import DFNet, composite
from dfnet.optimize import cpu_flags, int8_suited, onnxruntime_available, prepare_for_inference
from dfnet.safe_load import read_json
from dfnet.strategies import Completion, Filled, Network, run_strategy, stack_arrays

DEFAULT_MODEL = Path(__file__).resolve().parent / "weights" / "default.safetensors"
DEFAULT_WORKING_SIZE = 512
# int8: the convolutions quantised for ONNX Runtime (engine="optimized" on CPU only; see resolve_precision)
PRECISIONS = ("auto", "fp32", "fp16", "bf16", "int8")
# torch: the DFNet as trained, eager. optimized: dfnet.optimize.prepare_for_inference (BatchNorm and
# upsampling folded; on CPU ONNX Runtime when installed, on CUDA channels_last); a one-time preparation
# of seconds that pays off in long-lived processes (dfnet serve, folders). onnxruntime: an exported .onnx.
ENGINES = ("torch", "optimized", "onnxruntime")
_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}
# What ``texture`` accepts: "auto" (exemplar detail for the bundled default model only), a preset name of
# dfnet.exemplar.TEXTURE_PRESETS ("fine", "coarse": for any model), a strength (0 = off), an ExemplarDetail,
# or None (off).
TextureOption = str | float | ExemplarDetail | None
_PRESET_NAMES = ", ".join(repr(name) for name in TEXTURE_PRESETS)
TEXTURE_CHOICES = f"'auto', {_PRESET_NAMES}, a strength from 0 to {MAX_STRENGTH:g} or None"
# Per call: True = the model's own ``texture``, False = none, a preset name = that preset (any model).
AddTexture = bool | str


class InpaintCancelled(Exception):
    """An inpaint stopped early because its ``cancel`` event was set (the caller no longer wants it)."""


def check_cancel(cancel: threading.Event | None) -> None:
    """Raise :class:`InpaintCancelled` once ``cancel`` is set: called between network calls and detail steps."""
    if cancel is not None and cancel.is_set():
        raise InpaintCancelled("inpaint cancelled")


def resolve_texture(texture: TextureOption, bundled: bool) -> ExemplarDetail | None:
    """The exemplar detail to add after the network (see :mod:`dfnet.exemplar`), or None.

    "auto" turns it on when ``bundled`` (the model is the bundled default), which was trained for L1 and fills smoothly
    (docs/model-card.md), and off for every other checkpoint (the released paper weights bring their own
    texture, and evaluations of a checkpoint should see that checkpoint alone). A preset name asks for that
    setting whatever the model.
    """
    if texture is None or isinstance(texture, ExemplarDetail):
        return texture
    if isinstance(texture, str):
        if texture == "auto":
            return TEXTURE_PRESETS["fine"] if bundled else None
        if texture in TEXTURE_PRESETS:
            return TEXTURE_PRESETS[texture]
        raise ValueError(f"texture must be {TEXTURE_CHOICES}, got {texture!r}")
    if isinstance(texture, bool) or not isinstance(texture, (int, float)):
        raise ValueError(f"texture must be {TEXTURE_CHOICES}, got {texture!r}")
    return None if texture == 0 else ExemplarDetail(strength=float(texture))


__all__ = [
    "Completion",
    "InpaintCancelled",
    "Inpainter",
    "check_cancel",
    "merge_panels",
    "resolve_device",
    "resolve_precision",
    "resolve_texture",
]


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """'auto' picks CUDA, then MPS, then CPU; others are checked here (ValueError naming the device)
    so that a typo or a missing GPU is a one-line error rather than a failure deep inside torch."""
    if str(device) != "auto":
        return _available_device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _available_device(device: str | torch.device) -> torch.device:
    """``torch.device(device)`` if this machine has it, else a ValueError saying what is missing."""
    try:
        chosen = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"unknown device {str(device)!r} (use auto, cpu, cuda, cuda:N or mps)") from None
    if chosen.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(
                f"device {str(device)!r}: CUDA is not available on this machine (use cpu or auto)"
            )
        if chosen.index is not None and chosen.index >= count:
            raise ValueError(f"device {str(device)!r}: this machine has {count} CUDA device(s)")
    elif chosen.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError(
                f"device {str(device)!r}: MPS is not available on this machine (use cpu or auto)"
            )
    elif chosen.type != "cpu":
        raise ValueError(f"unknown device {str(device)!r} (use auto, cpu, cuda, cuda:N or mps)")
    return chosen


def resolve_precision(precision: str, device: torch.device, optimized: bool = False) -> str:
    """'auto' means fp16 autocast on CUDA; on CPU int8 for the optimized engine where the CPU has fast int8
    (VNNI, AMX or AVX2) and ONNX Runtime is installed, else fp32. Others are checked and kept."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "int8" and (device.type != "cpu" or not optimized):
        raise ValueError("precision int8 needs device='cpu' and engine='optimized'")
    if precision == "auto":
        if device.type == "cuda":
            return "fp16"
        if device.type == "cpu" and optimized and int8_suited(cpu_flags()) and onnxruntime_available():
            return "int8"
        return "fp32"
    return precision


def working_size_of(path: str | os.PathLike) -> int | None:
    """The training resolution recorded in a safetensors file's metadata ('working_size'), if any."""
    if Path(path).suffix != ".safetensors":
        return None
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            value = (f.metadata() or {}).get("working_size")
    except Exception:  # an unreadable file is reported by load_model, not here
        return None
    return None if value is None else metadata_int(value, str(path), "working_size")


def guess_working_size(path: str | os.PathLike) -> int:
    """Recorded working size, else 256 for a CelebA model (by file name) and 512 otherwise."""
    recorded = working_size_of(path)
    if recorded:
        return recorded
    return 256 if "celeba" in Path(path).name.lower() else DEFAULT_WORKING_SIZE


def resolve_source(
    name_or_path: str | os.PathLike, download: bool = False, accept_license: bool = False
) -> tuple[str, Path]:
    """(display name, file) for 'default', a registry name ('places2', ...), an ``hf://`` reference or a path;
    the default model may not be bundled."""
    if str(name_or_path) == "default":
        if not DEFAULT_MODEL.is_file():
            raise CheckpointError(
                "the default model is not bundled with this installation; pass the path of a weights file "
                "(.safetensors, training checkpoint or released .pth)"
            )
        return "default", DEFAULT_MODEL
    from dfnet.registry import resolve_model

    return resolve_model(name_or_path, download=download, accept_license=accept_license)


# ---------------------------------------------------------------------------------------------
# Inputs and outputs of the public API
# ---------------------------------------------------------------------------------------------
def _read_image(image: Any) -> tuple[str, LoadedImage, np.ndarray | None]:
    """(kind, loaded image, numpy alpha to give back) for a PIL image, numpy array, path or file bytes."""
    if isinstance(image, np.ndarray):
        extra = image[:, :, 3].copy() if image.ndim == 3 and image.shape[2] == 4 else None
        return "numpy", load_image(image), extra
    if isinstance(image, Image.Image):
        return "pil", load_image(image), None
    if isinstance(image, (str, os.PathLike, bytes)):
        return "path", load_image(image), None
    raise TypeError(f"image must be a PIL image, a numpy array, a path or bytes, got {type(image).__name__}")


def _read_mask(hole_mask: Any) -> np.ndarray:
    """Hole mask (True = hole) from PIL, numpy (bool, 0/255, or 0/1 uint8) or a path."""
    if not isinstance(hole_mask, (np.ndarray, Image.Image, str, os.PathLike, bytes)):
        raise TypeError(
            f"hole_mask must be a PIL image, a numpy array, a path or bytes, got {type(hole_mask).__name__}"
        )
    return load_mask(hole_mask)


def _check_sizes(rgb: np.ndarray, hole: np.ndarray) -> None:
    if rgb.shape[:2] != hole.shape:
        raise ValueError(
            f"mask size {hole.shape[1]}x{hole.shape[0]} differs from image size {rgb.shape[1]}x{rgb.shape[0]}"
        )


def _as_kind(array: np.ndarray, kind: str, loaded: LoadedImage, extra_alpha: np.ndarray | None) -> Any:
    """Give a uint8 (H, W, 3) result back in the caller's kind, re-attaching any alpha channel."""
    if kind == "numpy":
        return array if extra_alpha is None else np.dstack([array, extra_alpha])
    image = Image.fromarray(array, "RGB")
    if loaded.alpha is not None:
        image.putalpha(Image.fromarray(loaded.alpha, "L"))
    return image


def _details_as_kind(array: np.ndarray | None, kind: str) -> Any:
    if array is None or kind == "numpy":
        return array
    return Image.fromarray(array, "RGB")


def merge_panels(rgb: np.ndarray, hole_mask: np.ndarray, completion: Completion) -> np.ndarray:
    """Input with white holes, raw completion, alpha map and result side by side (uint8 arrays)."""
    holed = np.where(hole_mask[:, :, None], np.uint8(255), rgb)
    panels = [holed, completion.raw, completion.alpha, completion.result]
    return np.concatenate([p for p in panels if p is not None], axis=1)


# ---------------------------------------------------------------------------------------------
# Engines: torch and ONNX Runtime behind the same Network interface
# ---------------------------------------------------------------------------------------------
class _TorchEngine:
    """Runs a DFNet on a device under a precision, in chunks of ``batch_size``."""

    def __init__(self, model: DFNet, device: torch.device, precision: str, optimized: bool = False) -> None:
        self.device = device
        if optimized:  # the prepared model converts layouts and precision itself and returns fp32
            self.model: Any = prepare_for_inference(model, device, precision)  # type: ignore[arg-type]
            self.precision = "fp32"  # what this engine's own autocast uses (none)
        else:
            self.model = model.to(device).eval()
            self.precision = precision

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=_DTYPES[self.precision])

    @torch.inference_mode()
    def __call__(self, images: np.ndarray, holes: np.ndarray, details: bool) -> Filled:
        image = torch.from_numpy(np.ascontiguousarray(images)).to(self.device).permute(0, 3, 1, 2)
        hole = torch.from_numpy(np.ascontiguousarray(holes)).to(self.device)[:, None].float()
        with self._autocast():
            result, alpha, raw = self.model.complete_with_details(image, hole)
        result = composite(image, result.float(), hole)

        def to_numpy(x: torch.Tensor) -> np.ndarray:
            return x.float().expand(-1, 3, -1, -1).permute(0, 2, 3, 1).cpu().numpy()

        if not details:
            return Filled(to_numpy(result))
        return Filled(to_numpy(result), to_numpy(raw), to_numpy(alpha))


class _OnnxEngine:
    """Runs an exported model (see :mod:`dfnet.onnx_export`) with ONNX Runtime on CPU."""

    def __init__(self, path: Path) -> None:
        import onnxruntime as ort

        try:
            self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as err:
            raise CheckpointError(
                f"{path}: not a loadable ONNX model ({str(err).splitlines()[0][:160]})"
            ) from None
        names = [i.name for i in self.session.get_inputs()]
        if names != ["image", "hole_mask"]:
            raise CheckpointError(
                f"{path}: expected inputs (image, hole_mask) from dfnet export, found {names}"
            )
        self.metadata = self.session.get_modelmeta().custom_metadata_map
        self.fixed_size = tuple(self.session.get_inputs()[0].shape[2:4])

    def __call__(self, images: np.ndarray, holes: np.ndarray, details: bool) -> Filled:
        if details:
            raise ValueError(
                "the onnxruntime engine computes only the result; use engine='torch' for raw and alpha"
            )
        if all(isinstance(s, int) for s in self.fixed_size) and images.shape[1:3] != self.fixed_size:
            raise ValueError(
                f"this ONNX model takes only {self.fixed_size[1]}x{self.fixed_size[0]} inputs, not "
                f"{images.shape[2]}x{images.shape[1]}; export it with a dynamic size (the default)"
            )
        feed = {
            "image": np.ascontiguousarray(images.transpose(0, 3, 1, 2), dtype=np.float32),
            "hole_mask": np.ascontiguousarray(holes[:, None], dtype=np.float32),
        }
        (result,) = self.session.run(["result"], feed)
        return Filled(result.transpose(0, 2, 3, 1))


# ---------------------------------------------------------------------------------------------
# The public API
# ---------------------------------------------------------------------------------------------
class Inpainter:
    """A DFNet ready to inpaint images of any size with a named strategy."""

    def __init__(
        self,
        model: DFNet,
        device: str | torch.device = "auto",
        precision: str = "auto",
        *,
        name: str = "model",
        source: str | None = None,
        working_size: int = DEFAULT_WORKING_SIZE,
        batch_size: int = 8,
        optimized: bool = False,
        texture: ExemplarDetail | None = None,
    ) -> None:
        self.device = resolve_device(device)
        self.precision = resolve_precision(precision, self.device, optimized)
        self.model = model
        self.engine = "optimized" if optimized else "torch"
        self.name, self.source = name, source
        self.config = model.config.to_dict()
        self.size_multiple = model.config.size_multiple
        self.working_size = working_size
        self.batch_size = batch_size
        self.texture = texture
        self._run: Any = _TorchEngine(model, self.device, self.precision, optimized)

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike = "default",
        device: str | torch.device = "auto",
        precision: str = "auto",
        engine: str = "torch",
        *,
        working_size: int | None = None,
        batch_size: int = 8,
        texture: TextureOption = "auto",
        download: bool = False,
        accept_license: bool = False,
    ) -> Inpainter:
        """Load "default" (the bundled model), a downloaded registry model ("places2", "celeba"; fetched
        first only with ``download=True``), ``hf://OWNER/REPO[/FILE][@REV]``, a .safetensors, a training
        checkpoint, a released .pth or, with ``engine="onnxruntime"``, an exported .onnx file;
        ``engine="optimized"`` prepares the weights for speed first (see ``ENGINES``); ``texture`` as in
        :func:`resolve_texture`."""
        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
        name, path = resolve_source(name_or_path, download=download, accept_license=accept_license)
        detail = resolve_texture(texture, bundled=str(name_or_path) == "default")
        if engine == "onnxruntime":
            self = cls._from_onnx(name, path, device, precision, working_size, batch_size)
            self.texture = detail
            return self
        if path.suffix == ".onnx":
            raise CheckpointError(f"{path}: ONNX models run with engine='onnxruntime' (--engine onnxruntime)")
        model = load_model(path)
        size = working_size or guess_working_size(path)
        return cls(
            model,
            device,
            precision,
            name=name,
            source=str(path),
            working_size=size,
            batch_size=batch_size,
            optimized=engine == "optimized",
            texture=detail,
        )

    @classmethod
    def _from_onnx(
        cls, name: str, path: Path, device: Any, precision: str, working_size: int | None, batch_size: int
    ) -> Inpainter:
        if str(device) not in ("auto", "cpu"):
            raise ValueError(f"the onnxruntime engine runs on the CPU only, got device={device!r}")
        if precision not in ("auto", "fp32"):
            raise ValueError(f"the onnxruntime engine runs in fp32 only, got precision={precision!r}")
        if not path.is_file():
            raise CheckpointError(f"{path}: no such ONNX file")
        if path.suffix != ".onnx":
            raise CheckpointError(
                f"{path}: engine='onnxruntime' runs an exported .onnx file (see dfnet export)"
            )
        engine = _OnnxEngine(path)
        meta = engine.metadata
        self = cls.__new__(cls)  # no torch model: the attributes __init__ would set, from the ONNX metadata
        self.device, self.precision = torch.device("cpu"), "fp32"
        self.model, self.engine = None, "onnxruntime"
        self.name, self.source = name, str(path)
        self.config = read_json(
            meta.get("config", "{}"), f"{path}: invalid DFNet config in metadata field 'config'"
        )
        self.size_multiple = metadata_int(meta.get("size_multiple", 256), str(path), "size_multiple")
        stored_size = meta.get("working_size", DEFAULT_WORKING_SIZE)
        self.working_size = working_size or metadata_int(stored_size, str(path), "working_size")
        self.batch_size = batch_size
        self.texture = None
        self._run = engine
        return self

    def describe(self) -> dict:
        """What runs: name, source file, architecture, device, precision, engine and sizes (for GET /api/model)."""
        return {
            "name": self.name,
            "source": self.source,
            "config": self.config,
            "device": str(self.device),
            "precision": self.precision,
            "engine": self.engine,
            "working_size": self.working_size,
            "size_multiple": self.size_multiple,
            "texture": describe_texture(self.texture),
        }

    def network(self, batch_size: int | None = None, cancel: threading.Event | None = None) -> Network:
        """The strategies' view of this model: a chunked completion function plus its sizes; each chunk
        first checks ``cancel`` (so a crop strategy stops between windows)."""
        chunk = max(1, batch_size or self.batch_size)

        def run_chunk(images: np.ndarray, holes: np.ndarray, details: bool) -> Filled:
            check_cancel(cancel)
            return self._run(images, holes, details)

        def run(images: np.ndarray, holes: np.ndarray, details: bool) -> Filled:
            parts = [
                run_chunk(images[i : i + chunk], holes[i : i + chunk], details)
                for i in range(0, len(images), chunk)
            ]
            if len(parts) == 1:
                return parts[0]
            fields = zip(*((p.result, p.raw, p.alpha) for p in parts), strict=True)
            return Filled(*(None if f[0] is None else np.concatenate(f) for f in fields))

        return Network(run, self.size_multiple, self.working_size)

    def complete_arrays(
        self,
        images: np.ndarray,
        holes: np.ndarray,
        strategy: str = "auto",
        details: bool = False,
        batch_size: int | None = None,
        *,
        add_texture: AddTexture = True,
        cancel: threading.Event | None = None,
        **strategy_options: Any,
    ) -> Completion:
        """Inpaint a uint8 batch (N, H, W, 3) with bool holes (N, H, W); numpy arrays in and out.

        With ``self.texture`` the result (not raw or alpha) gets exemplar detail in the hole afterwards;
        ``add_texture=False`` skips it for this call (the network's own completion), a preset name
        (``"fine"``, ``"coarse"``) uses that preset instead, whatever the model's own setting.
        Once ``cancel`` is set (from another thread) the call raises :class:`InpaintCancelled` at its
        next network call or detail step instead of finishing work nobody waits for.
        """
        detail = self.texture_for_call(add_texture)
        network = self.network(batch_size, cancel)
        done = run_strategy(strategy, images, holes, network, details, **strategy_options)
        if detail is not None:
            check_cancel(cancel)
            done.result = add_exemplar_detail_batch(images, holes, done.result, detail)
        return done

    def texture_for_call(self, add_texture: AddTexture) -> ExemplarDetail | None:
        """The exemplar detail one call adds: ``True`` the model's own, ``False`` none, or a named preset."""
        if isinstance(add_texture, bool):
            return self.texture if add_texture else None
        if add_texture in TEXTURE_PRESETS:
            return TEXTURE_PRESETS[add_texture]
        raise ValueError(f"add_texture must be True, False or one of {_PRESET_NAMES}, got {add_texture!r}")

    def complete_array(self, rgb: np.ndarray, hole_mask: np.ndarray, details: bool = False) -> Completion:
        """Inpaint one uint8 RGB array with the 'auto' strategy (numpy in, numpy out)."""
        done = self.complete_arrays(rgb[None], hole_mask[None], details=details)
        return Completion(*(None if a is None else a[0] for a in (done.result, done.raw, done.alpha)))

    def inpaint(
        self,
        image: ImageSource,
        hole_mask: ImageSource,
        strategy: str = "auto",
        return_details: bool = False,
        *,
        add_texture: AddTexture = True,
        cancel: threading.Event | None = None,
        **strategy_options: Any,
    ) -> Any:
        """Fill the holes of one image; returns the input's kind (PIL for PIL and paths, numpy for numpy).

        An empty mask returns the input unchanged. With ``return_details`` returns
        ``Completion(result, raw, alpha)``, all three of the input's kind and size. ``add_texture=False``
        leaves out the exemplar detail of a model that has it (see ``texture``) for this call; ``"fine"`` or
        ``"coarse"`` adds that preset instead. ``cancel``: as in :meth:`complete_arrays`.
        """
        return self.inpaint_batch(
            [image],
            [hole_mask],
            strategy,
            return_details,
            add_texture=add_texture,
            cancel=cancel,
            **strategy_options,
        )[0]

    def inpaint_batch(
        self,
        images: Sequence[ImageSource],
        hole_masks: Sequence[ImageSource] | ImageSource,
        strategy: str = "auto",
        return_details: bool = False,
        batch_size: int | None = None,
        *,
        add_texture: AddTexture = True,
        cancel: threading.Event | None = None,
        **strategy_options: Any,
    ) -> list[Any]:
        """Fill many images of one size with batched network calls; one mask may serve them all."""
        if not isinstance(hole_masks, (list, tuple)):
            hole_masks = [hole_masks] * len(images)
        if len(hole_masks) != len(images):
            raise ValueError(f"got {len(images)} images but {len(hole_masks)} masks")
        if not images:
            return []
        inputs = [_read_image(im) for im in images]
        holes = [_read_mask(m) for m in hole_masks]
        for (_, loaded, _), hole in zip(inputs, holes, strict=True):
            _check_sizes(loaded.rgb, hole)
        shapes = {loaded.rgb.shape for _, loaded, _ in inputs}
        if len(shapes) > 1:
            raise ValueError(f"inpaint_batch needs images of one size, got {sorted(s[:2] for s in shapes)}")
        done = self.complete_arrays(
            stack_arrays([loaded.rgb for _, loaded, _ in inputs]),
            stack_arrays(holes),
            strategy,
            return_details,
            batch_size,
            add_texture=add_texture,
            cancel=cancel,
            **strategy_options,
        )
        outputs = []
        for i, (kind, loaded, extra) in enumerate(inputs):
            result = _as_kind(done.result[i], kind, loaded, extra)
            if not return_details:
                outputs.append(result)
                continue
            raw, alpha = _details_as_kind(done.raw[i], kind), _details_as_kind(done.alpha[i], kind)
            outputs.append(Completion(result, raw, alpha))
        return outputs
