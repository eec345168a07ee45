"""dfnet serve under load and slow or vanishing clients: queue slots, per-client shares, the upload
budget, cancellation, and nothing of a request kept once it is answered."""

from __future__ import annotations

import gc
import select
import socket
import threading
import time
import weakref

import numpy as np
import pytest
from fastapi.testclient import TestClient
from helpers import (
    encode,
    hole_rect,
    live_server,
    mask_bytes,
    picture,
    post,
)
from load_test import source_address  # benchmarks/ is on sys.path (conftest.py)

from dfnet.inference import InpaintCancelled
from dfnet.web import ServerSettings, create_app


class RecordingInpainter:
    """Fills holes with grey and keeps only weak references to every array it saw or made."""

    def __init__(self) -> None:
        self.seen: list[weakref.ref] = []

    def inpaint(
        self, image, hole_mask, strategy="auto", return_details=False, *, add_texture=True, cancel=None
    ):
        result = np.where(hole_mask[:, :, None], np.uint8(128), image)
        self.seen += [weakref.ref(image), weakref.ref(hole_mask), weakref.ref(result)]
        return result

    def describe(self) -> dict:
        return {"name": "recording-fake"}


def test_no_request_data_or_upload_file_outlives_its_response():
    import psutil

    fake = RecordingInpainter()
    rgb = np.random.default_rng(4).integers(0, 256, (640, 640, 3), dtype=np.uint8)  # > 1 MB: spooled to disk
    image, mask = encode(rgb, "PNG"), mask_bytes(hole_rect(640, 640))
    assert len(image) > 1024 * 1024
    process = psutil.Process()
    with TestClient(create_app(fake, ServerSettings(max_upload_bytes=8 * 1024 * 1024))) as test_client:
        files_before = {f.path for f in process.open_files()}
        for _ in range(3):
            response = post(test_client, image, mask)
            assert response.status_code == 200
            assert post(test_client, image, mask_bytes(np.zeros((640, 640), bool))).status_code == 400
        del response
        gc.collect()
        assert len(fake.seen) == 9 and all(ref() is None for ref in fake.seen)  # arrays freed
        assert {f.path for f in process.open_files()} <= files_before  # spooled uploads closed
        assert test_client.get("/api/health").json()["in_flight"] == 0


@pytest.mark.slow
def test_reduced_load_test_against_dfnet_serve(tmp_path):
    import json

    import load_test  # benchmarks/ is on sys.path (conftest.py)

    summary_path = tmp_path / "load.json"
    args = ["--clients", "20", "--requests", "100", "--time-limit", "120", "--summary", str(summary_path),
            "--slow-clients", "8", "--body-timeout", "2"]  # fmt: skip
    assert load_test.main(args) == 0
    summary = json.loads(summary_path.read_text())
    assert summary["slow_uploads"].get("408", 0) >= 8  # every slow upload was cut off at least once
    assert summary["passed"] and summary["failures"] == []
    assert summary["requests"] == 100 and summary["wrong_final_status"] == 0 and summary["client_errors"] == 0
    kinds = load_test.build_kinds(1024 * 1024)
    assert set(summary["by_kind"]) == {kind.name for kind in kinds}  # every kind was sent at least once
    for name, row in summary["by_kind"].items():
        assert row["final_statuses"] == {str(row["expected"]): row["count"]}, name
    assert summary["health_after"] == {"status": "ok", "in_flight": 0, "queue_size": 4}
    assert summary["server_rss_mb"]["growth"] < 300


def start_slow_upload(port: int, source: str, body_size: int = 4096) -> socket.socket:
    """A connection that sends the headers of a multipart upload and the first 10 bytes of its body."""
    conn = socket.create_connection(("127.0.0.1", port), timeout=15, source_address=(source, 0))
    head = (
        f"POST /api/inpaint HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=x\r\n"
        f"Content-Length: {body_size}\r\n\r\n"
    )
    conn.sendall(head.encode() + b"--x\r\nConte")
    return conn


def status_of(conn: socket.socket) -> int:
    """The status code of the answer on ``conn`` (waits for it)."""
    reply = conn.recv(4096)
    return int(reply.split(b" ", 2)[1]) if reply.startswith(b"HTTP/1.1") else 0


def post_http(port: int, image: bytes, mask: bytes) -> int:
    import httpx

    files = {"image": ("in.png", image, "image/png"), "mask": ("mask.png", mask, "image/png")}
    return httpx.post(f"http://127.0.0.1:{port}/api/inpaint", files=files, timeout=15).status_code


