"""Resume, or abort, the multipart upload an earlier agent process left for an object.

The upload's record (`resume.py`) names it. It is resumed only when it was made for the same
bucket, key, size, part size and checksum mode and the store still has it; then each stored
part is kept only if its size and its CRC32 (or, when the store lists none, its ETag, the MD5
of the part) match the local bytes, and the others are sent again. The upload is completed only
once the whole local file hashed to its oid, as for a new one. A recorded upload that cannot be
resumed is aborted.
"""

from __future__ import annotations

import base64
import hashlib
import zlib
from typing import TYPE_CHECKING, Any

from . import logs
from .config import AgentConfig
from .errors import AccessDenied, Interrupted
from .resume import Records
from .s3errors import Where, error_code, translate, translated

if TYPE_CHECKING:
    from .transfer import S3Api, Transfer

log = logs.get(__name__)


def crc32_b64(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode("ascii")


def resume_or_create(
    t: Transfer,
    where: Where,
    size: int,
    part_size: int,
    records: Records,
    create_args: dict[str, Any],
) -> tuple[str, dict[int, dict[str, Any]]]:
    """The upload id to send parts to, and the parts the store already has (by number).

    Raises:
        TransferError: the store could not be asked, or refused to create the upload.
        Interrupted: `cancel` is set.
    """
    client, config, slots, _, cancel = t
    record = records.load(where.oid)
    if record is not None:
        wanted = _record(config, where, size, part_size, "")
        upload_id = str(record.get("upload_id", ""))
        if all(record.get(k) == v for k, v in wanted.items() if k != "upload_id"):
            stored = _list_parts(t, where, upload_id)
            if stored is not None:
                log.info(
                    "resuming multipart upload %s of %s: the store has %d parts",
                    upload_id,
                    where.url,
                    len(stored),
                )
                return upload_id, stored
        else:
            log.info(
                "multipart upload %s of %s cannot be resumed: settings differ", upload_id, where.url
            )
            abort(client, str(record.get("bucket")), str(record.get("key")), upload_id, where.url)
        records.forget(where.oid)
    if cancel.is_set():
        raise Interrupted(f"upload of {where.oid} cancelled")
    with slots.hold(cancel), translated(where):
        upload_id = client.create_multipart_upload(
            Bucket=config.bucket, Key=where.key, **create_args
        )["UploadId"]
    records.save(where.oid, _record(config, where, size, part_size, upload_id))
    return upload_id, {}


def _record(
    config: AgentConfig, where: Where, size: int, part_size: int, upload_id: str
) -> dict[str, Any]:
    return {
        "upload_id": upload_id,
        "bucket": config.bucket,
        "key": where.key,
        "size": size,
        "part_size": part_size,
        "checksum": config.checksum,
    }


def _list_parts(t: Transfer, where: Where, upload_id: str) -> dict[int, dict[str, Any]] | None:
    """The upload's stored parts; None when it cannot be resumed (gone, or not listable)."""
    client, config, slots, _, cancel = t
    parts: dict[int, dict[str, Any]] = {}
    try:
        with slots.hold(cancel):
            marker = 0
            while True:
                page = client.list_parts(
                    Bucket=config.bucket,
                    Key=where.key,
                    UploadId=upload_id,
                    PartNumberMarker=marker,
                )
                for part in page.get("Parts", []):
                    parts[int(part["PartNumber"])] = dict(part)
                marker = int(page.get("NextPartNumberMarker") or 0)
                if not page.get("IsTruncated") or marker <= 0:
                    break
    except Interrupted:
        raise
    except Exception as exc:
        code = error_code(exc)
        if code is None:
            raise translate(exc, where) from exc
        if code in ("NoSuchUpload", "404", "NotFound"):
            log.info("multipart upload %s of %s is gone from the store", upload_id, where.url)
            return None
        error = translate(exc, where)
        if isinstance(error, AccessDenied):
            # A policy without s3:ListMultipartUploadParts: start over rather than fail.
            log.warning("cannot list the parts of %s (%s); starting over", where.url, exc)
            abort(client, config.bucket, where.key, upload_id, where.url)
            return None
        raise error from exc
    return parts


def verified_part(
    stored: dict[str, Any] | None, number: int, data: bytes, checksum: str
) -> dict[str, Any] | None:
    """The part to complete with when the stored part holds exactly `data`, else None."""
    if stored is None or stored.get("Size") != len(data):
        return None
    crc = crc32_b64(data)
    if stored.get("ChecksumCRC32"):
        same = stored["ChecksumCRC32"] == crc
    else:
        md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
        same = str(stored.get("ETag", "")).strip('"') == md5
    if not same:
        log.info("stored part %d differs from the local bytes; sending it again", number)
        return None
    part: dict[str, Any] = {"PartNumber": number, "ETag": stored["ETag"]}
    if checksum == "sha256":
        part["ChecksumCRC32"] = crc
    return part


def forget_upload(client: S3Api, where: Where, records: Records) -> None:
    """The object is stored: abort the upload recorded for it, if any, and drop the record."""
    record = records.load(where.oid)
    if record is None:
        return
    abort(
        client,
        str(record.get("bucket")),
        str(record.get("key")),
        str(record.get("upload_id")),
        where.url,
    )
    records.forget(where.oid)


def abort(client: S3Api, bucket: str, key: str, upload_id: str, url: str) -> None:
    """Abort a multipart upload; a failure is logged with the command that finishes the job."""
    try:
        client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        log.info("aborted multipart upload %s of %s", upload_id, url)
    except Exception as exc:
        if error_code(exc) != "NoSuchUpload":
            _abort_failed(bucket, key, upload_id, url, exc)


def _abort_failed(bucket: str, key: str, upload_id: str, url: str, exc: Exception) -> None:
    log.error(
        "could not abort multipart upload %s of %s: %s; remove it with 'aws s3api "
        "abort-multipart-upload --bucket %s --key %s --upload-id %s' or a lifecycle rule",
        upload_id,
        url,
        exc,
        bucket,
        key,
        upload_id,
    )
