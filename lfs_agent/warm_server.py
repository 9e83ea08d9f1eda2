"""The warm server: accepts launchers on its socket and forks a ready agent for each.

Started by a launcher that found no server (`warm.py`: `python -S _launch.py --warm-server
PATH`). It imports the serve and transfer path once (`_preload`), then for each launcher of the
same user (SO_PEERCRED) receives its stdin, stdout, stderr and working directory, environment
and umask, and forks a child that becomes the agent on those pipes, reports its pid and exit
status to the launcher, and reports the settings it loaded back to the server (`memo.py`). It
leaves after `IDLE` seconds without a connection, or when its socket file is removed or
replaced.
"""

from __future__ import annotations

import fcntl
import os
import pickle
import signal
import socket
import struct
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from .memo import Entry

IDLE = 60.0
_MAX_REQUEST = 1 << 20
# The server's settings remembered from its children (`memo.py`), and the pipes on which
# children not yet heard from report theirs: fd -> bytes so far.
_remembered: dict[str, Entry] = {}
_reports: dict[int, bytes] = {}
# A forked agent's standard streams, held here: `agent.run` rebinds sys.stdout, and a stream
# object that nothing holds is closed, buffer and all (in a plain process sys.__stdout__ holds it).
_streams: list[TextIO] = []


def serve_forever(path: str) -> None:
    """Accept launchers on `path` until idle; fork an agent for each."""
    os.chdir("/")  # hold no user's folder; each child moves to its launcher's
    lock = os.open(path[: -len(".sock")] + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return  # another server is starting or running
    _preload()
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    # Short waits: notice a removed socket file within a second, not after IDLE.
    listener.settimeout(1.0)
    inode = os.stat(path).st_ino
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    uid = os.getuid()
    creds = struct.Struct("3i")
    last = time.monotonic()
    try:
        while _still_ours(path, inode) and time.monotonic() - last < IDLE:
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            last = time.monotonic()
            try:
                peer_uid = creds.unpack(
                    conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, creds.size)
                )[1]
                if peer_uid != uid:
                    conn.close()
                    continue
                _collect_reports()
                _fork_agent(conn, listener)
            except OSError:
                conn.close()
    finally:
        if _still_ours(path, inode):
            os.unlink(path)
        listener.close()
        os.close(lock)


def _still_ours(path: str, inode: int) -> bool:
    try:
        return os.stat(path).st_ino == inode
    except OSError:
        return False


def _preload() -> None:
    """Import everything an agent needs before its first byte moves, once, here."""
    import resource  # noqa: F401  (the exit line's peak RSS)

    from . import (  # noqa: F401
        agent,
        memo,
        resume,
        s3client,
        s3download,
        s3errors,
        s3http,
        s3resume,
        s3tmpfile,
        s3upload,
        s3wire,
        settings,
        sigv4,
        sources,
    )


def _fork_agent(conn: socket.socket, listener: socket.socket) -> None:

    conn.settimeout(5.0)
    header, fds, _, _ = socket.recv_fds(conn, 8, 4)
    try:
        if len(header) != 8 or len(fds) != 4:
            raise OSError("incomplete hand-over")
        size = int.from_bytes(header, "big")
        if not 0 < size <= _MAX_REQUEST:
            raise OSError("hand-over too large")
        payload = b""
        while len(payload) < size:
            chunk = conn.recv(size - len(payload))
            if not chunk:
                raise OSError("hand-over cut short")
            payload += chunk
        report_r, report_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            listener.close()
            os.close(report_r)
            for fd in _reports:
                os.close(fd)
            _child(conn, fds, payload, report_w)
        os.close(report_w)
        os.set_blocking(report_r, False)
        _reports[report_r] = b""
    finally:
        for fd in fds:
            os.close(fd)
    conn.close()


def _collect_reports() -> None:
    """Remember the settings that children have reported since the last start."""

    from .memo import Entry, store

    for fd in list(_reports):
        try:
            while chunk := os.read(fd, 65536):
                _reports[fd] += chunk
                if len(_reports[fd]) > _MAX_REQUEST:
                    raise OSError("report too large")
        except BlockingIOError:
            continue  # the child has more to say, or has not said it yet
        except OSError:
            pass
        data = _reports.pop(fd)
        os.close(fd)
        if data:
            try:
                entry = pickle.loads(data)  # from our own forked child, over a private pipe
            except Exception:
                continue
            if isinstance(entry, Entry):
                store(_remembered, entry)


def _reporter(fd: int) -> Callable[[Entry], None]:
    """How a child tells the server what it loaded: one pickled entry, then the pipe closes."""

    def report(entry: Entry) -> None:

        data = memoryview(pickle.dumps(entry))
        try:
            while data:
                data = data[os.write(fd, data) :]
        except OSError:
            pass
        finally:
            os.close(fd)

    return report


def _child(conn: socket.socket, fds: list[int], payload: bytes, report_fd: int) -> None:
    """In the forked child: become the launcher's agent, then report the exit status."""

    status = 1
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # git subprocesses are waited for
        conn.settimeout(None)
        for target, fd in enumerate(fds[:3]):
            os.dup2(fd, target)
        # The server's own stream objects were made for /dev/null (seekable, buffered state).
        _streams[:] = [
            open(0, errors="surrogateescape", closefd=False),  # noqa: SIM115
            open(1, "w", closefd=False),  # noqa: SIM115
            open(2, "w", 1, errors="backslashreplace", closefd=False),  # noqa: SIM115
        ]
        sys.stdin, sys.stdout, sys.stderr = _streams
        os.fchdir(fds[3])
        umask, _, env = payload.partition(b"\0")
        os.umask(int(umask))
        os.environ.clear()
        for item in env.decode("utf-8", "surrogateescape").split("\0"):
            key, sep, value = item.partition("=")
            if sep and key:
                os.environ[key] = value
        conn.sendall(f"pid {os.getpid()}\n".encode())
        from .agent import exit_now, run
        from .memo import Memo

        status = run(Memo(_remembered, _reporter(report_fd)))
    except BaseException:
        import traceback

        traceback.print_exc()  # to the launcher's stderr: git-lfs shows it under GIT_TRACE=1
        status = 70
    try:
        conn.sendall(f"exit {status}\n".encode())
    except OSError:
        pass
    exit_now(status)
