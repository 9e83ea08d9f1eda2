"""What to tell the user, by cause: the one place that maps a failure's cause to its hint.

A hint names what the user can change: credentials that are missing are not a network
problem, and an offline mode that the `--offline` flag set is not undone by unsetting a
variable. Callers classify first (`s3_cause`, `offline_source`), then word with `s3_hint`,
`go_online` and `root_url_hint`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Literal

OFFLINE_ENV = "MODEL_REGISTRY_OFFLINE"
_TRUE = ("1", "true", "yes", "on")

S3Cause = Literal[
    "no-credentials", "bad-credentials", "denied", "no-bucket", "unreachable", "other"
]

_CREDENTIAL_CODES = frozenset(
    {
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidToken",
        "TokenRefreshRequired",
        "InvalidClientTokenId",
    }
)
_DENIED_CODES = frozenset({"AccessDenied", "403", "Forbidden", "AllAccessDisabled"})
_NO_CREDENTIALS = frozenset({"NoCredentialsError", "PartialCredentialsError", "NoCredentials"})
_UNREACHABLE = frozenset(
    {
        "EndpointConnectionError",
        "ConnectTimeoutError",
        "ReadTimeoutError",
        "ConnectionClosedError",
        "SSLError",
        "ProxyConnectionError",
        "HTTPClientError",
        "ConnectionError",
        "TimeoutError",
    }
)


def s3_cause(exc: BaseException) -> S3Cause:
    """Classify an S3 failure (botocore's or the agent's own) by what the user must fix."""
    response = getattr(exc, "response", None)
    if isinstance(response, Mapping):
        error = response.get("Error", {})
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode", "")
        code = str(error.get("Code", "")) or str(status)
        if code in _CREDENTIAL_CODES:
            return "bad-credentials"
        if code in _DENIED_CODES:
            return "denied"
        if code == "NoSuchBucket":
            return "no-bucket"
        return "other"
    names = {cls.__name__ for cls in type(exc).__mro__}
    if names & _NO_CREDENTIALS:
        return "no-credentials"
    if names & _UNREACHABLE:
        return "unreachable"
    return "other"


def s3_hint(cause: S3Cause, *, offline_possible: bool = False) -> str:
    """What to do about an S3 failure of `cause` (a sentence without a final period)."""
    if cause == "no-credentials":
        return (
            "no AWS credentials were found: set AWS_PROFILE (and run 'aws sso login' for an "
            "SSO profile) or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; 'lfs-s3-agent "
            "doctor' shows which credentials are found"
        )
    if cause == "bad-credentials":
        return (
            "the store rejected the credentials: check AWS_PROFILE or AWS_ACCESS_KEY_ID, and "
            "log in again if they expired ('aws sso login')"
        )
    if cause == "denied":
        return (
            "these credentials may not do this: check that AWS_PROFILE or AWS_ACCESS_KEY_ID "
            "names the intended key, and that its policy allows it on this bucket and prefix"
        )
    if cause == "no-bucket":
        return "the bucket does not exist: check the bucket name in the URL or lfs.url"
    if cause == "unreachable":
        hint = (
            "the store could not be reached: check the network and the endpoint "
            "(AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL, or lfs-s3.endpoint)"
        )
        if offline_possible:
            hint += f", or use the cache alone (--offline, or {OFFLINE_ENV}=1)"
        return hint
    return "'lfs-s3-agent doctor' checks the settings, the credentials and the bucket"


def offline_source(
    explicit: bool | None, *, given_as: str, environ: Mapping[str, str] = os.environ
) -> str | None:
    """What set offline mode, as the user wrote it, or None when it is off.

    `explicit` is the caller's own choice (a flag or an argument, `given_as` names it: "the
    --offline flag", "offline=True"); when it is None the environment decides.
    """
    if explicit is not None:
        return given_as if explicit else None
    value = environ.get(OFFLINE_ENV, "")
    if value.strip().lower() in _TRUE:
        return f"{OFFLINE_ENV}={value}"
    return None


def go_online(source: str) -> str:
    """How to leave offline mode, for what `offline_source` returned."""
    if source.startswith(f"{OFFLINE_ENV}="):
        value = source[len(OFFLINE_ENV) + 1 :]
        return f"resolve it once online: unset {OFFLINE_ENV} (it is set to '{value}')"
    if source == "offline=True":
        return "resolve it once online: call without offline=True"
    return f"resolve it once online, without {source.removeprefix('the ').removesuffix(' flag')}"


def root_url_hint(root_url: str, prefix: str) -> str:
    """For a selector without its model under a root URL that names no model."""
    base = root_url.rstrip("/") + ("" if prefix else "/PREFIX")
    return (
        f"the root URL {root_url} names no model: end it with the model, "
        f"{base}/MODEL (e.g. {base}/YOLOX-l), or write the model in the selector "
        "(YOLOX-l/base/1)"
    )
