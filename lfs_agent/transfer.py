"""What every transfer of one object carries: the S3 client, the settings, the shared connection
slots, where progress goes and what cancels it.

The upload and download engines (`s3upload`, `s3download`, `s3resume`) take a `Transfer` plus
what is specific to the call (the object's location and size, a file or a sink). `S3Store`
builds one per object for git-lfs; the registry builds its own for `publish` and remote
`resolve`. A named tuple: cheap to define at the agent's start-up, `_replace` for a variant.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple, TypeAlias

from .config import AgentConfig
from .slots import Slots

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

    from .s3http import S3Http

    # The engines make the same calls, with boto3's names and shapes, on either client.
    S3Api: TypeAlias = S3Client | S3Http


class Transfer(NamedTuple):
    """The client and settings one object moves with, its progress and its cancellation."""

    client: S3Api
    config: AgentConfig
    slots: Slots
    progress: Callable[[int], None]
    """called with a number of bytes as they move (negative when a retry rewinds)"""
    cancel: threading.Event
    """set to stop the transfer (it raises Interrupted)"""
