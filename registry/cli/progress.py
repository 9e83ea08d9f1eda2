"""A byte counter for long transfers: drawn in place on a terminal, silent otherwise."""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

MiB = 1024 * 1024


class ByteProgress:
    """`update(n)` from any thread; shows `label: 12.3 MiB (45%)` at most 10 times a second."""

    def __init__(
        self,
        label: str,
        total: int | None = None,
        *,
        stream: TextIO | None = None,
        enabled: bool | None = None,
    ) -> None:
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.label = label
        self.total = total
        self.done = 0
        self._lock = threading.Lock()
        self._shown = 0.0

    def update(self, n: int) -> None:
        with self._lock:
            self.done += n
            now = time.monotonic()
            if self.enabled and now - self._shown >= 0.1:
                self._shown = now
                self._draw()

    def _draw(self) -> None:
        text = f"\r{self.label}: {self.done / MiB:,.1f} MiB"
        if self.total:
            text += f" of {self.total / MiB:,.1f} MiB ({100 * self.done // self.total}%)"
        self.stream.write(text)
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self._draw()
            self.stream.write("\n")
            self.stream.flush()
