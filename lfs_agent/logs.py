"""Logging for the agent process: stderr (git-lfs shows it under GIT_TRACE=1), plus a file when
LFS_S3_AGENT_LOG names one. Never stdout: that is the protocol channel."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping

LOG_ENV = "LFS_S3_AGENT_LOG"
LEVEL_ENV = "LFS_S3_AGENT_LOG_LEVEL"


def configure(environ: Mapping[str, str]) -> None:
    """Send the package's log records to stderr and, if asked, to a file."""
    level = getattr(logging, environ.get(LEVEL_ENV, "INFO").upper(), logging.INFO)
    fmt = logging.Formatter(f"lfs-s3-agent[{os.getpid()}] %(levelname)s %(message)s")
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    path = environ.get(LOG_ENV)
    if path:
        try:
            handlers.append(logging.FileHandler(os.path.expanduser(path), encoding="utf-8"))
        except OSError as exc:
            print(f"lfs-s3-agent: cannot open log file {path!r}: {exc}", file=sys.stderr)
    for handler in handlers:
        handler.setFormatter(fmt)
        handler.setLevel(level)
    root = logging.getLogger()
    root.handlers = handlers
    root.setLevel(level)
    # Library chatter (botocore logs request details at DEBUG) stays out unless asked for.
    for noisy in ("botocore", "boto3", "urllib3", "s3transfer"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
