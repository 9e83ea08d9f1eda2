"""Logging for the agent: stderr (git-lfs shows it under GIT_TRACE=1), plus a file when
LFS_S3_AGENT_LOG names one. Never stdout: that is the protocol channel.

The agent's modules log through `get(__name__)` rather than `logging`: importing `logging`
costs about 7 ms, paid by every agent process git-lfs starts (PROTOCOL.md). Until `configure`
is called (by `lfs-s3-agent serve`), records go to the standard `logging` module, imported
then, so a program using the package as a library (the registry) sees them as usual.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import IO, Any

LOG_ENV = "LFS_S3_AGENT_LOG"
LEVEL_ENV = "LFS_S3_AGENT_LOG_LEVEL"
LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}


class _Sink:
    """Where a configured agent writes: stderr and an optional file, at or above `level`."""

    def __init__(self, level: int, streams: list[IO[str]]) -> None:
        self.level = level
        self.streams = streams
        self.prefix = f"lfs-s3-agent[{os.getpid()}]"


_sink: _Sink | None = None


class Logger:
    """The subset of `logging.Logger` the agent uses, with %-style arguments."""

    def __init__(self, name: str) -> None:
        self.name = name

    def _log(self, level: int, msg: str, args: tuple[Any, ...], exc: bool = False) -> None:
        sink = _sink
        if sink is None:
            _library_logger(self.name).log(level, msg, *args, exc_info=exc)
            return
        if level < sink.level:
            return
        text = msg % args if args else msg
        if exc:
            import traceback

            text += "\n" + traceback.format_exc().rstrip()
        line = f"{sink.prefix} {_NAMES[level]} {text}\n"
        for stream in sink.streams:
            try:
                stream.write(line)
                stream.flush()
            except (OSError, ValueError):
                pass

    def debug(self, msg: str, *args: Any) -> None:
        self._log(10, msg, args)

    def info(self, msg: str, *args: Any) -> None:
        self._log(20, msg, args)

    def warning(self, msg: str, *args: Any) -> None:
        self._log(30, msg, args)

    def error(self, msg: str, *args: Any) -> None:
        self._log(40, msg, args)

    def exception(self, msg: str, *args: Any) -> None:
        self._log(40, msg, args, exc=True)


_NAMES = {v: k for k, v in LEVELS.items()}


def _library_logger(name: str) -> Any:
    import logging

    package = logging.getLogger(__name__.partition(".")[0])
    if not package.handlers:
        # A library stays quiet unless its user configures logging.
        package.addHandler(logging.NullHandler())
    return logging.getLogger(name)


def get(name: str) -> Logger:
    return Logger(name)


def configure(environ: Mapping[str, str]) -> None:
    """Write the agent's records to stderr and, if asked, to a file (from now on)."""
    global _sink
    level = LEVELS.get(environ.get(LEVEL_ENV, "INFO").upper(), 20)
    streams: list[IO[str]] = [sys.stderr]
    path = environ.get(LOG_ENV)
    if path:
        try:
            streams.append(open(os.path.expanduser(path), "a", encoding="utf-8"))  # noqa: SIM115
        except OSError as exc:
            print(f"lfs-s3-agent: cannot open log file {path!r}: {exc}", file=sys.stderr)
    _sink = _Sink(level, streams)


def shutdown() -> None:
    """Flush and close the log file (the process is about to leave without finalization)."""
    global _sink
    sink, _sink = _sink, None
    for stream in sink.streams[1:] if sink else []:
        try:
            stream.close()
        except OSError:
            pass
