"""A real ``pconv serve`` on 127.0.0.1 under many uploading clients: its memory stays
bounded by ``--max-uploads`` × the body size, and is given back afterwards.

The server's resident memory (RSS, read from ``/proc``) is sampled before, during and
after each load. Run with ``-s`` to see the figures that the README quotes.
"""

from __future__ import annotations

import http.client
import io
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi", reason="pconv serve needs the serve extra: pip install 'pconv[serve]'")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc/self").exists(), reason="reads the server's RSS from /proc (Linux)"),
]

MB = 2**20
MAX_UPLOADS = 4
READ_TIMEOUT = 2.0
#: How far RSS may stay above its level before the stalled uploads once they are dropped.
GIVEN_BACK_SLACK = 60 * MB


def rss(pid: int) -> int:
    """Resident memory of process ``pid`` in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise OSError(f"/proc/{pid}/status has no VmRSS")


@contextmanager
def peak_rss(pid: int):
    """Yields a list that holds, once the block is left, the highest RSS seen in it (sampled every 5 ms)."""
    peak, done = [rss(pid)], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss(pid))
            time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield peak
    finally:
        done.set()
        sampler.join()


def settled_rss(pid: int, seconds: float = 2.0) -> int:
    """RSS once it has stopped falling (the lowest of ``seconds`` of samples)."""
    end, lowest = time.monotonic() + seconds, rss(pid)
    while time.monotonic() < end:
        time.sleep(0.05)
        lowest = min(lowest, rss(pid))
    return lowest


@pytest.fixture(scope="module")
def server():
    """``pconv serve`` with the shipped model in a subprocess; yields ``(pid, port)``."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [
        sys.executable, "-m", "pconv", "serve", "--port", str(port), "--max-upload-mb", "20",
        "--max-uploads", str(MAX_UPLOADS), "--queue-size", "2", "--read-timeout", str(READ_TIMEOUT),
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not answers(port):
            assert process.poll() is None, f"pconv serve exited: {process.stderr.read().decode()}"
            assert time.monotonic() < deadline, "pconv serve did not answer within 120 s"
            time.sleep(0.2)
        yield process.pid, port
    finally:
        process.terminate()
        process.wait(20)


def answers(port: int) -> bool:
    with suppress(OSError):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        connection.request("GET", "/api/health")
        return connection.getresponse().status == 200
    return False


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PNG", compress_level=0)
    return buffer.getvalue()


def inpaint_form(side: int, seed: int) -> tuple[bytes, str]:
    """A multipart body with a noise photo (an incompressible PNG of about 3·side² bytes) and
    a mask with one 32×32 hole; returns the body and its content type."""
    photo = np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8)
    mask = np.zeros((side, side), np.uint8)
    mask[side // 2 : side // 2 + 32, side // 2 : side // 2 + 32] = 255
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{name}.png"\r\n'
        f"Content-Type: image/png\r\n\r\n".encode()
        + data
        + b"\r\n"
        for name, data in (("image", png(photo)), ("mask", png(mask)))
    ]
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def post(port: int, body: bytes, content_type: str) -> int:
    """POST ``body`` to /api/inpaint; the answer's status, or 0 if the connection was dropped."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    try:
        connection.request("POST", "/api/inpaint", body, {"Content-Type": content_type})
        response = connection.getresponse()
        response.read()
        return response.status
    except (OSError, http.client.HTTPException):  # dropped, reset or timed out
        return 0
    finally:
        connection.close()


def stalled_upload(port: int, declared: int, sent: int) -> int:
    """Declares a body of ``declared`` bytes, sends ``sent`` of them and stops; returns the
    status the server answered, or 0 if it closed the connection without answering."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as client:
        head = (
            f"POST /api/inpaint HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; "
            f"boundary=x\r\nContent-Length: {declared}\r\n\r\n"
        )
        with suppress(ConnectionError):
            client.sendall(head.encode() + bytes(sent))
        answer = b""
        with suppress(ConnectionError):
            while chunk := client.recv(65536):
                answer += chunk
    return int(answer.split()[1]) if answer.startswith(b"HTTP/1.1") else 0


