"""Download one S3 object into a `PartialFile`: parallel ranged GETs, broken streams resumed.

Up to one part it is a single GET (from the resume offset, if any). Above, the rest of the
object is split into parts fetched by a thread pool, each written at its offset as it arrives;
the `PartialFile` hashes the prefix as it completes. botocore retries failed requests itself;
a stream that breaks after the headers (reset, timeout, short read) is ours to resume, from the
byte it stopped at. The size the store reports is checked against the manifest before any byte
is kept, so a replaced or truncated object is refused at once.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import hints
from .errors import NotFound, RegistryError
from .partial import OutOfRange, PartialFile

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

MiB = 1 << 20
CHUNK = MiB


@dataclass(frozen=True)
class TransferSettings:
    """How objects are fetched (measured in bench/; see the README's performance section)."""

    # 8 MiB x 8 (boto3's own transfer defaults are 8 MiB x 10): on the same server, alternating,
    # 1 GiB took 1.72-1.86 s at 8 MiB against 2.79-3.90 s at 16 MiB x 8 (medians of 3).
    part_size: int = 8 * MiB
    concurrency: int = 8
    stream_retries: int = 5


DEFAULT_SETTINGS = TransferSettings()


class StoreObjectMismatch(RegistryError):
    """The store's object does not have the size the manifest gives."""


class Interrupted(RegistryError):
    """Another part failed; this one stopped early."""


def fetch(
    client: S3Client,
    bucket: str,
    key: str,
    out: PartialFile,
    offset: int,
    *,
    settings: TransferSettings = DEFAULT_SETTINGS,
    progress: Callable[[int], None] | None = None,
) -> None:
    """Deliver bytes [offset, out.size) of s3://bucket/key to `out`."""
    spans = [
        (start, min(start + settings.part_size, out.size))
        for start in range(offset, out.size, settings.part_size)
    ]
    job = _Job(client, bucket, key, out, settings, progress or _ignore, threading.Event())
    if len(spans) <= 1:
        job.fetch_range(offset, out.size)
        return
    pool = ThreadPoolExecutor(min(settings.concurrency, len(spans)), "registry-range")
    try:
        futures = [pool.submit(job.fetch_range, start, end) for start, end in spans]
        wait(futures, return_when=FIRST_EXCEPTION)
        failed = [f for f in futures if f.done() and f.exception() is not None]
        if failed:
            job.stop.set()
            # The first real failure, not the parts it stopped.
            exc = next(
                (f.exception() for f in failed if not isinstance(f.exception(), Interrupted)),
                failed[0].exception(),
            )
            assert exc is not None
            raise exc
    except BaseException:
        job.stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _ignore(_: int) -> None:
    pass


@dataclass
class _Job:
    client: S3Client
    bucket: str
    key: str
    out: PartialFile
    settings: TransferSettings
    progress: Callable[[int], None]
    stop: threading.Event

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def fetch_range(self, start: int, end: int) -> None:
        """Bytes [start, end) into `out`, resuming a broken stream where it stopped."""
        cursor = start
        failures = 0
        while cursor < end:
            if self.stop.is_set():
                raise Interrupted(f"download of {self.url} stopped: another part failed")
            try:
                cursor = self._stream(cursor, end)
                if self.stop.is_set():
                    raise Interrupted(f"download of {self.url} stopped: another part failed")
                if cursor < end:
                    raise ConnectionError(f"the stream ended at byte {cursor} of {end}")
            except (RegistryError, OutOfRange):
                raise
            except Exception as exc:
                failures += 1
                if failures > self.settings.stream_retries:
                    raise RegistryError(
                        f"the download of {self.url} kept breaking off ({exc}) after "
                        f"{self.settings.stream_retries} retries; what arrived is kept, so "
                        "running the same command again resumes it"
                    ) from exc
                time.sleep(min(5.0, 0.2 * 2**failures) * (0.5 + random.random() / 2))

    def _stream(self, cursor: int, end: int) -> int:
        """One GET from `cursor` to `end`; returns how far it got."""
        whole = cursor == 0 and end == self.out.size
        with translated(self.url):
            if whole:
                reply = self.client.get_object(Bucket=self.bucket, Key=self.key)
                total = reply.get("ContentLength", -1)
            else:
                reply = self.client.get_object(
                    Bucket=self.bucket, Key=self.key, Range=f"bytes={cursor}-{end - 1}"
                )
                total = int(str(reply.get("ContentRange", "/-1")).rpartition("/")[2] or -1)
        body = reply["Body"]
        try:
            if total != self.out.size:
                raise StoreObjectMismatch(
                    f"{self.url} has {total} bytes, but the manifest says {self.out.size}: "
                    "the store's copy was replaced or damaged. Publish the version again from "
                    "the registry ('model-registry publish'); nothing was cached"
                )
            for chunk in body.iter_chunks(CHUNK):
                if self.stop.is_set():
                    break
                try:
                    self.out.write(cursor, chunk)
                except OSError as exc:
                    raise RegistryError(
                        f"cannot write {self.out.path} while downloading {self.url}: {exc}. "
                        "Free some space or point MODEL_REGISTRY_CACHE elsewhere"
                    ) from exc
                cursor += len(chunk)
                self.progress(len(chunk))
        finally:
            body.close()
        return cursor


@contextmanager
def translated(url: str) -> Iterator[None]:
    """botocore's errors for a read of `url`, as RegistryErrors that say what to do."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = error.get("Code", "")
        if code in ("NoSuchKey", "404", "NotFound"):
            raise NotFound(
                f"{url} is missing from the store: publish the version again from the "
                "registry ('model-registry publish'), or check the root_url"
            ) from exc
        if code == "InvalidRange":
            raise StoreObjectMismatch(
                f"{url} is shorter than its manifest says: the store's copy was replaced or "
                "damaged. Publish the version again ('model-registry publish')"
            ) from exc
        raise RegistryError(
            f"cannot read {url} ({code}): {error.get('Message', exc)}; "
            f"{hints.s3_hint(hints.s3_cause(exc))}"
        ) from exc
    except BotoCoreError as exc:
        raise RegistryError(
            f"cannot read {url}: {exc}; {hints.s3_hint(hints.s3_cause(exc), offline_possible=True)}"
        ) from exc
