"""The ``data`` section of the training config."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from dfnet.data.celeba import CELEBA_TEST, CELEBA_TRAIN
from dfnet.data.transforms import RESIZE_MODES
from dfnet.masks import MaskConfig

DATASET_KINDS = ("folder", "list", "places2", "celeba")

DEFAULT_IMAGE_SIZE = {"places2": 512, "celeba": 256}
FALLBACK_IMAGE_SIZE = 256
MAX_WORKERS = 256  # data-loader processes; more is a typo that would fork the machine to a halt


@dataclass
class DataConfig:
    """Everything the data side of training needs; ``image_size=None`` means 512 (Places2) or 256 (others).

    Kinds: ``folder`` (``root``; validation from ``val_root``), ``list`` and ``places2`` (``list_file``
    relative to ``root``; validation from ``val_list_file`` relative to ``val_root`` or ``root``, or a
    ``val_root`` folder), ``celeba`` (``root`` of aligned images; validation = the test part of the split in
    ``split_file``, default ``root/dfnet_split.json``). Validation masks are fixed: the masks of
    ``val_mask_dir`` (index.csv or mask images), else ``val_mask_count`` masks generated from
    ``val_mask_seed`` across ``masks.bins``.
    """

    dataset: str = "folder"
    root: str | None = None
    list_file: str | None = None
    split_file: str | None = None
    val_root: str | None = None
    val_list_file: str | None = None
    val_mask_dir: str | None = None
    val_mask_count: int = 1000
    val_mask_seed: int = 0
    image_size: int | None = None
    # resize_crop: short side to image_size, then crop; resize: stretch to image_size x image_size (aspect not
    # kept, as the released training and test code do); crop: native resolution
    resize_mode: str = "resize_crop"
    hflip: bool = True
    max_zoom: float = 1.0  # training crops: short side scaled to image_size x [1, max_zoom] (resize_crop)
    batch_size: int = 6
    val_batch_size: int | None = None
    num_workers: int = 4
    pin_memory: bool = True
    persistent_workers: bool = True
    prefetch_factor: int | None = 2
    drop_last: bool = True
    repeat: int = 1  # training epochs list every image this many times (small folders on fast GPUs)
    texture_share: float | None = None  # folder of a photo data set: repeat images so textures are this share
    seed: int = 0
    celeba_train: int = CELEBA_TRAIN
    celeba_test: int = CELEBA_TEST
    masks: MaskConfig = field(default_factory=MaskConfig)

    def __post_init__(self) -> None:
        if self.dataset not in DATASET_KINDS:
            raise ValueError(f"dataset must be one of {', '.join(DATASET_KINDS)}, got {self.dataset!r}")
        if self.resize_mode not in RESIZE_MODES:
            raise ValueError(
                f"resize_mode must be one of {', '.join(RESIZE_MODES)}, got {self.resize_mode!r}"
            )
        if self.batch_size < 1 or self.num_workers < 0 or self.val_mask_count < 1 or self.repeat < 1:
            raise ValueError("need batch_size >= 1, num_workers >= 0, val_mask_count >= 1 and repeat >= 1")
        if self.texture_share is not None and not 0 < self.texture_share < 1:
            raise ValueError(f"texture_share must be between 0 and 1 (exclusive), got {self.texture_share}")
        if self.num_workers > MAX_WORKERS:
            raise ValueError(
                f"num_workers is at most {MAX_WORKERS} (each is a process), got {self.num_workers}"
            )

    @property
    def size(self) -> int:
        """The training image side."""
        return self.image_size or DEFAULT_IMAGE_SIZE.get(self.dataset, FALLBACK_IMAGE_SIZE)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (for YAML/JSON and checkpoints)."""
        return asdict(self)
