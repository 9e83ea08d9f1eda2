"""The agent's errors: one tree, each class carrying the LFS error code git-lfs shows the user.

```
AgentError
+ ConfigError            fatal at init: sent as the init error reply
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
"""

from __future__ import annotations

from typing import ClassVar


class AgentError(Exception):
    """Base class of every error the agent raises on purpose."""

    code: ClassVar[int] = 1


class ConfigError(AgentError):
    """The settings are missing or invalid; the message names the setting to fix."""

    code = 32


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
