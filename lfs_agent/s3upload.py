"""Upload one LFS object to S3: skip what is stored, verify the oid while reading, never leave
a partial object or an orphaned multipart upload behind.

- HEAD first: an object with the same size and our `lfs-oid` metadata is already there.
- Up to `multipart-threshold`: one PUT of the bytes read and hashed in memory, carrying
  `ChecksumSHA256` = the oid, so the store itself refuses bytes that do not match.
- Above: a multipart upload. Parts are read in order (the whole-file SHA-256 is computed as they
  are read), each sent with its CRC32 checksum, at most `concurrency` at a time. The upload is
  completed only if the file hashed to its oid; on any failure or interruption it is aborted.
"""

from __future__ import annotations

import base64
import hashlib
import io
import logging
import threading
import zlib
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import AgentConfig
from .errors import CorruptObject, Interrupted, LocalIOError
from .s3errors import Where, translate, translated
from .slots import Slots

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

log = logging.getLogger(__name__)

OID_METADATA = "lfs-oid"


class _CountingBody(io.BytesIO):
    """Bytes that report each read as progress, and a rewind (a retry) as negative progress."""

    def __init__(self, data: bytes, progress: Callable[[int], None]) -> None:
        super().__init__(data)
        self._progress = progress

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        if chunk:
            self._progress(len(chunk))
        return chunk

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        before = self.tell()
        after = super().seek(offset, whence)
        if after != before:
            self._progress(after - before)
        return after


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


def is_stored(client: S3Client, config: AgentConfig, where: Where, size: int) -> bool:
    """True when the key holds an object of this size that we uploaded for this oid."""
    from botocore.exceptions import ClientError

    try:
        head = client.head_object(Bucket=config.bucket, Key=where.key)
    except ClientError as exc:
        # 403 on HEAD: a write-only policy can still PUT, so try the upload.
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "403"):
            return False
        raise translate(exc, where) from exc
    except Exception as exc:
        raise translate(exc, where) from exc
    stored = (
        head.get("ContentLength") == size
        and head.get("Metadata", {}).get(OID_METADATA) == where.oid
    )
    if not stored:
        log.info("replacing %s: size or oid metadata differ from %s", where.url, where.oid)
    return stored


def _extra_args(config: AgentConfig, oid: str) -> dict[str, Any]:
    args: dict[str, Any] = {"Metadata": {OID_METADATA: oid}}
    if config.storage_class:
        args["StorageClass"] = config.storage_class
    if config.sse:
        args["ServerSideEncryption"] = config.sse
    if config.sse_kms_key_id:
        args["SSEKMSKeyId"] = config.sse_kms_key_id
    return args


def _read_exact(
    path: Path, oid: str, size: int, offset: int, length: int, f: io.BufferedReader
) -> bytes:
    try:
        data = f.read(length)
    except OSError as exc:
        raise _unreadable(path, oid, exc) from exc
    if len(data) != length:
        raise CorruptObject(
            f"local object {oid} at '{path}' has {offset + len(data)} bytes, expected {size}; "
            "it is damaged: run 'git lfs fsck' and re-add the file",
            oid=oid,
        )
    return data


def _check_oid(path: Path, oid: str, digest: str) -> None:
    if digest != oid:
        raise CorruptObject(
            f"local object '{path}' does not match its oid: its SHA-256 is {digest}, expected "
            f"{oid}. It was not uploaded. Run 'git lfs fsck' and re-add the file",
            oid=oid,
        )


def upload(
    client: S3Client,
    config: AgentConfig,
    slots: Slots,
    where: Where,
    size: int,
    path: Path,
    progress: Callable[[int], None],
    cancel: threading.Event,
) -> bool:
    """Upload `path` as object `where.oid`; False when it was already stored."""
    with slots.hold(cancel):
        if is_stored(client, config, where, size):
            return False
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed below, after the upload
    except OSError as exc:
        raise _unreadable(path, where.oid, exc) from exc
    with f:
        if size <= config.multipart_threshold:
            _put(client, config, slots, where, size, path, f, progress, cancel)
        else:
            _multipart(client, config, slots, where, size, path, f, progress, cancel)
    return True


def _unreadable(path: Path, oid: str, exc: OSError) -> LocalIOError:
    return LocalIOError(f"cannot read local object '{path}' for {oid}: {exc}", oid=oid)


