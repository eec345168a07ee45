"""Free-form mask generation by bin, mask sets on disk, augmentation, mask sources and user mask files."""

from __future__ import annotations

import csv
import hashlib
import time

import numpy as np
import pytest
from PIL import Image

from dfnet.cli import main
from dfnet.imageio import hole_ratio, load_mask
from dfnet.masks import (
    ALL_BINS,
    HOLE_RATIO_BINS,
    GeneratedMaskSource,
    MaskAugmentConfig,
    MaskConfig,
    MaskSetSource,
    MaskSource,
    PackedMasks,
    StrokeConfig,
    augment_mask,
    bin_counts,
    bin_label,
    bin_of,
    build_mask_source,
    generate_mask,
    generate_masks,
    mask_rng,
    parse_bins,
    read_mask_index,
    write_mask_set,
)


def _digest(masks) -> str:
    h = hashlib.sha256()
    for mask in masks:
        h.update(np.packbits(mask).tobytes())
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------- bins


def test_bins_and_labels():
    assert [bin_of(r) for r in (0.0, 0.0999, 0.1, 0.35, 0.4999, 0.5, 0.9)] == [0, 0, 1, 3, 4, None, None]
    assert bin_label(1) == "[10%, 20%)"
    assert parse_bins("0, 2,4") == (0, 2, 4)
    for bad in ("5", "0,0", "a", ""):
        with pytest.raises(ValueError):
            parse_bins(bad)


# ---------------------------------------------------------------------------------------------- generator


def test_same_seed_same_masks_and_pinned_digest():
    first = [m.hole_mask for m in generate_masks(10, (64, 96), seed=2024)]
    again = [m.hole_mask for m in generate_masks(10, (64, 96), seed=2024)]
    other = [m.hole_mask for m in generate_masks(10, (64, 96), seed=2025)]
    assert _digest(first) == _digest(again)
    assert _digest(first) != _digest(other)
    # Pinned: the same seed must give these exact masks on any machine (PCG64 + integer rasterising).
    assert _digest(first) == "3d804ec871e63773166efd9e62f4913ce55de0235e02d8a45d904654804c39a5"


def test_mask_i_does_not_depend_on_the_set_length():
    short = list(generate_masks(5, 64, seed=7))
    long = list(generate_masks(12, 64, seed=7))
    for a, b in zip(short, long, strict=False):
        assert np.array_equal(a.hole_mask, b.hole_mask)


@pytest.mark.parametrize("size", [64, 256, (96, 160)])
def test_every_generated_mask_lies_in_its_bin(size):
    count = 50 if size == 256 else 25
    masks = list(generate_masks(count, size, seed=1))
    shape = (size, size) if isinstance(size, int) else size
    for i, mask in enumerate(masks):
        target = ALL_BINS[i % len(ALL_BINS)]
        assert mask.hole_mask.shape == shape and mask.hole_mask.dtype == bool
        low, high = HOLE_RATIO_BINS[target]
        assert low <= hole_ratio(mask.hole_mask) < high
        assert mask.bin == target and mask.hole_ratio == pytest.approx(hole_ratio(mask.hole_mask))
    assert min(hole_ratio(m.hole_mask) for m in masks) >= StrokeConfig().min_hole_ratio


def test_largest_bin_is_reached_quickly_at_512():
    start = time.perf_counter()
    masks = [generate_mask(512, mask_rng(3, i), target_bin=4) for i in range(20)]
    elapsed = time.perf_counter() - start
    assert all(0.4 <= hole_ratio(m) < 0.5 for m in masks)
    assert (
        elapsed < 5.0
    )  # about 3 ms a mask here; rejection sampling of plain strokes takes thousands of tries


def test_ratios_spread_over_the_bin():
    ratios = [hole_ratio(generate_mask(128, mask_rng(5, i), target_bin=2)) for i in range(40)]
    assert min(ratios) < 0.24 and max(ratios) > 0.27  # targets are drawn across [20%, 30%), not at its edge


def test_unbinned_masks_follow_deepfill_defaults():
    masks = [generate_mask(256, mask_rng(9, i)) for i in range(30)]
    ratios = [hole_ratio(m) for m in masks]
    assert all(0 < r < 0.8 for r in ratios)
    assert len({round(r, 4) for r in ratios}) > 20


