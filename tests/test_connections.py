"""Stalled clients are dropped by ``pconv serve``'s protocol; slow work and slow senders are not."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from contextlib import contextmanager, suppress

import pytest

uvicorn = pytest.importorskip(
    "uvicorn", reason="pconv serve needs the serve extra: pip install 'pconv[serve]'"
)
from pconv.serve.connections import read_timeout_protocol  # noqa: E402

READ_TIMEOUT = 0.5


class RecordingApp:
    """An ASGI app that reads the whole body, works ``work_seconds``, then answers its length;
    it records the last message each request received."""

    def __init__(self, work_seconds: float = 0.0) -> None:
        self.work_seconds, self.last_messages = work_seconds, []

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            return
        size, message = 0, {"more_body": True}
        while message.get("more_body", False):
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            size += len(message.get("body", b""))
        self.last_messages.append(message["type"])
        if message["type"] == "http.disconnect":
            return
        await asyncio.sleep(self.work_seconds)
        body = str(size).encode()
        headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


@contextmanager
def running(app):
    """The app under uvicorn with the read-timeout protocol, in a thread; yields the port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, http=read_timeout_protocol(READ_TIMEOUT), log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(10)


def closed_after(client: socket.socket) -> float:
    """Seconds until the server closes ``client`` (fails after 5 s)."""
    client.settimeout(5)
    start = time.monotonic()
    with suppress(ConnectionResetError):
        assert client.recv(1024) == b"", "the server answered instead of closing"
    return time.monotonic() - start


STALLED = {
    "connects only": b"",
    "part of the headers": b"POST /api/inpaint HTTP/1.1\r\nHost: x\r\nContent-Le",
    "part of the body": b"POST /api/inpaint HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" + b"x" * 100,
    "a stalled chunked body": b"POST /api/inpaint HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    + b"10\r\n0123456789abcdef\r\n",
}


@pytest.mark.parametrize("stall", STALLED)
def test_a_stalled_client_is_dropped_and_its_request_told(stall):
    app = RecordingApp()
    with running(app) as port, socket.create_connection(("127.0.0.1", port)) as client:
        client.sendall(STALLED[stall])
        assert closed_after(client) < READ_TIMEOUT + 1.5
        time.sleep(0.1)
    if "body" in stall:  # the application saw the disconnect, so it dropped what it held
        assert app.last_messages == ["http.disconnect"]


def test_slow_work_and_a_slow_but_steady_sender_are_not_dropped():
    app = RecordingApp(work_seconds=3 * READ_TIMEOUT)  # working longer than the read timeout
    with running(app) as port, socket.create_connection(("127.0.0.1", port)) as client:
        client.sendall(b"POST /api/inpaint HTTP/1.1\r\nHost: x\r\nContent-Length: 8\r\n\r\n")
        for _ in range(4):  # a byte every 0.3 s: 1.2 s in all, each gap under the timeout
            time.sleep(0.6 * READ_TIMEOUT)
            client.sendall(b"xx")
        client.settimeout(5)
        answer = b""
        while not answer.endswith(b"\r\n\r\n8") and (part := client.recv(1024)):
            answer += part  # the head and the body may come in separate packets
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"\r\n\r\n8")
    assert app.last_messages == ["http.request"]


def test_the_timeout_must_be_positive():
    with pytest.raises(ValueError, match="positive"):
        read_timeout_protocol(0)
