"""Tests of scripts/build_wallpaper_dataset.py: filters, duplicate grouping, licences, split, outputs."""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def _load_script():
    spec = importlib.util.spec_from_file_location(
        "build_wallpaper_dataset", ROOT / "scripts" / "build_wallpaper_dataset.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


wp = _load_script()


def photo_like(width: int, height: int, seed: int = 0) -> np.ndarray:
    """Smooth colour field plus sensor-like noise shared by the channels: what a camera JPEG looks like."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(40, 210, size=(height // 64 + 2, width // 64 + 2, 3)).astype(np.uint8)
    base = np.asarray(
        Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC), dtype=np.float32
    )
    luma_noise = rng.normal(0, 1.5, size=(height, width, 1))  # camera-like levels: residual std ~9
    chroma_noise = rng.normal(0, 0.4, size=(height, width, 3))
    return np.clip(base + luma_noise + chroma_noise, 0, 255).astype(np.uint8)


def gradient(width: int, height: int) -> np.ndarray:
    """A clean grey ramp rising one level per column (wrapping every 256 columns): rendered art."""
    ramp = np.broadcast_to(np.arange(width) % 256, (height, width))
    return np.stack([ramp, ramp, ramp], axis=-1).astype(np.uint8)


def stats(**overrides) -> wp.PhotoStats:
    """PhotoStats of an obvious photograph, with some fields replaced."""
    base = dict(alpha_used=False, flat=0.1, texture=0.9, channel_corr=0.6, camera="", jpeg=True)
    base.update(overrides)
    return wp.PhotoStats(**base)


# --------------------------------------------------------------------------------------------------
# photo / not photo


@pytest.mark.parametrize(
    ("changes", "photo", "reason_start"),
    [
        ({}, True, "photo statistics"),
        ({"alpha_used": True, "camera": "Canon"}, False, "uses transparency"),
        ({"flat": 0.8, "camera": "Canon"}, False, "flat fills"),
        ({"camera": "Canon EOS 70D", "texture": 0.0, "jpeg": False}, True, "camera EXIF (Canon EOS 70D)"),
        ({"jpeg": False}, False, "not a JPEG"),
        ({"texture": 0.2}, False, "little texture"),
        ({"channel_corr": -0.4}, False, "uncorrelated channel noise"),
    ],
)
def test_is_photo_rules_in_order(changes, photo, reason_start):
    decided, reason = wp.is_photo(stats(**changes))
    assert decided is photo
    assert reason.startswith(reason_start)


def test_is_photo_thresholds_are_strict_bounds():
    rule = wp.PhotoRule()
    assert wp.is_photo(stats(flat=rule.max_flat))[0]
    assert not wp.is_photo(stats(flat=rule.max_flat + 0.001))[0]
    assert wp.is_photo(stats(texture=rule.min_texture))[0]
    assert not wp.is_photo(stats(texture=rule.min_texture - 0.001))[0]


def test_residual_is_zero_on_ramps_and_four_on_an_impulse():
    y, x = np.mgrid[0:8, 0:8]
    assert np.all(wp.residual((3 * x + 5 * y).astype(np.uint8)) == 0)
    impulse = np.zeros((5, 5), np.uint8)
    impulse[2, 2] = 1
    res = wp.residual(impulse)
    assert res.shape == (3, 3)
    assert res.tolist() == [[1, -2, 1], [-2, 4, -2], [1, -2, 1]]


def test_residual_stats_separate_rendered_gradient_from_noisy_photo():
    flat, texture, corr = wp.residual_stats(gradient(256, 128))
    assert flat == 1.0
    assert texture == 0.0
    assert corr == 0.0  # no residual at all
    flat, texture, corr = wp.residual_stats(photo_like(256, 128))
    assert flat < 0.1
    assert texture > 0.9
    assert corr > wp.PhotoRule().min_channel_corr + 0.15  # the noise shared by the channels shows


@pytest.mark.parametrize("sigma", [1.0, 3.0, 6.0])
def test_channel_corr_tells_shared_from_independent_noise_at_any_level(sigma):
    rng = np.random.default_rng(1)
    independent = np.clip(128 + rng.normal(0, sigma, size=(128, 128, 3)), 0, 255).astype(np.uint8)
    shared = 128 + rng.normal(0, sigma, size=(128, 128, 1)) + rng.normal(0, sigma / 4, size=(128, 128, 3))
    _, texture, corr = wp.residual_stats(independent)
    assert texture > 0.9
    assert abs(corr) < 0.1
    _, texture, corr = wp.residual_stats(np.clip(shared, 0, 255).astype(np.uint8))
    assert texture > 0.9
    assert corr > 0.8


def test_image_stats_reads_alpha_camera_and_format():
    rgba = Image.fromarray(photo_like(64, 64)).convert("RGBA")
    rgba.putpixel((3, 3), (0, 0, 0, 10))
    assert wp.image_stats(rgba).alpha_used
    opaque = Image.fromarray(photo_like(64, 64)).convert("RGBA")
    assert not wp.image_stats(opaque).alpha_used

    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "OLYMPUS IMAGING CORP.  ", "E-M1\x00"
    buffer = io.BytesIO()
    Image.fromarray(photo_like(64, 64)).save(buffer, "JPEG", exif=exif)
    loaded = wp.image_stats(Image.open(buffer))
    assert loaded.camera == "OLYMPUS IMAGING CORP. E-M1"
    assert loaded.jpeg


# --------------------------------------------------------------------------------------------------
# names and duplicate groups


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("usr/share/wallpapers/Path/contents/images/2560x1600.jpg", "Path"),
        ("usr/share/wallpapers/Kay/contents/images_dark/1080x1920.png", "Kay"),
        ("usr/share/backgrounds/mate/abstract/Elephants_3840x2160.jpg", "Elephants"),
        ("usr/share/backgrounds/gnome/adwaita-l.webp", "adwaita"),
        ("usr/share/backgrounds/mate/desktop/MATE-Stripes-Dark.png", "MATE-Stripes"),
        ("usr/share/backgrounds/Bridge_by_Sander_Klootwijk.jpg", "Bridge_by_Sander_Klootwijk"),
    ],
)
def test_picture_name_strips_resolution_and_shade(path, name):
    assert wp.picture_name(path) == name


def test_name_and_size_rules():
    assert wp.name_rule("usr/share/backgrounds/gnome/blobs-d.svg") == "vector"
    assert wp.name_rule("usr/share/wallpapers/Path/contents/screenshot.jpg") == "thumbnail"
    assert wp.name_rule("usr/share/backgrounds/x.jpg") is None
    assert wp.size_rule(256, 256) == "small (256x256)"
    assert wp.size_rule(wp.MIN_SHORT_SIDE, 4000) is None


def candidate(path: str, array: np.ndarray, package: str = "pkg") -> wp.Candidate:
    image = Image.fromarray(array)
    return wp.Candidate(package, path, image.width, image.height, array.size, wp.thumbnail_bytes(image))


def test_group_duplicates_by_name_and_by_content():
    big = photo_like(320, 200, seed=2)
    small = np.asarray(Image.fromarray(big).resize((160, 100), Image.Resampling.LANCZOS))
    other = photo_like(320, 200, seed=3)
    cropped = big[:, :200]  # same content at another aspect: not the same picture
    cands = [
        candidate("a/sunset.jpg", small),  # 0
        candidate("b/other.jpg", other),  # 1
        candidate("c/sunset_big.jpg", big),  # 2: same content as 0, different name
        candidate("d/crop.jpg", cropped),  # 3
        candidate("e/other_1920x1200.jpg", photo_like(320, 200, seed=4)),  # 4: same name as 1
    ]
    assert wp.group_duplicates(cands) == [[0, 2], [1, 4], [3]]
    assert wp.largest(cands, [0, 2]) == 2


def test_transparent_layers_with_equal_hidden_colour_are_not_duplicates():
    first = np.zeros((100, 160, 4), np.uint8)
    second = first.copy()
    first[:, :80, 3] = 255
    second[:, 80:, 3] = 255
    a = wp.Candidate("p", "a.png", 160, 100, 1, wp.thumbnail_bytes(Image.fromarray(first)))
    b = wp.Candidate("p", "b.png", 160, 100, 1, wp.thumbnail_bytes(Image.fromarray(second)))
    assert not wp.same_picture(a, b)


def test_largest_prefers_pixels_then_file_size_then_order():
    thumb = bytes(wp.THUMB_SIDE * wp.THUMB_SIDE * 4)
    cands = [
        wp.Candidate("p", "x/1.jpg", 100, 100, 50, thumb),
        wp.Candidate("p", "x/2.jpg", 200, 100, 10, thumb),
        wp.Candidate("p", "x/3.jpg", 100, 200, 30, thumb),
        wp.Candidate("p", "x/4.jpg", 100, 200, 30, thumb),
    ]
    assert wp.largest(cands, [0, 1, 2, 3]) == 2
    assert wp.largest(cands, [0, 3]) == 3


# --------------------------------------------------------------------------------------------------
# licences

DEP5 = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: test-wallpapers

Files: *
Copyright: 2020 Everyone
License: GPL-2+

Files: 16.04/bridge_by_someone.jpg
 16.04/lake.jpg
Copyright: Some One, 2018
License: CC-BY-SA-4.0

Files: desktop/Stripes-*.png
Copyright: 2014 Stripe Maker
License: CC0-1.0

Files: debian/*
Copyright: 2021 Packager
License: Expat

License: GPL-2+
 This package is free software.
"""

FREEFORM = """This package was debianized by someone.

Image Authors:

 - adwaita*
 - Chmiri.jpg:
   Copyright © 2011 Jakub Steiner
   Licensed under Creative Commons Attribution-ShareAlike 3.0 License.

 - Stones.jpg:
   Copyright © 2011 Felix Leupold
   Licensed under Creative Commons Attribution 2.0 License.

Licenses:

   This package is free software; you can redistribute it and/or modify
   it under the terms of the GNU General Public License as published by
   the Free Software Foundation; either version 2 of the License, or
   (at your option) any later version.
"""


def test_dep5_stanzas_match_installed_paths_last_match_wins(tmp_path):
    copyright_file = tmp_path / "copyright"
    copyright_file.write_text(DEP5, encoding="utf-8")
    info = wp.parse_copyright(copyright_file.read_text(encoding="utf-8"))
    assert len(info.stanzas) == 4
    assert info.stanzas[1].patterns == ("16.04/bridge_by_someone.jpg", "16.04/lake.jpg")
    cases = {
        "usr/share/backgrounds/bridge_by_someone.jpg": ("CC-BY-SA-4.0", "Some One, 2018"),
        "usr/share/backgrounds/lake.jpg": ("CC-BY-SA-4.0", "Some One, 2018"),
        "usr/share/backgrounds/mate/desktop/Stripes-Dark.png": ("CC0-1.0", "2014 Stripe Maker"),
        "usr/share/backgrounds/other/Stripes-Dark.png": ("GPL-2+", "2020 Everyone"),
        "usr/share/wallpapers/Path/contents/images/2560x1600.jpg": ("GPL-2+", "2020 Everyone"),
    }
    for path, expected in cases.items():
        assert wp.licence_for(info, path) == expected, path


def test_freeform_copyright_lists_and_package_default(tmp_path):
    copyright_file = tmp_path / "copyright"
    copyright_file.write_text(FREEFORM, encoding="utf-8")
    info = wp.parse_copyright(copyright_file.read_text(encoding="utf-8"))
    assert info.default_licence == "GPL-2+"
    assert wp.licence_for(info, "usr/share/backgrounds/gnome/adwaita-l.webp") == (
        "CC-BY-SA-3.0",
        "2011 Jakub Steiner",
    )
    assert wp.licence_for(info, "usr/share/backgrounds/gnome/Chmiri.jpg")[0] == "CC-BY-SA-3.0"
    assert wp.licence_for(info, "usr/share/backgrounds/gnome/Stones.jpg") == (
        "CC-BY-2.0",
        "2011 Felix Leupold",
    )
    assert wp.licence_for(info, "usr/share/backgrounds/gnome/blobs-d.svg") == ("GPL-2+", "")


def test_plasma_metadata_json_and_desktop():
    meta = {"KPlugin": {"Authors": [{"Name": "Risto Saukonpää", "Name[de]": "x"}], "License": "LGPLv3"}}
    assert wp.plasma_metadata(json.dumps(meta)) == ("Risto Saukonpää", "LGPLv3")
    desktop = "[Desktop Entry]\nName=Safe Landing\nX-KDE-PluginInfo-Author=Louis Durrant\nX-KDE-PluginInfo-License=CC-BY-SA-4.0\n"
    assert wp.plasma_metadata(desktop) == ("Louis Durrant", "CC-BY-SA-4.0")


# --------------------------------------------------------------------------------------------------
# split, resizing, examples


def test_split_is_a_stable_function_of_the_name():
    # Pinned: the current data set's split (changing split_of would silently reshuffle it).
    assert wp.split_of("mate-backgrounds_Dune.jpg") == "val"
    assert wp.split_of("plasma-workspace-wallpapers_Path.jpg") == "val"
    assert wp.split_of("mate-backgrounds_LadyBird.jpg") == "train"
    assert wp.split_of("mate-backgrounds_Dune.jpg", val_permille=0) == "train"
    assert wp.split_of("mate-backgrounds_LadyBird.jpg", val_permille=1000) == "val"
    names = [f"photo_{i}.jpg" for i in range(4000)]
    share = sum(wp.split_of(n) == "val" for n in names) / len(names)
    assert abs(share - wp.VAL_PERMILLE / 1000) < 0.02


def test_resize_short_side_and_centre_crop():
    image = Image.new("RGB", (1000, 400))
    assert wp.resize_short_side(image, 512).size == (1280, 512)
    assert wp.resize_short_side(image.transpose(Image.Transpose.ROTATE_90), 256).size == (256, 640)
    marked = Image.fromarray(np.arange(30 * 20, dtype=np.uint8).reshape(20, 30))
    crop = wp.centre_crop(marked, 10)
    assert crop.size == (10, 10)
    assert np.asarray(crop)[0, 0] == 5 * 30 + 10


def test_example_mask_is_binary_deterministic_and_covers_8_to_15_percent():
    mask = np.asarray(wp.example_mask())
    assert mask.shape == (512, 512)
    assert set(np.unique(mask)) == {0, 255}
    assert 0.08 <= np.mean(mask == 255) <= 0.15
    assert np.array_equal(mask, np.asarray(wp.example_mask()))


def test_committed_examples_match_the_recipe():
    mask = np.asarray(Image.open(ROOT / "examples" / "mask.png"))
    assert np.array_equal(mask, np.asarray(wp.example_mask()))
    photo = Image.open(ROOT / "examples" / "photo.png")
    assert photo.size == (512, 512) and photo.mode == "RGB"
    assert (ROOT / "examples" / "photo.png").stat().st_size < 500_000
    assert wp.EXAMPLE_ID.replace(":", "_") + ".jpg" in (ROOT / "examples" / "LICENSE.md").read_text()


# --------------------------------------------------------------------------------------------------
# end to end on a fake package (no apt)


def fake_package(root: Path) -> None:
    """An unpacked 'package' with a photo at two resolutions plus a thumbnail, a render and a vector."""
    doc = root / "usr/share/doc/fake-wallpapers"
    doc.mkdir(parents=True)
    (doc / "copyright").write_text(DEP5.replace("16.04/lake.jpg", "lake.jpg"), encoding="utf-8")
    images = root / "usr/share/wallpapers/Lake/contents/images"
    images.mkdir(parents=True)
    photo = Image.fromarray(photo_like(1600, 1000, seed=5))
    photo.save(images / "1600x1000.jpg", quality=95)
    photo.resize((1280, 800)).save(images / "1280x800.jpg", quality=95)
    photo.resize((400, 250)).save(images.parent / "screenshot.jpg")
    (images.parent.parent / "metadata.json").write_text(
        json.dumps({"KPlugin": {"Authors": [{"Name": "A. Photographer"}], "License": "LGPLv3"}}),
        encoding="utf-8",
    )
    other = root / "usr/share/backgrounds"
    other.mkdir(parents=True)
    Image.fromarray(gradient(1200, 800)).save(other / "ramp.png")
    (other / "logo.svg").write_text("<svg/>", encoding="utf-8")


def test_build_end_to_end_on_a_fake_package(tmp_path, monkeypatch):
    def fake_download(package, cache_dir):
        return tmp_path / f"{package}.deb"

    def fake_unpack(deb, dest):
        fake_package(dest)
        return "1.0-1"

    monkeypatch.setattr(wp, "apt_download", fake_download)
    monkeypatch.setattr(wp, "unpack", fake_unpack)
    out = tmp_path / "out"
    # val_permille=1000 sends every photo to val, so the val_256 crops are exercised too
    code = wp.main(["--out", str(out), "--packages", "fake-wallpapers", "--val-permille", "1000", "--review"])
    assert code == 0
    rows = list(csv.DictReader((out / "manifest.csv").open(encoding="utf-8")))
    assert len(rows) == 1
    row = rows[0]
    assert row["file"] == "val/fake-wallpapers_Lake.jpg"
    assert row["source_path"] == "/usr/share/wallpapers/Lake/contents/images/1600x1000.jpg"
    assert (row["width"], row["height"]) == ("819", "512")
    assert (row["licence"], row["author"], row["upstream_licence"]) == ("GPL-2+", "A. Photographer", "LGPLv3")
    assert len(row["sha256"]) == 64
    assert Image.open(out / row["file"]).size == (819, 512)
    assert Image.open(out / "val_256" / "fake-wallpapers_Lake.png").size == (256, 256)
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    dropped = report["packages"][0]["dropped"]
    assert dropped["fake-wallpapers:usr/share/backgrounds/logo.svg"] == "vector"
    assert dropped["fake-wallpapers:usr/share/wallpapers/Lake/contents/screenshot.jpg"] == "thumbnail"
    assert dropped["fake-wallpapers:usr/share/wallpapers/Lake/contents/images/1280x800.jpg"].startswith(
        "duplicate of"
    )
    assert dropped["fake-wallpapers:ramp"].startswith("flat fills")
    assert report["counts"] == {"val": 1}
    assert (out / "review" / "photos_1.png").is_file()


def test_unavailable_package_is_recorded_and_skipped(tmp_path, monkeypatch):
    def failing_download(package, cache_dir):
        raise RuntimeError("E: Unable to locate package no-such-wallpapers")

    monkeypatch.setattr(wp, "apt_download", failing_download)
    out = tmp_path / "out"
    assert wp.main(["--out", str(out), "--packages", "no-such-wallpapers"]) == 0
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["packages"][0]["available"] is False
    assert "Unable to locate" in report["packages"][0]["error"]
