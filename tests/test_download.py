"""dfnet.download against a loopback HTTP server: resume, refusals, gdown, locks and unwritable folders."""

from __future__ import annotations

import errno
import os
import socket
import threading

import pytest

from dfnet.download import (
    DownloadError,
    OfflineError,
    check_sha256_prefix,
    download_lock,
    fetch_gdrive,
    fetch_http,
    file_sha256,
    install_verified,
    storage_error,
    writable_folder,
)

PAYLOAD = bytes(range(256)) * 4000  # ~1 MB


def test_fetch_http_downloads_the_file(loopback, tmp_path):
    loopback.files["/f.bin"] = PAYLOAD
    part = fetch_http(f"{loopback.url}/f.bin", tmp_path / "f.bin.part", progress=False)
    assert part.read_bytes() == PAYLOAD and loopback.requests["/f.bin"] == 1


def test_dropped_connection_is_resumed_with_range(loopback, tmp_path):
    loopback.files["/f.bin"] = PAYLOAD
    loopback.drop_once.add("/f.bin")
    part = fetch_http(f"{loopback.url}/f.bin", tmp_path / "f.bin.part", progress=False)
    assert part.read_bytes() == PAYLOAD
    assert loopback.requests["/f.bin"] == 2
    half = len(PAYLOAD) // 2
    assert loopback.ranges == [f"bytes={half}-"]  # the second request asked only for the rest


def test_a_partial_file_from_an_earlier_run_is_resumed(loopback, tmp_path):
    loopback.files["/f.bin"] = PAYLOAD
    part = tmp_path / "f.bin.part"
    part.write_bytes(PAYLOAD[:1000])
    fetch_http(f"{loopback.url}/f.bin", part, progress=False)
    assert part.read_bytes() == PAYLOAD and loopback.ranges == ["bytes=1000-"]


def test_a_server_that_ignores_range_restarts_from_zero(loopback, tmp_path):
    loopback.files["/f.bin"] = PAYLOAD
    loopback.no_range.add("/f.bin")
    part = tmp_path / "f.bin.part"
    part.write_bytes(b"garbage")
    fetch_http(f"{loopback.url}/f.bin", part, progress=False)
    assert part.read_bytes() == PAYLOAD


def test_missing_file_is_one_line(loopback, tmp_path):
    with pytest.raises(DownloadError, match="answered 404") as err:
        fetch_http(f"{loopback.url}/absent.bin", tmp_path / "x.part", progress=False)
    assert "\n" not in str(err.value)


def test_unreachable_host_is_offline(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(OfflineError, match="cannot reach 127.0.0.1"):
        fetch_http(f"http://127.0.0.1:{port}/f.bin", tmp_path / "x.part", progress=False)


def test_html_page_and_failed_check_leave_nothing(tmp_path):
    page = tmp_path / "model.part"
    page.write_bytes(b"\n  <!DOCTYPE html><html><title>Google Drive - Quota exceeded</title>")
    with pytest.raises(DownloadError, match="web page instead of the file"):
        install_verified(page, tmp_path / "model.pth", "http://x/model.pth", lambda path: None)
    assert list(tmp_path.iterdir()) == []

    data = tmp_path / "data.part"
    data.write_bytes(PAYLOAD)

    def refuse(path):
        raise DownloadError("bad file")

    with pytest.raises(DownloadError, match="bad file"):
        install_verified(data, tmp_path / "data.bin", "http://x/data.bin", refuse)
    assert list(tmp_path.iterdir()) == []


def test_sha256_prefix(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"abc")
    digest = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"  # SHA-256("abc")
    assert file_sha256(path) == digest
    assert check_sha256_prefix(path, "ba7816bf", "u") == digest
    with pytest.raises(DownloadError, match="checksum mismatch .*expected 397923af"):
        check_sha256_prefix(path, "397923af", "u")


def test_gdown_downloads_through_its_url_argument(loopback, tmp_path):
    loopback.files["/model_places2.pth"] = PAYLOAD
    part = fetch_gdrive(f"{loopback.url}/model_places2.pth", tmp_path / "model.part", progress=False)
    assert part.read_bytes() == PAYLOAD and loopback.requests["/model_places2.pth"] == 1


def test_drive_folder_listing_through_gdown(loopback):
    """gdown parses the folder page (its URL argument pointed at the loopback server) and the file's id is picked."""
    from dfnet.download import drive_file_url

    entries = '[[["1AbC_places", null, "model_places2.pth", "application/octet-stream"], ["1XyZ_celeba", null, "model_celeba.pth", "application/octet-stream"]]]'
    page = (
        "<!DOCTYPE html><html><head><title>DFNet - Google Drive</title></head><body>"
        f"<script>window['_DRIVE_ivd'] = '{entries}';</script></body></html>"
    )
    loopback.files["/drive/folders/abc"] = page.encode()
    folder = f"{loopback.url}/drive/folders/abc"
    assert drive_file_url(folder, "model_celeba.pth") == "https://drive.google.com/uc?id=1XyZ_celeba"
    with pytest.raises(DownloadError, match="no file named model_x.pth"):
        drive_file_url(folder, "model_x.pth")
    loopback.files["/drive/folders/abc"] = b"<html><title>Sign in</title></html>"
    with pytest.raises(DownloadError, match="cannot list the Google Drive folder"):
        drive_file_url(folder, "model_celeba.pth")


def test_gdown_unreachable_is_offline(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(OfflineError):
        fetch_gdrive(f"http://127.0.0.1:{port}/m.pth", tmp_path / "m.part", progress=False)


def test_lock_serialises_two_holders(tmp_path):
    target = tmp_path / "cache" / "model.bin"
    order = []

    def hold(name):
        with download_lock(target):
            order.append(f"{name} in")
            threading.Event().wait(0.2)
            order.append(f"{name} out")

    threads = [threading.Thread(target=hold, args=(n,)) for n in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert order in (["a in", "a out", "b in", "b out"], ["b in", "b out", "a in", "a out"])


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_folder_is_one_line(tmp_path):
    folder = tmp_path / "cache"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with (
            pytest.raises(DownloadError, match="is not writable: set DFNET_HOME"),
            download_lock(folder / "m.bin"),
        ):
            pass
    finally:
        folder.chmod(0o700)


def test_full_disk_message():
    err = storage_error(OSError(errno.ENOSPC, "No space left on device"), __import__("pathlib").Path("/c"))
    assert str(err) == "no space left in /c: free some space or set DFNET_HOME to another folder"


def test_writable_folder_turns_write_failures_into_one_line(tmp_path):
    with pytest.raises(DownloadError, match="no space left"), writable_folder(tmp_path):
        raise OSError(errno.ENOSPC, "No space left on device")
