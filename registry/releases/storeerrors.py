"""S3 failures in the registry's words: the one place `publish`, `fetch` and remote `resolve`
turn a failed S3 request into a RegistryError.

The agent classifies (`lfs_agent.s3errors.translate`: a raw client error, from the agent's own
client or from boto3, becomes ObjectNotFound, AccessDenied, StoreRejected, StorageUnavailable,
CorruptObject or LocalIOError); `store_error` words each class for someone running
`model-registry`, naming what to do here rather than in git-lfs terms. Every message of this
kind is written in `store_error`, so hints (credentials, network, offline) are added in one
place.

A credentials problem reads the same whatever S3 called it (AccessDenied, InvalidAccessKeyId,
SignatureDoesNotMatch, an expired token, no credentials at all): check your AWS credentials.
"""

from __future__ import annotations

from lfs_agent.errors import (
    AccessDenied,
    CorruptObject,
    LocalIOError,
    ObjectNotFound,
    StorageUnavailable,
    StoreRejected,
    TransferError,
    WrongSize,
)
from lfs_agent.http1 import Stalled
from lfs_agent.s3errors import Where, error_code, error_response, translate
from registry import hints
from registry.errors import NotFound, RegistryError, StoreObjectMismatch

__all__ = ["StoreObjectMismatch", "is_missing", "store_error"]

_WRONG_REGION = frozenset(
    {"PermanentRedirect", "301", "IncorrectEndpoint", "AuthorizationHeaderMalformed"}
)


def classify(exc: BaseException, where: Where) -> TransferError:
    """The agent's class for `exc` (returned as is when it already is one)."""
    if isinstance(exc, TransferError):
        return exc
    if isinstance(exc, Exception):
        return translate(exc, where)
    return TransferError(f"{exc!r}", oid=where.oid, key=where.key)


def is_missing(exc: BaseException, where: Where) -> bool:
    """Whether `exc` says the key does not exist (and not that the bucket does not)."""
    error = classify(exc, where)
    return isinstance(error, ObjectNotFound) and _code(exc, error) != "NoSuchBucket"


def _raw(exc: BaseException, error: TransferError) -> BaseException | None:
    """The client's own exception behind `error`, if any."""
    return exc if error is not exc else error.__cause__


def _code(exc: BaseException, error: TransferError) -> str | None:
    raw = _raw(exc, error)
    return error_code(raw) if raw is not None else None


def store_error(exc: BaseException, where: Where, *, what: str = "") -> RegistryError:
    """`exc`, raised while doing `where.action` ("read", "check", "download", "upload" or
    "write") to `where.url`, as the RegistryError to show. `what` names the registry file
    concerned, when there is one ("YOLOX-l/base/1.2/config.yaml")."""
    error = classify(exc, where)
    raw = _raw(exc, error)
    code = error_code(raw) if raw is not None else None
    response = error_response(raw) if raw is not None else None
    detail = str(response["Error"].get("Message") or code) if response else str(raw or error)
    url, endpoint, action = where.url, where.endpoint, where.action
    verb = action  # "read", "check", "download", "upload" or "write"
    subject = f"{what} ({url})" if what else url
    reading = action in ("read", "check", "download")
    if isinstance(error, WrongSize):
        return StoreObjectMismatch(
            f"{url} has {error.stored} bytes, but the manifest says {error.expected}: the "
            "store's copy was replaced or damaged. Publish the version again from the registry "
            "('model-registry publish'); nothing was cached"
        )
    if code == "InvalidRange":
        return StoreObjectMismatch(
            f"{url} is shorter than its manifest says: the store's copy was replaced or "
            "damaged. Publish the version again ('model-registry publish')"
        )
    if isinstance(error, ObjectNotFound):
        if code == "NoSuchBucket":
            return RegistryError(
                f"cannot {verb} {subject}: bucket '{where.bucket}' does not exist at "
                f"{endpoint}. Create it, or fix the bucket in the root_url (or in lfs.url in "
                ".lfsconfig, for publish)"
            )
        return NotFound(
            f"{url} is missing from the store: publish the version again from the registry "
            "('model-registry publish'), or check the root_url",
            wanted=url,
        )
    if isinstance(error, AccessDenied):
        cause = hints.s3_cause(raw) if raw is not None else "no-credentials"
        hint = hints.s3_hint(cause)
        if cause == "denied":
            needs = "s3:GetObject" if reading else "s3:GetObject and s3:PutObject"
            hint += f" (this needs {needs} on the prefix)"
        return RegistryError(
            f"cannot {verb} {subject}: access denied ({code or 'no credentials'}: {detail}); {hint}"
        )
    if isinstance(error, StorageUnavailable):
        return _unavailable(raw, code, detail, where, verb, subject)
    if isinstance(error, LocalIOError):
        if action == "download":
            return RegistryError(
                f"cannot write the cache while downloading {url}: {raw or error}. Free some "
                "space or point MODEL_REGISTRY_CACHE elsewhere"
            )
        return RegistryError(f"cannot {verb} {subject}: {error}")
    if isinstance(error, CorruptObject):
        if reading:
            return RegistryError(
                f"{url} is damaged: {error}. Publish the version again ('model-registry publish')"
            )
        if code is None:  # our own check of the bytes, before sending them
            return RegistryError(
                f"cannot {verb} {subject}: its bytes no longer hash to {where.oid} (the "
                "repository changed while publishing, or the local copy is damaged: 'git lfs "
                "fsck'). Nothing was uploaded for it; publish again"
            )
        return RegistryError(
            f"cannot {verb} {subject}: the store rejected its bytes ({code}: {detail}). If "
            "this store does not support S3 checksums, set 'git config lfs-s3.checksum off'"
        )
    if isinstance(error, StoreRejected) and code in _WRONG_REGION:
        return RegistryError(
            f"cannot {verb} {subject}: bucket '{where.bucket}' is in another region than "
            f"requests were signed for ({code}). Set AWS_REGION to the bucket's region"
        )
    if isinstance(error, StoreRejected):
        return RegistryError(
            f"S3 at {endpoint} refused to {verb} {subject} ({code}: {detail}); check the "
            "endpoint and the bucket"
        )
    return RegistryError(f"cannot {verb} {subject}: {error}")


def _unavailable(
    raw: BaseException | None, code: str | None, detail: str, where: Where, verb: str, subject: str
) -> RegistryError:
    endpoint = where.endpoint
    if isinstance(raw, Stalled):
        var = "LFS_S3_" + raw.setting.upper().replace("-", "_")
        unit = "BYTES_PER_SECOND" if raw.setting == "min-rate" else "SECONDS"
        return RegistryError(
            f"S3 at {endpoint} stalled while we tried to {verb} {subject}: {raw}. Check the "
            f"endpoint and your network; on a slow link change the limit ({var}={unit})"
        )
    if where.action == "download":
        return RegistryError(
            f"cannot download {subject} from S3 at {endpoint}: {raw or detail}. What arrived "
            "is kept, so running the same command again resumes it; if it keeps failing, "
            "check the network and the endpoint (AWS_ENDPOINT_URL)"
        )
    if code is not None:
        return RegistryError(
            f"S3 at {endpoint} is unavailable ({code}: {detail}) to {verb} {subject}, even "
            "after retries; try again later"
        )
    hint = hints.s3_hint("unreachable", offline_possible=where.action == "read")
    return RegistryError(
        f"cannot reach S3 at {endpoint} to {verb} {subject}: {raw or detail}; {hint}"
    )
