"""What the session needs from an object store, and the S3 implementation of it."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from .config import AgentConfig
from .errors import LocalIOError
from .slots import Slots
from .transfer import Transfer

if TYPE_CHECKING:
    from .s3errors import Where
    from .transfer import S3Api


class Store(Protocol):
    """An object store as the protocol loop sees it. Errors are TransferError subclasses."""

    def upload(
        self,
        oid: str,
        size: int,
        path: Path,
        progress: Callable[[int], None],
        cancel: threading.Event,
    ) -> bool:
        """Store the file at `path` as `oid`; False when the store already had it."""
        ...

    def download(
        self, oid: str, size: int, progress: Callable[[int], None], cancel: threading.Event
    ) -> Path:
        """Fetch `oid` into a new file and return its absolute path (the caller owns it)."""
        ...


class S3Store:
    """LFS objects in an S3 bucket, at `<prefix>/objects/<oid[0:2]>/<oid[2:4]>/<oid>`.

    The client is built on the first transfer, so that answering git-lfs's init costs no
    S3 import (PROTOCOL.md: workers start one after another). By default it is the agent's own
    (`s3http`), with credentials from `environ` and the AWS chain; `publish` passes the
    client it was given (the agent's, or boto3's) through `client_factory`. Each transfer runs
    the shared engines with a `Transfer` built by `transfer()`.
    """

    def __init__(
        self,
        config: AgentConfig,
        lfs_dir: Path,
        *,
        slots: Slots | None = None,
        client_factory: Callable[[AgentConfig, int], S3Api] | None = None,
        objects_dir: Path | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.config = config
        self._tmp_dir = lfs_dir / "tmp"
        # When given, an upload's path must be that object's file in this directory.
        self._objects_dir = objects_dir
        self._slots = slots or Slots(None, config.max_connections)
        self._client_factory = client_factory
        self._environ = os.environ if environ is None else environ
        self._client: S3Api | None = None

    def _client_for(self, where: Where) -> S3Api:
        """The client, built on first use; a failure to build it is this transfer's error."""
        from .s3errors import translate

        try:
            return self.client
        except Exception as exc:
            raise translate(exc, where) from exc

    @property
    def client(self) -> S3Api:
        if self._client is None:
            pool = min(self.config.concurrency, self.config.max_connections)
            if self._client_factory is None:
                from .s3client import make_data_client

                self._client = make_data_client(self.config, pool, self._environ)
            else:
                self._client = self._client_factory(self.config, pool)
        return self._client

    def where(self, action: str, oid: str) -> Where:
        from .s3errors import Where

        endpoint = self.config.endpoint or "AWS S3"
        if self._client is not None:
            endpoint = self._client.meta.endpoint_url
        return Where(action, oid, self.config.bucket, self.config.object_key(oid), endpoint)

    def transfer(
        self, action: str, oid: str, progress: Callable[[int], None], cancel: threading.Event
    ) -> tuple[Transfer, Where]:
        """What the engines need to `action` object `oid`; builds the client on first use.

        Raises:
            TransferError: the client cannot be built (no credentials...).
        """
        client = self._client_for(self.where(action, oid))
        where = self.where(action, oid)  # now naming the client's endpoint
        return Transfer(client, self.config, self._slots, progress, cancel), where

    def upload(
        self,
        oid: str,
        size: int,
        path: Path,
        progress: Callable[[int], None],
        cancel: threading.Event,
    ) -> bool:
        from .resume import state_dir
        from .s3upload import upload

        if self._objects_dir is not None:
            _check_upload_path(oid, path, self._objects_dir)
        t, where = self.transfer("upload", oid, progress, cancel)
        return upload(t, where, size, path, state_dir(self._tmp_dir.parent, "uploads"))

    def download(
        self, oid: str, size: int, progress: Callable[[int], None], cancel: threading.Event
    ) -> Path:
        from .s3tmpfile import download

        t, where = self.transfer("download", oid, progress, cancel)
        return download(t, where, size, self._tmp_dir)


def _check_upload_path(oid: str, path: Path, objects_dir: Path) -> None:
    """git-lfs uploads only `<lfs dir>/objects/<oid[0:2]>/<oid[2:4]>/<oid>`; refuse any other
    path, so that no request can make the agent read and send another file.

    Raises:
        LocalIOError: `path` is not that object's file in the LFS object store.
    """
    expected = Path(os.path.realpath(objects_dir)) / oid[0:2] / oid[2:4]
    if path.is_absolute() and path.name == oid and os.path.realpath(path.parent) == str(expected):
        return
    raise LocalIOError(
        f"refusing to upload '{path}' as {oid}: git-lfs uploads only files of the LFS object "
        f"store, named by their oid under '{objects_dir}'. Nothing was read or sent",
        oid=oid,
    )
