"""Local records that let the next agent process resume what an interrupted one left.

Both live under `<lfs dir>/lfs-s3/`, outside `<lfs dir>/tmp`: git-lfs's temp cleaner deletes
any file there older than an hour, and an interrupted push or pull may be retried the next day.

- `uploads/<oid>.json`: the multipart upload this clone's agent created for an object (its
  upload id, bucket, key, size, part size, checksum mode), written right after it is created
  and removed once it is completed or aborted. Only uploads recorded here are ever resumed or
  aborted: an upload under the same key that another clone created may still be running.
- `downloads/<oid>.part` + `<oid>.json`: a partly downloaded object and the CRC32 of each
  leading range already written and hashed in order, so the next download verifies them and
  fetches only the rest (the whole object is then checked against its oid).

Each object has a lock (`flock`, released by the kernel when a process dies): two processes of
one repository never work on the same record at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from . import logs
from .errors import Interrupted

log = logs.get(__name__)

STATE_DIR = "lfs-s3"


def state_dir(lfs_dir: Path, kind: str) -> Path:
    """`<lfs dir>/lfs-s3/<kind>`, where kind is "uploads" or "downloads"."""
    return lfs_dir / STATE_DIR / kind


class Records:
    """JSON records and locks, one per oid, in one directory (None: nothing is kept)."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory

    def path(self, oid: str, suffix: str) -> Path | None:
        return None if self.directory is None else self.directory / f"{oid}{suffix}"

    def load(self, oid: str) -> dict[str, Any] | None:
        path = self.path(oid, ".json")
        if path is None:
            return None
        try:
            value = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable resume record %s: %s", path, exc)
            return None
        return value if isinstance(value, dict) else None

    def save(self, oid: str, record: dict[str, Any]) -> None:
        """Write the record atomically; a failure only costs the ability to resume."""
        path = self.path(oid, ".json")
        if path is None:
            return
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(record, sort_keys=True), encoding="utf-8")
            os.replace(tmp, path)
        except OSError as exc:
            log.warning("cannot write resume record %s: %s", path, exc)
            tmp.unlink(missing_ok=True)

    def forget(self, oid: str) -> None:
        path = self.path(oid, ".json")
        if path is not None:
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)

    @contextlib.contextmanager
    def locked(
        self, oid: str, cancel: threading.Event | None = None, *, wait: bool = True
    ) -> Iterator[bool]:
        """Hold the object's lock; yields False when `wait` is False and another process has it.

        Raises:
            Interrupted: `cancel` was set while waiting.
        """
        path = self.path(oid, ".lock")
        if path is None:
            yield True
            return
        fd = -1
        try:
            while True:
                try:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
                except OSError as exc:
                    # A read-only repository still transfers; it just cannot resume.
                    log.warning("cannot lock %s: %s", path, exc)
                    break
                got = _acquire(fd, path, oid, cancel, wait)
                if got == "held":
                    break
                os.close(fd)
                fd = -1
                if got == "busy":
                    yield False
                    return
            yield True
        finally:
            if fd >= 0:
                # Removed while held once nothing is left to resume, so that locks do not pile
                # up; _acquire notices a lock file that was removed under it.
                if not (self.path(oid, ".json") or path).exists():
                    with contextlib.suppress(OSError):
                        path.unlink()
                os.close(fd)  # releases the lock


def _acquire(fd: int, path: Path, oid: str, cancel: threading.Event | None, wait: bool) -> str:
    """Lock `fd`: "held"; "stale" when it is not the file at `path` any more (try again);
    "busy" when another process holds it and `wait` is False.

    Raises:
        Interrupted: `cancel` was set while waiting.
    """
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if not wait:
                return "busy"
            if cancel is not None and cancel.is_set():
                raise Interrupted(f"cancelled while waiting for the lock on {oid}") from None
            time.sleep(0.05)
    try:
        same = os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        same = False
    return "held" if same else "stale"
