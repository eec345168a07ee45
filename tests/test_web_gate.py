"""Admission control of ``dfnet.web.gate``: slots, per-client counts, the byte budget and body reading."""

from __future__ import annotations

import asyncio

import pytest
from fastapi.testclient import TestClient

from dfnet.web import ServerSettings, create_app
from dfnet.web.gate import BodyRefused, ByteBudget, ClientCounts, QueueSlots, read_body, upload_limit_message


def test_queue_slots_never_wait_and_count_what_is_taken():
    slots = QueueSlots(2)
    assert slots.try_acquire() and slots.try_acquire() and not slots.try_acquire()
    assert slots.in_use == 2
    slots.release()
    assert slots.in_use == 1 and slots.try_acquire()


def test_client_counts_cap_each_address_separately():
    clients = ClientCounts(1)
    assert clients.try_enter("a") and not clients.try_enter("a") and clients.try_enter("b")
    clients.leave("a")
    assert clients.try_enter("a")


def body_messages(*chunks: bytes):
    """A ``receive`` handing out ``chunks`` as one streamed body."""
    messages = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
        for i, chunk in enumerate(chunks)
    ]

    async def receive():
        return messages.pop(0)

    return receive


def test_read_body_joins_chunks_and_takes_them_from_the_budget():
    budget, held = ByteBudget(100), [0]
    assert asyncio.run(read_body(body_messages(b"ab", b"cde"), 10, budget, held)) == b"abcde"
    assert held == [5] and budget.used == 5


@pytest.mark.parametrize(("limit", "budget_size", "status"), [(4, 100, 413), (100, 4, 503)])
def test_read_body_stops_at_the_size_limit_or_the_shared_budget(limit, budget_size, status):
    budget, held = ByteBudget(budget_size), [0]
    with pytest.raises(BodyRefused) as refused:
        asyncio.run(read_body(body_messages(b"abc", b"def"), limit, budget, held))
    assert refused.value.status == status and held == [3] and budget.used == 3  # the caller gives it back


def test_upload_limit_message_is_in_readable_units():
    assert upload_limit_message(1536) == "upload too large: image and mask together may be at most 1.5 KB"


def test_display_endpoint_is_gated_too(tiny_model):
    from dfnet.inference import Inpainter

    with TestClient(
        create_app(Inpainter(tiny_model, device="cpu"), ServerSettings(max_upload_bytes=100))
    ) as client:
        wrong = client.post("/api/display", json={"image": "x"})
        large = client.post("/api/display", files={"image": ("a.tif", b"x" * 500, "image/tiff")})
    assert wrong.status_code == 415
    assert wrong.json()["detail"] == "expected multipart/form-data with an 'image' file, got application/json"
    assert large.status_code == 413
