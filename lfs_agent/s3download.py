"""Download one LFS object from S3 into a fresh temp file that git-lfs will verify and rename.

The temp file lives in `<lfs dir>/tmp`, on the filesystem of `.git/lfs/objects` (git-lfs renames
it), under a unique name (git-lfs may ask for the same oid twice at once). Small objects come in
one GET; large ones in parallel ranged GETs written in place with `pwrite`. A dropped stream is
resumed from the byte it stopped at. On any failure the temp file is removed.

git-lfs checks the SHA-256 of what we return, but on a mismatch it only says "downloaded file
failed checks" and leaves the file behind. So the agent hashes each range, in order, as soon as
it is written (from the page cache, while later ranges are still downloading), and reports a
corrupt store object with its key and what to do, removing the file.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from .config import AgentConfig
from .errors import (
    CorruptObject,
    Interrupted,
    LocalIOError,
    StorageUnavailable,
    TransferError,
)
from .s3errors import Where, translated
from .slots import Slots

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

log = logging.getLogger(__name__)

CHUNK = 1024 * 1024


def download(
    client: S3Client,
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
        # Not named "<oid>-...": git-lfs's temp cleaner deletes those once the object exists.
        fd, name = tempfile.mkstemp(prefix="lfs-s3-", suffix=".tmp", dir=tmp_dir)
    except OSError as exc:
        raise LocalIOError(
            f"cannot create a temp file in '{tmp_dir}' for {where.oid}: {exc}", oid=where.oid
        ) from exc
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


def _hash_range(fd: int, start: int, end: int, hasher: hashlib._Hash) -> None:
    offset = start
    while offset < end:
        chunk = os.pread(fd, min(CHUNK, end - offset), offset)
        if not chunk:
            break
        hasher.update(chunk)
        offset += len(chunk)


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
    client: S3Client,
    config: AgentConfig,
    slots: Slots,
    where: Where,
    size: int,
    fd: int,
    ranges: list[tuple[int, int]],
    hasher: hashlib._Hash,
    progress: Callable[[int], None],
    cancel: threading.Event,
) -> None:
    stop = threading.Event()

    def fetch(span: tuple[int, int]) -> None:
        _fetch(client, config, slots, where, size, fd, *span, progress, stop, whole=False)

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
            _hash_range(fd, *span, hasher)
    except BaseException:
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _fetch(
    client: S3Client,
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
            # Translated errors were already retried by botocore, or are not transient.
            raise
        except Exception as exc:
            # botocore retries failed requests itself; a stream that breaks after the headers
            # (reset, timeout, short read) is ours to resume.
            problem = exc
        failures += 1
        if failures > config.retries:
            raise StorageUnavailable(
                f"download of {where.url} kept failing after {config.retries} retries "
                f"({problem}); try again later",
                oid=where.oid,
                key=where.key,
            ) from problem
        delay = min(5.0, 0.2 * 2**failures) * (0.5 + random.random() / 2)
        log.warning(
            "stream of %s broke at byte %d (%s); retry in %.1fs",
            where.url,
            cursor[0],
            problem,
            delay,
        )
        time.sleep(delay)


def _stream(
    client: S3Client,
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
