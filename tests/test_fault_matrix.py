"""The fault matrix of docs/reliability.md: each test reproduces one hostile or unlucky case as a user
meets it (the command line, the library or ``dfnet serve``, often all three) and checks the promised
behaviour: a one-line error naming the file, field or option, nothing overwritten, nothing half written.
Cases that belong to one module live in that module's test file.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import pickle
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import (
    assert_nothing_half_written,
    assert_one_line_error,
    encode,
    files_in,
    hole_rect,
    jpeg_declaring,
    mask_bytes,
    mount_tmpfs,
    picture,
    png_declaring,
    post,
    run_cli,
    truncated,
)
from PIL import Image
from safetensors.torch import save_file

import dfnet
from dfnet.checkpoint import CheckpointError, load_model, save_model, save_released
from dfnet.imageio import ImageLoadError, load_image, load_mask
from dfnet.inference import Inpainter
from dfnet.model import DFNet, DFNetConfig

SOURCE = Path(dfnet.__file__).resolve().parents[1]  # the dfnet under test, for subprocesses


def small_released() -> DFNet:
    torch.manual_seed(0)
    return DFNet(DFNetConfig(width=0.125, encoder_kernels=(3, 3, 3), fusion_layers=(0, 1))).eval()


def photo_folder(folder: Path, count: int = 2, size: int = 64) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        (folder / f"p{i}.png").write_bytes(encode(picture(size, size, seed=i), "PNG"))
    return folder


def photo_and_mask(folder: Path) -> tuple[Path, Path]:
    photo, mask = folder / "a.png", folder / "m.png"
    photo.write_bytes(encode(picture(), "PNG"))
    mask.write_bytes(mask_bytes(hole_rect(48, 64)))
    return photo, mask


# ---------------------------------------------------------------------------------------------
# 1. The output guard knows every file a command reads
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", [["--name", "index"], []], ids=["named-index", "default-name"])
def test_eval_into_the_folder_of_its_mask_index_is_refused(name, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run_cli(capsys, "masks", "generate", "ms", "--count", "6", "--size", "64")[0] == 0
    photo_folder(tmp_path / "gt")
    before = files_in(tmp_path)
    code, out, err = run_cli(capsys, "eval", "--images", "gt", "--masks", "ms/index.csv", "--method", "telea",
                             "--out", "ms", *name, "--size", "64", "--workers", "0", "--quiet")  # fmt: skip
    assert code == 1 and out == ""
    assert_one_line_error(err, "eval", "ms", "is the input folder", "--overwrite")
    assert files_in(tmp_path) == before  # the index (and every mask) unchanged, no report


def test_eval_report_over_a_weights_file_is_refused(tmp_path, capsys):
    photos = photo_folder(tmp_path / "gt")
    (tmp_path / "masks").mkdir()
    (tmp_path / "masks" / "m.png").write_bytes(mask_bytes(hole_rect(64, 64)))
    reports = tmp_path / "reports"
    reports.mkdir()
    weights = reports / "telea.json"  # where the report would go
    weights.write_bytes(b"{}")
    code, _, err = run_cli(capsys, "eval", "--images", photos, "--masks", tmp_path / "masks", "--method", "telea",
                           "--out", reports, "--fid-weights", weights, "--size", "64", "--workers", "0",
                           "--quiet")  # fmt: skip
    assert code == 1
    assert_one_line_error(err, "eval", "telea.json", "is the input file")
    assert weights.read_bytes() == b"{}"


def test_inpaint_over_its_own_weights_is_refused(tmp_path, capsys, model_file):
    photo, mask = photo_and_mask(tmp_path)
    weights = tmp_path / "w.safetensors"
    weights.write_bytes(model_file.read_bytes())
    code, _, err = run_cli(capsys, "inpaint", photo, mask, "-o", weights, "--model", weights, "--no-progress")
    assert code == 1
    assert_one_line_error(err, "inpaint", "w.safetensors", "is the input file")
    assert weights.read_bytes() == model_file.read_bytes()


def test_train_refuses_a_run_that_would_replace_its_config_file(tmp_path, capsys):
    run_dir = tmp_path / "out" / "run"
    run_dir.mkdir(parents=True)
    config = run_dir / "config.yaml"
    config.write_text("base: smoke\noutput:\n  name: run\n")
    before = files_in(tmp_path)
    code, _, err = run_cli(capsys, "train", "--config", config, f"output.dir={tmp_path / 'out'}")
    assert code == 1
    assert_one_line_error(err, "train", "config.yaml", "is the input file")
    assert files_in(tmp_path) == before


# ---------------------------------------------------------------------------------------------
# 2. Deeply nested JSON in a weights file's metadata
# ---------------------------------------------------------------------------------------------
NESTED = {"arrays": "[" * 100_000, "objects": '{"a":' * 50_000}


@pytest.mark.parametrize("case", sorted(NESTED))
def test_deeply_nested_config_metadata_is_one_line_everywhere(case, tmp_path, capsys):
    weights = tmp_path / "nested.safetensors"
    save_file({"w": torch.zeros(1)}, weights, metadata={"format": "dfnet", "config": NESTED[case]})
    photo, mask = photo_and_mask(tmp_path)
    commands = {
        "inpaint": ["inpaint", photo, mask, "-o", tmp_path / "o.png", "--model", weights, "--no-progress"],
        "serve": ["serve", "--model", weights, "--port", "0", "--engine", "torch"],
        "export-checkpoint": ["export-checkpoint", weights, tmp_path / "o.safetensors"],
    }
    for command, argv in commands.items():
        code, _, err = run_cli(capsys, *argv)
        assert code == 1, command
        assert_one_line_error(err, command, str(weights), "metadata field 'config'", "nested")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "m.png", "nested.safetensors"]


# ---------------------------------------------------------------------------------------------
# 5. Values in a weights file's metadata are checked when read
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["nan", "-256", "99999999999", "0", "12.5", ""])
def test_a_bad_working_size_in_metadata_names_file_field_and_range(value, tmp_path, capsys):
    from dfnet.checkpoint import save_model

    weights = tmp_path / "w.safetensors"
    torch.manual_seed(0)
    save_model(DFNet(DFNetConfig(width=0.125)).eval(), weights, metadata={"working_size": value})
    message = f"{weights}: metadata field 'working_size' must be a whole number in 1..16,384, got '{value}'"
    with pytest.raises(CheckpointError) as info:
        Inpainter.from_pretrained(weights, device="cpu")
    assert str(info.value) == message
    photo, mask = photo_and_mask(tmp_path)
    code, _, err = run_cli(capsys, "inpaint", photo, mask, "-o", tmp_path / "o.png", "--model", weights,
                           "--strategy", "crop", "--no-progress")  # fmt: skip
    assert code == 1
    assert err.strip() == f"dfnet inpaint: error: {message}"  # not blamed on min_window
    assert not (tmp_path / "o.png").exists()


def test_a_good_working_size_in_metadata_is_used(tmp_path, model_file):
    assert Inpainter.from_pretrained(model_file, device="cpu").working_size == 256


# ---------------------------------------------------------------------------------------------
# 6. Messages that name the file and say what is wrong
# ---------------------------------------------------------------------------------------------
def test_a_released_pth_with_a_missing_or_extra_key_names_the_file(tmp_path, capsys):
    released = tmp_path / "r.pth"
    save_released(small_released(), released)
    state = torch.load(released, weights_only=True)
    first = next(iter(state))
    cases = {
        "missing.pth": {k: v for k, v in state.items() if k != "fuse_0.map2img.0.conv.weight"},
        "extra.pth": {**state, "en_0.encode.9.surprise": torch.zeros(1)},
        "renamed.pth": {
            **{k: v for k, v in state.items() if k != first},
            "en_0.encode.0.conv.1.wieght": state[first],
        },
    }
    for name, broken in cases.items():
        path = tmp_path / name
        torch.save(broken, path)
        with pytest.raises(CheckpointError, match=f"^{re.escape(str(path))}: "):
            load_model(path)
        code, _, err = run_cli(capsys, "convert-official", path, tmp_path / "out.safetensors")
        assert code == 1
        assert_one_line_error(err, "convert-official", str(path))
    assert not (tmp_path / "out.safetensors").exists()


def test_a_state_dict_wrapped_in_a_state_dict_entry_loads(tmp_path):
    model = small_released()
    released = tmp_path / "r.pth"
    save_released(model, released)
    wrapped = tmp_path / "wrapped.pth"
    torch.save({"state_dict": torch.load(released, weights_only=True)}, wrapped)
    loaded = load_model(wrapped)
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


def test_a_mapping_without_tensors_says_what_it_holds(tmp_path):
    path = tmp_path / "notes.pth"
    torch.save({"state_dict": {"lr": 0.1, "epoch": 3}}, path)
    with pytest.raises(
        CheckpointError, match=r"notes\.pth: holds no tensors \(2 entries, such as 'lr', 'epoch'\)"
    ):
        load_model(path)


def test_eval_with_a_mask_index_pointing_outside_its_folder_says_so(tmp_path, capsys):
    photos = photo_folder(tmp_path / "gt")
    ms = tmp_path / "ms"
    ms.mkdir()
    (ms / "index.csv").write_text("file,hole_ratio,bin\n../gone.png,0.1,1\n../../x/m.png,0.2,2\n")
    code, _, err = run_cli(capsys, "eval", "--images", photos, "--masks", ms / "index.csv", "--method", "telea",
                           "--out", tmp_path / "r", "--size", "64", "--workers", "0", "--quiet")  # fmt: skip
    assert code == 1
    assert_one_line_error(err, "eval", f"{ms / 'index.csv'}: no usable mask: 2 of 2 could not be read",
                          f"(first: {ms / '../gone.png'}: ")  # fmt: skip
    assert "paper's bins" not in err
    assert not (tmp_path / "r").exists()


def test_a_folder_run_lists_write_failures_without_exception_class_names(broken_folder, tmp_path, capsys):
    folder, reason = broken_folder
    photos = photo_folder(tmp_path / "photos")
    mask = tmp_path / "m.png"
    mask.write_bytes(mask_bytes(hole_rect(64, 64)))
    weights = tmp_path / "w.safetensors"
    torch.manual_seed(0)
    from dfnet.checkpoint import save_model

    save_model(DFNet(DFNetConfig(width=0.125)).eval(), weights, metadata={"working_size": 256})
    code, _, err = run_cli(capsys, "inpaint", photos, mask, "-o", folder / "out", "--model", weights,
                           "--no-progress")  # fmt: skip
    assert code == 1
    assert "Error:" not in err and "Traceback" not in err, err
    for i in range(2):
        line = next(line for line in err.splitlines() if line.strip().startswith(str(photos / f"p{i}.png")))
        assert (
            line.strip() == f"{photos / f'p{i}.png'}: {folder / 'out' / f'p{i}.png'}: cannot write ({reason})"
        )


# ---------------------------------------------------------------------------------------------
# 7. Strategy options checked where they are parsed; unusable folder entries listed
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("setting", "strategy", "message"),
    [
        ("max_side=-1", "resize", "strategy option max_side must be a whole number in 1..1,000,000, got -1"),
        ("context=0", "crop", "strategy option context must be a number in 1..1,000,000, got 0"),
        ("feather=-5", "crop", "strategy option feather must be a whole number in 0..1,000,000, got -5"),
        (
            "min_window=2.5",
            "auto",
            "strategy option min_window must be a whole number in 1..1,000,000, got 2.5",
        ),
    ],
)
def test_a_strategy_option_out_of_range_is_refused_before_the_model_loads(
    setting, strategy, message, tmp_path, capsys
):
    photo, mask = photo_and_mask(tmp_path)
    missing_model = tmp_path / "not-there.safetensors"  # loading it would fail: the option is refused first
    code, _, err = run_cli(capsys, "inpaint", photo, mask, "-o", tmp_path / "o.png", "--model", missing_model,
                           "--strategy", strategy, "--set", setting, "--no-progress")  # fmt: skip
    assert code == 1
    assert err.strip() == f"dfnet inpaint: error: --set: {message}"
    assert not (tmp_path / "o.png").exists()


def test_every_strategy_option_has_a_range():
    from dfnet.strategies import OPTION_RANGES, STRATEGIES, check_options, strategy_options

    names = {option for name in STRATEGIES for option in strategy_options(name)}
    assert names == set(OPTION_RANGES)
    check_options("auto", {"trigger": 1, "context": 1, "min_window": 1, "max_side": 1, "feather": 0})
    check_options("crop", {"context": 1.5, "max_side": 1_000_000, "feather": None})


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs need a POSIX system")
def test_a_fifo_and_a_broken_link_in_an_input_folder_are_listed_as_skipped(tmp_path, capsys, model_file):
    photos = photo_folder(tmp_path / "photos", count=1)
    os.mkfifo(photos / "fifo.png")
    (photos / "gone.png").symlink_to(tmp_path / "deleted.png")
    mask = tmp_path / "m.png"
    mask.write_bytes(mask_bytes(hole_rect(64, 64)))
    started = time.monotonic()
    code, out, err = run_cli(capsys, "inpaint", photos, mask, "-o", tmp_path / "out", "--model", model_file,
                             "--no-progress")  # fmt: skip
    assert time.monotonic() - started < 60  # the FIFO was never opened (that would block)
    assert code == 0 and "inpainted 1 of 1 image" in out
    assert f"warning: skipped {photos / 'fifo.png'}: not a regular file (a FIFO, socket or device)" in err
    assert f"warning: skipped {photos / 'gone.png'}: a broken link" in err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["p0.png"]


# ---------------------------------------------------------------------------------------------
# 8. An image's outputs are written all or none
# ---------------------------------------------------------------------------------------------
@contextlib.contextmanager
def disk_with_room(folder: Path, room: int, monkeypatch) -> Iterator[None]:
    """``folder`` on a tmpfs holding only ``room`` more bytes (root on Linux); elsewhere an injected
    ENOSPC when a merged picture is put in place."""
    folder.mkdir()
    if mount_tmpfs(folder, "size=1m"):
        try:
            with contextlib.suppress(OSError), open(folder / ".filler", "wb") as filler:
                while True:
                    filler.write(b"\0" * 4096)
                    filler.flush()
            os.truncate(folder / ".filler", max(0, (folder / ".filler").stat().st_size - room))
            yield
        finally:
            subprocess.run(["umount", "-l", str(folder)], check=False)
        return
    fail_renames_onto(monkeypatch, "_merged.png", errno.ENOSPC)
    yield


def fail_renames_onto(monkeypatch, suffix: str, code: int) -> None:
    """Make ``os.replace`` fail with ``code`` for every target whose name ends with ``suffix``."""
    real_replace = os.replace

    def failing_replace(src, dst, *args, **kwargs):
        if str(dst).endswith(suffix):
            raise OSError(code, os.strerror(code), str(dst))
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", failing_replace)


def test_inpaint_merge_on_a_full_disk_leaves_neither_file(tmp_path, capsys, monkeypatch, model_file):
    photo, mask = tmp_path / "z.png", tmp_path / "m.png"
    photo.write_bytes(encode(np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8), "PNG"))
    mask.write_bytes(mask_bytes(hole_rect(64, 64)))
    args = ["inpaint", photo, mask, "--model", model_file, "--merge", "--no-progress"]
    assert run_cli(capsys, *args, "-o", tmp_path / "roomy" / "z.png")[0] == 0
    result, merged = (
        (tmp_path / "roomy" / "z.png").stat().st_size,
        (tmp_path / "roomy" / "z_merged.png").stat().st_size,
    )
    room = result + 8192  # the result fits, the merged picture does not
    assert merged > room
    full = tmp_path / "full"
    with disk_with_room(full, room, monkeypatch):
        code, _, err = run_cli(capsys, *args, "-o", full / "z.png")
        left = sorted(p.name for p in full.iterdir() if p.name != ".filler")
    assert code == 1 and "Traceback" not in err
    assert f"{photo}: " in err and "No space left on device" in err
    assert left == []  # neither z.png nor z_merged.png, no temporary file


def test_a_group_write_puts_every_file_in_place_or_none(tmp_path, monkeypatch):
    from dfnet.files import WriteError, atomic_write_files

    atomic_write_files({tmp_path / "a.txt": b"a", tmp_path / "sub" / "b.txt": b"b"})
    assert (tmp_path / "a.txt").read_bytes() == b"a" and (tmp_path / "sub" / "b.txt").read_bytes() == b"b"
    fail_renames_onto(monkeypatch, "d.txt", errno.EIO)  # c.txt is in place by then: it must go again
    with pytest.raises(WriteError, match=r"d\.txt: cannot write \(Input/output error\)"):
        atomic_write_files({tmp_path / "c.txt": b"c", tmp_path / "d.txt": b"d"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "sub"]


# ---------------------------------------------------------------------------------------------
# 4. Slow request headers: the connection is closed after --header-timeout
# ---------------------------------------------------------------------------------------------
def start_serve(model: Path, *options: str) -> tuple[subprocess.Popen, int]:
    """``dfnet serve`` in a subprocess on a free port; returns it and the port it announced."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SOURCE), os.environ.get("PYTHONPATH", "")])}
    server = subprocess.Popen(
        [sys.executable, "-m", "dfnet.cli", "serve", "--model", str(model), "--port", "0", "--engine", "torch",
         "--device", "cpu", "--log-level", "warning", *options],
        stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = server.stderr.readline()
        found = re.search(r"open http://127\.0\.0\.1:(\d+)/", line)
        if found:
            return server, int(found.group(1))
        assert line or server.poll() is None, "dfnet serve exited"
    server.kill()
    raise AssertionError("dfnet serve did not start")


def test_connections_whose_headers_never_finish_are_closed(model_file):
    server, port = start_serve(model_file, "--header-timeout", "1")
    try:
        slow = []
        for _ in range(50):
            conn = socket.create_connection(("127.0.0.1", port), timeout=10)
            conn.sendall(b"POST /api/inpaint HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")  # never finished
            slow.append(conn)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as ok:  # a valid request meanwhile
            ok.sendall(b"GET /api/model HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            assert ok.recv(64).startswith(b"HTTP/1.1 200")
        started = time.monotonic()
        for conn in slow:
            answer = b""
            while chunk := conn.recv(4096):  # returns b"" once the server has closed the connection
                answer += chunk
            assert answer.startswith(b"HTTP/1.1 408 Request Timeout"), answer
            conn.close()
        assert time.monotonic() - started < 8
    finally:
        server.terminate()
        server.wait(20)


MARKER = Path("/tmp/dfnet-reliability-pwned")


# Files that must be refused: (bytes, suffix, phrase of the library/CLI message, HTTP status).
BAD_IMAGES: dict[str, tuple[Callable[[], bytes], str, str, int]] = {
    "zero_byte": (lambda: b"", ".png", r"empty file \(0 bytes\)", 400),
    "not_an_image": (lambda: b"%PDF-1.4 this is a document, not a picture", ".jpg", "not a recognised image", 415),
    "truncated_png": (lambda: truncated(encode(picture(), "PNG")), ".png", "(?i)truncated", 400),
    "truncated_jpeg": (lambda: truncated(encode(picture(), "JPEG")), ".jpg", "(?i)truncated", 400),
    "decompression_bomb": (lambda: png_declaring(200_000, 200_000), ".png", "decompression bomb", 413),
    "jpeg_20000x20000": (lambda: jpeg_declaring(20_000, 20_000), ".jpg", "decompression bomb", 413),
}  # fmt: skip


def grey_level_mask(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """A mask picture of grey bands 0, 100, 127, 128, 200, 255 and the hole it means (> 127)."""
    levels = np.array([0, 100, 127, 128, 200, 255], np.uint8)
    grey = levels[(np.arange(width) * len(levels)) // width][None, :].repeat(height, 0)
    return grey, grey > 127


def assert_failure_names(err: str, path: Path, pattern: str) -> None:
    """stderr lists the failed file with a reason matching ``pattern`` on one line, no traceback."""
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if str(path) in line]
    assert len(lines) == 1 and re.search(pattern, lines[0]), err


@pytest.mark.parametrize("case", sorted(BAD_IMAGES))
def test_bad_image_is_a_one_line_error_in_library_cli_and_server(
    case, tmp_path, capsys, inpainter, client, model_file
):
    build, suffix, phrase, status = BAD_IMAGES[case]
    data = build()
    path = tmp_path / f"input{suffix}"
    path.write_bytes(data)
    mask = tmp_path / "mask.png"
    mask.write_bytes(mask_bytes(hole_rect(48, 64)))

    with pytest.raises(ImageLoadError, match=phrase) as info:  # library: loading and inpainting
        load_image(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)
    with pytest.raises(ImageLoadError, match=phrase):
        inpainter.inpaint(path, mask)
    with pytest.raises(ImageLoadError, match=phrase):
        load_mask(path)  # the same file given as a mask

    out = tmp_path / "out.png"  # command line: exit 1, the file and the reason on stderr, nothing written
    code, _, err = run_cli(capsys, "inpaint", path, mask, "-o", out, "--model", model_file, "--no-progress")
    assert code == 1 and not out.exists()
    assert_failure_names(err, path, phrase)

    response = post(client, data, mask_bytes(hole_rect(48, 64)))  # server: the right 4xx, one-line detail
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    print(case, status, detail)
    assert "\n" not in detail


def test_grey_level_mask_means_hole_above_127_everywhere(tmp_path, capsys, inpainter, client, model_file):
    rgb = picture()
    grey, hole = grey_level_mask(48, 64)
    assert np.array_equal(load_mask(encode(grey, "PNG")), hole)
    library = inpainter.inpaint(rgb, encode(grey, "PNG"))
    assert np.array_equal(library[~hole], rgb[~hole]) and not np.array_equal(library[hole], rgb[hole])
    (tmp_path / "in.png").write_bytes(encode(rgb, "PNG"))
    (tmp_path / "grey.png").write_bytes(encode(grey, "PNG"))
    code, _, err = run_cli(capsys, "inpaint", tmp_path / "in.png", tmp_path / "grey.png", "-o", tmp_path / "o.png",
                           "--model", model_file, "--no-progress")  # fmt: skip
    assert code == 0, err
    assert np.array_equal(np.asarray(Image.open(tmp_path / "o.png")), library)
    response = post(client, encode(rgb, "PNG"), encode(grey, "PNG"))
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(response.content))), library)