def test_flips_are_random_and_can_be_turned_off():
    plain = StrokeConfig(flip=False)
    a = generate_mask(64, mask_rng(0, 0), 2, plain)
    b = generate_mask(64, mask_rng(0, 0), 2, plain)
    assert np.array_equal(a, b)
    flipped = [generate_mask(64, mask_rng(0, 0), 2, StrokeConfig()) for _ in range(1)][0]
    variants = [a, a[:, ::-1], a[::-1, :], a[::-1, ::-1]]
    assert any(np.array_equal(flipped, v) for v in variants)


def test_generator_rejects_bad_arguments():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError):
        generate_mask(4, rng)
    with pytest.raises(ValueError):
        generate_mask(64, rng, target_bin=5)
    with pytest.raises(ValueError):
        StrokeConfig(min_width=0)


# ---------------------------------------------------------------------------------------------- mask sets


def test_write_and_read_mask_set_round_trip(tmp_path):
    records = write_mask_set(tmp_path / "set", count=7, size=64, seed=11, bins=(1, 3))
    with open(tmp_path / "set" / "index.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["file", "hole_ratio", "bin"]
    assert [int(r[2]) for r in rows[1:]] == [1, 3, 1, 3, 1, 3, 1]
    read = read_mask_index(tmp_path / "set")
    assert read == records == read_mask_index(tmp_path / "set" / "index.csv")
    generated = list(generate_masks(7, 64, seed=11, bins=(1, 3)))
    for record, mask in zip(read, generated, strict=True):
        from_file = load_mask(record.path)
        assert np.array_equal(from_file, mask.hole_mask)  # PNG white = hole, lossless
        assert record.hole_ratio == pytest.approx(hole_ratio(from_file), abs=1e-6)
        assert record.bin == bin_of(hole_ratio(from_file))
    assert bin_counts(read) == {1: 4, 3: 3}
    with pytest.raises(FileExistsError):
        write_mask_set(tmp_path / "set", count=1, size=64)


def test_read_mask_index_scans_a_folder_without_index(tmp_path):
    hole = np.zeros((20, 20), dtype=bool)
    hole[:5, :8] = True  # 10 %
    Image.fromarray(hole.astype(np.uint8) * 255).save(tmp_path / "b.png")
    Image.fromarray(np.full((10, 10), 255, np.uint8)).save(tmp_path / "a.png")  # 100 %: outside the bins
    (tmp_path / "notes.txt").write_text("not a mask")
    records = read_mask_index(tmp_path)
    assert [r.file for r in records] == ["a.png", "b.png"]
    assert [r.bin for r in records] == [None, 1]
    assert records[1].hole_ratio == pytest.approx(0.1)


def test_read_mask_index_reports_bad_files(tmp_path):
    (tmp_path / "index.csv").write_text("file,ratio\nx.png,0.1\n")
    with pytest.raises(ValueError, match="missing column"):
        read_mask_index(tmp_path)
    with pytest.raises(FileNotFoundError):
        read_mask_index(tmp_path / "nothing.csv")


def test_packed_masks_round_trip():
    masks = [generate_mask((33, 70), mask_rng(1, i), i) for i in range(5)]
    packed = PackedMasks(masks)
    assert len(packed) == 5
    for original, unpacked in zip(masks, packed, strict=True):
        assert unpacked.dtype == bool and np.array_equal(original, unpacked)


# ---------------------------------------------------------------------------------------------- CLI


def test_cli_generate_and_info(tmp_path, capsys):
    out = tmp_path / "masks"
    code = main(
        ["masks", "generate", str(out), "--count", "10", "--size", "64", "--seed", "3", "--bins", "0,4"]
    )
    assert code == 0
    records = read_mask_index(out)
    assert len(records) == 10 and bin_counts(records) == {0: 5, 4: 5}
    assert all(Image.open(r.path).size == (64, 64) for r in records)
    assert main(["masks", "generate", str(out), "--count", "2", "--size", "64"]) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert main(["masks", "generate", str(out), "--count", "2", "--size", "64", "--overwrite"]) == 0
    records = read_mask_index(out)
    assert len(records) == 2
    assert sorted(p.name for p in out.iterdir()) == ["00000.png", "00001.png", "index.csv"]  # old masks gone
    capsys.readouterr()
    assert main(["masks", "info", str(out), str(records[0].path)]) == 0
    text = capsys.readouterr().out
    assert "2 masks" in text
    assert f"hole ratio {records[0].hole_ratio:.2%}" in text and "64x64" in text
    with pytest.raises(SystemExit) as refused:  # refused by the parser, before anything is written
        main(["masks", "generate", str(tmp_path / "x"), "--bins", "7"])
    assert refused.value.code == 2 and not (tmp_path / "x").exists()


# ---------------------------------------------------------------------------------------------- augmentation


def _stripe() -> np.ndarray:
    hole = np.zeros((64, 64), dtype=bool)
    hole[10:20, 5:50] = True
    hole[30:60, 40:45] = True
    return hole


@pytest.mark.parametrize("size", [(64, 64), (32, 32), (128, 96)])
def test_augmentation_keeps_masks_binary_and_sized(size):
    rng = np.random.default_rng(0)
    for _ in range(30):
        out = augment_mask(_stripe(), rng, size)
        assert out.dtype == bool and out.shape == size
        assert out.any()
    # the uint8 path underneath never yields grey values either
    assert set(np.unique(augment_mask(_stripe(), rng, size).view(np.uint8))) <= {0, 1}


def test_flip_and_rotation_only_give_the_eight_symmetries():
    config = MaskAugmentConfig(scale=(1.0, 1.0), translate=0.0, morph=0.0)
    hole = _stripe()
    symmetries = [np.rot90(f, k) for f in (hole, hole[:, ::-1]) for k in range(4)]
    rng = np.random.default_rng(1)
    seen = set()
    for _ in range(60):
        out = augment_mask(hole, rng, None, config)
        matches = [i for i, s in enumerate(symmetries) if np.array_equal(out, s)]
        assert matches
        seen.add(matches[0])
    assert len(seen) == 8


def test_dilation_and_erosion_grow_or_shrink_the_hole():
    config = MaskAugmentConfig(flip=False, rotate90=False, scale=(1.0, 1.0), translate=0.0, morph=0.05)
    hole = _stripe()
    rng = np.random.default_rng(2)
    grew = shrank = 0
    for _ in range(40):
        out = augment_mask(hole, rng, None, config)
        if out.sum() > hole.sum():
            assert not (hole & ~out).any()  # dilation keeps every hole pixel
            grew += 1
        elif out.sum() < hole.sum():
            assert not (out & ~hole).any()  # erosion adds none
            shrank += 1
    assert grew and shrank


def test_zoom_changes_the_mask_and_resizes():
    config = MaskAugmentConfig(flip=False, rotate90=False, scale=(2.0, 2.0), translate=0.0, morph=0.0)
    hole = _stripe()
    doubled = np.repeat(np.repeat(hole, 2, axis=0), 2, axis=1)  # 128x128
    windows = set()
    for seed in range(5):
        out = augment_mask(hole, np.random.default_rng(seed), (64, 64), config)
        # zoomed 2x, then a random 64x64 crop: the output is one window of the doubled mask
        found = [
            (y, x)
            for y in range(65)
            for x in range(65)
            if np.array_equal(out, doubled[y : y + 64, x : x + 64])
        ]
        assert found
        windows.add(found[0])
    assert len(windows) > 1  # the crop position is random


# ---------------------------------------------------------------------------------------------- sources and config


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
    again = MaskConfig.from_dict(config.to_dict())
    assert again == config
    with pytest.raises(ValueError, match="mask_dir"):
        MaskConfig(source="set")
    with pytest.raises(ValueError, match="unknown"):
        MaskConfig.from_dict({"colour": "red"})
    with pytest.raises(ValueError):
        MaskConfig(source="paint")


# ---------------------------------------------------------------------------------------------- user mask files


def _expected() -> np.ndarray:
    hole = np.zeros((8, 12), dtype=bool)
    hole[2:5, 3:9] = True
    return hole


def test_user_mask_grayscale_rgb_and_threshold(tmp_path):
    hole = _expected()
    gray = np.where(hole, 200, 30).astype(np.uint8)
    gray[0, 0], gray[0, 1] = 127, 128  # binarised at 127: 127 is known, 128 is hole
    want = hole.copy()
    want[0, 1] = True
    Image.fromarray(gray, "L").save(tmp_path / "gray.png")
    Image.fromarray(np.stack([gray] * 3, axis=2), "RGB").save(tmp_path / "rgb.png")
    assert np.array_equal(load_mask(tmp_path / "gray.png"), want)
    assert np.array_equal(load_mask(tmp_path / "rgb.png"), want)
    assert np.array_equal(load_mask(tmp_path / "gray.png", invert=True), ~want)
    assert hole_ratio(load_mask(tmp_path / "gray.png")) == pytest.approx(19 / 96)


def test_user_mask_rgba_alpha_when_colour_is_empty(tmp_path):
    hole = _expected()
    rgba = np.zeros((8, 12, 4), dtype=np.uint8)
    rgba[..., 3] = np.where(hole, 255, 0)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "alpha.png")
    assert np.array_equal(load_mask(tmp_path / "alpha.png"), hole)
    # a painted colour mask that happens to be opaque keeps using the colour
    rgba[..., :3] = np.where(hole, 255, 0)[..., None]
    rgba[..., 3] = 255
    Image.fromarray(rgba, "RGBA").save(tmp_path / "painted.png")
    assert np.array_equal(load_mask(tmp_path / "painted.png"), hole)
    # an opaque all-black RGBA picture means "no hole" (colour and alpha both carry nothing)
    Image.fromarray(
        np.dstack([np.zeros((8, 12, 3), np.uint8), np.full((8, 12), 255, np.uint8)]), "RGBA"
    ).save(tmp_path / "none.png")
    assert not load_mask(tmp_path / "none.png").any()
    # grey + alpha (LA) works the same way
    la = Image.fromarray(np.where(hole, 255, 0).astype(np.uint8), "L").convert("LA")
    la.putalpha(Image.fromarray(np.full((8, 12), 255, np.uint8)))
    la.save(tmp_path / "la.png")
    assert np.array_equal(load_mask(tmp_path / "la.png"), hole)


