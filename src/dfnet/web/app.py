"""The web app's routes: ``POST /api/inpaint``, ``POST /api/display``, ``GET /api/health``,
``GET /api/model`` and the painting page.

Requests to the upload endpoints pass ``InpaintGate`` (``gate.py``: sizes, time, queue slots) before they
are parsed (``parsing.py``); decoding, inference and encoding (``jobs.py``) then run on the named model's
worker threads (``pool.py``) so the event loop keeps answering (``/api/health`` stays responsive during
inference); answers are built in ``responses.py``. Nothing from a request is stored after its response;
logs carry sizes and timings, never image content.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from dfnet.exemplar import TEXTURE_PRESETS
from dfnet.strategies import STRATEGIES
from dfnet.web.gate import DISPLAY_PATH, INPAINT_PATH, ByteBudget, ClientCounts, InpaintGate, QueueSlots
from dfnet.web.jobs import display_png, run_inpaint
from dfnet.web.parsing import (
    ApiError,
    InpaintRequest,
    ReturnFormat,
    check_part_type,
    check_strategy,
    parse_texture,
    validation_message,
)
from dfnet.web.pool import InpainterLike, ModelPool, cancel_on_disconnect
from dfnet.web.responses import (
    ERROR_RESPONSES,
    MEDIA_TYPES,
    NO_STORE,
    PAGE_HEADERS,
    error_response,
    outcome_response,
)
from dfnet.web.settings import ServerSettings

__all__ = ["ServerSettings", "create_app"]

log = logging.getLogger("dfnet.web")
STATIC_DIR = Path(__file__).with_name("static")


def create_app(
    models: InpainterLike | Mapping[str, InpainterLike],
    settings: ServerSettings | None = None,
    static_dir: Path = STATIC_DIR,
) -> FastAPI:
    """The FastAPI app serving ``models`` (one inpainter, or several by name, the first being the
    default) under ``settings`` (defaults: ``ServerSettings()``); ``static_dir`` holds the page (another
    one only for comparing versions of it, as benchmarks/bench_web_page.py does)."""
    settings = settings or ServerSettings()
    pool = ModelPool(models if isinstance(models, Mapping) else {"default": models}, settings.worker_threads)
    slots = QueueSlots(settings.queue_size)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        pool.shutdown()

    app = FastAPI(
        title="dfnet",
        summary="Fill the holes of an image with DFNet (Deep Fusion Network for Image Completion)",
        version=_package_version(),
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.slots = slots
    app.state.pool = pool
    app.add_middleware(
        InpaintGate,
        settings=settings,
        slots=slots,
        clients=ClientCounts(settings.requests_per_client),
        budget=ByteBudget(settings.upload_budget_bytes),
    )

    @app.exception_handler(ApiError)
    async def api_error(_: Request, err: ApiError) -> JSONResponse:
        return error_response(err.status, err.message)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, err: RequestValidationError) -> JSONResponse:
        message = validation_message(err)
        log.info("request refused: 422 %s", message)
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
        model: str = Form(
            "", description="the id of a served model (see /api/model's models); default: the first"
        ),
    ) -> Response:
        """Inpaint the white area of ``mask`` in ``image``; known pixels come back bit-identical."""
        check_strategy(strategy)
        model_id = pool.choose(model)
        check_part_type(image, "image")
        check_part_type(mask, "mask")
        image_bytes, mask_bytes = await image.read(), await mask.read()
        cancel = threading.Event()
        watcher = asyncio.create_task(cancel_on_disconnect(http_request, cancel))
        try:
            outcome = await pool.run(
                model_id,
                run_inpaint,
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
            "inpaint %dx%d hole %.1f%% model=%s strategy=%s texture=%s return=%s in %.0f ms",
            outcome.width,
            outcome.height,
            100.0 * outcome.hole_ratio,
            model_id,
            strategy,
            texture,
            return_format,
            outcome.elapsed_ms,
        )
        return outcome_response(outcome, return_format == "json", strategy, model_id)

    @app.post(
        DISPLAY_PATH,
        response_class=Response,
        responses={200: {"content": {"image/png": {}}}, **ERROR_RESPONSES},
    )
    async def display(
        image: UploadFile = File(description="a picture the browser cannot show itself (TIFF)"),
    ) -> Response:
        """The picture as a PNG, as the server decodes it for inpainting (for formats browsers cannot show)."""
        check_part_type(image, "image")
        data = await image.read()
        png = await pool.run(pool.default, lambda _model: display_png(data, settings.max_pixels))
        return Response(png, media_type="image/png", headers=NO_STORE)

    @app.get("/api/health")
    async def health() -> dict[str, Any]:
        """Liveness plus how many inpaint requests are in flight."""
        return {"status": "ok", "in_flight": slots.in_use, "queue_size": settings.queue_size}

    @app.get("/api/model")
    async def model_info() -> dict[str, Any]:
        """The default model (``Inpainter.describe()``), every served model under ``models``, the size
        strategies and the server's limits."""
        described = pool.describe()
        return {
            "strategies": list(STRATEGIES),
            **{key: value for key, value in described[0].items() if key != "id"},
            "default_model": pool.default,
            "models": described,
            "limits": asdict(settings),
        }

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(static_dir / "index.html", headers=PAGE_HEADERS)

    app.mount("/static", StaticFiles(directory=static_dir), name="static")
    return app


def _package_version() -> str:
    from dfnet import __version__

    return __version__
