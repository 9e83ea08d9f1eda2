"""Upload one LFS object to S3: skip what is stored, verify the oid while reading, never leave
a partial object or an orphaned multipart upload behind.

- HEAD first: an object with the same size and our `lfs-oid` metadata is already there.
- Up to `multipart-threshold`: one PUT of the bytes read and hashed in memory, carrying
  `ChecksumSHA256` = the oid, so the store itself refuses bytes that do not match.
- Above: a multipart upload. Parts are read in order (the whole-file SHA-256 is computed as they
  are read), each sent with its CRC32 checksum, at most `concurrency` at a time. The upload is
  completed only if the file hashed to its oid.

The same engine stores bytes already in memory (`upload_bytes`: the registry's small files,
read from their git blobs), with the same conditional PUT, metadata, checksum and encryption;
such an upload above `multipart-threshold` is multipart too, but not resumable.

Resumable (`s3resume.py`): the upload is recorded locally when it is created. When it fails
transiently (throttling, 5xx, the network, past the retries) or is interrupted (SIGTERM,
SIGINT, git-lfs going away; SIGKILL, of course), it is kept, and the next push of the object
from this clone lists its parts, keeps those that match the local bytes and sends the rest.
Any other failure (the local file does not match its oid or cannot be read, the store refuses
the bytes or the credentials) aborts it. A recorded upload that cannot be resumed (another part
size, gone from the store) is aborted, and so is one left over once the object is stored.
"""

from __future__ import annotations

import base64
import hashlib
import io
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from . import logs
from .config import AgentConfig
from .errors import CorruptObject, Interrupted, LocalIOError, StorageUnavailable
from .resume import Records
from .s3errors import Where, error_code, translate, translated
from .s3resume import abort, crc32_b64, forget_upload, resume_or_create, verified_part

if TYPE_CHECKING:
    from .transfer import Transfer

log = logs.get(__name__)

OID_METADATA = "lfs-oid"
# Up to this size an object is sent with `If-None-Match: *` instead of after a HEAD: asking
# costs about what sending does (bench: 300 x 100 KiB on SeaweedFS, 0.85 s vs 1.12-1.36 s).
CONDITIONAL_PUT_MAX = 1 << 20
# Replies meaning "the key exists" (412), "try again, someone is writing it" (409), or "this
# store does not do conditional writes" (501, or 400 from stores that reject the header): in
# each case HEAD decides, and an unconditional PUT surfaces any real error.
_NOT_WRITTEN_IF_EXISTS = frozenset(
    {
        "PreconditionFailed",
        "412",
        "ConditionalRequestConflict",
        "409",
        "NotImplemented",
        "501",
        "InvalidArgument",
        "InvalidRequest",
    }
)


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


def is_stored(t: Transfer, where: Where, size: int) -> bool:
    """True when the key holds an object of this size that we uploaded for this oid."""
    try:
        head = t.client.head_object(Bucket=t.config.bucket, Key=where.key)
    except Exception as exc:
        # 403 on HEAD: a write-only policy can still PUT, so try the upload.
        if error_code(exc) in ("404", "NoSuchKey", "403"):
            return False
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
    path: Path | str, oid: str, size: int, offset: int, length: int, f: BinaryIO
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


def _check_oid(path: Path | str, oid: str, digest: str) -> None:
    if digest != oid:
        raise CorruptObject(
            f"local object '{path}' does not match its oid: its SHA-256 is {digest}, expected "
            f"{oid}. It was not uploaded. Run 'git lfs fsck' and re-add the file",
            oid=oid,
        )


def upload(t: Transfer, where: Where, size: int, path: Path, state_dir: Path | None = None) -> bool:
    """Upload `path` as object `where.oid`; False when it was already stored.

    A multipart upload is recorded in `state_dir` (see `resume.py`) so that the next process
    resumes it; without one, it is aborted on any failure.
    """

    def source() -> BinaryIO:
        try:
            return open(path, "rb")  # noqa: SIM115 - the caller closes it
        except OSError as exc:
            raise _unreadable(path, where.oid, exc) from exc

    def whole() -> bytes:
        with source() as f:
            return _read_exact(path, where.oid, size, 0, size, f)

    return _upload(t, where, size, path, whole, source, state_dir)


def upload_bytes(t: Transfer, where: Where, data: bytes, *, name: str) -> bool:
    """Upload `data`, already in memory, as object `where.oid`; False when it was already stored.

    The same requests as a file of that size: a conditional PUT, or HEAD then PUT, or multipart
    (not recorded for resume: the bytes are not kept anywhere). `name` says what the bytes are,
    in messages ("git blob <sha>").
    """
    return _upload(t, where, len(data), name, lambda: data, lambda: io.BytesIO(data), None)


