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

    from .config import AgentConfig as AgentConfig
    from .errors import (
        AccessDenied as AccessDenied,
    )
    from .errors import (
        AgentError as AgentError,
    )
    from .errors import (
        ConfigError as ConfigError,
    )
    from .errors import (
        CorruptObject as CorruptObject,
    )
    from .errors import (
        Interrupted as Interrupted,
    )
    from .errors import (
        LocalIOError as LocalIOError,
    )
    from .errors import (
        ObjectNotFound as ObjectNotFound,
    )
    from .errors import (
        ProtocolError as ProtocolError,
    )
    from .errors import (
        StorageUnavailable as StorageUnavailable,
    )
    from .errors import (
        StoreRejected as StoreRejected,
    )
    from .errors import (
        TransferError as TransferError,
    )
    from .session import serve as serve
    from .store import S3Store as S3Store
    from .store import Store as Store

# Loaded on first use: `lfs-s3-agent serve` imports this package on every start (PROTOCOL.md),
# and must not pay for the modules it does not need before answering init.
_HOME = {
    "AgentConfig": "config",
    "serve": "session",
    "S3Store": "store",
    "Store": "store",
    **{
        name: "errors"
        for name in (
            "AccessDenied",
            "AgentError",
            "ConfigError",
            "CorruptObject",
            "Interrupted",
            "LocalIOError",
            "ObjectNotFound",
            "ProtocolError",
            "StorageUnavailable",
            "StoreRejected",
            "TransferError",
        )
    },
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
    "TransferError",
    "serve",
]


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f".{module}", __name__), name)
