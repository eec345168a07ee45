"""End-to-end runs of the ``dfnet`` command line on small files the tests write."""

from __future__ import annotations

import socket
import subprocess
import sys

import numpy as np
import pytest
import torch
from helpers import ODD_IMAGES, assert_one_line_error, encode, hole_rect, mask_bytes, picture, run_cli
from PIL import Image

from dfnet.checkpoint import save_model, save_released
from dfnet.cli import main
from dfnet.inference import Inpainter


@pytest.fixture
def files(tmp_path, tiny_model, photo_256, hole_256):
    Image.fromarray(photo_256).save(tmp_path / "photo.png")
    Image.fromarray(hole_256.astype(np.uint8) * 255).save(tmp_path / "mask.png")
    save_model(tiny_model, tmp_path / "model.safetensors")
    save_released(tiny_model, tmp_path / "model_places2.pth")
    return tmp_path


def test_inpaint_keeps_known_pixels_and_writes_details(files, photo_256, hole_256):
    out = files / "out" / "result.png"
    code = main(
        [
            "inpaint",
            str(files / "photo.png"),
            str(files / "mask.png"),
            "-o",
            str(out),
            "--model",
            str(files / "model.safetensors"),
            "--device",
            "cpu",
            "--save-raw",
            "--save-alpha",
        ]
    )
    assert code == 0
    result = np.asarray(Image.open(out))
    assert np.array_equal(result[~hole_256], photo_256[~hole_256])
    assert not np.array_equal(result[hole_256], photo_256[hole_256])
    assert np.asarray(Image.open(files / "out" / "result_raw.png")).shape == (256, 256, 3)
    assert np.asarray(Image.open(files / "out" / "result_alpha.png")).shape == (256, 256, 3)


def test_texture_presets_from_the_command_line(files, photo_256, hole_256, capsys):
    """--texture names a preset for any weights: fine and coarse add different detail, 0 none, all in the hole only."""

    def run(texture: str) -> np.ndarray:
        out = files / f"texture-{texture}.png"
        args = [str(files / "photo.png"), str(files / "mask.png"), "-o", str(out), "--device", "cpu"]
        model = ["--model", str(files / "model.safetensors"), "--no-progress", "--texture", texture]
        assert main(["inpaint", *args, *model]) == 0
        return np.asarray(Image.open(out))

    plain, fine, coarse = run("0"), run("fine"), run("coarse")
    assert np.array_equal(run("auto"), plain)  # auto: a checkpoint given by path keeps its own output
    for result in (fine, coarse):
        assert np.array_equal(result[~hole_256], photo_256[~hole_256])
        assert not np.array_equal(result[hole_256], plain[hole_256])
    assert not np.array_equal(fine, coarse)
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(
            [
                "inpaint",
                str(files / "photo.png"),
                str(files / "mask.png"),
                "-o",
                "x.png",
                "--texture",
                "rough",
            ]
        )
    assert "expected auto, fine, coarse or a strength" in capsys.readouterr().err


