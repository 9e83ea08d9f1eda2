"""The protocol loop, driven over in-memory streams (and a pipe) with a FakeStore."""

from __future__ import annotations

import hashlib
import io
import json
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lfs_agent.errors import (
    AccessDenied,
    ConfigError,
    CorruptObject,
    LocalIOError,
    ObjectNotFound,
    StorageUnavailable,
    StoreRejected,
    TransferError,
)
from lfs_agent.protocol import Init
from lfs_agent.session import EXIT_CONFIG, EXIT_INTERRUPTED, EXIT_OK, EXIT_PROTOCOL, serve
from lfs_agent.store import Store
from tests.fakes import WAIT, FakeStore, split

DATA_A = b"the first checkpoint, " * 50
DATA_B = b"a second, smaller object"
OID_A = hashlib.sha256(DATA_A).hexdigest()
OID_B = hashlib.sha256(DATA_B).hexdigest()
OID_MISSING = "f" * 64


def line(**fields: Any) -> str:
    return json.dumps(fields) + "\n"


def init(operation: str = "upload", **extra: Any) -> str:
    fields: dict[str, Any] = {
        "event": "init",
        "operation": operation,
        "remote": "origin",
        "concurrent": True,
        "concurrenttransfers": 8,
    }
    return line(**(fields | extra))


def upload(oid: str, size: int, path: Path) -> str:
    return line(event="upload", oid=oid, size=size, path=str(path), action=None)


def download(oid: str, size: int) -> str:
    return line(event="download", oid=oid, size=size, action=None)


TERMINATE = line(event="terminate")


@dataclass
class Result:
    status: int
    raw: str
    replies: list[dict[str, Any]]
    inits: list[Init]


def parse_replies(raw: str) -> list[dict[str, Any]]:
    """Every line of stdout as a JSON object; fails on anything that is not a protocol line."""
    replies = []
    for text in raw.splitlines(keepends=True):
        assert text.endswith("\n"), f"unterminated line {text!r}"
        assert text.isascii(), f"non-ASCII line {text!r}"
        msg = json.loads(text)
        assert isinstance(msg, dict), f"not a JSON object: {text!r}"
        replies.append(msg)
    return replies


def run(
    lines: Sequence[str],
    store: Store | None = None,
    *,
    connect: Callable[[Init], Store] | None = None,
    progress_interval: float = 0.0,
    cancel: threading.Event | None = None,
) -> Result:
    inits: list[Init] = []

    def default_connect(request: Init) -> Store:
        inits.append(request)
        assert store is not None
        return store

    stdout = io.StringIO()
    status = serve(
        io.StringIO("".join(lines)),
        stdout,
        connect or default_connect,
        cancel=cancel,
        progress_interval=progress_interval,
    )
    raw = stdout.getvalue()
    return Result(status, raw, parse_replies(raw), inits)


def progress(oid: str, so_far: int, since_last: int) -> dict[str, Any]:
    return {"event": "progress", "oid": oid, "bytesSoFar": so_far, "bytesSinceLast": since_last}


def expected_progress(oid: str, size: int, chunks: int) -> list[dict[str, Any]]:
    """The progress replies for `chunks` callbacks with no throttling."""
    out, so_far = [], 0
    for delta in split(size, chunks):
        so_far += delta
        out.append(progress(oid, so_far, delta))
    return out


@pytest.fixture
def objects_dir(tmp_path: Path) -> Path:
    """Files to upload, as git-lfs has them in .git/lfs/objects."""
    d = tmp_path / "objects"
    d.mkdir()
    (d / OID_A).write_bytes(DATA_A)
    (d / OID_B).write_bytes(DATA_B)
    return d


@pytest.fixture
def tmp_dir(tmp_path: Path) -> Path:
    d = tmp_path / "lfs" / "tmp"
    d.mkdir(parents=True)
    return d


# --- init ---------------------------------------------------------------------------------------


def test_init_is_answered_with_empty_object_and_eof_exits_0(tmp_dir: Path) -> None:
    store = FakeStore(tmp_dir)
    result = run([init("download", remote="upstream", concurrenttransfers=3)], store)
    assert result.raw == "{}\n"
    assert result.status == EXIT_OK
    assert result.inits == [
        Init(operation="download", remote="upstream", concurrent=True, concurrent_transfers=3)
    ]
    assert store.calls == []