def _upload(
    t: Transfer,
    where: Where,
    size: int,
    name: Path | str,
    whole: Callable[[], bytes],
    source: Callable[[], BinaryIO],
    state_dir: Path | None,
) -> bool:
    """`whole()` gives the object's bytes at once (up to the multipart threshold), `source()` a
    stream of them to read part by part."""
    if size <= CONDITIONAL_PUT_MAX:
        # One request instead of HEAD + PUT: a PUT that the store refuses if the key exists.
        # Only when it does exist (rare: git-lfs asks for what the remote lacks) is it checked.
        if _put(t, where, name, whole(), absent=True):
            return True
        with t.slots.hold(t.cancel):
            if is_stored(t, where, size):
                return False
    elif size <= t.config.multipart_threshold:
        with t.slots.hold(t.cancel):
            if is_stored(t, where, size):
                return False
    if size <= t.config.multipart_threshold:
        _put(t, where, name, whole())
        return True
    records = Records(state_dir)
    # One process per object at a time: two would resume the same upload's parts at once.
    with records.locked(where.oid, t.cancel):
        with t.slots.hold(t.cancel):
            stored = is_stored(t, where, size)
        if stored:
            forget_upload(t.client, where, records)
            return False
        with source() as f:
            _multipart(t, where, size, name, f, records)
    return True


def _unreadable(path: Path | str, oid: str, exc: OSError) -> LocalIOError:
    return LocalIOError(f"cannot read local object '{path}' for {oid}: {exc}", oid=oid)


def _put(t: Transfer, where: Where, name: Path | str, data: bytes, *, absent: bool = False) -> bool:
    """PUT the object; with `absent`, only if the key does not exist yet (False if it does)."""
    config = t.config
    _check_oid(name, where.oid, hashlib.sha256(data).hexdigest())
    if t.cancel.is_set():
        raise Interrupted(f"upload of {where.oid} cancelled")
    args = _extra_args(config, where.oid)
    if config.checksum == "sha256":
        args["ChecksumSHA256"] = _b64(bytes.fromhex(where.oid))
    if absent:
        args["IfNoneMatch"] = "*"
    body = _CountingBody(data, t.progress)
    with t.slots.hold(t.cancel), translated(where):
        try:
            t.client.put_object(
                Bucket=config.bucket, Key=where.key, Body=body, ContentLength=len(data), **args
            )
        except Exception as exc:
            code = error_code(exc)
            if not absent or code not in _NOT_WRITTEN_IF_EXISTS:
                raise
            body.seek(0)  # the bytes were not stored: report them as not sent
            log.info(
                "%s: conditional PUT not applied (%s); checking what is stored", where.url, code
            )
            return False
    return True


def _multipart(
    t: Transfer, where: Where, size: int, path: Path | str, f: BinaryIO, records: Records
) -> None:
    client, config = t.client, t.config
    part_size = config.part_size_for(size)
    args = _extra_args(config, where.oid)
    if config.checksum == "sha256":
        args["ChecksumAlgorithm"] = "CRC32"
    upload_id, stored = resume_or_create(t, where, size, part_size, records, args)
    try:
        parts = _send_parts(t, where, size, path, f, upload_id, stored)
        with t.slots.hold(t.cancel), translated(where):
            client.complete_multipart_upload(
                Bucket=config.bucket,
                Key=where.key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},  # type: ignore[typeddict-item]
            )
    except (Interrupted, StorageUnavailable) as exc:
        if records.directory is None:
            abort(client, config.bucket, where.key, upload_id, where.url)
            raise
        # Transient, or interrupted: the parts stored so far serve the next push.
        log.warning(
            "kept multipart upload %s of %s for the next push to resume (%s)",
            upload_id,
            where.url,
            exc,
        )
        if isinstance(exc, StorageUnavailable):
            raise StorageUnavailable(
                f"{exc}. The parts already stored are kept: push again to resume the upload",
                oid=where.oid,
                key=where.key,
            ) from exc
        raise
    except BaseException:
        abort(client, config.bucket, where.key, upload_id, where.url)
        records.forget(where.oid)
        raise
    records.forget(where.oid)


def _send_parts(
    t: Transfer,
    where: Where,
    size: int,
    path: Path | str,
    f: BinaryIO,
    upload_id: str,
    stored: dict[int, dict[str, Any]],
) -> list[dict[str, Any]]:
    """Send every part not in `stored` (verified against the local bytes); the parts to
    complete with, in order."""
    config, progress, cancel = t.config, t.progress, t.cancel
    part_size = config.part_size_for(size)
    hasher = hashlib.sha256()
    stop = threading.Event()

    from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

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
            kept = verified_part(stored.get(number), number, data, config.checksum)
            if kept is not None:
                progress(len(data))
                done.append(kept)
                continue
            pending.add(pool.submit(_send_part, t, where, upload_id, stop, number, data))
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


def _send_part(
    t: Transfer, where: Where, upload_id: str, stop: threading.Event, number: int, data: bytes
) -> dict[str, Any]:
    """Upload one part (in a pool thread); the part's entry for CompleteMultipartUpload."""
    if stop.is_set() or t.cancel.is_set():
        raise Interrupted(f"upload of {where.oid} cancelled")
    config = t.config
    part: dict[str, Any] = {"PartNumber": number}
    extra: dict[str, Any] = {}
    if config.checksum == "sha256":
        part["ChecksumCRC32"] = extra["ChecksumCRC32"] = crc32_b64(data)
    with t.slots.hold(stop), translated(where):
        reply = t.client.upload_part(
            Bucket=config.bucket,
            Key=where.key,
            UploadId=upload_id,
            PartNumber=number,
            Body=_CountingBody(data, t.progress),
            ContentLength=len(data),
            **extra,
        )
    part["ETag"] = reply["ETag"]
    return part
