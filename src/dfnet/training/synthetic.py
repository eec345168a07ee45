"""Synthetic training images for smoke runs: smooth random pictures generated under the run directory."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from dfnet.files import atomic_write
from dfnet.training.config import TrainConfig


def write_synthetic_images(folder: Path, count: int, size: int, seed: int) -> Path:
    """``count`` smooth random pictures (gradients, discs, stripes) as PNGs, for smoke runs; idempotent."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    for i in range(count):
        path = folder / f"synthetic_{i:04d}.png"
        if path.is_file():
            continue
        rng = np.random.default_rng([seed, i])
        a, b, c = rng.uniform(0.2, 1.0, size=(3, 3))
        image = np.stack([a[k] * xx + b[k] * yy + c[k] * 0.3 for k in range(3)], axis=2) / 2
        for _ in range(3):
            cy, cx, r = rng.uniform(0.1, 0.9), rng.uniform(0.1, 0.9), rng.uniform(0.05, 0.2)
            disc = (yy - cy) ** 2 + (xx - cx) ** 2 < r**2
            image[disc] = rng.uniform(0, 1, size=3)
        image += 0.1 * np.sin(xx[..., None] * rng.uniform(10, 60) + np.arange(3))
        rgb = (np.clip(image, 0, 1) * 255).astype(np.uint8)
        atomic_write(path, lambda tmp, rgb=rgb: Image.fromarray(rgb).save(tmp, format="PNG"))
    return folder


def synthetic_data_config(config: TrainConfig) -> TrainConfig:
    """``config`` pointed at generated images when it asks for them and has no data root."""
    if config.synthetic_images <= 0 or config.data.root:
        return config
    base = config.run_dir / "synthetic_data"
    size, seed = config.data.size, config.data.seed
    train = write_synthetic_images(base / "train", config.synthetic_images, size, seed)
    val = write_synthetic_images(base / "val", max(2, config.synthetic_images // 4), size, seed + 1)
    data = dataclasses.replace(config.data, dataset="folder", root=str(train), val_root=str(val))
    return dataclasses.replace(config, data=data)
