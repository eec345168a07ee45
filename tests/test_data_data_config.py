"""The data config section (dfnet.data.data_config)."""

from __future__ import annotations

import pytest

from dfnet.data import (
    DataConfig,
    build_datasets,
)
from dfnet.masks import write_mask_set
from dfnet.structured_config import from_plain


def test_data_config_defaults_and_round_trip():
    assert DataConfig(dataset="places2").size == 512
    assert DataConfig(dataset="celeba").size == 256
    assert DataConfig(dataset="folder", image_size=128).size == 128
    config = from_plain(
        DataConfig, {"dataset": "list", "root": "r", "list_file": "l.txt", "masks": {"bins": [3]}}
    )
    assert config.masks.bins == (3,)
    assert from_plain(DataConfig, config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown"):
        from_plain(DataConfig, {"batchsize": 3})
    with pytest.raises(ValueError):
        DataConfig(dataset="imagenet")
    with pytest.raises(ValueError, match="list_file"):
        build_datasets(DataConfig(dataset="places2", root="r"))


def test_paper_protocol_data_config(folder, tmp_path):
    write_mask_set(tmp_path / "masks", 6, 64, bins=None)
    config = from_plain(
        DataConfig,
        {
            "dataset": "folder",
            "root": str(folder),
            "image_size": 32,
            "resize_mode": "resize",
            "masks": {"source": "paper_set", "mask_dir": str(tmp_path / "masks")},
        },
    )
    train, _ = build_datasets(config, rank=0)
    sample = train[0]
    assert sample["image"].shape == (3, 32, 32) and sample["hole_mask"].shape == (1, 32, 32)
    assert train.mask_source.augment == config.masks.paper_augment