def test_user_mask_palette_and_16_bit(tmp_path):
    hole = _expected()
    Image.fromarray(np.where(hole, 255, 0).astype(np.uint8), "L").convert("P").save(tmp_path / "p.png")
    assert np.array_equal(load_mask(tmp_path / "p.png"), hole)
    Image.fromarray(np.where(hole, 65535, 0).astype(np.uint16)).save(tmp_path / "deep.png")
    assert np.array_equal(load_mask(tmp_path / "deep.png"), hole)


def test_user_mask_any_size_resized_with_nearest(tmp_path):
    hole = np.zeros((4, 6), dtype=bool)
    hole[1, 2] = hole[3, 5] = True
    Image.fromarray(hole.astype(np.uint8) * 255).save(tmp_path / "small.png")
    big = load_mask(tmp_path / "small.png", size=(12, 8))  # (width, height)
    assert big.shape == (8, 12)
    assert np.array_equal(big, np.repeat(np.repeat(hole, 2, axis=0), 2, axis=1))  # no grey edges, no blur
    Image.fromarray(np.repeat(np.repeat(hole, 3, axis=0), 3, axis=1).astype(np.uint8) * 255).save(
        tmp_path / "large.jpg", quality=95
    )
    assert np.array_equal(load_mask(tmp_path / "large.jpg", size=(6, 4)), hole)  # JPEG noise binarised away


