"""dfnet.photo_dataset.build and scripts/build_wallpaper_dataset.py: split, and whole builds of fake packages."""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import zipfile
from pathlib import Path

import numpy as np
from helpers import DEP5, gradient, photo_like
from PIL import Image

from dfnet.photo_dataset import build as wp
from dfnet.photo_dataset import debian
from dfnet.photo_dataset.photos import PhotoStats
from dfnet.photo_dataset.sources import TEXTURE

ROOT = Path(__file__).resolve().parents[1]


def _load_script():
    spec = importlib.util.spec_from_file_location(
        "build_wallpaper_dataset", ROOT / "scripts" / "build_wallpaper_dataset.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


script = _load_script()


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

    monkeypatch.setattr(debian, "apt_download", fake_download)
    monkeypatch.setattr(debian, "unpack", fake_unpack)
    out = tmp_path / "out"
    # val_permille=1000 sends every photo to val, so the val_256 crops are exercised too
    args = ["--out", str(out), "--packages", "fake-wallpapers", "--texture-packages"]  # no texture package
    code = script.main([*args, "--val-permille", "1000", "--review"])
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

    monkeypatch.setattr(debian, "apt_download", failing_download)
    out = tmp_path / "out"
    assert script.main(["--out", str(out), "--packages", "no-such-wallpapers", "--texture-packages"]) == 0
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["packages"][0]["available"] is False
    assert "Unable to locate" in report["packages"][0]["error"]


def fake_texture_package(root: Path) -> None:
    """An unpacked game-texture 'package': a .pk3 with two photo tiles of one name, maps and a small tile."""
    doc = root / "usr/share/doc/fake-textures"
    doc.mkdir(parents=True)
    (doc / "copyright").write_text(DEP5, encoding="utf-8")
    data = root / "usr/share/games/fake/data"
    data.mkdir(parents=True)
    grey = np.repeat(photo_like(512, 512, seed=8)[..., :1], 3, axis=2)
    normal = np.clip(photo_like(512, 512, seed=9) // 2 + np.array([64, 64, 180]), 0, 255).astype(np.uint8)
    tiles = {
        "textures/walls/brick.tga": photo_like(512, 512, seed=6),
        "textures/floors/brick.tga": photo_like(1024, 1024, seed=7),  # same name, other folder
        "textures/walls/brick_norm.tga": normal,
        "textures/walls/plate.tga": normal,  # a normal map without the suffix
        "textures/walls/concrete.tga": grey,  # a grey map without the suffix
        "textures/walls/small.tga": photo_like(256, 256, seed=10),
        "textures/skin.tga": photo_like(512, 512, seed=11),  # a model skin
    }
    with zipfile.ZipFile(data / "textures.pk3", "w") as archive:
        for name, pixels in tiles.items():
            buffer = io.BytesIO()
            Image.fromarray(pixels).save(buffer, "TGA" if name.endswith(".tga") else "JPEG", quality=95)
            archive.writestr(name, buffer.getvalue())


def test_texture_package_in_an_archive_is_unpacked_filtered_and_tagged(tmp_path, monkeypatch):
    def fake_download(package, cache_dir):
        return tmp_path / f"{package}.deb"

    def fake_dpkg_x(deb, dest):  # what dpkg -x does, then the real archive step
        (fake_texture_package if "textures" in deb.name else fake_package)(dest)
        debian.unpack_archives(dest)
        return "1.0-1"

    monkeypatch.setattr(debian, "apt_download", fake_download)
    monkeypatch.setattr(debian, "unpack", fake_dpkg_x)
    out = tmp_path / "out"
    args = ["--out", str(out), "--packages", "fake-wallpapers", "--texture-packages", "fake-textures"]
    assert script.main([*args, "--val-permille", "0", "--review"]) == 0
    rows = list(csv.DictReader((out / "manifest.csv").open(encoding="utf-8")))
    assert [(r["file"], r["kind"]) for r in rows] == [
        ("train/fake-textures_floors_brick.jpg", "texture"),
        ("train/fake-textures_walls_brick.jpg", "texture"),
        ("train/fake-wallpapers_Lake.jpg", "scene"),
    ]
    assert rows[0]["source_path"] == "/usr/share/games/fake/data/textures.pk3!/textures/floors/brick.tga"
    assert (rows[0]["width"], rows[0]["height"], rows[1]["width"]) == ("512", "512", "512")
    assert rows[1]["licence"] == "GPL-2+"
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    dropped = report["packages"][1]["dropped"]
    prefix = "fake-textures:usr/share/games/fake/data/textures.pk3!/textures/walls/"
    assert dropped[prefix + "brick_norm.tga"] == "norm map"
    assert dropped[prefix + "small.tga"] == "small (256x256)"
    assert dropped[prefix[: -len("walls/")] + "skin.tga"].startswith("model skin")
    assert dropped["fake-textures:walls/plate"] == "normal map colours"
    assert dropped["fake-textures:walls/concrete"].startswith("grey")
    assert report["kinds"] == {"scene/train": 1, "texture/train": 2}
    assert (out / "review" / "texture_photos_1.png").is_file()


def test_copies_across_texture_packages_keep_the_first_package_only(tmp_path):
    pixels = photo_like(512, 512, seed=12)
    paths = {"a": tmp_path / "a.png", "b": tmp_path / "b.png", "c": tmp_path / "c.png"}
    Image.fromarray(pixels).save(paths["a"])
    Image.fromarray(pixels).resize((1024, 1024)).save(paths["b"])  # the same picture, larger, elsewhere
    Image.fromarray(photo_like(512, 512, seed=13)).save(paths["c"])

    def picture(package, name):
        stats = PhotoStats(False, 0.0, 1.0, 0.8, "", False)
        return wp.Picture(
            f"{package}:{name}", package, name, paths[name], 512, 512, stats, True, "photo", TEXTURE
        )

    pictures = [picture("pkg1", "a"), picture("pkg2", "b"), picture("pkg2", "c")]
    results = [
        debian.PackageResult("pkg1", kept=["pkg1:a"]),
        debian.PackageResult("pkg2", kept=["pkg2:b", "pkg2:c"]),
    ]
    wp.drop_copies_across_packages(pictures, results)
    assert [p.photo for p in pictures] == [True, False, True]
    assert pictures[1].reason == "same picture as pkg1:a"
    assert results[1].kept == ["pkg2:c"] and results[1].dropped == {"pkg2:b": "same picture as pkg1:a"}


def test_script_reads_scenes_by_default_and_textures_on_request():
    def kinds(argv):
        return [(s.package, s.kind) for s in script.parse_args(argv).sources]

    scenes = kinds([])
    assert scenes[0] == ("gnome-backgrounds", "scene") and len(scenes) == 6
    assert {k for _, k in scenes} == {"scene"}
    assert kinds(["--textures"])[6:] == [
        ("nexuiz-textures", "texture"),
        ("ufoai-textures", "texture"),
        ("openarena-081-textures", "texture"),
    ]
    assert kinds(["--packages", "a", "--texture-packages", "b"]) == [("a", "scene"), ("b", "texture")]
    assert [s.package for s in wp.BuildOptions().sources] == [p for p, _ in scenes]