def test_released_pth_and_inverted_mask_give_same_result(files, hole_256):
    known = Image.fromarray((~hole_256).astype(np.uint8) * 255)
    known.save(files / "known.png")
    a, b = files / "a.png", files / "b.png"
    assert (
        main(
            [
                "inpaint",
                str(files / "photo.png"),
                str(files / "mask.png"),
                "-o",
                str(a),
                "--model",
                str(files / "model.safetensors"),
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "inpaint",
                str(files / "photo.png"),
                str(files / "known.png"),
                "-o",
                str(b),
                "--invert-mask",
                "--model",
                str(files / "model_places2.pth"),
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    diff = np.abs(np.asarray(Image.open(a)).astype(int) - np.asarray(Image.open(b)).astype(int))
    assert diff.max() <= 1


def test_convert_official_command(files, tmp_path):
    out = tmp_path / "converted.safetensors"
    assert main(["convert-official", str(files / "model_places2.pth"), str(out)]) == 0
    assert out.stat().st_size > 0


def test_bad_model_file_is_one_line_error(files, capsys):
    (files / "bad.pth").write_bytes(b"garbage")
    code = main(
        [
            "inpaint",
            str(files / "photo.png"),
            str(files / "mask.png"),
            "-o",
            str(files / "o.png"),
            "--model",
            str(files / "bad.pth"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "not a PyTorch checkpoint" in err


def run_inpaint(files, *args: str) -> int:
    """``dfnet inpaint`` with the tiny model on the CPU, no progress bar."""
    base = ["inpaint", *args, "--model", str(files / "model.safetensors"), "--device", "cpu", "--no-progress"]
    return main(base)


@pytest.fixture
def folder(files, photo_256, hole_256):
    """Mixed formats (png, jpg, webp) with masks matched by stem, one image without a mask."""
    images, masks = files / "images", files / "masks"
    images.mkdir()
    masks.mkdir()
    for k, suffix in enumerate(["png", "jpg", "webp"]):
        Image.fromarray(np.roll(photo_256, 30 * k, axis=1)).save(images / f"img{k}.{suffix}")
        Image.fromarray(np.roll(hole_256, 20 * k, axis=0).astype(np.uint8) * 255).save(masks / f"img{k}.png")
    Image.fromarray(photo_256).save(images / "orphan.png")
    (images / "notes.txt").write_text("not an image")
    return files


def test_folder_with_mixed_formats_reports_failures_and_keeps_going(folder, photo_256, hole_256, capsys):
    out = folder / "out"
    code = run_inpaint(
        folder, str(folder / "images"), str(folder / "masks"), "-o", str(out), "--batch-size", "2"
    )
    captured = capsys.readouterr()
    assert code == 1
    assert sorted(p.name for p in out.iterdir()) == ["img0.png", "img1.jpg", "img2.webp"]
    assert [Image.open(out / n).format for n in ("img0.png", "img1.jpg", "img2.webp")] == [
        "PNG",
        "JPEG",
        "WEBP",
    ]
    assert "inpainted 3 of 4 images" in captured.out
    assert "1 failed" in captured.err and "orphan.png: no mask named orphan" in captured.err
    result = np.asarray(Image.open(out / "img0.png"))
    assert np.array_equal(result[~hole_256], photo_256[~hole_256])


def test_batch_size_does_not_change_results(folder):
    (folder / "images" / "orphan.png").unlink()
    for size in ("1", "3"):
        args = [
            str(folder / "images"),
            str(folder / "masks"),
            "-o",
            str(folder / f"out{size}"),
            "--batch-size",
            size,
        ]
        assert run_inpaint(folder, *args) == 0
    for name in ("img0.png", "img2.webp"):
        a = np.asarray(Image.open(folder / "out1" / name)).astype(int)
        b = np.asarray(Image.open(folder / "out3" / name)).astype(int)
        assert np.abs(a - b).max() <= 1


def test_engine_choices_are_the_library_engines():
    from dfnet.cli.common import ENGINE_CHOICES
    from dfnet.inference import ENGINES

    assert ENGINE_CHOICES == ENGINES


def test_eval_method_choices_are_the_library_methods():
    from dfnet.baselines import METHODS
    from dfnet.cli import build_parser
    from dfnet.evaluation import RESIZE_CHOICES

    parser = build_parser()
    eval_parser = next(a for a in parser._actions if a.dest == "command").choices["eval"]
    method = next(a for a in eval_parser._actions if a.dest == "method")
    assert (
        method.choices
        == list(METHODS)
        == ["dfnet", "telea", "ns", "shiftmap", "fsr-fast", "pushpull", "ring-pushpull"]
    )
    resize = next(a for a in eval_parser._actions if a.dest == "resize")
    assert resize.choices == list(RESIZE_CHOICES) == ["resize_crop", "resize"]


def test_optimized_engine_on_a_folder_matches_eager(folder):
    (folder / "images" / "orphan.png").unlink()
    for engine in ("torch", "optimized"):
        args = [str(folder / "images"), str(folder / "masks"), "-o", str(folder / engine), "--engine", engine]
        assert run_inpaint(folder, *args, "--merge", "--precision", "fp32") == 0  # auto may pick int8
    for name in ("img0.png", "img0_merged.png"):  # lossless outputs; the merge panels carry raw and alpha too
        a = np.asarray(Image.open(folder / "torch" / name)).astype(int)
        b = np.asarray(Image.open(folder / "optimized" / name)).astype(int)
        assert a.shape == b.shape and np.abs(a - b).max() <= 1, name


def test_one_mask_for_all_images_and_merge_panels(folder):
    out = folder / "merged"
    code = run_inpaint(folder, str(folder / "images"), str(folder / "mask.png"), "-o", str(out), "--merge")
    assert code == 0
    merged = np.asarray(Image.open(out / "orphan_merged.png"))
    assert merged.shape == (256, 4 * 256, 3)  # input with holes, raw, alpha, result
    assert np.array_equal(merged[:, 768:], np.asarray(Image.open(out / "orphan.png")))


def test_single_file_into_a_folder_with_raw_alpha_and_resize_strategy(files):
    out_dir = files / "o"
    out_dir.mkdir()
    code = run_inpaint(
        files,
        str(files / "photo.png"),
        str(files / "mask.png"),
        "-o",
        str(out_dir),
        "--save-raw",
        "--save-alpha",
        "--strategy",
        "resize",
        "--set",
        "max_side=128",
    )
    assert code == 0
    assert sorted(p.name for p in out_dir.iterdir()) == ["photo.png", "photo_alpha.png", "photo_raw.png"]


def test_jpeg_keeps_exif_orientation_quality_and_metadata(files, photo_256):
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "dfnet-test"
    tall = photo_256[:, :128]
    Image.fromarray(tall).save(files / "tall.jpg", exif=exif.tobytes(), quality=95)
    mask = np.zeros((128, 256), dtype=np.uint8)  # the upright picture is 256 wide, 128 tall
    mask[40:60, 100:150] = 255
    Image.fromarray(mask).save(files / "tall_mask.png")
    sizes = {}
    for quality in ("50", "95"):
        out = files / f"q{quality}.jpg"
        assert (
            run_inpaint(
                files,
                str(files / "tall.jpg"),
                str(files / "tall_mask.png"),
                "-o",
                str(out),
                "--quality",
                quality,
            )
            == 0
        )
        image = Image.open(out)
        assert image.format == "JPEG" and image.size == (256, 128)
        assert image.getexif()[0x0112] == 1 and image.getexif()[0x010F] == "dfnet-test"
        sizes[quality] = out.stat().st_size
    assert sizes["50"] < sizes["95"]


def test_mostly_hole_mask_warns(files, capsys):
    Image.new("L", (256, 256), 255).save(files / "white.png")
    assert (
        run_inpaint(files, str(files / "photo.png"), str(files / "white.png"), "-o", str(files / "w.png"))
        == 0
    )
    assert "100% of the mask is hole; is it inverted?" in capsys.readouterr().err


def test_mask_size_mismatch_fails_unless_resized(files, capsys):
    Image.new("L", (64, 64), 0).save(files / "small.png")
    assert (
        run_inpaint(files, str(files / "photo.png"), str(files / "small.png"), "-o", str(files / "s.png"))
        == 1
    )
    assert "64x64 but the image is 256x256" in capsys.readouterr().err
    args = [str(files / "photo.png"), str(files / "small.png"), "-o", str(files / "s.png"), "--resize-mask"]
    assert run_inpaint(files, *args) == 0


def test_usage_errors_are_one_line(files, capsys):
    bad_option = [
        str(files / "photo.png"),
        str(files / "mask.png"),
        "-o",
        str(files / "x.png"),
        "--set",
        "tile=3",
    ]
    assert run_inpaint(files, *bad_option) == 1
    assert "has no option 'tile'" in capsys.readouterr().err
    assert run_inpaint(files, str(files / "images"), str(files / "mask.png"), "-o", str(files / "x")) == 1
    assert "no such file or folder" in capsys.readouterr().err


def test_onnxruntime_engine_from_the_command_line(files, photo_256, hole_256):
    onnx_path = files / "model.onnx"
    assert (
        main(
            [
                "export",
                "--model",
                str(files / "model.safetensors"),
                "--size",
                "256",
                "-o",
                str(onnx_path),
                "--no-verify",
            ]
        )
        == 0
    )
    out_t, out_o = files / "t.png", files / "o.png"
    assert run_inpaint(files, str(files / "photo.png"), str(files / "mask.png"), "-o", str(out_t)) == 0
    args = ["inpaint", str(files / "photo.png"), str(files / "mask.png"), "-o", str(out_o), "--no-progress"]
    assert main([*args, "--model", str(onnx_path), "--engine", "onnxruntime"]) == 0
    diff = np.abs(np.asarray(Image.open(out_t)).astype(int) - np.asarray(Image.open(out_o)).astype(int))
    assert diff.max() <= 1


def test_default_model_missing_is_a_one_line_error(files, capsys, monkeypatch, tmp_path):
    import dfnet.inference

    monkeypatch.setattr(dfnet.inference, "DEFAULT_MODEL", tmp_path / "absent.safetensors")
    code = main(["inpaint", str(files / "photo.png"), str(files / "mask.png"), "-o", str(files / "d.png")])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "default model is not bundled" in err


def test_console_script_runs_as_module(files):
    proc = subprocess.run(
        [sys.executable, "-m", "dfnet.cli", "--help"], capture_output=True, text=True, check=True
    )
    assert "inpaint" in proc.stdout


def test_odd_formats_through_the_command_line_folder_mode(tmp_path, capsys, model_file):
    images, masks, out = tmp_path / "images", tmp_path / "masks", tmp_path / "out"
    images.mkdir(), masks.mkdir()
    for name, (data, suffix, rgb, _) in ODD_IMAGES.items():
        (images / f"{name}{suffix}").write_bytes(data)
        hole = np.zeros(rgb.shape[:2], bool)
        hole[rgb.shape[0] // 2, rgb.shape[1] // 2] = True
        (masks / f"{name}.png").write_bytes(mask_bytes(hole))
    code, stdout, err = run_cli(
        capsys, "inpaint", images, masks, "-o", out, "--model", model_file, "--no-progress"
    )
    assert code == 0, err
    assert f"inpainted {len(ODD_IMAGES)} of {len(ODD_IMAGES)} images" in stdout
    for name, (_, suffix, rgb, alpha) in ODD_IMAGES.items():
        written = Image.open(out / f"{name}{suffix}")
        assert written.size == (rgb.shape[1], rgb.shape[0])
        assert (written.mode == "RGBA") == (alpha is not None)
        if suffix == ".png":  # lossless: known pixels are exactly the loaded ones
            hole = np.asarray(Image.open(masks / f"{name}.png")) > 127
            assert np.array_equal(np.asarray(written)[:, :, :3][~hole], rgb[~hole])


def test_mask_without_hole_returns_the_input_from_the_command_line(tmp_path, capsys, model_file):
    rgb = picture()
    (tmp_path / "in.png").write_bytes(encode(rgb, "PNG"))
    (tmp_path / "none.png").write_bytes(mask_bytes(np.zeros((48, 64), bool)))
    code, _, err = run_cli(capsys, "inpaint", tmp_path / "in.png", tmp_path / "none.png", "-o", tmp_path / "o.png",
                           "--model", model_file, "--no-progress")  # fmt: skip
    assert code == 0, err
    assert np.array_equal(np.asarray(Image.open(tmp_path / "o.png")), rgb)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_a_device_this_machine_lacks_is_one_line_everywhere(tmp_path, capsys, model_file):
    with pytest.raises(ValueError, match="CUDA is not available on this machine"):
        Inpainter.from_pretrained(model_file, device="cuda")
    with pytest.raises(ValueError, match="unknown device 'gpu0'"):
        Inpainter.from_pretrained(model_file, device="gpu0")
    photo, mask = tmp_path / "a.png", tmp_path / "m.png"
    photo.write_bytes(encode(picture(), "PNG"))
    mask.write_bytes(mask_bytes(hole_rect(48, 64)))
    code, _, err = run_cli(capsys, "inpaint", photo, mask, "-o", tmp_path / "o.png", "--model", model_file,
                           "--device", "cuda", "--no-progress")  # fmt: skip
    assert code == 1
    assert_one_line_error(err, "inpaint", "CUDA is not available")
    for device, fragment in (("cuda", "CUDA is not available"), ("tpu", "unknown device 'tpu'")):
        code, _, err = run_cli(capsys, "serve", "--model", model_file, "--device", device, "--port", "0")
        assert code == 1
        assert_one_line_error(err, "serve", fragment)


def test_serve_on_a_port_in_use_or_out_of_range_is_one_line(capsys, model_file):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        code, _, err = run_cli(capsys, "serve", "--model", model_file, "--port", port)
    assert code == 1
    assert_one_line_error(err, "serve", f"cannot listen on 127.0.0.1:{port}", "in use")
    for port in ("70000", "-1", "http"):
        with pytest.raises(SystemExit) as info:
            main(["serve", "--port", port])
        assert info.value.code == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err and "argument --port:" in err.splitlines()[-1]


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "1e300"])
def test_a_non_finite_strategy_option_is_one_line(value, tmp_path, capsys, model_file, inpainter):
    photo, mask = tmp_path / "a.png", tmp_path / "m.png"
    photo.write_bytes(encode(picture(), "PNG"))
    mask.write_bytes(mask_bytes(hole_rect(48, 64)))
    code, _, err = run_cli(capsys, "inpaint", photo, mask, "-o", tmp_path / "o.png", "--model", model_file,
                           "--strategy", "resize", "--set", f"max_side={value}", "--no-progress")  # fmt: skip
    assert code == 1
    assert_one_line_error(err, "inpaint", "max_side")
    assert not (tmp_path / "o.png").exists()
    with pytest.raises(ValueError, match="strategy option max_side must be"):
        inpainter.inpaint(picture(), hole_rect(48, 64), strategy="resize", max_side=float(value))
