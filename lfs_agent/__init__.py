"""lfs-s3-agent: a Git LFS custom transfer agent that stores LFS objects in S3.

git-lfs runs `lfs-s3-agent serve` once per transfer worker and talks the custom transfer protocol
on its stdin and stdout; `lfs-s3-agent install [--global]` registers it. The pieces are usable
as a library too: `serve()` runs the protocol loop over any streams and store.
"""

from __future__ import annotations

import logging

from .config import AgentConfig
from .errors import (
    AccessDenied,
    AgentError,
    ConfigError,
    CorruptObject,
    Interrupted,
    LocalIOError,
    ObjectNotFound,
    ProtocolError,
    StorageUnavailable,
    StoreRejected,
    TransferError,
)
from .session import serve
from .store import S3Store, Store

__all__ = [
    "AccessDenied",
    "AgentConfig",
    "AgentError",
    "ConfigError",
    "CorruptObject",
    "Interrupted",
    "LocalIOError",
    "ObjectNotFound",
    "ProtocolError",
    "S3Store",
    "StorageUnavailable",
    "Store",
    "StoreRejected",
    "TransferError",
    "serve",
]

logging.getLogger(__name__).addHandler(logging.NullHandler())
