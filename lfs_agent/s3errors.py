"""The one place where botocore's exceptions become the agent's errors, with a message to act on.

botocore is imported lazily here too: this module is loaded on the first transfer, not at init.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from .errors import (
    AccessDenied,
    AgentError,
    CorruptObject,
    ObjectNotFound,
    StorageUnavailable,
    StoreRejected,
    TransferError,
)

_DENIED = {
    "AccessDenied",
    "403",
    "Forbidden",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "TokenRefreshRequired",
    "AllAccessDisabled",
    "AccountProblem",
}
_UNAVAILABLE = {
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestTimeout",
    "RequestTimeTooSkewed",
    "ServiceUnavailable",
    "InternalError",
    "503",
    "500",
    "502",
    "504",
}
_DIGEST = {"BadDigest", "InvalidDigest", "XAmzContentSHA256Mismatch"}


@dataclass(frozen=True)
class Where:
    """What was being done and to which object, for messages."""

    action: str  # "upload", "download", "check"
    oid: str
    bucket: str
    key: str
    endpoint: str

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def translate(exc: Exception, where: Where) -> TransferError:
    """Map a botocore exception to the agent's error; anything else is returned as a 500."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        NoCredentialsError,
        PartialCredentialsError,
    )

    if isinstance(exc, TransferError):
        return exc
    kw = {"oid": where.oid, "key": where.key}
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return AccessDenied(
            f"no usable AWS credentials to {where.action} {where.url}: {exc}. Set AWS_PROFILE "
            "(and run 'aws sso login' for SSO), or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY",
            **kw,
        )
    if isinstance(exc, ClientError):
        return _client_error(exc, where)
    if isinstance(exc, BotoCoreError | OSError):
        return StorageUnavailable(
            f"cannot reach S3 at {where.endpoint} to {where.action} {where.url}: {exc}. "
            "Check the endpoint ('lfs-s3-agent config') and your network, then try again",
            **kw,
        )
    return TransferError(f"unexpected error during {where.action} of {where.url}: {exc!r}", **kw)


def _client_error(exc: object, where: Where) -> TransferError:
    from botocore.exceptions import ClientError

    assert isinstance(exc, ClientError)
    error = exc.response.get("Error", {})
    code = str(error.get("Code", "")) or str(
        exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "")
    )
    detail = error.get("Message") or code
    kw = {"oid": where.oid, "key": where.key}
    if code in ("404", "NoSuchKey", "NotFound"):
        return ObjectNotFound(
            f"object {where.oid} is not in the store: {where.url} does not exist. It was never "
            "pushed, or the bucket/prefix is wrong ('lfs-s3-agent config' shows them). Push it "
            "from a clone that has it: 'git lfs push --all <remote>'",
            **kw,
        )
    if code == "NoSuchBucket":
        return ObjectNotFound(
            f"bucket '{where.bucket}' does not exist at {where.endpoint}. Create it, or fix the "
            "bucket in lfs.url or 'git config lfs-s3.bucket NAME'",
            **kw,
        )
    if code == "NoSuchUpload":
        return StorageUnavailable(
            f"the multipart upload of {where.url} was aborted by the store; push again", **kw
        )
    if code in _DENIED:
        return AccessDenied(
            f"access denied ({code}) to {where.action} {where.url}: {detail}. Check your AWS "
            "credentials (AWS_PROFILE, 'aws sso login') and that the bucket policy allows "
            "s3:GetObject, s3:PutObject and s3:AbortMultipartUpload on this prefix",
            **kw,
        )
    if code in _DIGEST:
        return CorruptObject(
            f"the store rejected the bytes of {where.oid} ({code}): they do not match their "
            "checksum. The local object may be corrupt ('git lfs fsck'); if this store "
            "mishandles checksums, run 'git config lfs-s3.checksum off'",
            **kw,
        )
    if code in _UNAVAILABLE:
        return StorageUnavailable(
            f"S3 at {where.endpoint} is unavailable ({code}: {detail}) for {where.url}, even "
            "after retries. Try again later, or lower 'lfs-s3.max-connections'",
            **kw,
        )
    hint = ""
    if "checksum" in str(detail).lower() or code in ("NotImplemented", "InvalidArgument"):
        hint = ". If this store does not support S3 checksums, run 'git config lfs-s3.checksum off'"
    return StoreRejected(f"S3 refused to {where.action} {where.url} ({code}: {detail}){hint}", **kw)


@contextmanager
def translated(where: Where) -> Iterator[None]:
    """Re-raise any botocore or network error inside the block as a TransferError."""
    try:
        yield
    except AgentError:
        raise
    except Exception as exc:
        raise translate(exc, where) from exc
