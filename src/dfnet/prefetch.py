"""Overlap reading, computing and writing: a bounded read-ahead thread and a bounded background writer.

Folder inference decodes the next images while the network runs and encodes the previous results at the
same time; both threads spend their time in C code (image codecs, file I/O) that releases the GIL. The
queues are bounded, so memory stays at a few images whatever the folder's length, and the order of the
results is the order of the inputs.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")
_DONE = object()
_POLL_S = 0.1


class Outcome(Generic[T, R]):
    """One item and what ``load`` made of it: a value, or the exception it raised."""

    __slots__ = ("item", "value", "error")

    def __init__(self, item: T, value: R | None = None, error: BaseException | None = None) -> None:
        self.item, self.value, self.error = item, value, error


def read_ahead(
    items: Iterable[T],
    load: Callable[[T], R],
    depth: int = 4,
    errors: tuple[type[BaseException], ...] = (Exception,),
) -> Iterator[Outcome[T, R]]:
    """``load(item)`` for every item, in order, computed up to ``depth`` items ahead in a background thread.

    Exceptions of the ``errors`` kinds become the item's :class:`Outcome` error (the caller reports them
    per item); closing the iterator early stops the thread.
    """
    if depth < 1:
        raise ValueError(f"depth must be at least 1, got {depth}")
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(value: Any) -> bool:
        while not stop.is_set():
            try:
                ready.put(value, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in items:
                try:
                    outcome = Outcome(item, load(item))
                except errors as err:
                    outcome = Outcome(item, error=err)
                if not put(outcome):
                    return
        except BaseException as err:  # an unexpected failure is re-raised in the consumer
            put(err)
            return
        put(_DONE)

    thread = threading.Thread(target=work, name="dfnet-read-ahead", daemon=True)
    thread.start()
    try:
        while (got := ready.get()) is not _DONE:
            if isinstance(got, BaseException):
                raise got
            yield got
    finally:
        stop.set()
        thread.join()


class BackgroundWriter:
    """Runs submitted tasks (encode and save one result) in order in one thread, at most ``depth`` queued.

    :meth:`close` waits for every queued task (also on Ctrl-C: what was computed is written, and no file is
    left half written).
    """

    def __init__(self, depth: int = 4) -> None:
        self._tasks: queue.Queue = queue.Queue(maxsize=depth)
        self._thread = threading.Thread(target=self._work, name="dfnet-writer", daemon=True)
        self._failure: BaseException | None = None
        self._closed = False
        self._thread.start()

    def _work(self) -> None:
        while (task := self._tasks.get()) is not _DONE:
            if self._failure is None:
                try:
                    task()
                except BaseException as err:  # reported by the next submit or close
                    self._failure = err

    def _check(self) -> None:
        if self._failure is not None:
            raise self._failure

    def submit(self, task: Callable[[], None]) -> None:
        """Queue ``task``; blocks while ``depth`` tasks wait (the network never runs far ahead of the disk)."""
        self._check()
        self._tasks.put(task)

    def close(self) -> None:
        """Wait until every queued task has run; re-raise an exception a task let through (once)."""
        if self._closed:
            return
        self._closed = True
        self._tasks.put(_DONE)
        self._thread.join()
        self._check()