def test_slow_uploads_hold_no_queue_slot_and_time_out():
    sources = [source_address(3, i) for i in range(4)]
    shared = len(set(sources)) < 4  # where loopback aliases cannot be bound, every client is 127.0.0.1
    settings_ = ServerSettings(queue_size=2, body_timeout_s=4.0, requests_per_client=8 if shared else 2)
    image, mask = encode(picture(), "PNG"), mask_bytes(hole_rect(48, 64))
    with live_server(create_app(RecordingInpainter(), settings_)) as port:
        slow = [start_slow_upload(port, source) for source in sources]  # twice the queue size
        started = time.monotonic()
        try:
            time.sleep(0.3)
            statuses = [post_http(port, image, mask) for _ in range(3)]
            unanswered = select.select(slow, [], [], 0)[0] == []  # the slow uploads are still going on
            answers = [status_of(conn) for conn in slow]
            waited = time.monotonic() - started
        finally:
            for conn in slow:
                conn.close()
    assert statuses == [200, 200, 200] and unanswered  # was 503 while the slow uploads held every slot
    assert answers == [408] * 4
    assert 3.9 < waited < 12  # the body time limit, not the client, ended them


class CancellableInpainter:
    """A model that works for up to 20 s, checking its ``cancel`` event every 10 ms."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.stopped_early = threading.Event()

    def inpaint(
        self, image, hole_mask, strategy="auto", return_details=False, *, add_texture=True, cancel=None
    ):
        self.entered.set()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if cancel is not None and cancel.is_set():
                self.stopped_early.set()
                raise InpaintCancelled("inpaint cancelled")
            time.sleep(0.01)
        return image.copy()

    def describe(self) -> dict:
        return {"name": "cancellable-fake"}


def test_a_client_that_goes_away_stops_its_inpaint_and_frees_the_slot():
    """The page's Cancel (or a closed tab) closes the connection; the server stops the work at its next check."""
    import httpx

    fake = CancellableInpainter()
    request = httpx.Request(
        "POST",
        "http://127.0.0.1/api/inpaint",
        files={"image": ("in.png", encode(picture(), "PNG"), "image/png"),
               "mask": ("mask.png", mask_bytes(hole_rect(48, 64)), "image/png")},
    )  # fmt: skip
    body = request.read()
    head = "".join(f"{k}: {v}\r\n" for k, v in request.headers.items() if k.lower() != "host")
    with live_server(create_app(fake, ServerSettings(queue_size=1))) as port:
        conn = socket.create_connection(("127.0.0.1", port), timeout=15)
        conn.sendall(f"POST /api/inpaint HTTP/1.1\r\nHost: 127.0.0.1\r\n{head}\r\n".encode() + body)
        assert fake.entered.wait(15), "the request never reached the model"
        closed = time.monotonic()
        conn.close()
        assert fake.stopped_early.wait(5), "the inpaint went on after its client had gone"
        stopped = time.monotonic() - closed
        health = httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=5).json()
        assert health["in_flight"] == 0  # the one queue slot is free again
    assert stopped < 2


def test_one_client_may_hold_only_its_share_of_open_requests():
    settings_ = ServerSettings(queue_size=4, body_timeout_s=2.0, requests_per_client=2)
    image, mask = encode(picture(), "PNG"), mask_bytes(hole_rect(48, 64))
    source = source_address(3, 0)
    with live_server(create_app(RecordingInpainter(), settings_)) as port:
        slow = [start_slow_upload(port, source) for _ in range(3)]
        try:
            third = status_of(slow[2])  # answered at once, without waiting for the time limit
            if source != "127.0.0.1":
                assert post_http(port, image, mask) == 200  # another address is not limited by this one
            first_two = [status_of(conn) for conn in slow[:2]]
        finally:
            for conn in slow:
                conn.close()
    assert third == 429 and first_two == [408, 408]


def test_upload_budget_bounds_the_bytes_of_bodies_still_arriving():
    from dfnet.web.gate import ByteBudget, ClientCounts

    budget, clients = ByteBudget(10), ClientCounts(1)
    assert budget.try_take(6) and not budget.try_take(5) and budget.try_take(4)
    budget.give_back(10)
    assert budget.used == 0
    assert clients.try_enter("a") and not clients.try_enter("a") and clients.try_enter("b")
    clients.leave("a")
    assert clients.try_enter("a")
    assert ServerSettings(queue_size=3, max_upload_bytes=5).upload_budget_bytes == 15
    with pytest.raises(ValueError, match="body_timeout_s must be at least"):
        ServerSettings(body_timeout_s=float("nan"))
