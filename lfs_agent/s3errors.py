"""The one place where S3 errors become the agent's errors, with a message to act on.

`translate` is also the classification the registry words its own way
(`registry.releases.storeerrors`): the class (ObjectNotFound, AccessDenied, StoreRejected,
StorageUnavailable, CorruptObject, LocalIOError) is shared, the agent's messages are for git-lfs
users.

Both clients' errors come here: the agent's own (`s3http`) and botocore's (any caller may hand
the engines a boto3 client). S3's replies have one layout in both (`exc.response["Error"]`);
botocore is never imported here: its classes are looked up only if something loaded it.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, NamedTuple

from .errors import (
    AccessDenied,
    AgentError,
    CorruptObject,
    NoCredentials,
    ObjectNotFound,
    StorageUnavailable,
    StoreRejected,
    TransferError,
)

_DENIED = {"AccessDenied", "403", "Forbidden", "AllAccessDisabled", "AccountProblem"}
_UNKNOWN_KEY = {"InvalidAccessKeyId", "InvalidClientTokenId", "UnrecognizedClientException"}
_BAD_SECRET = {"SignatureDoesNotMatch"}
_BAD_TOKEN = {"ExpiredToken", "InvalidToken", "TokenRefreshRequired", "ExpiredTokenException"}
# A bucket in another region than the one requests are signed for. botocore follows AWS's
# redirects by itself; these reach us when it cannot (a HEAD has no body: only the status).
_REDIRECT = {"PermanentRedirect", "301", "IncorrectEndpoint"}
_WRONG_REGION = {*_REDIRECT, "AuthorizationHeaderMalformed"}
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


class Where(NamedTuple):
    """What was being done and to which object, for messages."""

    action: str  # "upload", "download", "check"
    oid: str
    bucket: str
    key: str
    endpoint: str

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @property
    def location(self) -> str:
        """The bucket and prefix: the key without `objects/<oid[0:2]>/<oid[2:4]>/<oid>`."""
        prefix = "/".join(self.key.split("/")[:-4])
        return f"s3://{self.bucket}/{prefix}"

    @property
    def writes(self) -> bool:
        return self.action == "upload"


def error_response(exc: BaseException) -> Mapping[str, Any] | None:
    """S3's error reply carried by `exc` (botocore's ClientError or our S3HttpError), if any."""
    response = getattr(exc, "response", None)
    if isinstance(response, Mapping) and isinstance(response.get("Error"), Mapping):
        return response
    return None


def error_code(exc: BaseException) -> str | None:
    """The S3 error code of `exc` ("NoSuchKey", "404"...); None when S3 did not answer."""
    response = error_response(exc)
    if response is None:
        return None
    return str(response["Error"].get("Code", "")) or str(
        response.get("ResponseMetadata", {}).get("HTTPStatusCode", "")
    )


def _botocore_classes(*names: str) -> tuple[type[BaseException], ...]:
    module = sys.modules.get("botocore.exceptions")
    return tuple(getattr(module, n) for n in names) if module is not None else ()


def translate(exc: Exception, where: Where) -> TransferError:
    """Map an S3 client's exception to the agent's error; anything else is returned as a 500."""
    if isinstance(exc, TransferError):
        return exc
    kw = {"oid": where.oid, "key": where.key}
    no_credentials: tuple[type[BaseException], ...] = (
        NoCredentials,
        *_botocore_classes("NoCredentialsError", "PartialCredentialsError"),
    )
    if isinstance(exc, no_credentials):
        return AccessDenied(
            f"no usable AWS credentials to {where.action} {where.url}: {exc}. Set AWS_PROFILE "
            "(and run 'aws sso login' for SSO), or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY",
            **kw,
        )
    response = error_response(exc)
    if response is not None:
        return _client_error(response, where)
    from .http1 import Stalled

    if isinstance(exc, Stalled):
        var = "LFS_S3_" + exc.setting.upper().replace("-", "_")
        return StorageUnavailable(
            f"S3 at {where.endpoint} stalled while we tried to {where.action} {where.url}: "
            f"{exc}. Check the endpoint and your network; on a slow link raise the limit "
            f"('git config lfs-s3.{exc.setting} VALUE' or {var})",
            **kw,
        )
    import http.client

    network: tuple[type[BaseException], ...] = (
        OSError,
        http.client.HTTPException,
        *_botocore_classes("BotoCoreError"),
    )
    if isinstance(exc, network):
        return StorageUnavailable(
            f"cannot reach S3 at {where.endpoint} to {where.action} {where.url}: {exc}. "
            "Check the endpoint ('lfs-s3-agent config') and your network, then try again",
            **kw,
        )
    return TransferError(f"unexpected error during {where.action} of {where.url}: {exc!r}", **kw)


def _client_error(response: Mapping[str, Any], where: Where) -> TransferError:
    error = response["Error"]
    code = str(error.get("Code", "")) or str(
        response.get("ResponseMetadata", {}).get("HTTPStatusCode", "")
    )
    detail = error.get("Message") or code
    kw = {"oid": where.oid, "key": where.key}
    missing = _missing(code, where)
    if missing is not None:
        return missing
    region = _bucket_region(response) if code in _WRONG_REGION else None
    if region is not None or code in _REDIRECT:
        return _wrong_region(code, region, where)
    if code in _DENIED:
        return _denied(code, detail, where)
    credentials = _bad_credentials(code, where)
    if credentials is not None:
        return credentials
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


def _missing(code: str, where: Where) -> TransferError | None:
    """The object, its bucket or its multipart upload is not in the store."""
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
    return None


def _bad_credentials(code: str, where: Where) -> AccessDenied | None:
    """The credentials in use are not the store's: an unknown key, a wrong secret, an expired
    token."""
    kw = {"oid": where.oid, "key": where.key}
    if code in _UNKNOWN_KEY:
        return AccessDenied(
            f"unknown access key ({code}) to {where.action} {where.url}: the store does not "
            "know the access key id in use: mistyped or deleted, or temporary credentials "
            "that expired (an old AWS_SESSION_TOKEN). Check AWS_ACCESS_KEY_ID and "
            "AWS_SESSION_TOKEN, or the profile AWS_PROFILE names; renew SSO credentials with "
            "'aws sso login'",
            **kw,
        )
    if code in _BAD_SECRET:
        return AccessDenied(
            f"wrong secret key ({code}) to {where.action} {where.url}: the request was signed "
            "with a secret that does not belong to the access key id. Check "
            "AWS_SECRET_ACCESS_KEY, or the secret of the profile AWS_PROFILE names ('aws sso "
            "login' for SSO), and that no proxy rewrites the requests",
            **kw,
        )
    if code in _BAD_TOKEN:
        return AccessDenied(
            f"expired or invalid session token ({code}) to {where.action} {where.url}: "
            "temporary credentials must be renewed. Run 'aws sso login' for an SSO profile "
            "(AWS_PROFILE), or set a fresh AWS_SESSION_TOKEN with its AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY",
            **kw,
        )
    return None


def _denied(code: str, detail: str, where: Where) -> AccessDenied:
    kw = {"oid": where.oid, "key": where.key}
    if where.writes:
        return AccessDenied(
            f"access denied: this key cannot write to {where.location} ({code}): {detail} "
            f"for {where.url}. Check which credentials are in use (AWS_PROFILE, or "
            "AWS_ACCESS_KEY_ID; 'aws sso login' for SSO): pushing needs s3:PutObject and "
            f"s3:AbortMultipartUpload on {where.location}/objects/*",
            **kw,
        )
    return AccessDenied(
        f"access denied: this key cannot read {where.url} ({code}): {detail}. Check which "
        "credentials are in use (AWS_PROFILE, or AWS_ACCESS_KEY_ID; 'aws sso login' for SSO): "
        f"fetching needs s3:GetObject on {where.location}/objects/*",
        **kw,
    )


def _bucket_region(response: Mapping[str, Any]) -> str | None:
    """The bucket's region, from the error body or the x-amz-bucket-region header."""
    error = response.get("Error", {})
    headers = response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    region = error.get("Region") or headers.get("x-amz-bucket-region")
    if not region:
        # AuthorizationHeaderMalformed: "the region 'us-east-1' is wrong; expecting 'eu-west-1'"
        found = re.search(r"expecting '([a-z0-9-]+)'", str(error.get("Message", "")))
        region = found.group(1) if found else None
    return str(region) if region else None


def _wrong_region(code: str, region: str | None, where: Where) -> StoreRejected:
    fix = region or "REGION"
    found = f"in region {region}" if region else "in another region"
    return StoreRejected(
        f"bucket '{where.bucket}' is {found}, not the region requests were signed for "
        f"({code}) to {where.action} {where.url}. Run 'git config lfs-s3.region {fix}' (or "
        f"commit 'region = {fix}' in .lfs-s3config for everyone)"
        + ("" if region else f"; 'aws s3api get-bucket-location --bucket {where.bucket}'"),
        oid=where.oid,
        key=where.key,
    )


@contextmanager
def translated(where: Where) -> Iterator[None]:
    """Re-raise any S3 client or network error inside the block as a TransferError."""
    try:
        yield
    except AgentError:
        raise
    except Exception as exc:
        raise translate(exc, where) from exc
