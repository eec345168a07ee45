"""dfnet.photo_dataset.photos: the photo rules, their statistics, picture names and duplicate groups."""

from __future__ import annotations

import io

import numpy as np
import pytest
from helpers import gradient, photo_like
from PIL import Image

from dfnet.photo_dataset import photos as wp


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
# textures


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("x.pk3!/textures/walls/brick_norm.tga", "norm map"),
        ("x.pk3!/textures/tex_buildings/floor021_nm.png", "nm map"),
        ("x.pk3!/textures/walls/brick_gloss.jpg", "gloss map"),
        ("x.pk3!/textures/walls/lamp_Glow.tga", "glow map"),
        ("x.pk3!/textures/models/player_shirt.tga", "shirt map"),
        ("x.pk3!/textures/walls/brick.svg", "vector"),
        ("x.pk3!/textures/walls/brick.tga", None),
        ("x.pk3!/textures/cockpit.tga", "model skin (not in a material set's folder)"),
        ("x.pk3!/textures/walls/normandy.tga", None),  # "norm" only as a suffix
    ],
)
def test_texture_name_rule_drops_material_maps(path, reason):
    assert wp.texture_name_rule(path) == reason


def test_archive_members_are_named_with_their_folders():
    path = "usr/share/games/x/data/textures.pk3!/textures/evil1_walls/bigblock_d.tga"
    assert wp.picture_name(path) == "evil1_walls/bigblock"
    assert wp.picture_name("a.pk3!/textures/b/wall.jpg") != wp.picture_name("a.pk3!/textures/c/wall.jpg")


def test_texture_rules_accept_lossless_files_and_reject_grey_and_normal_maps():
    texture = wp.rules_for("texture").photo
    assert wp.is_photo(stats(jpeg=False, chroma=20.0, mean_rgb=(120.0, 100.0, 90.0)), texture)[0]
    assert wp.is_photo(stats(jpeg=False))[1].startswith("not a JPEG")  # scenes keep the JPEG rule
    grey, reason = wp.is_photo(stats(chroma=texture.min_chroma - 0.5), texture)
    assert (grey, reason[:4]) == (False, "grey")
    assert wp.is_photo(stats(chroma=0.0))[0]  # scenes have no grey rule
    normal = stats(chroma=120.0, mean_rgb=(128.0, 127.0, 250.0))
    assert wp.is_photo(normal, texture) == (False, "normal map colours")
    assert not wp.looks_like_normal_map((70.0, 120.0, 200.0))  # a blue photo is not: red far from 128


def test_image_stats_measure_chroma_and_mean_colour():
    pixels = np.zeros((16, 16, 3), np.uint8)
    pixels[..., 0], pixels[..., 1], pixels[..., 2] = 100, 130, 250
    measured = wp.image_stats(Image.fromarray(pixels))
    assert measured.chroma == 150.0
    assert measured.mean_rgb == (100.0, 130.0, 250.0)


def test_rules_for_kinds_and_sizes():
    assert wp.rules_for("scene").size_rule(700, 1000) == "small (700x1000)"
    assert wp.rules_for("texture").size_rule(512, 512) is None
    assert wp.rules_for("texture").size_rule(256, 512) == "small (256x512)"
    with pytest.raises(ValueError, match="unknown source kind 'photo'"):
        wp.rules_for("photo")


def test_same_picture_pairs_agree_with_same_picture():
    base = photo_like(64, 40, seed=11)
    arrays = [
        base,
        np.clip(base.astype(int) + 3, 0, 255).astype(np.uint8),
        base[:, :40],
        photo_like(64, 40, seed=12),
    ]
    arrays += [np.asarray(Image.fromarray(base).resize((96, 60))), base[:, ::-1]]
    cands = [candidate(f"x/{i}.jpg", a) for i, a in enumerate(arrays)]
    expected = [(i, j) for i in range(6) for j in range(i + 1, 6) if wp.same_picture(cands[i], cands[j])]
    assert wp.same_picture_pairs(cands) == expected
    assert (
        (0, 1) in expected and (0, 4) in expected and (0, 2) not in expected
    )  # the test covers both answers
    assert wp.same_picture_pairs([]) == []