def report(title: str, before: int, peak: int, after: int, statuses: Counter) -> None:
    answered = ", ".join(f"{count} × {status or 'dropped'}" for status, count in sorted(statuses.items()))
    print(
        f"\n{title}: RSS {before / MB:.0f} MB before, peak {peak / MB:.0f} MB "
        f"(+{(peak - before) / MB:.0f}), {after / MB:.0f} MB after; answers: {answered}"
    )


def warm_up(port: int) -> None:
    """One full request, so that what the first request loads once (the network's first
    pass, the multipart parser) is not counted as memory kept."""
    assert post(port, *inpaint_form(256, seed=0)) == 200


def test_stalled_uploads_hold_at_most_max_uploads_bodies_and_are_freed_when_dropped(server):
    pid, port = server
    warm_up(port)
    clients, declared, sent = 24, 16 * MB, 15 * MB
    before = settled_rss(pid)
    with peak_rss(pid) as peak, ThreadPoolExecutor(clients) as pool:
        statuses = Counter(pool.map(lambda _: stalled_upload(port, declared, sent), range(clients)))
    after = settled_rss(pid)
    report(f"{clients} clients stalled in a {declared // MB} MB body", before, peak[0], after, statuses)

    # The clients beyond --max-uploads were refused before their bodies were read; the
    # ones held were dropped by the read timeout, without an answer. (On a slow machine a
    # client may connect after a held one was dropped, and be held in its place.)
    assert set(statuses) == {503, 0} and statuses[0] >= MAX_UPLOADS, statuses
    assert statuses[503] >= clients - 2 * MAX_UPLOADS, statuses
    # Held: MAX_UPLOADS bodies of `sent` bytes (growing buffers are copied as they grow,
    # and the allocator keeps some slack), not the 24 × 15 MB that the clients sent.
    assert peak[0] - before < (MAX_UPLOADS + 4) * sent, f"peak +{(peak[0] - before) / MB:.0f} MB"
    assert after - before < GIVEN_BACK_SLACK, f"+{(after - before) / MB:.0f} MB after"


def test_many_full_requests_are_answered_and_their_memory_is_given_back(server):
    pid, port = server
    warm_up(port)
    clients, side = 16, 1800  # about 12 MB per request
    forms = [inpaint_form(side, seed) for seed in range(clients)]
    size = len(forms[0][0])
    before = settled_rss(pid)
    with peak_rss(pid) as alone:
        assert post(port, *forms[0]) == 200
    after_one = settled_rss(pid)
    with peak_rss(pid) as peak, ThreadPoolExecutor(clients) as pool:
        statuses = Counter(pool.map(lambda form: post(port, *form), forms))
    after = settled_rss(pid)
    report(f"1 client sending {size / MB:.1f} MB", before, alone[0], after_one, Counter({200: 1}))
    report(f"{clients} clients each sending {size / MB:.1f} MB at once", before, peak[0], after, statuses)

    assert set(statuses) <= {200, 503} and statuses[200] >= 1, statuses
    # Over one request alone (its upload, decoding and the network's work on the whole
    # image), the load adds at most the other held bodies and the queue's decoded images
    # (uint8 and float32 RGB), not every client's body.
    decoded = side * side * 3 * (1 + 4)
    assert peak[0] - alone[0] < MAX_UPLOADS * size * 2 + 2 * decoded + 50 * MB, f"+{peak[0] / MB:.0f} MB"
    # Freed memory goes back to the system once the server is idle: without that, glibc
    # kept 400–500 MB here after each load, and more after each (measured).
    assert after - before < 250 * MB, f"+{(after - before) / MB:.0f} MB after"
