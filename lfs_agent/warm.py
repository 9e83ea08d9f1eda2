"""A warm agent: one background process per user that forks a ready agent for each git-lfs start.

git-lfs starts the agent once per transfer queue, and some commands (`git archive`, a smudge
outside delayed checkout) make one queue per object (PROTOCOL.md), so every object pays for an
interpreter and its imports. Here the launcher (`_launch.py`, `python -S`, this module and
`socket` only) hands its stdin, stdout, stderr and working directory, with its environment and
umask, to a warm server over a Unix socket; the server forks a child that has every module of
the serve and transfer path imported already, and that child speaks to git-lfs on those very
pipes. The launcher waits for the child's exit status, passes on SIGTERM, SIGINT and SIGHUP,
and exits with that status. This module is the launcher's side and what both sides share (the
socket's place and name); the server is `warm_server.py`.

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
    from collections.abc import Iterator

ENV_SWITCH = "LFS_S3_AGENT_WARM"
# How long a launcher waits for the server to start its agent before serving git-lfs itself.
HAND_OVER_WAIT = 20.0
_PACKAGE = os.path.dirname(os.path.abspath(__file__))


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