# --------------------------------------------------------------------------------------------------
# The paper's protocol: DeepFill v2 set masks and the released training code's augmentation


def _turns(stroke) -> np.ndarray:
    """The un-reflected direction of each segment of a stroke (reflected ones mapped back), radians."""
    points = np.array(stroke.points, dtype=float)
    steps = np.diff(points, axis=0)
    angles = np.mod(np.arctan2(steps[:, 1], steps[:, 0]), 2 * np.pi)
    angles[::2] = 2 * np.pi - angles[::2]  # segment 0, 2, ... were reflected
    return angles[np.hypot(steps[:, 0], steps[:, 1]) > 50]  # lengths are clipped at 0: skip short ones


def test_paper_strokes_have_4_to_11_segments_and_one_angle_interval_each():
    from dfnet.masks import PAPER_STROKES, _Stroke

    rng = np.random.default_rng(0)
    side = 20_000  # segments of ~350 px far from the borders: rounding moves angles by < 0.2 degrees
    per_vertex = StrokeConfig(min_vertices=12, max_vertices=12, segment_length=1 / 80)
    per_stroke = StrokeConfig(min_vertices=12, max_vertices=12, segment_length=1 / 80, angle_per_stroke=True)
    spreads = {}
    for name, config in (("vertex", per_vertex), ("stroke", per_stroke)):
        spread = []
        for _ in range(200):
            stroke = _Stroke(rng, side, side, 10, config)
            turns = _turns(stroke)
            interior = all(0 < x < side - 1 and 0 < y < side - 1 for x, y in stroke.points)
            if interior:
                assert np.all(np.abs(turns - config.mean_angle) <= config.angle_range + 0.01)
                spread.append(turns.max() - turns.min())
        spreads[name] = np.mean(spread)
    # one interval per stroke [mean - U(0, r), mean + U(0, r)]: the turns of a stroke cluster more tightly
    assert spreads["stroke"] < 0.75 * spreads["vertex"]
    counts = {_Stroke(rng, 512, 512, 10, PAPER_STROKES).n_segments for _ in range(400)}
    assert counts == set(range(4, 12))


