"""dfnet: Deep Fusion Network for Image Completion (Hong et al., ACM MM 2019)."""

from dfnet.checkpoint import CheckpointError, load_model, save_model
from dfnet.imageio import ImageLoadError
from dfnet.inference import Inpainter
from dfnet.model import DFNet, DFNetConfig, DFNetOutput
from dfnet.version import __version__ as __version__

__all__ = [
    "CheckpointError",
    "DFNet",
    "DFNetConfig",
    "DFNetOutput",
    "ImageLoadError",
    "Inpainter",
    "load_model",
    "save_model",
]
