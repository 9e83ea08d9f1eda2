"""One object's download in progress: bytes land at their offsets in any order, hashed in order.

A large object arrives as several ranged GETs at once, each writing where its bytes belong. The
SHA-256 must be computed in order, so `PartialFile` tracks the *watermark*: the length of the
prefix that has fully arrived. One writer at a time hashes what has become contiguous, reading
it back from the page cache while the others keep downloading, so verification overlaps the
download instead of re-reading the whole file after it.

The watermark is also what survives a crash: it is recorded next to the file (`<name>.upto`)
every few MiB and on close. The next attempt keeps that prefix, hashes it, and fetches the rest.
Bytes past the watermark may be garbage from a killed writer, so they are never trusted.

>>> import hashlib, tempfile
>>> with tempfile.TemporaryDirectory() as tmp:
...     path = Path(tmp) / "x.partial"
...     with PartialFile.open(path, size=6) as part:
...         part.write(3, b"def")  # out of order: recorded, not hashed yet
...         part.write(0, b"abc")  # completes the prefix: both ranges hashed, in order
...         part.done, part.hexdigest() == hashlib.sha256(b"abcdef").hexdigest()
(6, True)
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

CHUNK = 1 << 20
MARK_EVERY = 8 << 20  # record the watermark after this many new bytes (bounded rework on a crash)


class OutOfRange(ValueError):
    """A write outside [start, size): the store sent more bytes than the object has."""

    def __init__(self, message: str, *, end: int) -> None:
        super().__init__(message)
        self.end = end


class PartialFile:
    """Write an object of `size` bytes into `path`, from `start` on, in any order, from threads."""

    def __init__(self, path: Path, fd: int, size: int, start: int) -> None:
        self.path = path
        self.size = size
        self.start = start
        self._fd = fd
        self._mark = _mark_path(path)
        self._hasher = hashlib.sha256()
        self._done = 0
        self._marked = 0
        self._pending: dict[int, int] = {}  # start -> end of ranges written past the watermark
        self._lock = threading.Lock()  # guards _pending
        self._hash_lock = threading.Lock()  # one hashing thread: _hasher, _done, the record

    @classmethod
    @contextlib.contextmanager
    def open(cls, path: Path, *, size: int) -> Iterator[PartialFile]:
        """Open (or resume) the partial download at `path`; on exit, record how far it got.

        The kept prefix is the recorded watermark (or, with no record, the file's length: a
        file written only by appending) and is hashed before any new byte is accepted.
        """
        # 0666 less the umask: a team sharing a cache (umask 002) can resume each other's.
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        try:
            length = os.fstat(fd).st_size
            start = min(length, _read_mark(_mark_path(path), default=length))
            if start > size:  # not a prefix of this object
                start = 0
            os.ftruncate(fd, start)
            part = cls(path, fd, size, start)
            part._absorb(0, start)
            part._record()
            try:
                yield part
            finally:
                with part._hash_lock:
                    if part._done == 0 < part.size:  # nothing arrived: leave nothing behind
                        discard(path)
                    else:
                        part._record()
        finally:
            os.close(fd)

    @property
    def done(self) -> int:
        """How many leading bytes have arrived (and been hashed)."""
        return self._done

    def fileno(self) -> int:
        return self._fd

    def hexdigest(self) -> str:
        """SHA-256 of the first `done` bytes."""
        with self._hash_lock:
            return self._hasher.hexdigest()

    def write(self, offset: int, data: bytes) -> None:
        """Store `data` at `offset` (thread-safe; ranges may arrive in any order)."""
        end = offset + len(data)
        if offset < self.start or end > self.size:
            raise OutOfRange(
                f"bytes {offset}-{end} are outside the object's {self.size} bytes "
                f"(this attempt fetches from byte {self.start})",
                end=end,
            )
        if not data:
            return
        view = memoryview(data)
        written = 0
        while written < len(view):
            written += os.pwrite(self._fd, view[written:], offset + written)
        with self._lock:
            self._pending[offset] = end
        self._advance()

    def _advance(self) -> None:
        """Hash what has become contiguous.

        One thread hashes at a time, outside the bookkeeping lock, so the other writers go
        straight back to their downloads; the hashing thread picks up the ranges they leave.
        After releasing, it looks once more, so a range added while it finished is not left
        waiting for a later write.
        """
        while self._hash_lock.acquire(blocking=False):
            try:
                while True:
                    with self._lock:
                        end = self._pending.pop(self._done, None)
                    if end is None:
                        break
                    self._absorb(self._done, end)
                    if self._done - self._marked >= MARK_EVERY:
                        self._record()
            finally:
                self._hash_lock.release()
            with self._lock:
                if self._done not in self._pending:
                    return

    def _absorb(self, begin: int, end: int) -> None:
        """Hash bytes [begin, end), read back from the page cache; move the watermark to `end`."""
        offset = begin
        while offset < end:
            chunk = os.pread(self._fd, min(CHUNK, end - offset), offset)
            if not chunk:
                raise OSError(f"{self.path} is shorter than expected at byte {offset}")
            self._hasher.update(chunk)
            offset += len(chunk)
        self._done = end

    def _record(self) -> None:
        """Write the watermark next to the file (atomically; best effort)."""
        if not self.path.exists():
            return
        tmp = self._mark.with_name(self._mark.name + ".tmp")
        try:
            tmp.write_text(str(self._done))
            os.replace(tmp, self._mark)
            self._marked = self._done
        except OSError:
            # A full disk: keep no half-written record (the old one, if any, still holds).
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)


def discard(path: Path) -> None:
    """Remove a partial download and its watermark record, if any."""
    path.unlink(missing_ok=True)
    _mark_path(path).unlink(missing_ok=True)


def _mark_path(path: Path) -> Path:
    return path.with_name(path.name + ".upto")


def _read_mark(mark: Path, *, default: int) -> int:
    try:
        text = mark.read_text()
    except FileNotFoundError:
        return default
    except OSError:
        return 0
    # A damaged record trusts nothing: bytes past the real watermark may be garbage.
    return int(text) if text.strip().isdigit() else 0
