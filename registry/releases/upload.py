"""Uploading the objects a publish needs, through the agent's upload engine: LFS ones from the
local LFS store (`S3Store`), git blobs from memory."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import TYPE_CHECKING

from lfs_agent.config import AgentConfig
from lfs_agent.errors import AgentError, TransferError
from lfs_agent.s3upload import upload_bytes
from lfs_agent.store import S3Store
from registry.errors import ObjectsUnavailable, RegistryError
from registry.releases.collect import PublishObject
from registry.releases.formats import RemoteRoot
from registry.releases.storeerrors import store_error
from registry.repo.gitrepo import GitRepo

if TYPE_CHECKING:
    from lfs_agent.transfer import S3Api


class Uploader:
    """Puts missing objects in the store through the agent's upload engine: LFS ones from the
    local LFS store (`S3Store`), git blobs from memory."""

    def __init__(
        self,
        client: S3Api,
        config: AgentConfig,
        repo: GitRepo,
        lfs_dir: Path,
        progress: Callable[[int], None],
    ) -> None:
        self.client = client
        self.config = config
        self.repo = repo
        self.lfs_dir = lfs_dir
        self.progress = progress
        self.store = S3Store(config, lfs_dir, client_factory=lambda cfg, pool: client)

    def local_path(self, oid: str) -> Path:
        """Where git-lfs keeps an object: `<lfs_dir>/objects/<oid[0:2]>/<oid[2:4]>/<oid>`."""
        return self.lfs_dir / "objects" / oid[0:2] / oid[2:4] / oid

    def check_local(self, missing: Sequence[PublishObject], remote: RemoteRoot) -> None:
        """Raise ObjectsUnavailable unless every LFS object in `missing` is in `lfs_dir`."""
        lines: list[str] = []
        oids: list[str] = []
        for obj in missing:
            if obj.blob is not None:
                continue
            path = self.local_path(obj.oid)
            try:
                size: int | None = path.stat().st_size
            except OSError:
                size = None
            if size == obj.size:
                continue
            oids.append(obj.oid)
            state = "absent" if size is None else f"damaged: {size} bytes, run 'git lfs fsck'"
            names = ", ".join(obj.paths[:3]) + (" ..." if obj.paths[3:] else "")
            lines.append(f"  {names}: oid {obj.oid}, {obj.size} bytes (local copy {state})")
        if oids:
            raise ObjectsUnavailable(
                f"cannot publish: {len(oids)} LFS object{'s are' if len(oids) > 1 else ' is'} "
                f"neither in {remote} nor in the local LFS store '{self.lfs_dir}':\n"
                + "\n".join(lines)
                + "\nFetch them into this clone with 'git lfs fetch --all' (from a remote that "
                "has them), or push them from a clone that has them ('git lfs push --all "
                "<remote>'), then publish again. Nothing was published.",
                oids=oids,
            )

    def upload_all(self, missing: Sequence[PublishObject]) -> list[PublishObject]:
        """Upload `missing` in parallel; the objects that were actually sent."""
        if not missing:
            return []
        cancel = threading.Event()
        with ThreadPoolExecutor(
            min(self.config.concurrency, len(missing)), thread_name_prefix="publish-upload"
        ) as pool:
            futures = {pool.submit(self._upload, obj, cancel): obj for obj in missing}
            try:
                done, _ = wait(futures, return_when=FIRST_EXCEPTION)
                failed = [f for f in done if f.exception() is not None]
                if failed:
                    cancel.set()
                    wait(futures)
                    failed[0].result()
            except BaseException:
                cancel.set()
                raise
        return [obj for future, obj in futures.items() if _sent(future)]

    def _upload(self, obj: PublishObject, cancel: threading.Event) -> bool:
        t, where = self.store.transfer("upload", obj.oid, self.progress, cancel)
        try:
            if obj.blob is None:
                path = self.local_path(obj.oid)
                return self.store.upload(obj.oid, obj.size, path, self.progress, cancel)
            data = self.repo.read_blobs([obj.blob])[obj.blob]
            return upload_bytes(t, where, data, name=f"the git blob of {obj.paths[0]}")
        except TransferError as exc:
            raise store_error(exc, where, what=obj.paths[0]) from exc
        except AgentError as exc:  # cancelled: another upload failed, and that one is raised
            raise RegistryError(f"cannot upload {obj.paths[0]} (oid {obj.oid}): {exc}") from exc


def _sent(future: Future[bool]) -> bool:
    return future.result()
