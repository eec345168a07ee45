"""Reading and writing images and masks: orientation, metadata round trips, alpha, masks, errors."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
from helpers import ODD_IMAGES, encode, hole_rect, mask_bytes, picture, png_declaring, run_cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageCms

from dfnet.cli import main
from dfnet.imageio import (
    ImageLoadError,
    encode_image,
    format_for_path,
    hole_ratio,
    load_image,
    load_mask,
    mask_to_image,
    save_image,
)

MAKE = 0x010F
ORIENTATION = 0x0112


@pytest.fixture(scope="module")
def icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def exif_bytes(orientation: int = 1) -> bytes:
    exif = Image.Exif()
    exif[MAKE] = "dfnet-test"
    exif[ORIENTATION] = orientation
    return exif.tobytes()


def grid(height: int = 2, width: int = 3) -> np.ndarray:
    """Distinct colours per pixel, so rotations can be checked exactly."""
    values = np.arange(height * width * 3, dtype=np.uint8).reshape(height, width, 3) * 10
    return values


# ---------------------------------------------------------------------------------------------
# Orientation
# ---------------------------------------------------------------------------------------------
def test_exif_orientation_is_applied_and_reset(tmp_path):
    stored = grid()
    Image.fromarray(stored).save(tmp_path / "rotated.png", exif=exif_bytes(orientation=6))
    loaded = load_image(tmp_path / "rotated.png")
    assert np.array_equal(loaded.rgb, np.rot90(stored, k=-1))  # 6: shown rotated 90 degrees clockwise
    assert loaded.size == (2, 3)
    reopened = Image.open(io.BytesIO(encode_image(loaded.rgb, "PNG", like=loaded)))
    assert reopened.getexif()[ORIENTATION] == 1 and reopened.getexif()[MAKE] == "dfnet-test"


def test_masks_follow_orientation_too(tmp_path):
    hole = np.zeros((2, 3), dtype=np.uint8)
    hole[0, 2] = 255
    Image.fromarray(hole).save(tmp_path / "mask.png", exif=exif_bytes(orientation=6))
    loaded = load_mask(tmp_path / "mask.png")
    assert loaded.shape == (3, 2) and loaded[2, 1] and loaded.sum() == 1


# ---------------------------------------------------------------------------------------------
# Metadata and format round trips
# ---------------------------------------------------------------------------------------------
def test_jpeg_round_trip_keeps_icc_exif_and_format(tmp_path, icc):
    y, x = np.mgrid[0:64, 0:48]
    rgb = np.stack([x * 5, y * 4, (x + y) * 2], axis=2).astype(np.uint8)  # smooth: JPEG keeps it closely
    Image.fromarray(rgb).save(tmp_path / "in.jpg", quality=95, exif=exif_bytes(), icc_profile=icc)
    loaded = load_image(tmp_path / "in.jpg")
    assert loaded.format == "JPEG" and loaded.icc_profile == icc
    save_image(tmp_path / "out.jpg", loaded.rgb, like=loaded, quality=90)
    out = Image.open(tmp_path / "out.jpg")
    assert out.format == "JPEG" and out.info["icc_profile"] == icc
    assert out.getexif()[MAKE] == "dfnet-test"
    assert np.abs(np.asarray(out).astype(int) - loaded.rgb).mean() < 2


def test_jpeg_quality_is_honoured():
    rgb = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    assert len(encode_image(rgb, "JPEG", quality=40)) < len(encode_image(rgb, "JPEG", quality=95))


def test_png_round_trip_is_exact_with_alpha_icc_and_exif(tmp_path, icc):
    rgba = np.random.default_rng(2).integers(0, 256, (20, 30, 4), dtype=np.uint8)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "in.png", exif=exif_bytes(), icc_profile=icc)
    loaded = load_image(tmp_path / "in.png")
    assert np.array_equal(loaded.rgb, rgba[:, :, :3]) and np.array_equal(loaded.alpha, rgba[:, :, 3])
    save_image(tmp_path / "out.png", loaded.rgb, like=loaded)
    out = Image.open(tmp_path / "out.png")
    assert out.mode == "RGBA" and np.array_equal(np.asarray(out), rgba)
    assert out.info["icc_profile"] == icc and out.getexif()[MAKE] == "dfnet-test"


def test_webp_keeps_alpha(tmp_path):
    rgba = np.zeros((16, 16, 4), dtype=np.uint8)
    rgba[:, :, 1] = 200
    rgba[:, 8:, 3] = 255
    Image.fromarray(rgba, "RGBA").save(tmp_path / "in.webp", lossless=True)
    loaded = load_image(tmp_path / "in.webp")
    save_image(tmp_path / "out.webp", loaded.rgb, like=loaded)
    out = Image.open(tmp_path / "out.webp")
    assert out.format == "WEBP" and np.array_equal(np.asarray(out.getchannel("A")), rgba[:, :, 3])


def test_format_follows_the_suffix(tmp_path):
    assert [format_for_path(p) for p in ("a.JPG", "b.jpeg", "c.webp", "d.tif", "e.unknown")] == [
        "JPEG",
        "JPEG",
        "WEBP",
        "TIFF",
        "PNG",
    ]
    save_image(tmp_path / "x.jpg", grid())
    assert Image.open(tmp_path / "x.jpg").format == "JPEG"


def test_sixteen_bit_and_palette_images(tmp_path):
    deep = np.array([[0, 65535], [32768, 65535]], dtype=np.uint16)
    Image.fromarray(deep).save(tmp_path / "deep.png")
    assert load_image(tmp_path / "deep.png").rgb[:, :, 0].tolist() == [[0, 255], [128, 255]]
    palette = Image.new("P", (4, 4), 1)
    palette.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    palette.info["transparency"] = 0
    palette.save(tmp_path / "pal.png", transparency=0)
    loaded = load_image(tmp_path / "pal.png")
    assert loaded.rgb[0, 0].tolist() == [255, 0, 0] and loaded.alpha is not None


def test_numpy_images():
    gray = np.arange(6, dtype=np.uint8).reshape(2, 3)
    assert load_image(gray).rgb.shape == (2, 3, 3)
    with pytest.raises(ImageLoadError, match="uint8"):
        load_image(gray.astype(np.float32))


# ---------------------------------------------------------------------------------------------
# Masks
# ---------------------------------------------------------------------------------------------
def test_masks_white_is_hole_invert_and_resize(tmp_path):
    mask = np.zeros((4, 6), dtype=np.uint8)
    mask[1:3, 2:5] = 255
    mask[0, 0] = 100  # below the threshold: known
    Image.fromarray(mask).save(tmp_path / "m.png")
    hole = load_mask(tmp_path / "m.png")
    assert hole.sum() == 6 and hole[1, 2] and not hole[0, 0]
    assert load_mask(tmp_path / "m.png", invert=True).sum() == 18
    assert load_mask(tmp_path / "m.png", size=(12, 8)).sum() == 24  # nearest: every pixel doubled


def test_rgba_masks_use_alpha_when_colour_is_flat(tmp_path):
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)
    rgba[:2, :, 3] = 255  # painted strokes on a transparent layer
    Image.fromarray(rgba, "RGBA").save(tmp_path / "layer.png")
    assert load_mask(tmp_path / "layer.png").sum() == 8
    rgba[:, :, 3] = 255  # opaque black: no hole
    Image.fromarray(rgba, "RGBA").save(tmp_path / "black.png")
    assert load_mask(tmp_path / "black.png").sum() == 0


def test_hole_ratio_and_mask_image():
    hole = np.zeros((4, 5), dtype=bool)
    hole[0, :3] = True
    assert hole_ratio(hole) == pytest.approx(0.15)
    assert np.array_equal(np.asarray(mask_to_image(hole)) > 127, hole)


# ---------------------------------------------------------------------------------------------
# Errors: one line, naming the file
# ---------------------------------------------------------------------------------------------
def test_bad_files_are_one_line_errors(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.png").write_bytes(b"hello, not an image")
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(3).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(
        buffer, "PNG"
    )
    (tmp_path / "cut.png").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    Image.fromarray(grid(64, 64)).save(tmp_path / "big.png")
    cases = {
        "missing.png": ("no such file", 10**6),
        "empty.png": ("empty file", 10**6),
        "text.png": ("not a recognised image", 10**6),
        "cut.png": ("truncated", 10**6),
        "big.png": ("over the limit", 1000),
    }
    for name, (message, max_pixels) in cases.items():
        with pytest.raises(ImageLoadError, match=message) as err:
            load_image(tmp_path / name, max_pixels=max_pixels)
        assert name in str(err.value) and "\n" not in str(err.value)


# User mask files: grayscale, RGB, RGBA, palette and 16-bit pictures read as hole masks
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


def test_pixel_limit_is_configurable_and_governs_below_the_decoders_limit(tmp_path, capsys, model_file):
    path = tmp_path / "big.png"
    path.write_bytes(png_declaring(9500, 9500))  # 90 M pixels: over Pillow's warning level, under ours
    with pytest.raises(ImageLoadError, match="9500x9500 = 90,250,000 pixels, over the limit of 80,000,000"):
        load_image(path, max_pixels=80_000_000)
    small = tmp_path / "small.png"
    small.write_bytes(encode(picture(), "PNG"))
    mask = tmp_path / "mask.png"
    mask.write_bytes(mask_bytes(hole_rect(48, 64)))
    code, _, err = run_cli(
        capsys,
        "inpaint",
        small,
        mask,
        "-o",
        tmp_path / "o.png",
        "--model",
        model_file,
        "--max-pixels",
        "1000",
    )
    assert code == 1 and "64x48 = 3,072 pixels, over the limit of 1,000" in err
    with pytest.raises(SystemExit) as info:
        main(["inpaint", str(small), str(mask), "-o", str(tmp_path / "o.png"), "--max-pixels", "0"])
    assert (
        info.value.code == 2
        and "argument --max-pixels: must be in 1..2,147,483,647, got 0" in capsys.readouterr().err
    )


def test_fifo_and_broken_link_are_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)  # opening it for reading would wait forever for a writer
    link = tmp_path / "gone.png"
    link.symlink_to(tmp_path / "nowhere.png")
    with pytest.raises(ImageLoadError, match="not a regular file"):
        load_image(fifo)
    with pytest.raises(ImageLoadError, match="no such file"):
        load_image(link)


@pytest.mark.parametrize("case", sorted(ODD_IMAGES))
def test_odd_formats_load_and_inpaint_keeping_known_pixels(case, inpainter):
    data, _, expected_rgb, expected_alpha = ODD_IMAGES[case]
    loaded = load_image(data)
    assert np.array_equal(loaded.rgb, expected_rgb)
    assert (loaded.alpha is None) == (expected_alpha is None)
    if expected_alpha is not None:
        assert np.array_equal(loaded.alpha, expected_alpha)
    height, width = expected_rgb.shape[:2]
    hole = np.zeros((height, width), bool)
    hole[height // 2, width // 2] = True  # one hole pixel even at 1x1
    result = inpainter.inpaint(data, hole)
    assert result.size == (width, height) and result.mode == ("RGBA" if expected_alpha is not None else "RGB")
    array = np.asarray(result)
    assert np.array_equal(array[:, :, :3][~hole], expected_rgb[~hole])


_SAMPLE_FILES = [encode(picture(9, 11), fmt) for fmt in ("PNG", "JPEG", "WEBP", "BMP", "TIFF", "GIF")]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    which=st.integers(0, len(_SAMPLE_FILES) - 1),
    cut=st.floats(0.0, 1.0),
    flips=st.lists(st.tuples(st.floats(0.0, 1.0), st.integers(1, 255)), max_size=4),
)
def test_damaged_files_load_or_raise_image_load_error(which, cut, flips):
    data = bytearray(_SAMPLE_FILES[which][: max(0, round(len(_SAMPLE_FILES[which]) * cut))])
    for where, value in flips:  # corrupt a few bytes anywhere, headers included
        if data:
            data[min(int(where * len(data)), len(data) - 1)] ^= value
    for loader in (load_image, load_mask):
        try:
            loaded = loader(bytes(data))
        except ImageLoadError as err:
            assert "\n" not in str(err)
            continue
        shape = loaded.rgb.shape if loader is load_image else loaded.shape
        assert 0 < shape[0] * shape[1] <= 9 * 11 * 64  # decoded, and no larger than a sane header says


@settings(max_examples=40, deadline=None)
@given(
    height=st.integers(1, 24),
    width=st.integers(1, 24),
    mode=st.sampled_from(["L", "RGB", "RGBA", "LA", "P"]),
    seed=st.integers(0, 2**16),
)
def test_lossless_files_load_to_exactly_their_pixels(height, width, mode, seed):
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    alpha = rng.integers(0, 256, (height, width), dtype=np.uint8)
    if mode == "P":
        source = Image.fromarray(rgb).quantize(colors=8)
        expected_rgb, expected_alpha = np.asarray(source.convert("RGB")), None
    else:
        channels = {
            "L": rgb[:, :, :1],
            "RGB": rgb,
            "RGBA": np.dstack([rgb, alpha]),
            "LA": np.dstack([rgb[:, :, :1], alpha]),
        }
        source = Image.fromarray(np.squeeze(channels[mode], axis=2) if mode == "L" else channels[mode], mode)
        expected_rgb = np.repeat(rgb[:, :, :1], 3, axis=2) if mode in ("L", "LA") else rgb
        expected_alpha = alpha if mode in ("RGBA", "LA") else None
    loaded = load_image(encode(source, "PNG"))
    assert np.array_equal(loaded.rgb, expected_rgb)
    assert (loaded.alpha is None) == (expected_alpha is None)
    if expected_alpha is not None:
        assert np.array_equal(loaded.alpha, expected_alpha)


@settings(max_examples=40, deadline=None)
@given(
    height=st.integers(1, 24),
    width=st.integers(1, 24),
    seed=st.integers(0, 2**16),
    size=st.tuples(st.integers(1, 40), st.integers(1, 40)),
    top=st.sampled_from([1, 100, 255]),  # 0/1 masks, faint masks (no hole) and grey masks
    factor=st.tuples(st.integers(1, 3), st.integers(1, 3)),
)
@pytest.mark.filterwarnings("ignore::dfnet.imageio.EmptyMaskWarning")
def test_mask_files_threshold_invert_and_resize(height, width, seed, size, top, factor):
    grey = np.random.default_rng(seed).integers(0, top + 1, (height, width), dtype=np.uint8)
    data = encode(grey, "PNG")
    hole = load_mask(data)
    expected = grey == 1 if grey.max() == 1 else grey > 127  # a mask whose largest value is 1 is a 0/1 mask
    assert hole.dtype == bool and np.array_equal(hole, expected)
    assert np.array_equal(load_mask(data, invert=True), ~hole)
    enlarged = load_mask(data, size=(width * factor[0], height * factor[1]))  # whole factors: exact copies
    assert np.array_equal(enlarged, np.repeat(np.repeat(hole, factor[1], axis=0), factor[0], axis=1))
    resized = load_mask(data, size=size)  # any size: each pixel comes from the source pixel under it
    assert resized.shape == (size[1], size[0])
    for r, c in np.ndindex(resized.shape):
        y, x = int((r + 0.5) * height / size[1]), int((c + 0.5) * width / size[0])
        assert resized[r, c] in hole[max(0, y - 1) : y + 2, max(0, x - 1) : x + 2]


def test_a_mask_empty_after_thresholding_warns(tmp_path, capsys, model_file):
    from dfnet.imageio import EmptyMaskWarning

    faint = hole_rect(48, 64).astype(np.uint8) * 100  # painted, but no value above 127
    with pytest.warns(EmptyMaskWarning, match="brightest value is 100"):
        assert not load_mask(faint).any()
    photo, mask = tmp_path / "a.png", tmp_path / "faint.png"
    photo.write_bytes(encode(picture(), "PNG"))
    mask.write_bytes(encode(faint, "PNG"))
    code, _, err = run_cli(capsys, "inpaint", photo, mask, "-o", tmp_path / "o.png", "--model", model_file,
                           "--no-progress")  # fmt: skip
    assert code == 0
    assert "warning: a.png: the mask has no hole" in err and "Traceback" not in err
