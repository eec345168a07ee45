"""dfnet.web.guard: the request-header deadline, on an in-process uvicorn server with a minimal ASGI app."""

from __future__ import annotations

import socket
import time

import pytest
from helpers import live_server

from dfnet.web.guard import TIMEOUT_RESPONSE, header_deadline_protocol, server_config


async def hello(scope, receive, send) -> None:
    """The smallest ASGI app: 200 and 'ok' for any HTTP request."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


def serving(header_timeout_s: float):
    """``hello`` behind the header deadline on a free loopback port; the context yields the port."""
    return live_server(hello, server_config(hello, header_timeout_s=header_timeout_s, log_level="warning"))


def read_all(conn: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    data = b""
    while chunk := conn.recv(4096):
        data += chunk
    return data


def read_response(conn: socket.socket) -> bytes:
    """One whole response of ``hello`` (headers and its 2-byte body may arrive in separate segments)."""
    data = b""
    while not data.endswith(b"\r\n\r\nok"):
        chunk = conn.recv(4096)
        assert chunk, data
        data += chunk
    return data


def test_headers_that_never_finish_get_408_and_a_closed_connection() -> None:
    with serving(0.5) as port, socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        started = time.monotonic()
        conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        assert read_all(conn) == TIMEOUT_RESPONSE
        assert 0.4 < time.monotonic() - started < 5


def test_a_kept_alive_connection_gets_a_new_deadline_after_each_response() -> None:
    with serving(0.5) as port, socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        for _ in range(
            2
        ):  # two requests on one connection, each within the deadline, the second after a pause
            conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_response(conn).startswith(b"HTTP/1.1 200")
            time.sleep(0.3)
        assert read_all(conn) == TIMEOUT_RESPONSE  # then idle past the deadline: closed with 408


@pytest.mark.parametrize("seconds", [0, -1, float("nan")])
def test_the_deadline_must_be_positive(seconds: float) -> None:
    with pytest.raises(ValueError, match="header timeout must be a positive number"):
        header_deadline_protocol(seconds)
    assert header_deadline_protocol(2.5).header_timeout_s == 2.5
