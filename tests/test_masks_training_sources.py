"""Training mask sources and their config (dfnet.masks.training_sources)."""

from __future__ import annotations

import numpy as np
import pytest

from dfnet.cli import main
from dfnet.imageio import hole_ratio
from dfnet.masks import (
    GeneratedMaskSource,
    MaskAugmentConfig,
    MaskConfig,
    MaskSetSource,
    MaskSource,
    StrokeConfig,
    build_mask_source,
    read_mask_index,
    write_mask_set,
)
from dfnet.structured_config import from_plain


def test_mask_sources(tmp_path):
    write_mask_set(tmp_path / "set", count=5, size=64, seed=0)
    rng = np.random.default_rng(0)
    generated = GeneratedMaskSource(bins=(4,))
    from_set = MaskSetSource.from_dir(tmp_path / "set")
    for source in (generated, from_set):
        assert isinstance(source, MaskSource)
        mask = source.sample(rng, (48, 80))
        assert mask.shape == (48, 80) and mask.dtype == bool and mask.any()
    assert all(0.4 <= hole_ratio(generated.sample(rng, (64, 64))) < 0.5 for _ in range(5))
    config = MaskConfig(source="set", mask_dir=str(tmp_path / "set"))
    assert isinstance(build_mask_source(config), MaskSetSource)
    assert isinstance(build_mask_source(MaskConfig()), GeneratedMaskSource)


def test_mask_config_round_trip_and_validation():
    config = MaskConfig(
        bins=[0, 1], strokes=StrokeConfig(max_strokes=5), augment=MaskAugmentConfig(scale=(0.5, 2.0))
    )
    assert config.bins == (0, 1)
    again = from_plain(MaskConfig, config.to_dict())
    assert again == config
    with pytest.raises(ValueError, match="mask_dir"):
        MaskConfig(source="set")
    with pytest.raises(ValueError, match="unknown"):
        from_plain(MaskConfig, {"colour": "red"})
    with pytest.raises(ValueError):
        MaskConfig(source="paint")


def test_paper_set_source_config_and_cli(tmp_path, capsys):
    from dfnet.masks import PaperAugmentConfig, sample_hole_ratios

    assert (
        main(["masks", "generate", str(tmp_path / "paper"), "--paper", "--count", "30", "--size", "128"]) == 0
    )
    assert "wrote 30 masks of 128x128" in capsys.readouterr().out
    records = read_mask_index(tmp_path / "paper")
    assert len(records) == 30 and all(0 < r.hole_ratio < 1 for r in records)
    with pytest.raises(ValueError, match="'paper_set' needs mask_dir"):
        MaskConfig(source="paper_set")
    config = from_plain(
        MaskConfig,
        {"source": "paper_set", "mask_dir": str(tmp_path / "paper"), "paper_augment": {"scale": [1, 1]}},
    )
    assert config.paper_augment == PaperAugmentConfig(scale=(1.0, 1.0))
    assert from_plain(MaskConfig, config.to_dict()) == config
    source = build_mask_source(config)
    assert isinstance(source, MaskSetSource) and source.augment is config.paper_augment
    mask = source.sample(np.random.default_rng(0), (64, 96))
    assert mask.shape == (64, 96) and mask.dtype == bool
    ratios = sample_hole_ratios(source, 64, 20, seed=3)
    assert ratios.shape == (20,) and np.array_equal(ratios, sample_hole_ratios(source, 64, 20, seed=3))