def test_all_hole_mask_is_filled_everywhere(tmp_path, capsys, inpainter, client, model_file):
    rgb = picture()
    everything = np.ones((48, 64), bool)
    for strategy in ("original", "resize", "crop", "auto"):
        result = inpainter.inpaint(rgb, everything, strategy=strategy)
        assert result.shape == rgb.shape and result.dtype == np.uint8
        assert not np.array_equal(result, rgb)  # every pixel comes from the network
    response = post(client, encode(rgb, "PNG"), mask_bytes(everything))
    assert response.status_code == 200
    (tmp_path / "in.png").write_bytes(encode(rgb, "PNG"))
    (tmp_path / "all.png").write_bytes(mask_bytes(everything))
    code, _, err = run_cli(capsys, "inpaint", tmp_path / "in.png", tmp_path / "all.png", "-o", tmp_path / "o.png",
                           "--model", model_file, "--no-progress")  # fmt: skip
    assert code == 0 and "100% of the mask is hole; is it inverted?" in err


class _Exploit:
    def __reduce__(self):
        return (os.system, (f"touch {MARKER}",))


def _weights(tmp_path: Path) -> dict[str, Path]:
    """Weight files that must be refused, each named for its flaw."""
    model = DFNet(DFNetConfig(width=0.125))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    files = {}
    nan = dict(state, **{"encoder.0.conv.conv.weight": state["encoder.0.conv.conv.weight"] * float("inf")})
    files["inf_weights"] = tmp_path / "inf.safetensors"
    save_file(nan, files["inf_weights"], metadata={"format": "dfnet", "config": '{"width": 0.125}'})
    files["bad_config"] = tmp_path / "bad_config.safetensors"
    save_file(state, files["bad_config"], metadata={"format": "dfnet", "config": "[1, 2"})
    files["other_architecture"] = tmp_path / "other.safetensors"
    save_file(state, files["other_architecture"], metadata={"config": '{"width": 0.25, "fusion": "mask"}'})
    files["pickle_exploit"] = tmp_path / "evil.pth"
    files["pickle_exploit"].write_bytes(pickle.dumps({"weight": _Exploit()}))
    files["zip_exploit"] = tmp_path / "evil_zip.pth"
    torch.save({"state_dict": {"model.x": _Exploit()}}, files["zip_exploit"])  # torch's zip format
    files["truncated_safetensors"] = tmp_path / "cut.safetensors"
    save_model(model, files["truncated_safetensors"])
    files["truncated_safetensors"].write_bytes(truncated(files["truncated_safetensors"].read_bytes()))
    return files


