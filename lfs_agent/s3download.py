"""Download one LFS object from S3 into a fresh temp file that git-lfs will verify and rename.

The file returned lives in `<lfs dir>/tmp`, on the filesystem of `.git/lfs/objects` (git-lfs
renames it), under a unique name (git-lfs may ask for the same oid twice at once). Small objects
come in one GET into a fresh temp file, removed on any failure. Large ones come in parallel
ranged GETs written in place with `pwrite`, into `<lfs dir>/lfs-s3/downloads/<oid>.part` under
a lock (a second process asking for the same oid at once uses a temp file of its own), with a
record of the CRC32 of each leading range already hashed in order. An interruption or a
transient failure keeps both; the next download re-reads and checks the kept ranges, fetches
only the rest, and moves the file to a fresh temp name once it hashed to its oid (kept bytes
that verify but do not make the oid are dropped and the object fetched again, once). A corrupt
object in the store or a local write failure removes the partial file. A dropped stream is
resumed from the byte it stopped at within one process too.

git-lfs checks the SHA-256 of what we return, but on a mismatch it only says "downloaded file
failed checks" and leaves the file behind. So the agent hashes each range, in order, as soon as
it is written (from the page cache, while later ranges are still downloading), and reports a
corrupt store object with its key and what to do, removing the file.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from time import time as wall_clock
from typing import TYPE_CHECKING

from . import logs
from .config import AgentConfig
from .errors import (
    AccessDenied,
    CorruptObject,
    Interrupted,
    LocalIOError,
    StorageUnavailable,
    TransferError,
)
from .http1 import Stalled
from .resume import Records, state_dir
from .s3errors import Where, translate, translated
from .s3http import backoff
from .slots import Slots

if TYPE_CHECKING:
    from .store import S3Api

log = logs.get(__name__)

CHUNK = 1024 * 1024
STALE_AFTER = 7 * 24 * 3600  # seconds a partial download is kept for a retry


def download(
    client: S3Api,
    config: AgentConfig,
    slots: Slots,
    where: Where,
    size: int,
    tmp_dir: Path,
    progress: Callable[[int], None],
    cancel: threading.Event,
) -> Path:
    """Fetch object `where.oid` of `size` bytes; return the absolute path of the temp file."""
    try:
        tmp_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _no_temp(tmp_dir, where, exc) from exc
    if size > config.multipart_threshold:
        records = Records(state_dir(tmp_dir.parent, "downloads"))
        # Busy: this object is being fetched by another process right now; fetch a copy of
        # our own rather than wait (PROTOCOL.md: the same oid may be requested twice at once).
        with records.locked(where.oid, cancel, wait=False) as mine:
            if mine and records.directory is not None:
                return _resumable(
                    client, config, slots, where, size, tmp_dir, records, progress, cancel
                )
    return _fresh(client, config, slots, where, size, tmp_dir, progress, cancel)


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


def _no_temp(tmp_dir: Path, where: Where, exc: OSError) -> LocalIOError:
    return LocalIOError(
        f"cannot create a temp file in '{tmp_dir}' for {where.oid}: {exc}", oid=where.oid
    )


def _fresh(
    client: S3Api,
    config: AgentConfig,
    slots: Slots,
    where: Where,
    size: int,
    tmp_dir: Path,
    progress: Callable[[int], None],
    cancel: threading.Event,
) -> Path:
    """Download into a new temp file, removed on any failure."""
    try:
        fd, name = temp_file(tmp_dir)
    except OSError as exc:
        raise _no_temp(tmp_dir, where, exc) from exc
    try:
        ranges = _ranges(size, config.part_size if size > config.multipart_threshold else size)
        hasher = hashlib.sha256()
        if len(ranges) <= 1:
            _fetch(client, config, slots, where, size, fd, 0, size, progress, cancel, whole=True)
            _hash_range(fd, 0, size, hasher)
        else:
            os.ftruncate(fd, size)
            _fetch_parallel(
                client, config, slots, where, size, fd, ranges, hasher, progress, cancel
            )
        _check_digest(where, hasher.hexdigest())
        os.close(fd)
        fd = -1
        return Path(name).absolute()
    except BaseException:
        if fd >= 0:
            os.close(fd)
        Path(name).unlink(missing_ok=True)
        raise


def _resumable(
    client: S3Api,
    config: AgentConfig,
    slots: Slots,
    where: Where,
    size: int,
    tmp_dir: Path,
    records: Records,
    progress: Callable[[int], None],
    cancel: threading.Event,
) -> Path:
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
            _continue(client, config, slots, where, size, fd, records, progress, cancel)
        except _Stale:
            records.forget(where.oid)
            _continue(client, config, slots, where, size, fd, records, progress, cancel)
        fd_, name = temp_file(tmp_dir)
        os.close(fd_)
        os.replace(part, name)
        records.forget(where.oid)
        return Path(name).absolute()
    except (Interrupted, StorageUnavailable, AccessDenied) as exc:
        # Worth continuing later: the network, the store or the credentials will come back.
        kept = min(size, len((records.load(where.oid) or {}).get("ranges", [])) * config.part_size)
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


def _continue(
    client: S3Api,
    config: AgentConfig,
    slots: Slots,
    where: Where,
    size: int,
    fd: int,
    records: Records,
    progress: Callable[[int], None],
    cancel: threading.Event,
) -> None:
    ranges = _ranges(size, config.part_size)
    base = {"size": size, "part_size": config.part_size, "key": where.key}
    record = records.load(where.oid) or {}
    hasher = hashlib.sha256()
    crcs: list[int] = []
    if all(record.get(k) == v for k, v in base.items()) and os.fstat(fd).st_size == size:
        for span, want in zip(ranges, record.get("ranges", []), strict=False):
            before = hasher.copy()
            if _hash_range(fd, *span, hasher) != want:
                hasher = before
                break
            crcs.append(want)
    kept = ranges[len(crcs)][0] if len(crcs) < len(ranges) else size
    if kept:
        log.info("resuming download of %s: %d of %d bytes on disk verified", where.url, kept, size)
        progress(kept)
    records.save(where.oid, {**base, "ranges": crcs})
    os.ftruncate(fd, size)

    def hashed(crc: int) -> None:
        crcs.append(crc)
        records.save(where.oid, {**base, "ranges": crcs})

    if len(crcs) < len(ranges):
        _fetch_parallel(
            client,
            config,
            slots,
            where,
            size,
            fd,
            ranges[len(crcs) :],
            hasher,
            progress,
            cancel,
            hashed,
        )
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


def _ranges(size: int, part: int) -> list[tuple[int, int]]:
    if size == 0:
        return [(0, 0)]
    return [(start, min(start + part, size)) for start in range(0, size, part)]


def _fetch_parallel(
    client: S3Api,
    config: AgentConfig,
    slots: Slots,
    where: Where,
    size: int,
    fd: int,
    ranges: list[tuple[int, int]],
    hasher: hashlib._Hash,
    progress: Callable[[int], None],
    cancel: threading.Event,
    hashed: Callable[[int], None] | None = None,
) -> None:
    """Fetch `ranges` in parallel; hash each in order as soon as it and those before it are
    written, telling `hashed` its CRC32."""
    stop = threading.Event()

    def fetch(span: tuple[int, int]) -> None:
        _fetch(client, config, slots, where, size, fd, *span, progress, stop, whole=False)

    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(config.concurrency, thread_name_prefix="lfs-s3-range")
    try:
        futures = [pool.submit(fetch, span) for span in ranges]
        for fut, span in zip(futures, ranges, strict=True):
            while not fut.done():
                if cancel.is_set():
                    raise Interrupted(f"download of {where.oid} cancelled")
                try:
                    fut.result(timeout=0.2)
                except TimeoutError:
                    continue
            fut.result()
            crc = _hash_range(fd, *span, hasher)
            if hashed is not None:
                hashed(crc)
    except BaseException:
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _fetch(
    client: S3Api,
    config: AgentConfig,
    slots: Slots,
    where: Where,
    size: int,
    fd: int,
    start: int,
    end: int,
    progress: Callable[[int], None],
    cancel: threading.Event,
    *,
    whole: bool,
) -> None:
    """GET bytes [start, end) into `fd` at the same offsets, resuming after a dropped stream."""
    cursor = [start]  # advanced by _stream as bytes land, so a broken stream resumes there
    failures = 0
    stalls = 0
    while True:
        if cancel.is_set():
            raise Interrupted(f"download of {where.oid} cancelled")
        before = cursor[0]
        try:
            with slots.hold(cancel):
                _stream(
                    client,
                    config,
                    where,
                    size,
                    fd,
                    cursor,
                    end,
                    progress,
                    cancel,
                    whole=whole and before == start,
                )
            if cursor[0] >= end:
                return
            problem: Exception = ConnectionError(f"stream ended at byte {cursor[0]}")
        except (Interrupted, TransferError):
            # Translated errors were already retried by the client, or are not transient.
            raise
        except Exception as exc:
            # The client retries failed requests itself; a stream that breaks after the headers
            # (reset, timeout, short read) is ours to resume. A stalled one, once only: a server
            # that drips or hangs is reported in seconds, not after every retry.
            problem = exc
            if isinstance(exc, Stalled):
                stalls += 1
                if stalls > 1:
                    raise translate(exc, where) from exc
        failures += 1
        if failures > config.retries:
            raise StorageUnavailable(
                f"download of {where.url} kept failing after {config.retries} retries "
                f"({problem}); try again later",
                oid=where.oid,
                key=where.key,
            ) from problem
        delay = backoff(failures)
        log.warning(
            "stream of %s broke at byte %d (%s); retry in %.1fs",
            where.url,
            cursor[0],
            problem,
            delay,
        )
        time.sleep(delay)


def _stream(
    client: S3Api,
    config: AgentConfig,
    where: Where,
    size: int,
    fd: int,
    cursor: list[int],
    end: int,
    progress: Callable[[int], None],
    cancel: threading.Event,
    *,
    whole: bool,
) -> None:
    """One GET from `cursor[0]` to `end`, advancing `cursor[0]` as bytes are written."""
    offset = cursor[0]
    with translated(where):
        if whole:
            reply = client.get_object(Bucket=config.bucket, Key=where.key)
            total = reply.get("ContentLength", -1)
        else:
            reply = client.get_object(
                Bucket=config.bucket, Key=where.key, Range=f"bytes={offset}-{end - 1}"
            )
            total = int(str(reply.get("ContentRange", "/-1")).rpartition("/")[2] or -1)
    if total != size:
        reply["Body"].close()
        raise CorruptObject(
            f"object {where.oid} in the store has {total} bytes, expected {size}: {where.url} "
            "is damaged. Delete it and push it again from a clone that has the file",
            oid=where.oid,
            key=where.key,
        )
    body = reply["Body"]
    try:
        for chunk in body.iter_chunks(CHUNK):
            if cancel.is_set():
                raise Interrupted(f"download of {where.oid} cancelled")
            if offset + len(chunk) > end:
                raise CorruptObject(
                    f"the store sent more than {size} bytes for {where.url}",
                    oid=where.oid,
                    key=where.key,
                )
            try:
                os.pwrite(fd, chunk, offset)
            except OSError as exc:
                raise LocalIOError(
                    f"cannot write object {where.oid}: {exc}", oid=where.oid
                ) from exc
            offset += len(chunk)
            cursor[0] = offset
            progress(len(chunk))
    finally:
        body.close()