def _put(
    client: S3Client,
    config: AgentConfig,
    slots: Slots,
    where: Where,
    size: int,
    path: Path,
    f: io.BufferedReader,
    progress: Callable[[int], None],
    cancel: threading.Event,
) -> None:
    data = _read_exact(path, where.oid, size, 0, size, f)
    _check_oid(path, where.oid, hashlib.sha256(data).hexdigest())
    if cancel.is_set():
        raise Interrupted(f"upload of {where.oid} cancelled")
    args = _extra_args(config, where.oid)
    if config.checksum == "sha256":
        args["ChecksumSHA256"] = _b64(bytes.fromhex(where.oid))
    with slots.hold(cancel), translated(where):
        client.put_object(
            Bucket=config.bucket,
            Key=where.key,
            Body=_CountingBody(data, progress),
            ContentLength=size,
            **args,
        )


def _multipart(
    client: S3Client,
    config: AgentConfig,
    slots: Slots,
    where: Where,
    size: int,
    path: Path,
    f: io.BufferedReader,
    progress: Callable[[int], None],
    cancel: threading.Event,
) -> None:
    args = _extra_args(config, where.oid)
    if config.checksum == "sha256":
        args["ChecksumAlgorithm"] = "CRC32"
    with slots.hold(cancel), translated(where):
        upload_id = client.create_multipart_upload(Bucket=config.bucket, Key=where.key, **args)[
            "UploadId"
        ]
    try:
        parts = _send_parts(
            client, config, slots, where, size, path, f, upload_id, progress, cancel
        )
        with slots.hold(cancel), translated(where):
            client.complete_multipart_upload(
                Bucket=config.bucket,
                Key=where.key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},  # type: ignore[typeddict-item]
            )
    except BaseException:
        _abort(client, config, where, upload_id)
        raise


def _send_parts(
    client: S3Client,
    config: AgentConfig,
    slots: Slots,
    where: Where,
    size: int,
    path: Path,
    f: io.BufferedReader,
    upload_id: str,
    progress: Callable[[int], None],
    cancel: threading.Event,
) -> list[dict[str, Any]]:
    part_size = config.part_size_for(size)
    hasher = hashlib.sha256()
    stop = threading.Event()

    def send(number: int, data: bytes) -> dict[str, Any]:
        if stop.is_set() or cancel.is_set():
            raise Interrupted(f"upload of {where.oid} cancelled")
        part: dict[str, Any] = {"PartNumber": number}
        extra: dict[str, Any] = {}
        if config.checksum == "sha256":
            part["ChecksumCRC32"] = extra["ChecksumCRC32"] = _b64(
                zlib.crc32(data).to_bytes(4, "big")
            )
        with slots.hold(stop), translated(where):
            reply = client.upload_part(
                Bucket=config.bucket,
                Key=where.key,
                UploadId=upload_id,
                PartNumber=number,
                Body=_CountingBody(data, progress),
                ContentLength=len(data),
                **extra,
            )
        part["ETag"] = reply["ETag"]
        return part

    pending: set[Future[dict[str, Any]]] = set()
    done: list[dict[str, Any]] = []
    pool = ThreadPoolExecutor(config.concurrency, thread_name_prefix="lfs-s3-part")
    try:
        for number, offset in enumerate(range(0, size, part_size), start=1):
            while len(pending) >= config.concurrency:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                done.extend(fut.result() for fut in finished)
            if cancel.is_set():
                raise Interrupted(f"upload of {where.oid} cancelled")
            data = _read_exact(path, where.oid, size, offset, min(part_size, size - offset), f)
            hasher.update(data)
            pending.add(pool.submit(send, number, data))
        _check_oid(path, where.oid, hasher.hexdigest())
        done.extend(fut.result() for fut in wait(pending).done)
    except BaseException:
        # Let running parts finish or fail before the caller aborts the upload: a part that
        # lands after the abort would be an orphan.
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return sorted(done, key=lambda p: int(p["PartNumber"]))


def _abort(client: S3Client, config: AgentConfig, where: Where, upload_id: str) -> None:
    try:
        client.abort_multipart_upload(Bucket=config.bucket, Key=where.key, UploadId=upload_id)
        log.info("aborted multipart upload %s of %s", upload_id, where.url)
    except Exception as exc:
        log.error(
            "could not abort multipart upload %s of %s: %s; remove it with 'aws s3api "
            "abort-multipart-upload --bucket %s --key %s --upload-id %s' or a lifecycle rule",
            upload_id,
            where.url,
            exc,
            config.bucket,
            where.key,
            upload_id,
        )
