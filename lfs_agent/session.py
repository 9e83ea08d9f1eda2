"""The protocol loop: read requests from git-lfs, run them against a store, write replies.

Streams and the store come in as arguments (the store through `connect`, called at init), so the
whole loop runs in tests over in-memory streams with a fake store.

- stdout carries protocol lines only, written whole and flushed under a lock, because progress
  comes from transfer threads;
- a failed object is a `complete` reply with an error, never an exit (git-lfs would hang or
  report EOF for every later object of this worker);
- a line longer than `MAX_LINE` is not read to its end: the agent exits with status 2;
- stdin is read by a thread, so an EOF while an object is moving cancels that transfer (its
  multipart upload and partial download are kept for the next run to resume, see
  `s3upload`/`s3download`) instead of going unnoticed;
- `terminate` and EOF end the loop with exit status 0 (130 when EOF or a signal interrupted a
  transfer); nothing is written after them.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from . import logs
from .errors import ConfigError, Interrupted, ProtocolError, TransferError
from .progress import ProgressReporter
from .protocol import (
    MAX_LINE,
    Complete,
    Download,
    Init,
    InitReply,
    Reply,
    Request,
    Terminate,
    Upload,
    encode,
    parse_request,
)

if TYPE_CHECKING:
    from .store import Store

log = logs.get(__name__)

EXIT_OK = 0
EXIT_CONFIG = 1
EXIT_PROTOCOL = 2
EXIT_INTERRUPTED = 130

_EOF = None


class _TooLong:
    """What the reader queues instead of a line longer than MAX_LINE (then it stops)."""


_TOO_LONG = _TooLong()
_Line = str | None | _TooLong


class Session:
    """One agent process's conversation with git-lfs."""

    def __init__(
        self,
        stdout: TextIO,
        connect: Callable[[Init], Store],
        *,
        cancel: threading.Event | None = None,
        progress_interval: float = 0.1,
    ) -> None:
        self._stdout = stdout
        self._connect = connect
        self.cancel = cancel or threading.Event()
        self._progress_interval = progress_interval
        self._lock = threading.Lock()
        self._store: Store | None = None

    def send(self, reply: Reply) -> None:
        line = encode(reply)
        with self._lock:
            self._stdout.write(line)
            self._stdout.flush()

    def handle(self, request: Request) -> int | None:
        """Answer one request; an exit status when the loop must end."""
        if isinstance(request, Terminate):
            return EXIT_OK
        if isinstance(request, Init):
            return self._init(request)
        if self._store is None:
            raise ProtocolError(f"{type(request).__name__.lower()} request before init")
        self._transfer(self._store, request)
        return None

    def _init(self, request: Init) -> int | None:
        try:
            self._store = self._connect(request)
        except ConfigError as exc:
            log.error("%s", exc)
            self.send(InitReply(error_code=exc.code, error_message=f"lfs-s3-agent: {exc}"))
            return EXIT_CONFIG
        except Exception as exc:
            # Unanswered, git-lfs would show only "EOF"; say something the user can report.
            log.exception("unexpected error at init")
            self.send(
                InitReply(
                    error_code=1,
                    error_message=f"lfs-s3-agent: internal error at start-up: {exc!r}. Rerun "
                    "with GIT_TRACE=1 for the details and report it",
                )
            )
            return EXIT_CONFIG
        self.send(InitReply())
        return None

    def _transfer(self, store: Store, request: Upload | Download) -> None:
        oid = request.oid
        reporter = ProgressReporter(oid, request.size, self.send, interval=self._progress_interval)
        try:
            if isinstance(request, Upload):
                sent = store.upload(oid, request.size, Path(request.path), reporter, self.cancel)
                log.info(
                    "%s %s (%d bytes)", "uploaded" if sent else "already stored", oid, request.size
                )
                path = None
            else:
                path = str(store.download(oid, request.size, reporter, self.cancel))
                log.info("downloaded %s (%d bytes)", oid, request.size)
        except TransferError as exc:
            log.error("%s: [%d] %s", oid, exc.code, exc)
            self.send(Complete(oid, error_code=exc.code, error_message=str(exc)))
            return
        except Interrupted:
            raise
        except Exception as exc:
            # A bug must cost one object, not every later object of this worker.
            log.exception("unexpected error while transferring %s", oid)
            self.send(
                Complete(
                    oid,
                    error_code=500,
                    error_message=f"lfs-s3-agent: internal error: {exc!r}. Rerun with "
                    "GIT_TRACE=1 (or LFS_S3_AGENT_LOG=FILE) for the details and report it",
                )
            )
            return
        reporter.finish()
        self.send(Complete(oid, path=path))


def _read_lines(stdin: TextIO, lines: queue.Queue[_Line], cancel: threading.Event) -> None:
    try:
        while line := stdin.readline(MAX_LINE):
            if len(line) >= MAX_LINE and not line.endswith("\n"):
                lines.put(_TOO_LONG)
                return
            lines.put(line)
    except (OSError, ValueError) as exc:
        log.error("cannot read from git-lfs: %s", exc)
    finally:
        lines.put(_EOF)
        # git-lfs went away: whatever is moving now will never be asked for again.
        cancel.set()


def _reply_to_malformed(session: Session, line: str, exc: ProtocolError) -> bool:
    """Answer a malformed transfer request that still names an oid, so git-lfs does not hang."""
    try:
        msg = json.loads(line)
    except (ValueError, RecursionError):  # as in parse_request: a deeply nested line
        return False
    oid = msg.get("oid") if isinstance(msg, dict) else None
    if not isinstance(oid, str) or not oid or msg.get("event") not in ("upload", "download"):
        return False
    session.send(Complete(oid, error_code=exc.code, error_message=f"lfs-s3-agent: {exc}"))
    return True


def serve(
    stdin: TextIO,
    stdout: TextIO,
    connect: Callable[[Init], Store],
    *,
    cancel: threading.Event | None = None,
    progress_interval: float = 0.1,
) -> int:
    """Serve git-lfs on the given streams until terminate or EOF; return the exit status."""
    session = Session(stdout, connect, cancel=cancel, progress_interval=progress_interval)
    lines: queue.Queue[_Line] = queue.Queue()
    reader = threading.Thread(
        target=_read_lines, args=(stdin, lines, session.cancel), name="lfs-s3-stdin", daemon=True
    )
    reader.start()
    try:
        while (line := lines.get()) is not _EOF:
            if isinstance(line, _TooLong):
                log.error("protocol error: a line longer than %d characters; stopping", MAX_LINE)
                return EXIT_PROTOCOL
            if not line.strip():
                continue
            try:
                status = session.handle(parse_request(line))
            except ProtocolError as exc:
                if _reply_to_malformed(session, line, exc):
                    continue
                log.error("protocol error: %s", exc)
                return EXIT_PROTOCOL
            if status is not None:
                return status
        return EXIT_OK
    except (Interrupted, KeyboardInterrupt) as exc:
        log.warning("interrupted: %s", exc or "signal")
        session.cancel.set()
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        log.error("git-lfs closed the pipe")
        session.cancel.set()
        return EXIT_INTERRUPTED
