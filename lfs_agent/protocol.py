"""The git-lfs custom transfer protocol: request and reply messages, parse and encode. No I/O.

One JSON object per line in each direction (git-lfs `docs/custom-transfers.md`). Unknown fields
are ignored, because git-lfs has added fields over time (`remote` came later); unknown events are
a ProtocolError.

These are named tuples rather than pydantic models or dataclasses on purpose: git-lfs starts the
agent once per transfer queue and nothing moves until it has answered init (PROTOCOL.md).
pydantic costs about 80 ms of start-up, dataclasses (with `inspect`) and their decoration 10-15.
"""

from __future__ import annotations

import json
from typing import Any, Literal, NamedTuple

from .errors import ProtocolError
from .oids import is_oid

# The largest object S3 can hold: a multipart upload of 10,000 parts of at most 5 GiB. git-lfs
# never sends more; a larger size is a bug or hostile input, not a file to make room for.
MAX_SIZE = 10_000 * 5 * 1024**3
# The longest request line accepted. A real one is under 5 KiB (an upload path is at most
# PATH_MAX, 4 KiB); a longer one is read no further, so a line without end cannot fill memory.
MAX_LINE = 64 * 1024


class Init(NamedTuple):
    operation: Literal["upload", "download"]
    remote: str = ""
    concurrent: bool = True
    concurrent_transfers: int = 8


class Upload(NamedTuple):
    oid: str
    size: int
    path: str


class Download(NamedTuple):
    oid: str
    size: int


class Terminate(NamedTuple):
    """No fields: git-lfs is done with this process."""


Request = Init | Upload | Download | Terminate


class Progress(NamedTuple):
    oid: str
    bytes_so_far: int
    bytes_since_last: int


class Complete(NamedTuple):
    oid: str
    path: str | None = None
    error_code: int | None = None
    error_message: str | None = None


class InitReply(NamedTuple):
    error_code: int | None = None
    error_message: str | None = None


Reply = Progress | Complete | InitReply


def parse_request(line: str) -> Request:
    """Parse one line from git-lfs.

    >>> parse_request('{"event":"download","oid":"' + "a" * 64 + '","size":3,"action":null}')
    Download(oid='aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', size=3)

    Raises:
        ProtocolError: the line is not JSON, or not a request we know, or a field is invalid.
    """
    try:
        msg = json.loads(line)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(f"not a JSON line: {_clip(line)!r}") from exc
    if not isinstance(msg, dict):
        raise ProtocolError(f"expected a JSON object, got {_clip(line)!r}")
    event = msg.get("event")
    if event == "init":
        return _parse_init(msg, line)
    if event == "upload":
        path = msg.get("path")
        if not isinstance(path, str) or not path:
            raise ProtocolError(f"upload request without a path: {_clip(line)!r}")
        return Upload(oid=_oid(msg, line), size=_size(msg, line), path=path)
    if event == "download":
        return Download(oid=_oid(msg, line), size=_size(msg, line))
    if event == "terminate":
        return Terminate()
    raise ProtocolError(f"unknown event {event!r} in {_clip(line)!r}")


def encode(reply: Reply) -> str:
    """Encode a reply as one protocol line, newline included.

    >>> encode(Progress(oid="ab", bytes_so_far=5, bytes_since_last=2))
    '{"event":"progress","oid":"ab","bytesSoFar":5,"bytesSinceLast":2}\\n'
    >>> encode(InitReply())
    '{}\\n'
    """
    msg: dict[str, Any]
    if isinstance(reply, Progress):
        msg = {
            "event": "progress",
            "oid": reply.oid,
            "bytesSoFar": reply.bytes_so_far,
            "bytesSinceLast": reply.bytes_since_last,
        }
    elif isinstance(reply, Complete):
        msg = {"event": "complete", "oid": reply.oid}
        if reply.path is not None:
            msg["path"] = reply.path
        if reply.error_code is not None:
            msg["error"] = {"code": reply.error_code, "message": reply.error_message or ""}
    else:
        msg = {}
        if reply.error_code is not None:
            msg["error"] = {"code": reply.error_code, "message": reply.error_message or ""}
    # ensure_ascii keeps each reply one line whatever a message contains.
    return json.dumps(msg, separators=(",", ":"), ensure_ascii=True) + "\n"


def _parse_init(msg: dict[str, Any], line: str) -> Init:
    operation = msg.get("operation")
    if operation not in ("upload", "download"):
        raise ProtocolError(f"init with unknown operation {operation!r}: {_clip(line)!r}")
    remote = msg.get("remote")
    concurrent = msg.get("concurrent", True)
    transfers = msg.get("concurrenttransfers", 8)
    if not isinstance(transfers, int) or isinstance(transfers, bool) or transfers < 1:
        transfers = 1
    return Init(
        operation=operation,
        remote=remote if isinstance(remote, str) else "",
        concurrent=concurrent is not False,
        concurrent_transfers=transfers,
    )


def _oid(msg: dict[str, Any], line: str) -> str:
    oid = msg.get("oid")
    if not isinstance(oid, str) or not is_oid(oid):
        raise ProtocolError(
            f"invalid oid {_clip(repr(oid), 80)} (expected 64 lowercase hex digits) "
            f"in {_clip(line)!r}"
        )
    return oid


def _size(msg: dict[str, Any], line: str) -> int:
    size = msg.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= MAX_SIZE:
        raise ProtocolError(
            f"invalid size {_clip(repr(size), 40)} (expected 0 to {MAX_SIZE} bytes) "
            f"in {_clip(line)!r}"
        )
    return size


def _clip(line: str, limit: int = 200) -> str:
    line = line.strip()
    return line if len(line) <= limit else line[:limit] + "..."
