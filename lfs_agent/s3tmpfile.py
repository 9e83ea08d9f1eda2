"""Download one LFS object for git-lfs into a fresh temp file that git-lfs will verify and rename.

The bytes come through the download engine (`s3download.fetch`); this module owns the file.
It lives in `<lfs dir>/tmp`, on the filesystem of `.git/lfs/objects` (git-lfs renames it), under
a unique name (git-lfs may ask for the same oid twice at once). Small objects come in one GET
into a fresh temp file, removed on any failure. Large ones come in parallel ranged GETs written
in place with `pwrite`, into `<lfs dir>/lfs-s3/downloads/<oid>.part` under a lock (a second
process asking for the same oid at once uses a temp file of its own), with a record of the
CRC32 of each leading range already hashed in order. An interruption or a transient failure
keeps both; the next download re-reads and checks the kept ranges, fetches only the rest, and
moves the file to a fresh temp name once it hashed to its oid (kept bytes that verify but do
not make the oid are dropped and the object fetched again, once). A corrupt object in the store
or a local write failure removes the partial file.

git-lfs checks the SHA-256 of what we return, but on a mismatch it only says "downloaded file
failed checks" and leaves the file behind. So the agent hashes each range, in order, as soon as
it is written (from the page cache, while later ranges are still downloading), and reports a
corrupt store object with its key and what to do, removing the file.
"""

from __future__ import annotations

import hashlib
import os
import zlib
from pathlib import Path
from time import time as wall_clock
from typing import TYPE_CHECKING

from . import logs
from .errors import (
    AccessDenied,
    CorruptObject,
    Interrupted,
    LocalIOError,
    StorageUnavailable,
    TransferError,
)
from .resume import Records, state_dir
from .s3download import fetch
from .s3errors import Where

if TYPE_CHECKING:
    from .transfer import Transfer

log = logs.get(__name__)

CHUNK = 1024 * 1024
STALE_AFTER = 7 * 24 * 3600  # seconds a partial download is kept for a retry


def download(t: Transfer, where: Where, size: int, tmp_dir: Path) -> Path:
    """Fetch object `where.oid` of `size` bytes; return the absolute path of the temp file."""
    try:
        tmp_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _no_temp(tmp_dir, where, exc) from exc
    if size > t.config.multipart_threshold:
        records = Records(state_dir(tmp_dir.parent, "downloads"))
        # Busy: this object is being fetched by another process right now; fetch a copy of
        # our own rather than wait (PROTOCOL.md: the same oid may be requested twice at once).
        with records.locked(where.oid, t.cancel, wait=False) as mine:
            if mine and records.directory is not None:
                return _resumable(t, where, size, tmp_dir, records)
    return _fresh(t, where, size, tmp_dir)


def temp_file(directory: Path) -> tuple[int, str]:
    """A new file `lfs-s3-<random>.tmp` in `directory`, open for reading and writing (mode 0600).

    Not named "<oid>-...": git-lfs's temp cleaner deletes those once the object exists. (Not
    `tempfile.mkstemp`: importing `tempfile` costs 5 ms of every agent process's start.)

    Raises:
        OSError: the file cannot be created.
    """
    for _ in range(100):
        name = os.path.join(directory, f"lfs-s3-{os.urandom(8).hex()}.tmp")
        try:
            return os.open(name, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600), name
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temp file name in {directory}")


