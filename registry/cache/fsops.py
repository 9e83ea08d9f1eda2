"""The cache's file-system plumbing: locks, hashing, links, durable renames, and the wording
of a write the file system refuses."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from lfs_agent.oids import OID_PATTERN
from registry.errors import CacheError
from registry.safeio import file_mode

CHUNK = 1 << 20
READ_ONLY = 0o444

_FIXES = {
    errno.EROFS: "the cache is on a read-only file system",
    errno.EACCES: "this user may not write there",
    errno.EPERM: "this user may not write there",
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exhausted",
    errno.EFBIG: "the file size limit was reached",
}


@contextlib.contextmanager
def translated(cache: Path, doing: str) -> Iterator[None]:
    """A write the file system refused becomes a CacheError that says what to do."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in _FIXES:
            raise
        where = exc.filename or cache
        raise CacheError(
            f"cannot {doing}: {_FIXES[exc.errno]} ({exc.strerror}: '{where}'). Free space or "
            f"fix the permissions of {cache}, or point MODEL_REGISTRY_CACHE (or --cache-dir) at "
            "a writable folder; versions already complete there are still served read-only",
            path=str(where),
            errno=exc.errno,
        ) from None


def expand(value: str, home: str) -> Path:
    if value == "~" or value.startswith("~/"):
        value = home + value[1:]
    return Path(value).absolute()


def check_oid(oid: str) -> None:
    if not isinstance(oid, str) or not OID_PATTERN.fullmatch(oid):
        raise ValueError(f"oid {oid!r} is not a SHA-256: expected 64 lowercase hex digits")


def check_key(key: str) -> str:
    """A relative `/`-separated path without empty, `.` or `..` parts."""
    if (
        not isinstance(key, str)
        or not key
        or "\0" in key
        or "\\" in key
        or PurePosixPath(key).is_absolute()
        or any(part in ("", ".", "..") for part in key.split("/"))
    ):
        raise ValueError(
            f"cache key {key!r} is not a relative '/'-separated path without '.' or '..' parts "
            "(e.g. 'YOLOX-l/base/1.2')"
        )
    return key


@contextlib.contextmanager
def locked(path: Path, *, shared: bool = False) -> Iterator[None]:
    """Hold a blocking `flock` on `path` (created if missing); the kernel drops it on exit."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def link_or_copy(source: Path, dest: Path) -> None:
    """Hard-link `dest` to `source`; copy (read-only) where the file system refuses links."""
    try:
        os.link(source, dest)
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EACCES):
            raise
        shutil.copyfile(source, dest)
        fsync_file(dest)
        os.chmod(dest, READ_ONLY & file_mode())


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Make a rename into `path` durable (best effort: not every file system supports it)."""
    with contextlib.suppress(OSError):
        fsync_file(path)


def rmtree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def remove_empty_parents(path: Path, stop: Path) -> None:
    """Remove `path` and its parents while they are empty, up to (not including) `stop`."""
    while path != stop and stop in path.parents:
        try:
            path.rmdir()
        except OSError:
            return
        path = path.parent