WEIGHT_ERRORS = {
    "inf_weights": "hold NaN or Inf",
    "bad_config": "invalid DFNet config",
    "other_architecture": "not this DFNet architecture",
    "pickle_exploit": "refused to load",
    "zip_exploit": "refused to load",
    "truncated_safetensors": "not a readable safetensors file",
}


@pytest.fixture(scope="module")
def weight_files(tmp_path_factory) -> dict[str, Path]:
    return _weights(tmp_path_factory.mktemp("weights"))


@pytest.mark.parametrize("case", sorted(WEIGHT_ERRORS))
def test_bad_weights_are_refused_by_library_and_every_command(
    case, weight_files, tmp_path, capsys, monkeypatch
):
    import uvicorn

    MARKER.unlink(missing_ok=True)
    path = weight_files[case]
    with pytest.raises(CheckpointError, match=WEIGHT_ERRORS[case]) as info:
        load_model(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)
    monkeypatch.setattr(uvicorn.Server, "run", lambda *a, **k: pytest.fail("served a refused model"))
    (tmp_path / "photos").mkdir()
    image, mask = tmp_path / "photos" / "in.png", tmp_path / "mask.png"
    image.write_bytes(encode(picture(), "PNG"))
    mask.write_bytes(mask_bytes(hole_rect(48, 64)))
    commands = {
        "inpaint": ["inpaint", image, mask, "-o", tmp_path / "o.png", "--model", path, "--no-progress"],
        "serve": ["serve", "--model", path, "--port", "0"],
        "export": ["export", "--model", path, "-o", tmp_path / "m.onnx"],
        "export-checkpoint": ["export-checkpoint", path, tmp_path / "m.safetensors"],
        "eval": ["eval", "--images", tmp_path / "photos", "--masks", mask, "--out", tmp_path / "e", "--method", "dfnet",
                 "--model", path, "--quiet"],
    }  # fmt: skip
    for name, args in commands.items():
        code, _, err = run_cli(capsys, *args)
        assert code == 1, name
        assert err.count("\n") == 1 and f"dfnet {name}: error: {path}" in err, err
        assert WEIGHT_ERRORS[case] in err
    assert not MARKER.exists()  # the pickle payload never ran


