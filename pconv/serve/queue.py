"""One model, many requests: inpainting jobs run one at a time, first come first served.

The server holds one :class:`~pconv.inference.Inpainter`. Running several requests
through it at once would multiply the memory the network needs (and on a GPU run out
of it); :class:`InferenceQueue` instead runs them one after another on a single worker
thread. A request takes its place with :meth:`InferenceQueue.reserve` before it decodes
its upload, so at most ``max_waiting`` + 1 decoded images are held at any time, and
once ``max_waiting`` are waiting, more are refused (:class:`QueueFullError`).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

__all__ = ["InferenceQueue", "QueueFullError", "Reservation"]

Result = TypeVar("Result")


class QueueFullError(RuntimeError):
    """``max_waiting`` requests are already waiting; ``retry_after`` is a guess in seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class InferenceQueue:
    """A single worker thread that runs the jobs of reserved places in order.

    Args:
        max_waiting: places that may wait while one job runs; one more is refused.
    """

    def __init__(self, max_waiting: int) -> None:
        if max_waiting < 0:
            raise ValueError(f"max_waiting must be at least 0, got {max_waiting}")
        self.max_waiting = max_waiting
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pconv-inference")
        self._lock = threading.Lock()
        self._pending = 0  # places reserved: running + waiting
        self._seconds_per_job = 1.0  # running mean, for Retry-After

    @property
    def pending(self) -> int:
        """Places reserved: the running job and those waiting."""
        return self._pending

    def reserve(self) -> Reservation:
        """A place in the queue, to :meth:`Reservation.submit` a job or :meth:`Reservation.release`.

        Raises:
            QueueFullError: ``max_waiting`` places are already waiting.
        """
        with self._lock:
            if self._pending > self.max_waiting:
                waiting = self._pending - 1
                raise QueueFullError(
                    f"the server is busy: {waiting} request{' is' if waiting == 1 else 's are'} waiting "
                    f"for the model (at most {self.max_waiting}); try again later",
                    self.retry_after(),
                )
            self._pending += 1
        return Reservation(self)

    def retry_after(self) -> int:
        """Seconds until the jobs now pending are likely done (at least 1)."""
        return max(1, math.ceil(self._pending * self._seconds_per_job))

    def close(self) -> None:
        """Cancel waiting jobs, let the running one finish and stop the worker."""
        self._executor.shutdown(wait=True, cancel_futures=True)

    def _submit(self, job: Callable[[], Result]) -> Future[Result]:
        return self._executor.submit(self._timed, job)

    def _timed(self, job: Callable[[], Result]) -> Result:
        start = time.perf_counter()
        try:
            return job()
        finally:
            self._seconds_per_job = 0.8 * self._seconds_per_job + 0.2 * (time.perf_counter() - start)

    def _release(self) -> None:
        with self._lock:
            self._pending -= 1


class Reservation:
    """One place in an :class:`InferenceQueue`, held until its job is done or it is released."""

    def __init__(self, queue: InferenceQueue) -> None:
        self._queue, self._held = queue, True

    def submit(self, job: Callable[[], Result]) -> Future[Result]:
        """Queue ``job``; the place is freed when it finishes, or when its future is
        cancelled while waiting (then ``job`` never runs)."""
        if not self._held:
            raise RuntimeError("this reservation was already used or released")
        self._held = False
        future = self._queue._submit(job)
        future.add_done_callback(lambda _: self._queue._release())
        return future

    def release(self) -> None:
        """Give the place back unused (no-op once a job was submitted)."""
        if self._held:
            self._held = False
            self._queue._release()
