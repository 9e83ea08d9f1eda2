"""A dict-backed object store that satisfies `lfs_agent.store.Store`, for session tests.

It behaves like the real store where the session can see it (progress callbacks, a new absolute
temp file per download, False for an object already stored, TransferError subclasses for
failures) and adds what a test needs to look inside: the calls it got, errors it can be told to
raise, and a pause in the middle of a transfer so a test can close stdin and watch `cancel`.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lfs_agent.errors import Interrupted, ObjectNotFound

# Long enough for a slow CI machine, short enough that a broken test fails instead of hanging.
WAIT = 10.0


@dataclass(frozen=True)
class Call:
    """One call the store received."""

    operation: str  # "upload" or "download"
    oid: str
    size: int
    path: Path | None  # the upload's source file; None for a download
    cancel: threading.Event


def split(size: int, chunks: int) -> list[int]:
    """`size` bytes as `chunks` deltas, as even as possible, none of them zero.

    >>> split(10, 3)
    [4, 3, 3]
    >>> split(2, 5)
    [1, 1]
    >>> split(0, 3)
    []
    """
    chunks = max(1, min(chunks, size))
    base, extra = divmod(size, chunks)
    return [base + (1 if i < extra else 0) for i in range(chunks)] if size else []


class FakeStore:
    """Objects in a dict (oid -> bytes); downloads land in `tmp_dir`.

    Args:
        tmp_dir: where downloads are written (must exist).
        objects: what the store holds at the start.
        chunks: how many progress callbacks a transfer makes (its size split evenly).
        pause: when set, a transfer reports its first chunk, sets `started`, then waits on this
            event before going on.
        wait_for_cancel: a transfer reports its first chunk, sets `started`, then waits for the
            `cancel` event it was given, records whether it came (`cancel_seen`) and raises
            Interrupted when it did, as the S3 store does.
    """

    def __init__(
        self,
        tmp_dir: Path,
        objects: dict[str, bytes] | None = None,
        *,
        chunks: int = 1,
        pause: threading.Event | None = None,
        wait_for_cancel: bool = False,
    ) -> None:
        self.tmp_dir = tmp_dir
        self.objects: dict[str, bytes] = dict(objects or {})
        self.chunks = chunks
        self.pause = pause
        self.wait_for_cancel = wait_for_cancel
        self.calls: list[Call] = []
        self.errors: dict[str, BaseException] = {}
        self.started = threading.Event()
        self.cancel_seen: bool | None = None
        self.downloaded: list[Path] = []

    def fail(self, oid: str, exc: BaseException) -> None:
        """Raise `exc` on every later transfer of `oid`."""
        self.errors[oid] = exc

    def upload(
        self,
        oid: str,
        size: int,
        path: Path,
        progress: Callable[[int], None],
        cancel: threading.Event,
    ) -> bool:
        self.calls.append(Call("upload", oid, size, path, cancel))
        self._maybe_fail(oid)
        if oid in self.objects:
            return False
        data = path.read_bytes()
        self._move(len(data), progress, cancel)
        self.objects[oid] = data
        return True

    def download(
        self, oid: str, size: int, progress: Callable[[int], None], cancel: threading.Event
    ) -> Path:
        self.calls.append(Call("download", oid, size, None, cancel))
        self._maybe_fail(oid)
        if oid not in self.objects:
            raise ObjectNotFound(f"object {oid} is not in the fake store", oid=oid)
        data = self.objects[oid]
        self._move(len(data), progress, cancel)
        fd, name = tempfile.mkstemp(dir=self.tmp_dir, prefix=f"{oid}-")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        path = Path(name).resolve()
        self.downloaded.append(path)
        return path

    def _maybe_fail(self, oid: str) -> None:
        exc = self.errors.get(oid)
        if exc is not None:
            raise exc

    def _move(self, size: int, progress: Callable[[int], None], cancel: threading.Event) -> None:
        deltas = split(size, self.chunks)
        for i, delta in enumerate(deltas):
            progress(delta)
            if i == 0:
                self._midway(cancel)
        if not deltas:
            self._midway(cancel)

    def _midway(self, cancel: threading.Event) -> None:
        if self.pause is None and not self.wait_for_cancel:
            return
        self.started.set()
        if self.pause is not None:
            self.pause.wait(WAIT)
        if self.wait_for_cancel:
            self.cancel_seen = cancel.wait(WAIT)
            if self.cancel_seen:
                raise Interrupted("cancelled by the test")
