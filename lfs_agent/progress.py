"""Turn byte counts from transfer threads into git-lfs progress events.

Rules (PROTOCOL.md, git-lfs `tq/custom.go`):
- the first event with bytesSoFar > 0 goes out at once: git-lfs holds its other workers until
  worker 1 reports some progress;
- later events at most every `interval` seconds, so a fast transfer does not flood the pipe;
- bytesSoFar stays within [0, size] and never goes back, even when a retried part rewinds;
- `finish()` sends the last event, equal to the size.
Callbacks arrive from several threads, so everything happens under one lock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from .protocol import Progress


class ProgressReporter:
    """Thread-safe, clamped, throttled progress for one object."""

    def __init__(
        self,
        oid: str,
        size: int,
        send: Callable[[Progress], None],
        *,
        interval: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._oid = oid
        self._size = size
        self._send = send
        self._interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._seen = 0  # bytes counted so far, may rewind on retries
        self._sent = 0  # bytesSoFar of the last event sent
        self._last_time: float | None = None

    def __call__(self, delta: int) -> None:
        """Count `delta` more bytes moved (negative when a retry rewinds)."""
        with self._lock:
            self._seen = max(0, self._seen + delta)
            now = self._clock()
            if self._last_time is not None and now - self._last_time < self._interval:
                return
            self._emit(now)

    def finish(self) -> None:
        """Report the whole object as moved."""
        with self._lock:
            self._seen = self._size
            self._emit(self._clock())

    def _emit(self, now: float) -> None:
        so_far = min(self._seen, self._size)
        if so_far <= self._sent:
            return
        self._send(Progress(self._oid, so_far, so_far - self._sent))
        self._sent = so_far
        self._last_time = now