def test_empty_stdin_exits_0_and_writes_nothing() -> None:
    result = run([], None)
    assert (result.status, result.raw) == (EXIT_OK, "")


def test_config_error_at_init_is_the_init_reply_and_exit_1(objects_dir: Path) -> None:
    def connect(request: Init) -> Store:
        raise ConfigError("no S3 bucket is configured for this repository")

    result = run(
        [init(), upload(OID_A, len(DATA_A), objects_dir / OID_A), TERMINATE],
        connect=connect,
    )
    assert result.raw == (
        '{"error":{"code":32,"message":"lfs-s3-agent: no S3 bucket is configured for this '
        'repository"}}\n'
    )
    # Nothing after the init reply: the loop ended there, the upload was never read.
    assert result.status == EXIT_CONFIG == 1


def test_unexpected_error_at_init_is_still_answered() -> None:
    def connect(request: Init) -> Store:
        raise RuntimeError("boom")

    result = run([init(), TERMINATE], connect=connect)
    assert len(result.replies) == 1
    assert "error" in result.replies[0]
    assert "boom" in result.replies[0]["error"]["message"]
    assert result.status != EXIT_OK


# --- transfers ----------------------------------------------------------------------------------


@pytest.mark.parametrize("chunks", [1, 4])
def test_upload_sends_progress_then_complete(objects_dir: Path, tmp_dir: Path, chunks: int) -> None:
    store = FakeStore(tmp_dir, chunks=chunks)
    result = run([init(), upload(OID_A, len(DATA_A), objects_dir / OID_A), TERMINATE], store)
    assert result.status == EXIT_OK
    assert result.replies == [
        {},
        *expected_progress(OID_A, len(DATA_A), chunks),
        {"event": "complete", "oid": OID_A},
    ]
    assert store.objects == {OID_A: DATA_A}
    assert [(c.operation, c.oid, c.size, c.path) for c in store.calls] == [
        ("upload", OID_A, len(DATA_A), objects_dir / OID_A)
    ]


def test_upload_with_default_throttling_still_reports_first_bytes_and_size(
    objects_dir: Path, tmp_dir: Path
) -> None:
    store = FakeStore(tmp_dir, chunks=50)
    stdout = io.StringIO()
    status = serve(
        io.StringIO(init() + upload(OID_A, len(DATA_A), objects_dir / OID_A) + TERMINATE),
        stdout,
        lambda request: store,
    )
    replies = parse_replies(stdout.getvalue())
    assert status == EXIT_OK
    events = [r for r in replies[1:] if r["event"] == "progress"]
    # The first event goes out at once (git-lfs holds its other workers until then)...
    assert events[0]["bytesSoFar"] == split(len(DATA_A), 50)[0] > 0
    # ...the last is the size, and the fast transfer did not send one event per callback.
    assert events[-1]["bytesSoFar"] == len(DATA_A)
    assert len(events) < 50
    assert sum(e["bytesSinceLast"] for e in events) == len(DATA_A)
    assert replies[-1] == {"event": "complete", "oid": OID_A}


def test_upload_of_an_object_already_stored_reports_its_size(
    objects_dir: Path, tmp_dir: Path
) -> None:
    store = FakeStore(tmp_dir, {OID_A: DATA_A}, chunks=4)
    result = run([init(), upload(OID_A, len(DATA_A), objects_dir / OID_A)], store)
    assert result.replies == [
        {},
        progress(OID_A, len(DATA_A), len(DATA_A)),
        {"event": "complete", "oid": OID_A},
    ]


@pytest.mark.parametrize("chunks", [1, 3])
def test_download_completes_with_the_path_of_a_new_file(tmp_dir: Path, chunks: int) -> None:
    store = FakeStore(tmp_dir, {OID_A: DATA_A}, chunks=chunks)
    result = run([init("download"), download(OID_A, len(DATA_A)), TERMINATE], store)
    assert result.status == EXIT_OK
    *progress_replies, complete = result.replies[1:]
    assert result.replies[0] == {}
    assert progress_replies == expected_progress(OID_A, len(DATA_A), chunks)
    assert complete == {"event": "complete", "oid": OID_A, "path": str(store.downloaded[0])}
    path = Path(complete["path"])
    assert path.is_absolute()
    assert path.parent == tmp_dir.resolve()
    assert path.read_bytes() == DATA_A


