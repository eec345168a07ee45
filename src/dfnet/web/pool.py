"""The loaded models and the threads that run them: one worker pool per model, so that a request for one
model never waits behind another model's inference, and a request stops early once its client has gone.

Every model named at start is loaded once and stays loaded (no swapping): the server's memory is the sum of
the models' weights plus, per model, ``worker_threads`` inferences at a time, each bounded by ``max_pixels``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

import numpy as np
from fastapi import Request

from dfnet.web.parsing import ApiError
from dfnet.web.responses import to_json_safe

T = TypeVar("T")
DISCONNECT_POLL_S = 0.1


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


class ModelPool:
    """The served models by name (the first is the default), each with its own inference threads."""

    def __init__(self, models: Mapping[str, InpainterLike], threads_per_model: int) -> None:
        if not models:
            raise ValueError("at least one model must be served")
        self.models = dict(models)
        self.executors = {
            name: ThreadPoolExecutor(max_workers=threads_per_model, thread_name_prefix=f"dfnet-{index}")
            for index, name in enumerate(self.models)
        }

    @property
    def default(self) -> str:
        """The model a request that names none gets: the first one given."""
        return next(iter(self.models))

    def choose(self, name: str) -> str:
        """``name`` itself if it is served ("" means the default); 422 naming the served models otherwise."""
        if not name:
            return self.default
        if name not in self.models:
            served = ", ".join(self.models)
            raise ApiError(422, f"model: {name!r} is not served here (served: {served})")
        return name

    def describe(self) -> list[dict[str, Any]]:
        """Each model's ``describe()``, JSON-safe, with the ``id`` requests name it by."""
        return [{"id": name, **to_json_safe(model.describe())} for name, model in self.models.items()]

    async def run(
        self, name: str, fn: Callable[..., T], *args: Any, cancel: threading.Event | None = None
    ) -> T:
        """``fn(model, *args)`` on the named model's threads (see ``run_in_worker``)."""
        return await run_in_worker(self.executors[name], fn, self.models[name], *args, cancel=cancel)

    def shutdown(self) -> None:
        for executor in self.executors.values():
            executor.shutdown(wait=True, cancel_futures=True)


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
