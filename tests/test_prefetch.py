"""The read-ahead thread and the background writer: order, bounded queues, errors per item, early stop."""

from __future__ import annotations

import threading
import time

import pytest

from dfnet.prefetch import BackgroundWriter, read_ahead


def test_read_ahead_keeps_the_order_and_reports_errors_per_item():
    def load(n: int) -> int:
        if n == 3:
            raise ValueError("three is unreadable")
        time.sleep(0.001 * (n % 2))  # uneven load times
        return n * n

    outcomes = list(read_ahead(range(6), load, depth=2, errors=(ValueError,)))
    assert [o.item for o in outcomes] == [0, 1, 2, 3, 4, 5]
    assert [o.value for o in outcomes] == [0, 1, 4, None, 16, 25]
    assert [str(o.error) if o.error else None for o in outcomes] == [
        None,
        None,
        None,
        "three is unreadable",
        None,
        None,
    ]


def test_read_ahead_stays_within_its_depth_and_stops_when_closed():
    loaded: list[int] = []
    outcomes = read_ahead(range(1000), lambda n: loaded.append(n) or n, depth=3)
    assert next(outcomes).value == 0
    time.sleep(0.3)
    assert len(loaded) <= 1 + 3 + 1  # the one taken, a full queue, one waiting to be put
    outcomes.close()
    assert not [t for t in threading.enumerate() if t.name == "dfnet-read-ahead"]


def test_read_ahead_reraises_an_unexpected_error_in_the_consumer():
    def load(n: int) -> int:
        if n == 1:
            raise KeyError("not an item error")
        return n

    with pytest.raises(KeyError, match="not an item error"):
        list(read_ahead(range(3), load, errors=(ValueError,)))
    with pytest.raises(ValueError, match="depth"):
        next(read_ahead([1], int, depth=0))


def test_writer_runs_tasks_in_order_and_close_waits_for_them():
    done: list[int] = []
    writer = BackgroundWriter(depth=2)
    for n in range(20):
        writer.submit(lambda n=n: (time.sleep(0.001), done.append(n)))
    writer.close()
    assert done == list(range(20))


def test_writer_reports_a_failed_task_and_runs_no_more():
    done: list[str] = []
    writer = BackgroundWriter()
    writer.submit(lambda: (_ for _ in ()).throw(OSError("disk full")))
    writer.submit(lambda: done.append("after"))
    with pytest.raises(OSError, match="disk full"):
        writer.close()
    assert done == []
    writer.close()  # closing again (an error handler's clean-up) neither waits nor raises again