def test_download_of_an_empty_object_sends_no_progress(tmp_dir: Path) -> None:
    empty = hashlib.sha256(b"").hexdigest()
    store = FakeStore(tmp_dir, {empty: b""})
    result = run([init("download"), download(empty, 0)], store)
    assert result.replies == [
        {},
        {"event": "complete", "oid": empty, "path": str(store.downloaded[0])},
    ]


def test_two_downloads_of_the_same_object_get_different_files(tmp_dir: Path) -> None:
    store = FakeStore(tmp_dir, {OID_B: DATA_B})
    result = run(
        [init("download"), download(OID_B, len(DATA_B)), download(OID_B, len(DATA_B))], store
    )
    paths = [r["path"] for r in result.replies if r.get("event") == "complete"]
    assert len(paths) == 2 and paths[0] != paths[1]


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (ObjectNotFound("object missing from s3://b/objects/..."), 404),
        (AccessDenied("access denied: check your AWS credentials"), 403),
        (CorruptObject("the stored object does not hash to its oid"), 422),
        (StoreRejected("the store rejected the request"), 400),
        (StorageUnavailable("S3 is unavailable after 5 attempts"), 503),
        (LocalIOError("cannot read /repo/.git/lfs/objects/..."), 500),
        (TransferError("generic transfer failure"), 500),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, Exception) else str(v),
)
def test_transfer_error_is_a_complete_with_its_code_and_the_loop_goes_on(
    tmp_dir: Path, exc: TransferError, code: int
) -> None:
    store = FakeStore(tmp_dir, {OID_A: DATA_A, OID_B: DATA_B})
    store.fail(OID_A, exc)
    result = run(
        [init("download"), download(OID_A, len(DATA_A)), download(OID_B, len(DATA_B)), TERMINATE],
        store,
    )
    assert result.status == EXIT_OK
    assert result.replies[:2] == [
        {},
        {"event": "complete", "oid": OID_A, "error": {"code": code, "message": str(exc)}},
    ]
    assert result.replies[-1] == {
        "event": "complete",
        "oid": OID_B,
        "path": str(store.downloaded[0]),
    }
    assert [c.oid for c in store.calls] == [OID_A, OID_B]


def test_missing_object_is_404(tmp_dir: Path) -> None:
    result = run([init("download"), download(OID_MISSING, 3)], FakeStore(tmp_dir))
    assert result.replies[1]["error"]["code"] == 404
    assert "path" not in result.replies[1]


def test_unexpected_exception_is_a_500_complete_and_the_loop_goes_on(
    objects_dir: Path, tmp_dir: Path
) -> None:
    store = FakeStore(tmp_dir)
    store.fail(OID_A, RuntimeError("a bug"))
    result = run(
        [
            init(),
            upload(OID_A, len(DATA_A), objects_dir / OID_A),
            upload(OID_B, len(DATA_B), objects_dir / OID_B),
            TERMINATE,
        ],
        store,
    )
    assert result.status == EXIT_OK
    failed = result.replies[1]
    assert failed["event"] == "complete" and failed["oid"] == OID_A
    assert failed["error"]["code"] == 500
    assert "internal error" in failed["error"]["message"]
    assert "RuntimeError('a bug')" in failed["error"]["message"]
    assert "GIT_TRACE=1" in failed["error"]["message"]
    assert result.replies[-1] == {"event": "complete", "oid": OID_B}
    assert store.objects == {OID_B: DATA_B}


def test_unreadable_upload_file_is_reported_and_the_loop_goes_on(
    objects_dir: Path, tmp_dir: Path
) -> None:
    store = FakeStore(tmp_dir)
    result = run(
        [
            init(),
            upload(OID_A, 5, objects_dir / "does-not-exist"),
            upload(OID_B, len(DATA_B), objects_dir / OID_B),
        ],
        store,
    )
    # FileNotFoundError from the fake store is not a TransferError: the catch-all answers.
    assert result.replies[1]["oid"] == OID_A
    assert result.replies[1]["error"]["code"] == 500
    assert result.replies[-1] == {"event": "complete", "oid": OID_B}


# --- malformed and out-of-order requests --------------------------------------------------------


