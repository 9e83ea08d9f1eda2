"""A warm agent: one background process per user that forks a ready agent for each git-lfs start.

git-lfs starts the agent once per transfer queue, and some commands (`git archive`, a smudge
outside delayed checkout) make one queue per object (PROTOCOL.md), so every object pays for an
interpreter and its imports. Here the launcher (`_launch.py`, `python -S`, this module and
`socket` only) hands its stdin, stdout, stderr and working directory, with its environment and
umask, to a warm server over a Unix socket; the server forks a child that has every module of
the serve and transfer path imported already, and that child speaks to git-lfs on those very
pipes. The launcher waits for the child's exit status, passes on SIGTERM, SIGINT and SIGHUP,
and exits with that status.

Nothing depends on it: with no server (the first start, or `LFS_S3_AGENT_WARM=0`), or when the
server cannot be reached or refuses, the launcher serves in its own process as before and, unless
disabled, starts a server for the next one. The server leaves after `IDLE` seconds without a
connection, when its socket file is removed, or when the agent's code changes (the socket's name
carries a fingerprint of the package's files).

The socket lives in `$XDG_RUNTIME_DIR/lfs-s3-agent` or `/tmp/lfs-s3-agent-<uid>`, a directory
that must be the user's own and closed to others (0700); the server also checks each peer's
uid (SO_PEERCRED).
"""

from __future__ import annotations

# `_socket`, not `socket`: the launcher needs a connect and one sendmsg, and `socket` costs it
# 9 ms of imports (selectors, enum...). The server, which has time, uses `socket`.
import _socket
import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket
    from collections.abc import Callable, Iterator
    from typing import TextIO

    from .memo import Entry

ENV_SWITCH = "LFS_S3_AGENT_WARM"
IDLE = 60.0
# How long a launcher waits for the server to start its agent before serving git-lfs itself.
HAND_OVER_WAIT = 20.0
_MAX_REQUEST = 1 << 20
_PACKAGE = os.path.dirname(os.path.abspath(__file__))
# The server's settings remembered from its children (`memo.py`), and the pipes on which
# children not yet heard from report theirs: fd -> bytes so far.
_remembered: dict[str, Entry] = {}
_reports: dict[int, bytes] = {}
# A forked agent's standard streams, held here: `agent.run` rebinds sys.stdout, and a stream
# object that nothing holds is closed, buffer and all (in a plain process sys.__stdout__ holds it).
_streams: list[TextIO] = []


def _fingerprint() -> str:
    """Changes whenever a module of the package changes (an upgrade, an edit)."""
    parts = [sys.executable, _PACKAGE, sys.version]
    with os.scandir(_PACKAGE) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            if entry.name.endswith(".py"):
                st = entry.stat()
                parts.append(f"{entry.name}:{st.st_size}:{st.st_mtime_ns}")
    import zlib

    return f"{zlib.crc32(chr(0).join(parts).encode()):08x}"


def socket_dir() -> str | None:
    """The user's private directory for the socket, made if needed; None if it is unsafe."""
    uid = os.getuid()
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    path = os.path.join(runtime, "lfs-s3-agent") if runtime else f"/tmp/lfs-s3-agent-{uid}"
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError:
        return None
    try:
        st = os.lstat(path)
    except OSError:
        return None
    import _stat

    if not _stat.S_ISDIR(st.st_mode) or st.st_uid != uid or st.st_mode & 0o077:
        return None
    return path


def socket_path() -> str | None:
    directory = socket_dir()
    return None if directory is None else os.path.join(directory, f"{_fingerprint()}.sock")


# ------------------------------------------------------------------------------- the launcher


def launch(launcher: str) -> None:
    """Serve through the warm server and exit with the agent's status; return only when this
    process must serve git-lfs itself."""
    if os.environ.get(ENV_SWITCH, "1") == "0":
        return
    path = socket_path()
    if path is None:
        return
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.connect(path)
        _hand_over(sock)
    except OSError:
        sock.close()
        _start_server(launcher, path)
        return
    _wait_for_child(sock, path)


def _hand_over(sock: _socket.socket) -> None:
    env = "\0".join(f"{k}={v}" for k, v in os.environ.items()).encode("utf-8", "surrogateescape")
    umask = os.umask(0o022)
    os.umask(umask)
    payload = f"{umask}\0".encode() + env
    header = len(payload).to_bytes(8, "big")
    cwd = os.open(".", os.O_RDONLY | os.O_DIRECTORY)
    try:
        fds = b"".join(fd.to_bytes(4, sys.byteorder, signed=True) for fd in (0, 1, 2, cwd))
        sock.sendmsg([header], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, fds)])
    finally:
        os.close(cwd)
    sock.sendall(payload)


def _lines(sock: _socket.socket) -> Iterator[bytes]:
    buffered = b""
    while True:
        line, sep, rest = buffered.partition(b"\n")
        if sep:
            buffered = rest
            yield line
            continue
        chunk = sock.recv(4096)
        if not chunk:
            return
        buffered += chunk


def _wait_for_child(sock: _socket.socket, path: str, wait: float = HAND_OVER_WAIT) -> None:
    """Relay signals to the child the server forked; exit with its status. Return when the
    server started no agent (then nothing has read git-lfs's pipes yet)."""
    # `_signal`, not `signal`: the latter imports enum and functools, 7 ms of every start.
    import _signal  # type: ignore[import-not-found]  # (no stub: the C half of `signal`)

    lines = _lines(sock)
    sock.settimeout(wait)
    try:
        first = next(lines, b"")
    except TimeoutError:
        # A wedged server: take its socket away, so that it leaves and nobody else waits on it.
        # (A child it forks after this cannot report its pid, and stops before reading.)
        _unlink(path)
        first = b""
    if not first.startswith(b"pid "):
        sock.close()
        return
    sock.settimeout(None)
    pid = int(first[4:])

    def forward(signum: int, frame: object) -> None:
        try:
            os.kill(pid, signum)
        except OSError:
            pass

    for signum in (_signal.SIGTERM, _signal.SIGINT, _signal.SIGHUP):
        _signal.signal(signum, forward)
    last = next(lines, b"")
    status = int(last[5:]) if last.startswith(b"exit ") else 1
    os._exit(status)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _start_server(launcher: str, path: str) -> None:
    try:
        devnull = os.open(os.devnull, os.O_RDWR)
        try:
            os.posix_spawn(
                sys.executable,
                [sys.executable, "-S", launcher, "--warm-server", path],
                os.environ,
                file_actions=[
                    (os.POSIX_SPAWN_DUP2, devnull, 0),
                    (os.POSIX_SPAWN_DUP2, devnull, 1),
                    (os.POSIX_SPAWN_DUP2, devnull, 2),
                ],
                setsid=True,
            )
        finally:
            os.close(devnull)
    except OSError:
        pass


# ------------------------------------------------------------------------------- the server


def serve_forever(path: str) -> None:
    """Accept launchers on `path` until idle; fork an agent for each."""
    import fcntl
    import signal
    import socket
    import struct
    import time

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
    import pickle  # noqa: F401
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
        sigv4,
        sources,
    )


def _fork_agent(conn: socket.socket, listener: socket.socket) -> None:
    import socket

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
    import pickle

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
        import pickle

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
    import signal

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