def test_masks_generate_on_a_broken_disk_leaves_no_half_set(broken_folder, capsys):
    folder, reason = broken_folder
    before = files_in(folder)
    code, _, err = run_cli(capsys, "masks", "generate", folder / "set", "--count", "40", "--size", "64")
    assert code == 1
    assert_one_line_error(err, "masks", reason)
    assert ".tmp" not in err
    assert_nothing_half_written(folder, before)


def test_writing_commands_on_a_broken_disk_fail_in_one_line(broken_folder, tmp_path, capsys, model_file):
    from dfnet.checkpoint import save_released

    folder, reason = broken_folder
    released = tmp_path / "r.pth"
    save_released(DFNet(DFNetConfig(width=0.125, encoder_kernels=(3, 3, 3), fusion_layers=(0, 1))), released)
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(2):
        (photos / f"p{i}.png").write_bytes(encode(picture(64, 64, seed=i), "PNG"))
    (tmp_path / "masks").mkdir()
    (tmp_path / "masks" / "m.png").write_bytes(mask_bytes(hole_rect(64, 64)))
    before = files_in(folder)
    cases = {
        "convert-official": ["convert-official", released, folder / "w.safetensors"],
        "eval": ["eval", "--images", photos, "--masks", tmp_path / "masks", "--out", folder / "report",
                 "--method", "telea", "--size", "64", "--workers", "0", "--quiet"],
        "train": ["train", "--config", "smoke", f"output.dir={folder}", "trainer.max_steps=1"],
    }  # fmt: skip
    for command, args in cases.items():
        code, _, err = run_cli(capsys, *args)
        assert code == 1, (command, err)
        assert_one_line_error(err, command, reason)
        assert ".tmp" not in err
        assert_nothing_half_written(folder, before)
    code, _, err = run_cli(capsys, "inpaint", photos / "p0.png", tmp_path / "masks" / "m.png", "-o", folder / "r.png",
                           "--model", model_file, "--no-progress")  # fmt: skip
    assert code == 1 and "Traceback" not in err and f"{photos / 'p0.png'}: " in err and reason in err
    assert_nothing_half_written(folder, before)