@pytest.mark.parametrize("event", ["upload", "download"])
def test_transfer_request_before_init_is_answered_with_an_error(
    objects_dir: Path, tmp_dir: Path, event: str
) -> None:
    """What session.py does: the request names an oid, so it gets a complete with code 2."""
    store = FakeStore(tmp_dir, {OID_B: DATA_B})
    early = (
        upload(OID_A, len(DATA_A), objects_dir / OID_A)
        if event == "upload"
        else download(OID_A, len(DATA_A))
    )
    result = run([early, init("download"), download(OID_B, len(DATA_B)), TERMINATE], store)
    assert result.status == EXIT_OK
    assert result.replies[0] == {
        "event": "complete",
        "oid": OID_A,
        "error": {"code": 2, "message": f"lfs-s3-agent: {event} request before init"},
    }
    assert result.replies[1] == {}
    assert result.replies[-1]["oid"] == OID_B and "error" not in result.replies[-1]
    assert [c.oid for c in store.calls] == [OID_B]


def test_terminate_before_init_exits_0(tmp_dir: Path) -> None:
    result = run([TERMINATE, init()], FakeStore(tmp_dir))
    assert (result.status, result.raw, result.inits) == (EXIT_OK, "", [])


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        pytest.param(
            line(event="upload", oid=OID_A, size=-1, path="/x"), "invalid size -1", id="size"
        ),
        pytest.param(
            line(event="upload", oid=OID_A, size=3), "upload request without a path", id="path"
        ),
        pytest.param(
            line(event="download", oid=OID_A.upper(), size=3), "invalid oid", id="uppercase-oid"
        ),
        pytest.param(line(event="download", oid="abc", size=3), "invalid oid 'abc'", id="short"),
    ],
)
def test_malformed_transfer_request_with_an_oid_is_answered_and_the_loop_goes_on(
    tmp_dir: Path, bad: str, message: str
) -> None:
    store = FakeStore(tmp_dir, {OID_B: DATA_B})
    result = run([init("download"), bad, download(OID_B, len(DATA_B)), TERMINATE], store)
    assert result.status == EXIT_OK
    reply = result.replies[1]
    assert reply["event"] == "complete"
    assert reply["oid"] == json.loads(bad)["oid"]
    assert reply["error"]["code"] == 2
    assert reply["error"]["message"].startswith("lfs-s3-agent: " + message)
    assert "path" not in reply
    assert result.replies[-1]["oid"] == OID_B and "error" not in result.replies[-1]
    assert [c.oid for c in store.calls] == [OID_B]


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param("this is not json\n", id="not-json"),
        pytest.param("[1, 2, 3]\n", id="array"),
        pytest.param(line(event="upload", size=3, path="/x"), id="upload-without-oid"),
        pytest.param(line(event="download", oid="", size=3), id="empty-oid"),
        pytest.param(line(event="download", oid=12, size=3), id="oid-not-a-string"),
        pytest.param(line(event="frobnicate", oid=OID_A), id="unknown-event-with-oid"),
        pytest.param(line(event="init", operation="push"), id="bad-init"),
    ],
)
def test_malformed_line_without_a_usable_oid_exits_2(tmp_dir: Path, bad: str) -> None:
    store = FakeStore(tmp_dir, {OID_B: DATA_B})
    result = run([init("download"), bad, download(OID_B, len(DATA_B))], store)
    assert result.status == EXIT_PROTOCOL == 2
    assert result.raw == "{}\n"
    assert store.calls == []


def test_terminate_exits_0_and_nothing_is_written_after_it(
    objects_dir: Path, tmp_dir: Path
) -> None:
    store = FakeStore(tmp_dir, {OID_B: DATA_B})
    result = run(
        [init(), TERMINATE, upload(OID_A, len(DATA_A), objects_dir / OID_A), "garbage\n"], store
    )
    assert (result.status, result.raw) == (EXIT_OK, "{}\n")
    assert store.calls == []


def test_a_last_line_without_newline_is_still_read(tmp_dir: Path) -> None:
    store = FakeStore(tmp_dir, {OID_B: DATA_B})
    result = run([init("download"), download(OID_B, len(DATA_B)).rstrip("\n")], store)
    assert result.status == EXIT_OK
    assert result.replies[-1]["oid"] == OID_B and "path" in result.replies[-1]


def test_blank_lines_are_ignored(objects_dir: Path, tmp_dir: Path) -> None:
    store = FakeStore(tmp_dir)
    result = run(
        ["\n", "   \n", init(), "\r\n", "\t\n", upload(OID_B, len(DATA_B), objects_dir / OID_B)],
        store,
    )
    assert result.status == EXIT_OK
    assert result.replies == [
        {},
        progress(OID_B, len(DATA_B), len(DATA_B)),
        {"event": "complete", "oid": OID_B},
    ]


