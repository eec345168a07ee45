"""Admission control in front of the upload endpoints (``InpaintGate``), before any request is parsed.

A ``POST`` to ``/api/inpaint`` or ``/api/display`` first meets the gate, which refuses a wrong content type
(415) and a client with too many requests open (429), then reads the whole body, bounded in size (413), in
time (408: ``body_timeout_s``) and by a shared budget of buffered bytes (503), and only then takes a queue
slot without waiting (503 when every slot is taken). A slow upload therefore holds no slot: at most
``queue_size`` complete bodies wait for a worker, and bodies still arriving hold at most
``queue_size * max_upload_bytes`` bytes between them.
"""

from __future__ import annotations

import asyncio
import threading

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dfnet.web.responses import error_response
from dfnet.web.settings import ServerSettings, format_bytes

INPAINT_PATH = "/api/inpaint"
DISPLAY_PATH = "/api/display"
GATED_PATHS = {INPAINT_PATH: "'image' and 'mask' files", DISPLAY_PATH: "an 'image' file"}
BUSY_MESSAGE = "server busy: too many images are being inpainted, try again shortly"


class QueueSlots:
    """A counting semaphore that never waits: admission control for inpaint requests."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._semaphore = threading.Semaphore(size)
        self._lock = threading.Lock()
        self._in_use = 0

    def try_acquire(self) -> bool:
        """Take a slot if one is free; return False at once otherwise."""
        if not self._semaphore.acquire(blocking=False):
            return False
        with self._lock:
            self._in_use += 1
        return True

    def release(self) -> None:
        with self._lock:
            self._in_use -= 1
        self._semaphore.release()

    @property
    def in_use(self) -> int:
        return self._in_use


class ClientCounts:
    """Open inpaint requests per client address, capped (used from the event loop only)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: dict[str, int] = {}

    def try_enter(self, client: str) -> bool:
        """Count one more request of ``client``; False (and nothing counted) when it is at the limit."""
        if self._open.get(client, 0) >= self.limit:
            return False
        self._open[client] = self._open.get(client, 0) + 1
        return True

    def leave(self, client: str) -> None:
        left = self._open.pop(client) - 1
        if left:
            self._open[client] = left


class ByteBudget:
    """Bytes of request bodies being received, shared by all uploads (used from the event loop only)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.used = 0

    def try_take(self, count: int) -> bool:
        if self.used + count > self.size:
            return False
        self.used += count
        return True

    def give_back(self, count: int) -> None:
        self.used -= count


class BodyRefused(Exception):
    """Reading a request body stopped: too large (413), budget spent (503) or the client left (None)."""

    def __init__(self, status: int | None) -> None:
        super().__init__(status)
        self.status = status


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return ""


def upload_limit_message(limit: int) -> str:
    return f"upload too large: image and mask together may be at most {format_bytes(limit)}"


async def read_body(receive: Receive, limit: int, budget: ByteBudget, held: list[int]) -> bytes:
    """The whole request body; ``BodyRefused`` as soon as it grows past ``limit`` bytes, the shared
    ``budget`` is spent, or the client disconnects. ``held[0]`` counts the bytes taken from ``budget``
    (the caller gives them back, also when this is cancelled by the time limit)."""
    chunks, more = [], True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise BodyRefused(None)
        chunk = message.get("body", b"")
        if held[0] + len(chunk) > limit:
            raise BodyRefused(413)
        if not budget.try_take(len(chunk)):
            raise BodyRefused(503)
        held[0] += len(chunk)
        chunks.append(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks)


def replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands out an already-read body once, then defers to the real one."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replayed


class InpaintGate:
    """ASGI layer in front of the upload endpoints: content type (415), requests per client (429),
    body size (413), body time (408), buffered bytes (503), then a queue slot (503)."""

    def __init__(
        self,
        app: ASGIApp,
        settings: ServerSettings,
        slots: QueueSlots,
        clients: ClientCounts,
        budget: ByteBudget,
    ) -> None:
        self.app = app
        self.settings = settings
        self.slots = slots
        self.clients = clients
        self.budget = budget

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in GATED_PATHS or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        refusal = self._check_headers(scope)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        client = (scope.get("client") or ("",))[0]
        if not self.clients.try_enter(client):
            limit = self.settings.requests_per_client
            message = f"too many requests from this client at once (at most {limit}); try again shortly"
            await error_response(429, message, {"Retry-After": "2", "Connection": "close"})(
                scope, receive, send
            )
            return
        try:
            await self._admit(scope, receive, send)
        finally:
            self.clients.leave(client)

    async def _admit(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Read the body within its limits, then take a queue slot and hand the request on."""
        held = [0]
        try:
            body = await asyncio.wait_for(
                read_body(receive, self.settings.max_upload_bytes, self.budget, held),
                self.settings.body_timeout_s,
            )
        except (BodyRefused, asyncio.TimeoutError) as err:
            self.budget.give_back(held[0])
            response = self._refusal(err)
            if response is not None:
                await response(scope, receive, send)
            return
        self.budget.give_back(held[0])  # from here the queue slot bounds this body
        if not self.slots.try_acquire():
            await error_response(503, BUSY_MESSAGE, {"Retry-After": "2"})(scope, receive, send)
            return
        try:
            await self.app(scope, replay(body, receive), send)
        finally:
            self.slots.release()

    def _refusal(self, err: Exception) -> JSONResponse | None:
        """The answer to a body that was not read to its end (None: the client has gone)."""
        close = {"Connection": "close"}  # the rest of the body is not read: end the connection
        if isinstance(err, asyncio.TimeoutError):
            seconds = f"{self.settings.body_timeout_s:g}"
            return error_response(
                408, f"upload too slow: the request body must arrive within {seconds} s", close
            )
        status = getattr(err, "status", None)
        if status == 413:
            return error_response(413, upload_limit_message(self.settings.max_upload_bytes), close)
        if status == 503:
            return error_response(503, BUSY_MESSAGE, {"Retry-After": "2", **close})
        return None

    def _check_headers(self, scope: Scope) -> JSONResponse | None:
        """A 415 or 413 response decided from the headers alone, or None."""
        content_type = _header(scope, b"content-type").split(";")[0].strip().lower()
        if content_type != "multipart/form-data":
            fields = GATED_PATHS[scope["path"]]
            return error_response(
                415, f"expected multipart/form-data with {fields}, got {content_type or 'no content type'}"
            )
        length = _header(scope, b"content-length")
        if length.isdigit() and int(length) > self.settings.max_upload_bytes:
            return error_response(413, upload_limit_message(self.settings.max_upload_bytes))
        return None