def test_a_zero_one_mask_file_means_the_same_everywhere(tmp_path, capsys, model_file, inpainter, client):
    rgb, hole = picture(), hole_rect(48, 64)
    photo, mask = tmp_path / "a.png", tmp_path / "m01.png"
    photo.write_bytes(encode(rgb, "PNG"))
    mask.write_bytes(encode(hole.astype(np.uint8), "PNG"))  # pixel values 0 and 1
    assert np.array_equal(load_mask(mask), hole)
    assert np.array_equal(load_mask(hole.astype(np.uint8)), hole)  # the numpy API, same rule
    code, _, err = run_cli(capsys, "inpaint", photo, mask, "-o", tmp_path / "o.png", "--model", model_file,
                           "--no-progress")  # fmt: skip
    assert code == 0, err
    by_cli = np.asarray(Image.open(tmp_path / "o.png"))
    assert not np.array_equal(by_cli[hole], rgb[hole]) and np.array_equal(by_cli[~hole], rgb[~hole])
    by_api = inpainter.inpaint(rgb, hole.astype(np.uint8))
    assert np.array_equal(by_api, by_cli)
    response = post(client, encode(rgb, "PNG"), mask.read_bytes())
    assert response.status_code == 200
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(response.content)))[..., :3], by_cli)