def test_stdout_holds_only_protocol_lines_in_order(objects_dir: Path, tmp_dir: Path) -> None:
    store = FakeStore(tmp_dir, {OID_B: DATA_B}, chunks=5)
    store.fail(OID_MISSING, AccessDenied("denied: ünïcödé message\nwith a newline"))
    requests = [
        init("download"),
        download(OID_B, len(DATA_B)),
        "\n",
        download(OID_MISSING, 10),
        line(event="download", oid=OID_A, size=-5),
        download(OID_A, len(DATA_A)),
        download(OID_B, len(DATA_B)),
        TERMINATE,
    ]
    result = run(requests, store)  # parse_replies checks each line is one ASCII JSON object
    assert result.status == EXIT_OK
    assert result.replies[0] == {}
    # After init: per request, progress events for its oid, then exactly one complete.
    expected_oids = [OID_B, OID_MISSING, OID_A, OID_A, OID_B]
    completes = [r for r in result.replies[1:] if r["event"] == "complete"]
    assert [c["oid"] for c in completes] == expected_oids
    current = 0
    for reply in result.replies[1:]:
        assert set(reply) <= {"event", "oid", "bytesSoFar", "bytesSinceLast", "path", "error"}
        assert reply["event"] in ("progress", "complete")
        assert reply["oid"] == expected_oids[current]
        if reply["event"] == "complete":
            current += 1
    assert completes[1]["error"] == {
        "code": 403,
        "message": "denied: ünïcödé message\nwith a newline",
    }


# --- cancel and EOF -----------------------------------------------------------------------------


def test_the_cancel_event_given_to_serve_reaches_the_store(tmp_dir: Path) -> None:
    store = FakeStore(tmp_dir, {OID_B: DATA_B})
    cancel = threading.Event()
    run([init("download"), download(OID_B, len(DATA_B)), TERMINATE], store, cancel=cancel)
    assert store.calls[0].cancel is cancel


class PipeSession:
    """serve() in a thread, reading from a pipe the test writes to and can close (EOF)."""

    def __init__(self, store: FakeStore) -> None:
        read_fd, write_fd = os.pipe()
        self.stdin = os.fdopen(read_fd, "r", encoding="utf-8")
        self.writer = os.fdopen(write_fd, "w", encoding="utf-8")
        self.stdout = io.StringIO()
        self.status: list[int] = []
        self.thread = threading.Thread(
            target=lambda: self.status.append(
                serve(self.stdin, self.stdout, lambda request: store, progress_interval=0.0)
            )
        )
        self.thread.start()

    def send(self, *lines: str) -> None:
        self.writer.write("".join(lines))
        self.writer.flush()

    def eof(self) -> None:
        self.writer.close()

    def wait(self) -> int:
        self.thread.join(WAIT)
        assert not self.thread.is_alive(), "serve() did not return"
        self.stdin.close()
        return self.status[0]


def test_eof_while_a_transfer_runs_cancels_it(tmp_dir: Path) -> None:
    store = FakeStore(tmp_dir, {OID_A: DATA_A}, chunks=4, wait_for_cancel=True)
    session = PipeSession(store)
    try:
        session.send(init("download"), download(OID_A, len(DATA_A)))
        assert store.started.wait(WAIT)
        assert not store.calls[0].cancel.is_set()  # stdin is still open
    finally:
        session.eof()
    status = session.wait()
    assert store.cancel_seen is True
    # The store raised Interrupted: no complete (git-lfs is gone), status 130.
    assert status == EXIT_INTERRUPTED
    assert parse_replies(session.stdout.getvalue()) == [
        {},
        progress(OID_A, split(len(DATA_A), 4)[0], split(len(DATA_A), 4)[0]),
    ]


def test_eof_during_a_transfer_that_finishes_anyway_exits_0(tmp_dir: Path) -> None:
    pause = threading.Event()
    store = FakeStore(tmp_dir, {OID_B: DATA_B}, chunks=2, pause=pause)
    session = PipeSession(store)
    try:
        session.send(init("download"), download(OID_B, len(DATA_B)))
        assert store.started.wait(WAIT)
    finally:
        session.eof()
    assert store.calls[0].cancel.wait(WAIT)
    pause.set()
    assert session.wait() == EXIT_OK
    replies = parse_replies(session.stdout.getvalue())
    assert replies[-1] == {"event": "complete", "oid": OID_B, "path": str(store.downloaded[0])}
