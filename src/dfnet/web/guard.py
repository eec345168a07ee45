"""A deadline for request headers: connections whose headers do not complete in time are closed.

uvicorn bounds the idle time between requests (keep-alive) and the app bounds the body
(``ServerSettings.body_timeout_s``), but nothing bounds the headers: a client can open a connection,
send half a request line and hold the socket and its buffers for ever. :func:`server_config` runs the
app with an HTTP protocol that starts a timer when a connection opens (and again after each response
on a kept-alive connection) and, if the next request's headers are not complete when it fires,
answers ``408 Request Timeout`` and closes the connection.
"""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

DEFAULT_HEADER_TIMEOUT_S = 10.0
_TIMEOUT_BODY = b"request headers did not arrive in time\n"
TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(_TIMEOUT_BODY), _TIMEOUT_BODY)
)


class HeaderDeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol plus a deadline on every request's headers (``header_timeout_s``)."""

    header_timeout_s = DEFAULT_HEADER_TIMEOUT_S

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._header_timer: asyncio.TimerHandle | None = None
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._in_request():
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and not self._in_request():
            self._arm()  # a kept-alive connection: the next request's headers have the same deadline

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _in_request(self) -> bool:
        """True once a request's headers are complete, until its response is."""
        return self.cycle is not None and not self.cycle.response_complete

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self.transport.is_closing() or self._in_request():
            return
        self.logger.info("closed a connection whose request headers took over %g s", self.header_timeout_s)
        self.transport.write(TIMEOUT_RESPONSE)
        self.transport.close()


def header_deadline_protocol(header_timeout_s: float) -> type[HeaderDeadlineProtocol]:
    """The protocol class with its deadline set (uvicorn builds one instance per connection)."""
    if not header_timeout_s > 0:
        raise ValueError(f"the header timeout must be a positive number of seconds, got {header_timeout_s}")
    return type("HeaderDeadline", (HeaderDeadlineProtocol,), {"header_timeout_s": float(header_timeout_s)})


def server_config(
    app: Any, header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S, **options: Any
) -> uvicorn.Config:
    """A uvicorn config serving ``app`` with the request-header deadline (``options`` go to uvicorn)."""
    return uvicorn.Config(app, http=header_deadline_protocol(header_timeout_s), **options)