class _FdSink:
    """The engine's sink for an open file: each chunk written in place with `pwrite`."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def write(self, offset: int, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.pwrite(self._fd, view, offset)
            view = view[written:]
            offset += written


def _no_temp(tmp_dir: Path, where: Where, exc: OSError) -> LocalIOError:
    return LocalIOError(
        f"cannot create a temp file in '{tmp_dir}' for {where.oid}: {exc}", oid=where.oid
    )


def _fresh(t: Transfer, where: Where, size: int, tmp_dir: Path) -> Path:
    """Download into a new temp file, removed on any failure."""
    try:
        fd, name = temp_file(tmp_dir)
    except OSError as exc:
        raise _no_temp(tmp_dir, where, exc) from exc
    try:
        part = t.config.part_size if size > t.config.multipart_threshold else size
        hasher = hashlib.sha256()
        if size > part:
            os.ftruncate(fd, size)

        def hashed(start: int, end: int) -> None:
            _hash_range(fd, start, end, hasher)

        fetch(t, where, size, 0, _FdSink(fd), part_size=part, complete=hashed)
        _check_digest(where, hasher.hexdigest())
        os.close(fd)
        fd = -1
        return Path(name).absolute()
    except BaseException:
        if fd >= 0:
            os.close(fd)
        Path(name).unlink(missing_ok=True)
        raise


def _resumable(t: Transfer, where: Where, size: int, tmp_dir: Path, records: Records) -> Path:
    """Download into `<oid>.part`, continuing what an earlier process left; on success the file
    moves to a fresh temp name in `tmp_dir`. Kept on an interruption or a transient failure."""
    part = records.path(where.oid, ".part")
    assert part is not None
    _prune(part.parent)
    try:
        fd = os.open(part, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise _no_temp(part.parent, where, exc) from exc
    try:
        try:
            _continue(t, where, size, fd, records)
        except _Stale:
            records.forget(where.oid)
            _continue(t, where, size, fd, records)
        fd_, name = temp_file(tmp_dir)
        os.close(fd_)
        os.replace(part, name)
        records.forget(where.oid)
        return Path(name).absolute()
    except (Interrupted, StorageUnavailable, AccessDenied) as exc:
        # Worth continuing later: the network, the store or the credentials will come back.
        done = len((records.load(where.oid) or {}).get("ranges", []))
        kept = min(size, done * t.config.part_size)
        log.warning(
            "kept %d verified bytes of %s in %s for the next download (%s)",
            kept,
            where.url,
            part,
            exc,
        )
        if isinstance(exc, StorageUnavailable) and kept:
            raise StorageUnavailable(
                f"{exc}. The {kept} bytes already downloaded are kept: run the command again "
                "to resume",
                oid=where.oid,
                key=where.key,
            ) from exc
        raise
    except TransferError:
        _drop(part, records, where.oid)
        raise
    except OSError as exc:
        _drop(part, records, where.oid)
        raise LocalIOError(f"cannot write object {where.oid}: {exc}", oid=where.oid) from exc
    except BaseException:
        _drop(part, records, where.oid)
        raise
    finally:
        os.close(fd)


class _Stale(Exception):
    """The kept bytes verified range by range, but the whole object does not hash to its oid."""


def _continue(t: Transfer, where: Where, size: int, fd: int, records: Records) -> None:
    part_size = t.config.part_size
    base = {"size": size, "part_size": part_size, "key": where.key}
    record = records.load(where.oid) or {}
    hasher = hashlib.sha256()
    crcs: list[int] = []
    if all(record.get(k) == v for k, v in base.items()) and os.fstat(fd).st_size == size:
        for want in record.get("ranges", []):
            start = len(crcs) * part_size
            if start >= size:
                break
            before = hasher.copy()
            if _hash_range(fd, start, min(start + part_size, size), hasher) != want:
                hasher = before
                break
            crcs.append(want)
    kept = min(size, len(crcs) * part_size)
    if kept:
        log.info("resuming download of %s: %d of %d bytes on disk verified", where.url, kept, size)
        t.progress(kept)
    records.save(where.oid, {**base, "ranges": crcs})
    os.ftruncate(fd, size)

    def hashed(start: int, end: int) -> None:
        crcs.append(_hash_range(fd, start, end, hasher))
        records.save(where.oid, {**base, "ranges": crcs})

    if kept < size:
        fetch(t, where, size, kept, _FdSink(fd), part_size=part_size, complete=hashed)
    if hasher.hexdigest() != where.oid and kept:
        log.warning("the kept bytes of %s do not make its oid; downloading it again", where.url)
        raise _Stale
    _check_digest(where, hasher.hexdigest())


def _drop(part: Path, records: Records, oid: str) -> None:
    part.unlink(missing_ok=True)
    records.forget(oid)


def _prune(directory: Path) -> None:
    """Remove partial downloads nobody continued for a week."""
    cutoff = wall_clock() - STALE_AFTER
    for path in directory.glob("*.part"):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                path.with_suffix(".json").unlink(missing_ok=True)
        except OSError:
            continue


def _hash_range(fd: int, start: int, end: int, hasher: hashlib._Hash) -> int:
    """Feed bytes [start, end) of `fd` to `hasher`; their CRC32."""
    offset = start
    crc = 0
    while offset < end:
        chunk = os.pread(fd, min(CHUNK, end - offset), offset)
        if not chunk:
            break
        hasher.update(chunk)
        crc = zlib.crc32(chunk, crc)
        offset += len(chunk)
    return crc


def _check_digest(where: Where, digest: str) -> None:
    if digest != where.oid:
        raise CorruptObject(
            f"object {where.oid} in the store is corrupt: {where.url} hashes to {digest}. "
            "Delete it and push it again from a clone that has a good copy "
            "('git lfs push --all <remote>')",
            oid=where.oid,
            key=where.key,
        )
