"""The composition root of `lfs-s3-agent serve`: real streams, signals, settings and S3."""

from __future__ import annotations

import io
import os
import signal
import sys
import threading
from types import FrameType
from typing import NoReturn

from . import logs, sources
from .errors import Interrupted
from .memo import Memo
from .protocol import Init
from .session import serve
from .slots import Slots
from .store import S3Store


def connect(init: Init, memo: Memo | None = None) -> S3Store:
    """Read the settings for this repository and build its store (no boto3 import yet).

    Raises:
        ConfigError: the settings are missing or invalid.
    """
    loaded = sources.load(os.environ, operation=init.operation, remote=init.remote, memo=memo)
    slots = Slots(loaded.repo.common_dir / "lfs-s3" / "slots", loaded.config.max_connections)
    objects = loaded.lfs_dir / "objects"
    return S3Store(
        loaded.config, loaded.lfs_dir, slots=slots, objects_dir=objects, environ=os.environ
    )


def run(memo: Memo | None = None) -> int:
    """Serve git-lfs on this process's stdin and stdout; `memo`: settings a warm server
    remembers (`memo.py`)."""
    logs.configure(os.environ)
    stdin = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="surrogateescape")
    stdout = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8", newline="\n")
    # Whatever else prints (a library, a stray debug line) must not reach the protocol channel.
    sys.stdout = sys.stderr
    cancel = threading.Event()

    def interrupted(signum: int, frame: FrameType | None) -> None:
        cancel.set()
        raise Interrupted(f"received {signal.Signals(signum).name}")

    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGINT, interrupted)
    return serve(stdin, stdout, lambda init: connect(init, memo), cancel=cancel)


def exit_now(status: int) -> NoReturn:
    """Leave at once, without interpreter finalization.

    The stdin reader is a daemon thread blocked in read() on stdin's buffer; finalization would
    try to take that buffer's lock and abort the process ("could not acquire lock for
    <stdin> at interpreter shutdown"). Transfers have cleaned up by now; flush and go.
    """
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    logs.get(__name__).info("exit %d, peak RSS %.1f MiB", status, peak)
    logs.shutdown()
    try:
        sys.stderr.flush()
    except OSError:
        pass
    os._exit(status)
