"""The download engine: the bytes of one S3 object, from an offset to its end, into a sink.

One engine for the agent (`s3tmpfile`: a temp file that git-lfs renames, with resume records)
and the registry (`registry.releases.s3fetch`: a `PartialFile` in the cache).

- From the start, up to one part: one GET without a Range. Otherwise ranged GETs of
  `part_size` bytes, at most `concurrency` at a time.
- Ranges are planned lazily. The first one is requested alone, and the object's size that the
  store reports on its reply is checked against the size expected before any other range is
  planned; then at most `concurrency` ranges are in flight, the next one starting as any ends,
  and at most 2 x `concurrency` are planned ahead of the first one not yet complete. No list
  of every range is ever made: a manifest that gives a 110-byte object the size 10**15 fails
  on the first reply, in bounded memory and time.
- Each chunk goes to `sink.write(offset, data)` as it arrives, from several threads and in any
  order; `complete(start, end)` is told in order, from the calling thread, once a range and
  every range before it are written (the agent hashes them there, and records them for resume).
- The client retries failed requests itself. A stream that breaks after the headers (reset,
  timeout, short read) is ours to resume, from the byte it stopped at, up to `retries` times
  with back-off; a stalled one (`http1.Stalled`) once only: a server that drips or hangs is
  reported in seconds, not after every retry.
- Errors are TransferErrors (`s3errors`): `WrongSize` for a store object of another size,
  `LocalIOError` for a write the sink refused, `StorageUnavailable` when the retries ran out.
  Each caller words them its own way.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Protocol

from . import logs
from .errors import (
    CorruptObject,
    Interrupted,
    LocalIOError,
    StorageUnavailable,
    TransferError,
    WrongSize,
)
from .http1 import Stalled
from .s3errors import Where, translate, translated
from .s3http import backoff

if TYPE_CHECKING:
    from concurrent.futures import Future

    from .transfer import Transfer

log = logs.get(__name__)

CHUNK = 1024 * 1024
POLL = 0.2  # seconds between looks at `cancel` while ranges download
PLANNED = 2  # ranges planned ahead of the first incomplete one, per range in flight


class Sink(Protocol):
    """Where the bytes go: `write` is called from several threads, at any offsets."""

    def write(self, offset: int, data: bytes) -> None: ...


def fetch(
    t: Transfer,
    where: Where,
    size: int,
    offset: int,
    sink: Sink,
    *,
    part_size: int | None = None,
    complete: Callable[[int, int], None] | None = None,
) -> None:
    """Deliver bytes [offset, size) of the object at `where` to `sink`.

    `part_size` (default: the setting) is the length of each ranged GET; `complete(start, end)`
    is called in order as ranges finish. `t.cancel` stops it with Interrupted.

    Raises:
        WrongSize: the store's object does not have `size` bytes.
        TransferError: the store or the network failed (after the retries), or the sink did.
        Interrupted: `t.cancel` was set.
    """
    part = t.config.part_size if part_size is None else max(part_size, 1)
    if offset >= size > 0:
        return  # nothing left to fetch
    if offset == 0 and size <= part:
        _fetch(t, where, size, sink, 0, size, None, whole=True)
    elif size - offset <= part:
        _fetch(t, where, size, sink, offset, size, None, whole=False)
    else:
        _parallel(t, where, size, offset, part, sink, complete)
        return
    if complete is not None:
        complete(offset, size)


def _parallel(
    t: Transfer,
    where: Where,
    size: int,
    offset: int,
    part: int,
    sink: Sink,
    complete: Callable[[int, int], None] | None,
) -> None:
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

    stop = threading.Event()
    worker = t._replace(cancel=stop)  # the calling thread watches `t.cancel` for them all
    sized = threading.Event()  # the first reply's size was right, or the first range ended
    spans: Iterator[tuple[int, int]] = ((s, min(s + part, size)) for s in range(offset, size, part))
    in_flight = max(1, min(t.config.concurrency, -(-(size - offset) // part)))
    window: deque[tuple[Future[None], tuple[int, int]]] = deque()
    pool = ThreadPoolExecutor(in_flight, thread_name_prefix="lfs-s3-range")

    def submit() -> bool:
        span = next(spans, None)
        if span is None:
            return False
        window.append((pool.submit(_fetch, worker, where, size, sink, *span, sized), span))
        return True

    try:
        _check(t, where, window)
        submit()
        window[0][0].add_done_callback(lambda _: sized.set())
        while not sized.wait(POLL):
            _check(t, where, window)
        while window:
            _check(t, where, window)
            while window and window[0][0].done():
                head, span = window.popleft()
                head.result()
                if complete is not None:
                    complete(*span)
            # A slow range does not idle the others: the next ones start as any range ends,
            # within PLANNED x concurrency ranges of the first one not yet complete.
            running = [fut for fut, _ in window if not fut.done()]
            while len(running) < in_flight and len(window) < PLANNED * in_flight and submit():
                running.append(window[-1][0])
            if running:
                wait(running, timeout=POLL, return_when=FIRST_COMPLETED)
    except BaseException:
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _check(t: Transfer, where: Where, window: deque[tuple[Future[None], tuple[int, int]]]) -> None:
    """Raise when the transfer was cancelled or any range in flight failed."""
    if t.cancel.is_set():
        raise Interrupted(f"download of {where.oid} cancelled")
    for fut, _ in window:
        if fut.done() and fut.exception() is not None:
            fut.result()


def _fetch(
    t: Transfer,
    where: Where,
    size: int,
    sink: Sink,
    start: int,
    end: int,
    sized: threading.Event | None,
    *,
    whole: bool = False,
) -> None:
    """GET bytes [start, end) into `sink` at the same offsets, resuming after a dropped stream."""
    cursor = [start]  # advanced by _stream as bytes land, so a broken stream resumes there
    failures = 0
    stalls = 0
    while True:
        if t.cancel.is_set():
            raise Interrupted(f"download of {where.oid} cancelled")
        before = cursor[0]
        try:
            with t.slots.hold(t.cancel):
                _stream(t, where, size, sink, cursor, end, sized, whole=whole and before == start)
            if cursor[0] >= end:
                return
            problem: Exception = ConnectionError(f"stream ended at byte {cursor[0]}")
        except (Interrupted, TransferError):
            # Translated errors were already retried by the client, or are not transient.
            raise
        except Exception as exc:
            # A stream that broke after the headers; a stalled one is tried once more only.
            problem = exc
            if isinstance(exc, Stalled):
                stalls += 1
                if stalls > 1:
                    raise translate(exc, where) from exc
        failures += 1
        retries = t.config.retries
        if failures > retries:
            raise StorageUnavailable(
                f"download of {where.url} kept failing after {retries} retries "
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
    t: Transfer,
    where: Where,
    size: int,
    sink: Sink,
    cursor: list[int],
    end: int,
    sized: threading.Event | None,
    *,
    whole: bool,
) -> None:
    """One GET from `cursor[0]` to `end`, advancing `cursor[0]` as bytes are written."""
    offset = cursor[0]
    bucket = t.config.bucket
    with translated(where):
        if whole:
            reply = t.client.get_object(Bucket=bucket, Key=where.key)
            total = reply.get("ContentLength", -1)
        else:
            reply = t.client.get_object(
                Bucket=bucket, Key=where.key, Range=f"bytes={offset}-{end - 1}"
            )
            total = int(str(reply.get("ContentRange", "/-1")).rpartition("/")[2] or -1)
    if total != size:
        reply["Body"].close()
        raise WrongSize(
            f"object {where.oid} in the store has {total} bytes, expected {size}: {where.url} "
            "is damaged. Delete it and push it again from a clone that has the file",
            oid=where.oid,
            key=where.key,
            stored=total,
            expected=size,
        )
    if sized is not None:
        sized.set()
    body = reply["Body"]
    try:
        for chunk in body.iter_chunks(CHUNK):
            if t.cancel.is_set():
                raise Interrupted(f"download of {where.oid} cancelled")
            if offset + len(chunk) > end:
                raise CorruptObject(
                    f"the store sent more than {size} bytes for {where.url}",
                    oid=where.oid,
                    key=where.key,
                )
            try:
                sink.write(offset, chunk)
            except Exception as exc:
                # Not the stream's fault: never retried.
                raise LocalIOError(
                    f"cannot write object {where.oid}: {exc}", oid=where.oid
                ) from exc
            offset += len(chunk)
            cursor[0] = offset
            t.progress(len(chunk))
    finally:
        body.close()
