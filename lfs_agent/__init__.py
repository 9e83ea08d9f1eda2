"""lfs-s3-agent: a Git LFS custom transfer agent that stores LFS objects in S3.

git-lfs runs `lfs-s3-agent serve` once per transfer worker and talks the custom transfer protocol
on its stdin and stdout; `lfs-s3-agent install [--global]` registers it. The pieces are usable
as a library too: `serve()` runs the protocol loop over any streams and store.
"""

from __future__ import annotations

# Not `typing.TYPE_CHECKING`: importing `typing` costs the launcher (`_launch.py`) 12 ms.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

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
        UntrustedEndpoint,
        WrongSize,
    )
    from .session import serve
    from .store import S3Store, Store
    from .transfer import Transfer

# Loaded on first use: `lfs-s3-agent serve` imports this package on every start (PROTOCOL.md),
# and must not pay for the modules it does not need before answering init.
_HOME = {
    "AgentConfig": "config",
    "serve": "session",
    "S3Store": "store",
    "Store": "store",
    "Transfer": "transfer",
}

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
    "Transfer",
    "TransferError",
    "UntrustedEndpoint",
    "WrongSize",
    "serve",
]


def __getattr__(name: str) -> Any:
    # The rest of __all__ is the error classes.
    module = _HOME.get(name, "errors" if name in __all__ else None)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f".{module}", __name__), name)
