"""The web app: ``POST /api/inpaint``, ``GET /api/health``, ``GET /api/model`` and the painting page.

A request to ``/api/inpaint`` first meets ``InpaintGate``, a small ASGI layer that refuses a wrong
content type (415) and a client with too many requests open (429), then reads the whole body, bounded
in size (413), in time (408: ``body_timeout_s``) and by a shared budget of buffered bytes (503), and
only then takes a queue slot without waiting (503 when every slot is taken). A slow upload therefore
holds no slot: at most ``queue_size`` complete bodies wait for inference, and bodies still arriving
hold at most ``queue_size * max_upload_bytes`` bytes between them. Decoding, inference and encoding
then run in a worker thread so the event loop keeps answering (``/api/health`` stays responsive
during inference). Nothing from a request is stored after its response; logs carry sizes and
timings, never image content.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
import threading
import time
import warnings
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

import numpy as np
from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from PIL import Image, JpegImagePlugin, UnidentifiedImageError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dfnet.exemplar import TEXTURE_PRESETS
from dfnet.imageio import ImageLoadError, LoadedImage, encode_image, hole_ratio, load_image, load_mask
from dfnet.inference import InpaintCancelled
from dfnet.strategies import STRATEGIES

log = logging.getLogger("dfnet.web")

STATIC_DIR = Path(__file__).with_name("static")
INPAINT_PATH = "/api/inpaint"
ALLOWED_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "TIFF", "GIF")
ALLOWED_PART_TYPES = ("", "application/octet-stream")  # besides image/*: what clients send for unknown files
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' blob: data:; script-src 'self'; style-src 'self'; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}
NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
MB = 1024 * 1024
ReturnFormat = Literal["image", "png", "json", "alpha", "raw"]
MEDIA_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
WEBP_QUALITY = 95  # a lossy WebP does not record its quality; lossless inputs come back lossless

T = TypeVar("T")


@dataclass(frozen=True)
class ServerSettings:
    """Limits that keep the server's memory bounded; every one is a ``dfnet serve`` option."""

    max_upload_bytes: int = 32 * MB  # whole request body: image + mask + form overhead
    max_pixels: int = 25_000_000  # about 5000 x 5000; decoded size, checked before decoding
    queue_size: int = 4  # complete uploads admitted at once (running + waiting); more get 503
    worker_threads: int = 1  # threads running inference; the rest of the admitted requests wait
    body_timeout_s: float = 30.0  # a request body must arrive within this time (408 after)
    requests_per_client: int = 4  # inpaint requests one client address may have open (429 above)

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            smallest = 1 if isinstance(value, int) else 0.001
            if not value >= smallest:  # also refuses NaN
                raise ValueError(f"{name} must be at least {smallest}, got {value}")

    @property
    def upload_budget_bytes(self) -> int:
        """Bytes that bodies still arriving may hold between them."""
        return self.queue_size * self.max_upload_bytes


class InpainterLike(Protocol):
    """What the server needs from ``dfnet.inference.Inpainter``."""

    def inpaint(
        self,
        image: Any,
        hole_mask: np.ndarray,
        strategy: str = "auto",
        return_details: bool = False,
        *,
        add_texture: bool | str = True,
        cancel: threading.Event | None = None,
    ) -> Any: ...

    def describe(self) -> dict: ...


