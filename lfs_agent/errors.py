"""The agent's errors: one tree, each class carrying the LFS error code git-lfs shows the user.

```
AgentError
+ ConfigError            fatal at init: sent as the init error reply
  - UntrustedEndpoint    a committed plain-http endpoint the user has not trusted (`url`)
+ ProtocolError          fatal: git-lfs sent something we cannot parse
+ Interrupted            the transfer was cancelled (EOF on stdin, SIGINT, SIGTERM)
+ TransferError          one object failed: sent in its "complete" reply, the agent goes on
  - ObjectNotFound       404
  - AccessDenied         403
  - CorruptObject        422  bytes do not hash to the oid (local file, or object in the store)
    - WrongSize          422  the store's object has another size than the one asked for
  - StoreRejected        400  the store refused the request (bad digest, bad argument...)
  - StorageUnavailable   503  throttling, 5xx, network failures, after our own retries
  - LocalIOError         500  reading or writing a local file failed
```
git-lfs prints a per-object error as `error transferring "<oid>": [code] message`, and that
message is all the user sees without GIT_TRACE=1, so every message says what to do next.

Below the tree, the errors of the agent's own S3 client (`s3http`, `http1`). They are not
`AgentError`s on purpose: they stand where botocore's and the socket's errors stand for a boto3
client, are retried in the client's request loop, and are translated into the tree above in one
place (`s3errors.translate`), which passes an `AgentError` through untouched. Only a caller that
drives the client itself (the registry) meets them.
```
S3HttpError              S3 answered with an error; `response` has botocore's layout
NoCredentials            no AWS credentials anywhere in the chain
OSError
+ HttpProtocolError      the reply is not HTTP/1.x we can read (retried as a network failure)
+ TimeoutError
  - Stalled              connect, silence, minimum rate or total deadline hit; `setting` names it
```
`HttpProtocolError` and `Stalled` are OSErrors so that the request loop, `s3errors` and callers
treat them as the network failures they are, as they treat a refused or reset connection.

The package exports (`lfs_agent.__all__`) the `AgentError` tree: what callers of `serve`,
`S3Store` and `Transfer` meet. A private exception that only carries control flow within one
module (`s3tmpfile._Stale`) never leaves it and is not listed here.
"""

from __future__ import annotations

from typing import Any, ClassVar


class AgentError(Exception):
    """Base class of every error the agent raises on purpose."""

    code: ClassVar[int] = 1


class ConfigError(AgentError):
    """The settings are missing or invalid; the message names the setting to fix."""

    code = 32


class UntrustedEndpoint(ConfigError):
    """A committed plain-http endpoint the user has not trusted; `url` names it."""

    def __init__(self, url: str, message: str) -> None:
        super().__init__(message)
        self.url = url


class ProtocolError(AgentError):
    """git-lfs sent a line that is not a request we understand."""

    code = 2


class Interrupted(AgentError):
    """The transfer was cancelled before it finished (EOF on stdin, or a signal)."""

    code = 130


class TransferError(AgentError):
    """One object could not be transferred; the agent reports it and goes on."""

    code = 500

    def __init__(self, message: str, *, oid: str = "", key: str = "") -> None:
        super().__init__(message)
        self.oid = oid
        self.key = key


class ObjectNotFound(TransferError, LookupError):
    code = 404


class AccessDenied(TransferError, PermissionError):
    code = 403


class CorruptObject(TransferError, ValueError):
    code = 422


class WrongSize(CorruptObject):
    """The store's object has `stored` bytes, not the `expected` ones (known from its first
    reply, before any range is planned)."""

    def __init__(
        self, message: str, *, oid: str = "", key: str = "", stored: int, expected: int
    ) -> None:
        super().__init__(message, oid=oid, key=key)
        self.stored = stored
        self.expected = expected


class StoreRejected(TransferError):
    code = 400


class StorageUnavailable(TransferError, ConnectionError):
    code = 503


class LocalIOError(TransferError, OSError):
    code = 500


# ---------------------------------------------------------------- the S3 client's own errors


class S3HttpError(Exception):
    """S3 answered with an error. `response` has botocore's layout (`Error`, `ResponseMetadata`)."""

    def __init__(
        self,
        operation: str,
        status: int,
        fields: tuple[str, str, str | None],
        headers: Any,
    ) -> None:
        code, message, region = fields
        super().__init__(
            f"An error occurred ({code}) when calling the {operation} operation: {message}"
        )
        error = {"Code": code, "Message": message}
        # The header on a 301 (a HEAD has no body), else the body's <Region>.
        region = headers.get("x-amz-bucket-region") or region
        if region:
            error["Region"] = region
        self.response: dict[str, Any] = {
            "Error": error,
            "ResponseMetadata": {
                "HTTPStatusCode": status,
                "HTTPHeaders": {k.lower(): v for k, v in headers.items()},
            },
        }
        self.status = status
        self.code = code


class NoCredentials(Exception):
    """No AWS credentials were found anywhere in the chain."""


class HttpProtocolError(OSError):
    """The server's reply is not HTTP/1.x we can read."""


class Stalled(TimeoutError):
    """The server was silent, too slow, or past the deadline. `setting` names the limit."""

    def __init__(self, message: str, *, setting: str) -> None:
        super().__init__(message)
        self.setting = setting
