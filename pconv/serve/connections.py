"""Dropping stalled clients: uvicorn's HTTP/1.1 protocol with a read timeout.

uvicorn closes idle keep-alive connections, but not a connection that is still sending
its request: one that connects and sends nothing, stops in the middle of its headers or
of its body (``Content-Length`` or chunked) stays open, and holds what it sent, for as
long as the client likes. :func:`read_timeout_protocol` makes a protocol that closes a
connection once the client has owed the server request bytes for ``seconds`` without
sending any. The clock restarts with every byte received and stops once the request is
complete, so inference time, however long, never counts. Closing the connection tells
the application (``http.disconnect``), which drops the partial body.
"""

from __future__ import annotations

import asyncio
import logging

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["read_timeout_protocol"]

logger = logging.getLogger("pconv.serve")

#: The client's h11 states in which it still owes the server (part of) a request.
_OWES_REQUEST = (h11.IDLE, h11.SEND_BODY)


class _ReadTimeoutProtocol(H11Protocol):
    """:class:`H11Protocol` that drops clients stalled in the middle of sending a request."""

    read_timeout: float = 30.0
    _read_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._restart_read_timer()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._restart_read_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_read_timer()
        super().connection_lost(exc)

    def _restart_read_timer(self) -> None:
        self._stop_read_timer()
        if self.conn.their_state in _OWES_REQUEST:
            self._read_timer = self.loop.call_later(self.read_timeout, self._read_timed_out)

    def _stop_read_timer(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def _read_timed_out(self) -> None:
        self._read_timer = None
        if self.conn.their_state in _OWES_REQUEST and not self.transport.is_closing():
            client = f"{self.client[0]}:{self.client[1]}" if self.client else "a client"
            logger.info("dropping %s: no request bytes for %g s", client, self.read_timeout)
            self.transport.close()  # connection_lost follows and tells the application


def read_timeout_protocol(seconds: float) -> type[H11Protocol]:
    """A uvicorn ``http`` protocol class (``uvicorn.run(..., http=...)``) that closes a
    connection whose request has been stalled for ``seconds``."""
    if seconds <= 0:
        raise ValueError(f"the read timeout must be positive, got {seconds}")
    return type("ReadTimeoutProtocol", (_ReadTimeoutProtocol,), {"read_timeout": float(seconds)})
