"""A bound on S3 requests in flight across every agent process of one repository.

git-lfs runs `lfs.concurrenttransfers` agent processes (8 by default) and each may run several
ranged or multipart requests: without a shared bound that is dozens of connections (PROTOCOL.md,
"Known traps"). Each slot is a lock file under `<git-common-dir>/lfs-s3/slots`; a request holds
one with `flock`, which the kernel releases if the process dies, so a crash never leaks a slot.
One large object can still use every slot while the other workers are idle.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from . import logs
from .errors import Interrupted

log = logs.get(__name__)


class Slots:
    """`count` shared slots; `hold()` waits for a free one."""

    def __init__(
        self,
        directory: Path | None,
        count: int,
        *,
        poll: float = 0.005,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._count = count
        self._poll = poll
        self._sleep = sleep
        self._local = [threading.Lock() for _ in range(count)]
        self._fds: list[int] | None = None
        self._directory = directory
        self._open_lock = threading.Lock()

    def _open(self) -> list[int]:
        with self._open_lock:
            if self._fds is None:
                self._fds = []
                if self._directory is not None:
                    try:
                        self._directory.mkdir(parents=True, exist_ok=True)
                        for i in range(self._count):
                            self._fds.append(
                                os.open(self._directory / str(i), os.O_RDWR | os.O_CREAT, 0o644)
                            )
                    except OSError as exc:
                        # A read-only repository still transfers, bounded per process only.
                        log.warning("no shared connection slots in %s: %s", self._directory, exc)
                        for fd in self._fds:
                            os.close(fd)
                        self._fds = []
            return self._fds

    def _try(self, i: int, fds: list[int]) -> bool:
        if not self._local[i].acquire(blocking=False):
            return False
        if not fds:
            return True
        try:
            fcntl.flock(fds[i], fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError:
            self._local[i].release()
            return False

    @contextmanager
    def hold(self, cancel: threading.Event | None = None) -> Iterator[None]:
        """Hold one slot for the duration of the block.

        Raises:
            Interrupted: `cancel` was set while waiting.
        """
        fds = self._open()
        # Start at a random slot so that processes do not all contend for slot 0.
        start = int.from_bytes(os.urandom(2), "big") % self._count
        order = [(start + j) % self._count for j in range(self._count)]
        while (slot := next((i for i in order if self._try(i, fds)), None)) is None:
            if cancel is not None and cancel.is_set():
                raise Interrupted("cancelled while waiting for a connection slot")
            self._sleep(self._poll)
        try:
            yield
        finally:
            if fds:
                fcntl.flock(fds[slot], fcntl.LOCK_UN)
            self._local[slot].release()

    def close(self) -> None:
        with self._open_lock:
            for fd in self._fds or []:
                os.close(fd)
            self._fds = None