class ApiError(Exception):
    """A request the server refuses, with the HTTP status and a one-line message for the page."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


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


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """The JSON error body every endpoint uses: ``{"detail": message}``."""
    return JSONResponse({"detail": message}, status_code=status, headers={**NO_STORE, **(headers or {})})


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return ""


def format_bytes(size: int) -> str:
    """1536 -> '1.5 KB', 33554432 -> '32 MB' (three significant digits)."""
    return f"{size / MB:.3g} MB" if size >= MB else f"{size / 1024:.3g} KB"


def _upload_limit_message(limit: int) -> str:
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


BUSY_MESSAGE = "server busy: too many images are being inpainted, try again shortly"


class InpaintGate:
    """ASGI layer in front of ``POST /api/inpaint``: content type (415), requests per client (429),
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
        if scope["type"] != "http" or scope["path"] != INPAINT_PATH or scope["method"] != "POST":
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
            return error_response(413, _upload_limit_message(self.settings.max_upload_bytes), close)
        if status == 503:
            return error_response(503, BUSY_MESSAGE, {"Retry-After": "2", **close})
        return None

    def _check_headers(self, scope: Scope) -> JSONResponse | None:
        """A 415 or 413 response decided from the headers alone, or None."""
        content_type = _header(scope, b"content-type").split(";")[0].strip().lower()
        if content_type != "multipart/form-data":
            return error_response(
                415,
                f"expected multipart/form-data with 'image' and 'mask' files, got {content_type or 'no content type'}",
            )
        length = _header(scope, b"content-length")
        if length.isdigit() and int(length) > self.settings.max_upload_bytes:
            return error_response(413, _upload_limit_message(self.settings.max_upload_bytes))
        return None