def test_paper_augmentation_identity_and_known_fill():
    from dfnet.masks import PaperAugmentConfig, paper_augment_mask

    rng = np.random.default_rng(0)
    mask = np.zeros((32, 32), dtype=bool)
    mask[4:12, 20:30] = True
    identity = PaperAugmentConfig(hflip=False, degrees=0, scale=(1, 1), translate=0, shear=0)
    assert np.array_equal(paper_augment_mask(mask, rng, 32, identity), mask)
    # resized to the image first (nearest neighbour): 64x64, the hole doubled
    assert np.array_equal(paper_augment_mask(mask, rng, 64, identity), mask.repeat(2, 0).repeat(2, 1))
    # a full-hole mask shrunk to half about the centre: the border brought in is known -> the central 32x32
    full = np.ones((64, 64), dtype=bool)
    half = PaperAugmentConfig(hflip=False, degrees=0, scale=(0.5, 0.5), translate=0, shear=0)
    shrunk = paper_augment_mask(full, rng, 64, half)
    assert shrunk.sum() == 32 * 32 and shrunk[16:48, 16:48].all()
    # a vertical strip moved sideways by whole pixels, at most 20 % of the side (10 px) either way
    moved = PaperAugmentConfig(hflip=False, degrees=0, scale=(1, 1), translate=0.2, shear=0)
    strip = np.zeros((50, 50), dtype=bool)
    strip[:, 20:25] = True
    lefts = {int(np.flatnonzero(paper_augment_mask(strip, rng, 50, moved).any(0))[0]) for _ in range(400)}
    assert lefts == set(range(10, 31))
    flips = {
        paper_augment_mask(mask, rng, 32, PaperAugmentConfig(degrees=0, scale=(1, 1), translate=0, shear=0))[
            4, 0
        ]
        for _ in range(50)
    }
    assert flips == {False} and mask[4, 20]  # the flip mirrors columns 20-29 to 2-11, never column 0


def test_paper_affine_draws_inside_the_paper_ranges():
    from dfnet.masks import PaperAugmentConfig, paper_affine

    rng = np.random.default_rng(1)
    config = PaperAugmentConfig()
    for _ in range(300):
        matrix = paper_affine(rng, 100, 200, config)
        linear = matrix[:, :2]
        zoom_sq = abs(np.linalg.det(linear))  # det = zoom^2 (rotation and shear keep areas)
        assert 0.25 - 1e-9 <= zoom_sq <= 4 + 1e-9
        rotation = np.degrees(np.arctan2(linear[1, 0], linear[0, 0]))  # the first column is zoom * R e_x
        assert abs(rotation) <= 20 + 1e-9
        centre = np.array([99.5, 49.5])
        shift = linear @ centre + matrix[:, 2] - centre  # where the centre goes
        assert abs(shift[0]) <= 40 and abs(shift[1]) <= 20 and np.allclose(shift, np.round(shift))


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
    config = MaskConfig.from_dict(
        {"source": "paper_set", "mask_dir": str(tmp_path / "paper"), "paper_augment": {"scale": [1, 1]}}
    )
    assert config.paper_augment == PaperAugmentConfig(scale=(1.0, 1.0))
    assert MaskConfig.from_dict(config.to_dict()) == config
    source = build_mask_source(config)
    assert isinstance(source, MaskSetSource) and source.augment is config.paper_augment
    mask = source.sample(np.random.default_rng(0), (64, 96))
    assert mask.shape == (64, 96) and mask.dtype == bool
    ratios = sample_hole_ratios(source, 64, 20, seed=3)
    assert ratios.shape == (20,) and np.array_equal(ratios, sample_hole_ratios(source, 64, 20, seed=3))


def test_write_mask_set_is_atomic(tmp_path, monkeypatch):
    import dfnet.masks as masks_module

    write_mask_set(tmp_path / "set", 4, 32, seed=0)
    calls = []

    def failing_png(hole_mask, path):
        calls.append(path)
        if len(calls) == 3:
            raise OSError("disk full")
        return real_png(hole_mask, path)

    real_png = masks_module._write_png
    monkeypatch.setattr(masks_module, "_write_png", failing_png)
    with pytest.raises(OSError, match="disk full"):
        write_mask_set(tmp_path / "set", 4, 32, seed=1, overwrite=True)
    names = sorted(p.name for p in (tmp_path / "set").iterdir())
    assert names == []  # a complete set or none: no index, no half set, no temp files
    assert calls[0].startswith(str(tmp_path / "set" / ".00000.png."))  # written under a temporary name