def sniff_upload(data: bytes, field: str, max_pixels: int) -> tuple[int, int]:
    """(width, height) of an uploaded image from its header; 415 for non-images, 413 for too many pixels."""
    if not data:
        raise ApiError(400, f"{field}: empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS) as image:
                width, height = image.size
    except UnidentifiedImageError:
        raise ApiError(415, f"{field}: not a supported image (use {', '.join(ALLOWED_FORMATS)})") from None
    except Image.DecompressionBombError:
        raise ApiError(413, f"{field}: image dimensions are too large") from None
    except (OSError, SyntaxError, ValueError) as err:
        raise ApiError(400, f"{field}: cannot read image ({err})") from None
    if width * height > max_pixels:
        raise ApiError(
            413, f"{field}: {width}x{height} = {width * height:,} pixels, over the limit of {max_pixels:,}"
        )
    return width, height


def check_part_type(upload: UploadFile, field: str) -> None:
    """Refuse (415) a form part whose declared type is not an image."""
    declared = (upload.content_type or "").split(";")[0].strip().lower()
    if not declared.startswith("image/") and declared not in ALLOWED_PART_TYPES:
        raise ApiError(415, f"{field}: expected an image file, got {declared}")


def decode_inputs(image_bytes: bytes, mask_bytes: bytes, max_pixels: int) -> tuple[LoadedImage, np.ndarray]:
    """Decode the uploads into an RGB image and a hole mask of the same size, or raise ApiError."""
    sniff_upload(image_bytes, "image", max_pixels)
    sniff_upload(mask_bytes, "mask", max_pixels)
    field = "image"
    try:
        loaded = load_image(image_bytes, max_pixels=max_pixels)
        field = "mask"
        hole = load_mask(mask_bytes, max_pixels=max_pixels)
    except ImageLoadError as err:
        raise ApiError(400, str(err).replace("<uploaded bytes>", field)) from None
    image_size, mask_size = loaded.size, (hole.shape[1], hole.shape[0])  # after EXIF rotation
    if image_size != mask_size:
        raise ApiError(
            400,
            f"mask is {mask_size[0]}x{mask_size[1]} but the image is {image_size[0]}x{image_size[1]}: "
            "they must be the same size",
        )
    if not hole.any():
        raise ApiError(400, "mask has no hole: paint the area to fill (white = hole)")
    return loaded, hole


def array_to_png(array: np.ndarray) -> bytes:
    """PNG bytes of a uint8 or [0, 1] float picture shaped (H, W), (H, W, 1) or (H, W, 3)."""
    array = np.asarray(array)
    if array.dtype != np.uint8:
        array = (np.clip(array.astype(np.float64), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    buffer = io.BytesIO()
    Image.fromarray(array, "L" if array.ndim == 2 else "RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def webp_is_lossless(data: bytes) -> bool:
    """Whether a WebP file holds a lossless (VP8L) bitstream, read from its RIFF chunks."""
    offset = 12
    while offset + 8 <= len(data):
        chunk, size = data[offset : offset + 4], int.from_bytes(data[offset + 4 : offset + 8], "little")
        if chunk in (b"VP8L", b"VP8 "):
            return chunk == b"VP8L"
        offset += 8 + size + (size & 1)
    return False


def result_encoding(image_bytes: bytes, source_format: str | None) -> tuple[str, dict[str, Any]]:
    """(Pillow format, save options) that store a result the way the input was stored.

    JPEG inputs keep their quantization tables and chroma subsampling (the same quality), WebP keeps
    lossless or lossy, everything else becomes PNG (lossless, keeps alpha)."""
    if source_format == "JPEG":
        with Image.open(io.BytesIO(image_bytes), formats=("JPEG",)) as jpeg:
            tables = getattr(jpeg, "quantization", None)
            sampling = JpegImagePlugin.get_sampling(jpeg)
        options: dict[str, Any] = {}
        if tables:  # quality -1: use the tables as they are, not scaled to a quality setting
            options.update(qtables=tables, quality=-1)
        if sampling >= 0:
            options["subsampling"] = sampling
        return "JPEG", options
    if source_format == "WEBP":
        lossless = webp_is_lossless(image_bytes)
        return "WEBP", {"lossless": True, "quality": 100} if lossless else {"quality": WEBP_QUALITY}
    return "PNG", {}


@dataclass(frozen=True)
class InpaintRequest:
    """What one request asks for besides its picture, mask and size strategy."""

    return_format: ReturnFormat
    json_alpha: bool = False  # json only: include the alpha map
    json_raw: bool = False  # json only: include the raw completion
    texture: bool | str = True  # the model's exemplar detail (when it has one), none, or a preset name


@dataclass
class InpaintOutcome:
    """The encoded answer to one request plus what the log and the JSON answer report about it."""

    width: int
    height: int
    hole_ratio: float
    elapsed_ms: float
    body: bytes  # the result, or the alpha map / raw completion when that is what was asked for
    media_type: str
    alpha_png: bytes | None = None
    raw_png: bytes | None = None


def run_inpaint(
    inpainter: InpainterLike,
    image_bytes: bytes,
    mask_bytes: bytes,
    strategy: str,
    request: InpaintRequest,
    max_pixels: int,
    cancel: threading.Event | None = None,
) -> InpaintOutcome:
    """Decode, inpaint and encode one request (runs in a worker thread; stops early once ``cancel`` is set)."""
    start = time.perf_counter()
    return_format = request.return_format
    loaded, hole = decode_inputs(image_bytes, mask_bytes, max_pixels)
    want_alpha = return_format == "alpha" or (return_format == "json" and request.json_alpha)
    want_raw = return_format == "raw" or (return_format == "json" and request.json_raw)
    try:
        done = inpainter.inpaint(
            loaded.rgb,
            hole,
            strategy=strategy,
            return_details=want_alpha or want_raw,
            add_texture=request.texture,
            cancel=cancel,
        )
    except InpaintCancelled:
        raise ApiError(CLIENT_CLOSED, "cancelled: the client closed the connection") from None
    except ValueError as err:
        raise ApiError(400, str(err)) from None
    except MemoryError:
        raise ApiError(503, "not enough memory for this image; try a smaller one") from None
    alpha_png = array_to_png(done.alpha) if want_alpha else None
    raw_png = array_to_png(done.raw) if want_raw else None
    if return_format in ("alpha", "raw"):
        body, media_type = (alpha_png if return_format == "alpha" else raw_png) or b"", "image/png"
    else:
        result = np.asarray(done.result if (want_alpha or want_raw) else done)
        fmt, options = (
            result_encoding(image_bytes, loaded.format) if return_format == "image" else ("PNG", {})
        )
        body, media_type = encode_image(result, fmt, like=loaded, options=options), MEDIA_TYPES[fmt]
    return InpaintOutcome(
        width=loaded.size[0],
        height=loaded.size[1],
        hole_ratio=hole_ratio(hole),
        elapsed_ms=(time.perf_counter() - start) * 1000.0,
        body=body,
        media_type=media_type,
        alpha_png=alpha_png,
        raw_png=raw_png,
    )


# The status logged for a request whose client went away while it ran (nginx's "client closed request").
CLIENT_CLOSED = 499
DISCONNECT_POLL_S = 0.1


async def run_in_worker(
    executor: ThreadPoolExecutor, fn: Callable[..., T], *args: Any, cancel: threading.Event | None = None
) -> T:
    """Run ``fn`` in the worker pool; if the request is cancelled, set ``cancel`` (so the worker stops at
    its next check) and still wait for the worker to finish, so the queue slot is only freed once the
    memory it guards is."""
    future = asyncio.get_running_loop().run_in_executor(executor, fn, *args)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        if cancel is not None:
            cancel.set()
        await asyncio.wait([future])
        raise


async def cancel_on_disconnect(request: Request, cancel: threading.Event) -> None:
    """Set ``cancel`` once the client has closed the connection (the page's Cancel button, a closed tab)."""
    while not cancel.is_set():
        if await request.is_disconnected():
            cancel.set()
            return
        await asyncio.sleep(DISCONNECT_POLL_S)


def outcome_response(outcome: InpaintOutcome, as_json: bool, strategy: str) -> Response:
    """The picture itself, or JSON with base64 PNGs (``result`` and, when asked for, ``alpha`` / ``raw``)."""
    headers = {
        **NO_STORE,
        "X-DFNet-Elapsed-Ms": f"{outcome.elapsed_ms:.0f}",
        "X-DFNet-Hole-Ratio": f"{outcome.hole_ratio:.6f}",
    }
    if not as_json:
        return Response(outcome.body, media_type=outcome.media_type, headers=headers)
    body: dict[str, Any] = {
        "width": outcome.width,
        "height": outcome.height,
        "hole_ratio": outcome.hole_ratio,
        "strategy": strategy,
        "elapsed_ms": round(outcome.elapsed_ms, 1),
        "media_type": "image/png",
        "result": base64.b64encode(outcome.body).decode("ascii"),
    }
    for name, png in (("alpha", outcome.alpha_png), ("raw", outcome.raw_png)):
        if png is not None:
            body[name] = base64.b64encode(png).decode("ascii")
    return JSONResponse(body, headers=headers)


def to_json_safe(value: Any) -> Any:
    """``describe()`` output made JSON-safe (devices, dtypes and paths become strings)."""
    return json.loads(json.dumps(value, default=str))


def validation_message(err: RequestValidationError) -> str:
    """FastAPI's list of validation errors as one line: ``field: message; field: message``."""
    parts = []
    for error in err.errors():
        where = [str(part) for part in error.get("loc", ()) if part not in ("body", "query")]
        parts.append(f"{'.'.join(where) or 'request'}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


TRUE_WORDS = ("true", "1", "yes", "on")
FALSE_WORDS = ("false", "0", "no", "off")


def parse_texture(value: str) -> bool | str:
    """The form field ``texture``: true / false (the model's own exemplar detail or none) or a preset name."""
    word = value.strip().lower()
    if word in TEXTURE_PRESETS:
        return word
    if word in TRUE_WORDS or word in FALSE_WORDS:
        return word in TRUE_WORDS
    raise ApiError(422, f"texture: expected true, false or {', '.join(TEXTURE_PRESETS)}, got {value!r}")


def check_strategy(strategy: str) -> None:
    """Refuse (422) a strategy the library does not have, before any work is done."""
    if strategy not in STRATEGIES:
        raise ApiError(422, f"strategy: unknown value {strategy!r} (use {', '.join(STRATEGIES)})")


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "Unreadable image, size mismatch (both sizes given) or a mask with no hole"},
    408: {"description": "The request body did not arrive within the time limit"},
    413: {"description": "Upload larger than the byte limit, or image over the pixel limit"},
    415: {"description": "Not multipart/form-data, or a part that is not a supported image"},
    422: {"description": "A missing field or an invalid option value; same {'detail': message} shape"},
    429: {"description": "Too many requests open from this client address (see Retry-After)"},
    503: {
        "description": "Queue full: too many requests in flight, or too many uploads arriving (see Retry-After)"
    },
}


def create_app(inpainter: InpainterLike, settings: ServerSettings | None = None) -> FastAPI:
    """The FastAPI app serving ``inpainter`` under ``settings`` (defaults: ``ServerSettings()``)."""
    settings = settings or ServerSettings()
    slots = QueueSlots(settings.queue_size)
    clients = ClientCounts(settings.requests_per_client)
    executor = ThreadPoolExecutor(max_workers=settings.worker_threads, thread_name_prefix="dfnet-inference")

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        executor.shutdown(wait=True, cancel_futures=True)

    app = FastAPI(
        title="dfnet",
        summary="Fill the holes of an image with DFNet (Deep Fusion Network for Image Completion)",
        version=_package_version(),
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.slots = slots
    app.add_middleware(
        InpaintGate,
        settings=settings,
        slots=slots,
        clients=clients,
        budget=ByteBudget(settings.upload_budget_bytes),
    )

    @app.exception_handler(ApiError)
    async def api_error(_: Request, err: ApiError) -> JSONResponse:
        return error_response(err.status, err.message)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, err: RequestValidationError) -> JSONResponse:
        message = validation_message(err)
        log.info("inpaint refused: 422 %s", message)
        return error_response(422, message)

    @app.post(
        INPAINT_PATH,
        response_class=Response,
        responses={
            200: {"content": {**{media: {} for media in MEDIA_TYPES.values()}, "application/json": {}}},
            **ERROR_RESPONSES,
        },
    )
    async def inpaint(
        http_request: Request,
        image: UploadFile = File(description="the picture (PNG, JPEG, WebP, BMP, TIFF or GIF)"),
        mask: UploadFile = File(description="hole mask, same size as the image, white = hole"),
        strategy: str = Form("auto", description="how to handle sizes that are not multiples of 256"),
        return_format: ReturnFormat = Form(
            "png",
            alias="return",
            description=(
                "png: the result as PNG (known pixels bit-identical); image: the result in the input's "
                "format (JPEG and WebP keep their quality, others PNG); json: base64 PNGs plus sizes and timing; "
                "alpha / raw: DFNet's alpha map / raw completion as PNG"
            ),
        ),
        alpha: bool = Form(False, description="json only: include DFNet's alpha map"),
        raw: bool = Form(False, description="json only: include DFNet's raw completion"),
        texture: str = Form(
            "true",
            description=(
                "true: add the model's exemplar texture detail in the hole (the bundled default has it; see "
                f"/api/model's texture); false: the network's own, smoother fill; {' or '.join(TEXTURE_PRESETS)}: "
                "that preset of dfnet.exemplar instead"
            ),
        ),
    ) -> Response:
        """Inpaint the white area of ``mask`` in ``image``; known pixels come back bit-identical."""
        check_strategy(strategy)
        check_part_type(image, "image")
        check_part_type(mask, "mask")
        image_bytes, mask_bytes = await image.read(), await mask.read()
        as_json = return_format == "json"
        cancel = threading.Event()
        watcher = asyncio.create_task(cancel_on_disconnect(http_request, cancel))
        try:
            outcome = await run_in_worker(
                executor,
                run_inpaint,
                inpainter,
                image_bytes,
                mask_bytes,
                strategy,
                InpaintRequest(return_format, alpha, raw, parse_texture(texture)),
                settings.max_pixels,
                cancel,
                cancel=cancel,
            )
        except ApiError as err:
            log.info("inpaint refused: %d %s", err.status, err.message)
            raise
        finally:
            watcher.cancel()
        log.info(
            "inpaint %dx%d hole %.1f%% strategy=%s texture=%s return=%s in %.0f ms",
            outcome.width,
            outcome.height,
            100.0 * outcome.hole_ratio,
            strategy,
            texture,
            return_format,
            outcome.elapsed_ms,
        )
        return outcome_response(outcome, as_json, strategy)

    @app.get("/api/health")
    async def health() -> dict[str, Any]:
        """Liveness plus how many inpaint requests are in flight."""
        return {"status": "ok", "in_flight": slots.in_use, "queue_size": settings.queue_size}

    @app.get("/api/model")
    async def model() -> dict[str, Any]:
        """The model being served (``Inpainter.describe()``), the size strategies and the server's limits."""
        return {
            "strategies": list(STRATEGIES),
            **to_json_safe(inpainter.describe()),
            "limits": asdict(settings),
        }

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers=PAGE_HEADERS)

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def _package_version() -> str:
    from dfnet import __version__

    return __version__
