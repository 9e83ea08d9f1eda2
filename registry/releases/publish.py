"""Publish a registry's versions to S3: content-addressed objects, a manifest per version and an
index per model, in the format of `registry.releases.formats`.

Why: an application that has S3 but no git and no git-lfs resolves a selector with one small
read (the model's index), then reads the version's manifest and fetches the objects it names,
each verifiable by its key. Git stays the source of truth; publishing makes the versions of one
revision readable from S3, under the same bucket and prefix as the LFS objects.

The order of the steps is what keeps the published tree consistent for readers:

1. read what is published (manifests and indexes) and refuse, before writing anything, every
   version whose files differ from its manifest: published versions are immutable;
2. make sure every object the new manifests name is in the store, through the agent's upload
   engine (`lfs_agent.s3upload`): checkpoints from the local LFS store through `S3Store` (hash
   verified while reading, multipart for big files, nothing partial left behind), small files
   from their git blobs in memory (`upload_bytes`: the same conditional PUT, metadata, checksum
   and encryption). An object that is neither in the store nor local stops everything, naming
   the command that fetches it;
3. write the new manifests, and only then the indexes (merged with what they already list), so
   that an index never names a version whose manifest or objects are missing.

The client is any S3 client with boto3's call shapes: the CLI passes the agent's own
(`lfs_agent.s3client.make_data_client`), tests a boto3 client. S3 failures are worded by
`registry.releases.storeerrors`.

Publishing again is a no-op: unchanged versions are neither uploaded nor rewritten, and an index
is written only when it gains a version or its yanks change. Index writes are conditional
(`registry.releases.indexwrite`), so two people publishing the same model at the same moment
both land. Manifests carry each version's record (`registry.records.record`), indexes the yank
list (`yanks.yaml`).

>>> report = publish(GitRepo.discover(Path(".")), parse_root_url("s3://bucket/registry"),
...                  client, lfs_dir=Path(".git/lfs"))                 # doctest: +SKIP
>>> report.published                                                    # doctest: +SKIP
('YOLOX-l/base/1.10',)
"""

from __future__ import annotations

import base64
import functools
import hashlib
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import ValidationError

from lfs_agent.config import AgentConfig, MiB
from lfs_agent.errors import AgentError, TransferError
from lfs_agent.s3errors import Where, error_code
from lfs_agent.s3upload import upload_bytes
from lfs_agent.store import S3Store
from registry.errors import NotFound, RegistryError
from registry.records.record import record_of
from registry.records.yank import load_yanks
from registry.refs import ModelRef, parse_version
from registry.releases.formats import FileEntry, Manifest, ModelIndex, RemoteRoot
from registry.releases.indexwrite import IndexConflict, conditions, write_index
from registry.releases.storeerrors import is_missing, store_error
from registry.repo import layout
from registry.repo.checks import load_settings
from registry.repo.gitrepo import GitRepo
from registry.repo.layout import FileInfo, TreeSource

if TYPE_CHECKING:
    from lfs_agent.transfer import S3Api

__all__ = [
    "ObjectsUnavailable",
    "PublishReport",
    "PublishedVersionChanged",
    "build_manifests",
    "publish",
]

_READERS = 8  # parallel GET/HEAD requests while checking what is published
_BLOB_BATCH = 64 * MiB  # bytes of small git blobs read into memory at once for hashing
_T = TypeVar("_T")
_R = TypeVar("_R")


class PublishedVersionChanged(RegistryError):
    """Versions whose files differ from their published manifests; nothing was written."""

    def __init__(self, message: str, *, refs: Sequence[str]) -> None:
        super().__init__(message)
        self.refs = tuple(refs)


class ObjectsUnavailable(RegistryError):
    """Objects that are neither in the store nor local (`oids`); nothing was written."""

    def __init__(self, message: str, *, oids: Sequence[str]) -> None:
        super().__init__(message)
        self.oids = tuple(oids)


@dataclass(frozen=True)
class PublishReport:
    """What `publish` did."""

    published: tuple[str, ...]
    """refs newly published (manifest written), e.g. `"YOLOX-l/base/1.10"`"""
    unchanged: tuple[str, ...]
    """refs already published with the same files (nothing written for them)"""
    uploaded_objects: int
    """objects uploaded to the store (those it already held are not counted)"""
    uploaded_bytes: int


@dataclass
class _Object:
    """One object a manifest names, and where its bytes are."""

    oid: str
    size: int
    paths: list[str] = field(default_factory=list)
    """the registry paths holding it (for messages)"""
    blob: str | None = None
    """a git blob with its content (a non-LFS file); None: in the local LFS store"""


@dataclass(frozen=True)
class _Plan:
    manifests: dict[ModelRef, Manifest]
    objects: dict[str, _Object]


def build_manifests(source: TreeSource) -> dict[ModelRef, Manifest]:
    """The manifest of every valid version at `source`'s revision, in version order.

    LFS files are listed with their pointer's oid and size, other files with the SHA-256 and
    size of their content; `commit` is the last commit that changed the version folder.
    Folders whose names break the grammar are not versions and are left out (`check` reports
    them).

    Raises:
        RegistryError: a file name or LFS pointer that cannot be published.
    """
    return _collect(source).manifests


def publish(
    repo: GitRepo,
    remote: RemoteRoot,
    client: S3Api,
    *,
    lfs_dir: Path,
    rev: str = "HEAD",
    progress: Callable[[int], None] | None = None,
    settings: AgentConfig | None = None,
) -> PublishReport:
    """Publish every version of `repo` at `rev` (only `remote.model`'s, when it names one).

    Args:
        repo: the registry repository (a checkout or a bare repository).
        remote: the bucket and prefix (those of the LFS objects).
        client: an S3 client for the store (the agent's own, or boto3); it is used from
            several threads.
        lfs_dir: the local LFS store (`.git/lfs`), where the checkpoints' objects are.
        rev: the revision to publish.
        progress: called with a number of bytes as they are uploaded (negative when an upload
            rewinds for a retry), from worker threads.
        settings: upload settings (storage class, encryption, checksum, part sizes, concurrency);
            their bucket and prefix are replaced by `remote`'s. Default: the agent's defaults.

    Raises:
        PublishedVersionChanged: a published version's files differ from `rev`'s.
        ObjectsUnavailable: an object is neither in the store nor in `lfs_dir`.
        NotFound: `remote` names a model that has no versions at `rev`.
        RegistryError: git or S3 failed; the message says what to do.
    """
    config = (settings or AgentConfig(bucket=remote.bucket))._replace(
        bucket=remote.bucket, prefix=remote.prefix
    )
    source = TreeSource(repo, rev)
    plan = _collect(source, remote.model)
    if remote.model is not None and not plan.manifests:
        available = layout.models(source)
        raise NotFound(
            f"model '{remote.model}' has no versions at {rev} in '{repo.root}', so there is "
            f"nothing to publish to {remote}; models there: {', '.join(available) or 'none'}",
            wanted=remote.model,
            available=available,
        )
    reader = _Reader(client, remote)

    # 1. What is published; refuse any change before writing anything.
    published = dict(zip(plan.manifests, _parallel(reader.manifest, plan.manifests), strict=True))
    _refuse_changes(plan.manifests, published, remote, rev)
    new = [ref for ref in plan.manifests if published[ref] is None]
    unchanged = [ref for ref in plan.manifests if published[ref] is not None]
    models = sorted({ref.model for ref in plan.manifests})
    current = dict(zip(models, _parallel(reader.index, models), strict=True))
    yanks = load_yanks(source)
    mine = {model: [r for r in plan.manifests if r.model == model] for model in models}

    def merged(model: str, index: ModelIndex | None) -> ModelIndex:
        return _merge(model, index, mine[model], yanks.for_model(model))

    # 2. Every object the new manifests name, in the store.
    needed = {e.oid: plan.objects[e.oid] for ref in new for e in plan.manifests[ref].files}
    present = _parallel(reader.has_object, needed.values())
    missing = [obj for obj, there in zip(needed.values(), present, strict=True) if not there]
    uploader = _Uploader(client, config, repo, lfs_dir, progress or _ignore)
    uploader.check_local(missing, remote)
    uploaded = uploader.upload_all(missing)

    # 3. Manifests, then indexes.
    writer = _Writer(client, config, remote)
    for ref in new:
        writer.put_json(remote.manifest_key(ref), _dump(plan.manifests[ref]))
    for model in models:
        if merged(model, current[model]) != current[model]:
            writer.put_index(model, reader, functools.partial(merged, model), mine[model])
    return PublishReport(
        published=tuple(str(ref) for ref in new),
        unchanged=tuple(str(ref) for ref in unchanged),
        uploaded_objects=len(uploaded),
        uploaded_bytes=sum(obj.size for obj in uploaded),
    )


# --------------------------------------------------------------------------- manifests from git


def _collect(source: TreeSource, model: str | None = None) -> _Plan:
    found = layout.scan(source)
    folders: dict[ModelRef, str] = {}
    for name, scopes in sorted(found.versions.items()):
        if model is not None and name != model:
            continue
        for scope, versions in sorted(scopes.items()):
            for version in sorted(versions):
                ref = ModelRef(model=name, scope=scope, version=version)
                folders[ref] = f"{name}/{scope}/{versions[version]}"
    listed = {ref: source.walk_files(path) for ref, path in folders.items()}
    odd = [f for found in listed.values() for f in found if f.kind != "file"]
    if odd:
        raise RegistryError(
            "cannot publish versions holding anything but regular files: "
            + "; ".join(f"{f.path} is {f.describe()}" for f in odd)
            + f" (at {source.rev}). Replace each with the file itself and commit "
            "('model-registry check' lists them)"
        )
    settings = load_settings(source)
    plain = {source.object_id(f.path): f.size for fs in listed.values() for f in fs if not f.lfs}
    hashes = _hash_blobs(source.repo, plain)

    manifests: dict[ModelRef, Manifest] = {}
    objects: dict[str, _Object] = {}
    for ref, files in listed.items():
        entries = []
        for info in files:
            if info.lfs is not None:
                blob, oid, size = None, info.lfs.oid, info.lfs.size
            else:
                blob = source.object_id(info.path)
                oid, size = hashes[blob], info.size
            entries.append(_entry(ref, info, oid, size))
            obj = objects.setdefault(oid, _Object(oid, size))
            obj.paths.append(info.path)
            obj.blob = obj.blob or blob
        commit = source.repo.last_commit(folders[ref], source.commit)
        record = record_of(source, ref, settings.metrics)
        manifests[ref] = Manifest(ref=str(ref), commit=commit, files=tuple(entries), record=record)
    return _Plan(manifests, objects)


def _hash_blobs(repo: GitRepo, sizes: Mapping[str, int]) -> dict[str, str]:
    """SHA-256 of each git blob, read in batches of at most `_BLOB_BATCH` bytes."""
    hashes: dict[str, str] = {}
    batch: list[str] = []
    total = 0
    for blob, size in [*sizes.items(), ("", 0)]:
        if batch and (not blob or total + size > _BLOB_BATCH):
            for oid, data in repo.read_blobs(batch).items():
                hashes[oid] = hashlib.sha256(data).hexdigest()
            batch, total = [], 0
        if blob:
            batch.append(blob)
            total += size
    return hashes


def _entry(ref: ModelRef, info: FileInfo, oid: str, size: int) -> FileEntry:
    if info.lfs is not None and info.lfs.extensions:
        raise RegistryError(
            f"cannot publish {info.path}: its LFS pointer uses git-lfs extensions "
            f"({', '.join(k for k, _ in info.lfs.extensions)}), so the stored object is not the "
            "file's content. Commit it without the extension, as a new version"
        )
    try:
        return FileEntry(name=info.name, oid=oid, size=size)
    except ValidationError as exc:
        reason = "; ".join(str(e["msg"]) for e in exc.errors())
        raise RegistryError(
            f"cannot publish {ref}: the file '{info.path}' cannot be named in a manifest "
            f"({reason}). Rename it in a new version"
        ) from None


# --------------------------------------------------------------------------- reading S3


def _ignore(n: int) -> None:
    del n


def _parallel(function: Callable[[_T], _R], items: Iterable[_T]) -> list[_R]:
    work = list(items)
    if len(work) <= 1:
        return [function(item) for item in work]
    with ThreadPoolExecutor(min(_READERS, len(work)), thread_name_prefix="publish-read") as pool:
        return list(pool.map(function, work))


def _where(client: S3Api, action: str, bucket: str, key: str, oid: str = "") -> Where:
    return Where(action, oid, bucket, key, str(client.meta.endpoint_url))


_CONFLICT = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict", "409"})


class _Reader:
    """GETs and HEADs against the published tree; absent keys are None/False."""

    def __init__(self, client: S3Api, remote: RemoteRoot) -> None:
        self.client = client
        self.remote = remote

    def _url(self, key: str) -> str:
        return f"s3://{self.remote.bucket}/{key}"

    def _get(self, key: str) -> bytes | None:
        return self._get_tagged(key)[0]

    def _get_tagged(self, key: str) -> tuple[bytes | None, str | None]:
        """The object's bytes and ETag; (None, None) when there is none."""
        try:
            reply = self.client.get_object(Bucket=self.remote.bucket, Key=key)
            body = reply["Body"]
            try:
                return bytes(body.read()), reply.get("ETag")
            finally:
                body.close()
        except Exception as exc:
            where = _where(self.client, "read", self.remote.bucket, key)
            if is_missing(exc, where):
                return None, None
            raise store_error(exc, where) from exc

    def manifest(self, ref: ModelRef) -> Manifest | None:
        key = self.remote.manifest_key(ref)
        data = self._get(key)
        if data is None:
            return None
        try:
            manifest = Manifest.model_validate_json(data)
        except ValidationError as exc:
            raise RegistryError(
                f"the published manifest {self._url(key)} is not a valid manifest ({exc}). "
                "It was not written by this tool, or by a newer one; look at it and fix or "
                "remove it by hand before publishing"
            ) from None
        if manifest.ref != str(ref):
            raise RegistryError(
                f"the published manifest {self._url(key)} is for '{manifest.ref}', not '{ref}'; "
                "fix or remove it by hand before publishing"
            )
        return manifest

    def index(self, model: str) -> ModelIndex | None:
        return self.tagged_index(model)[0]

    def tagged_index(self, model: str) -> tuple[ModelIndex | None, str | None]:
        key = self.remote.index_key(model)
        data, etag = self._get_tagged(key)
        if data is None:
            return None, None
        try:
            index = ModelIndex.model_validate_json(data)
            if index.model != model:
                raise ValueError(f"it is the index of '{index.model}'")
            for scope, versions in index.versions.items():
                for version in versions:
                    parse_version(scope, version)
        except (ValidationError, ValueError) as exc:
            raise RegistryError(
                f"the published index {self._url(key)} is not a valid index of '{model}' "
                f"({exc}). Look at it and fix or remove it by hand (publishing rebuilds it from "
                "the versions it publishes, and the other versions' manifests stay in place)"
            ) from None
        return index, etag

    def has_object(self, obj: _Object) -> bool:
        key = self.remote.object_key(obj.oid)
        try:
            head = self.client.head_object(Bucket=self.remote.bucket, Key=key)
        except Exception as exc:
            where = _where(self.client, "check", self.remote.bucket, key, obj.oid)
            if is_missing(exc, where):
                return False
            raise store_error(exc, where, what=obj.paths[0]) from exc
        return head.get("ContentLength") == obj.size


def _refuse_changes(
    new: Mapping[ModelRef, Manifest],
    published: Mapping[ModelRef, Manifest | None],
    remote: RemoteRoot,
    rev: str,
) -> None:
    changed: list[str] = []
    lines: list[str] = []
    for ref, manifest in new.items():
        old = published[ref]
        if old is None or old.same_content(manifest):
            continue
        changed.append(str(ref))
        was = {f.name: f for f in old.files}
        now = {f.name: f for f in manifest.files}
        diffs = [f"{n} changed" for n in sorted(was.keys() & now.keys()) if was[n] != now[n]]
        diffs += [f"{n} added" for n in sorted(now.keys() - was.keys())]
        diffs += [f"{n} removed" for n in sorted(was.keys() - now.keys())]
        origin = f" (published from commit {old.commit[:12]})" if old.commit else ""
        lines.append(f"  {ref}{origin}: {', '.join(diffs)}")
    if changed:
        raise PublishedVersionChanged(
            f"cannot publish {rev}: published versions are immutable, and "
            f"{len(changed)} version{'s' if len(changed) > 1 else ''} at {rev} differ from "
            f"what {remote} holds:\n"
            + "\n".join(lines)
            + "\nRegister the new files as a new version instead ('model-registry next "
            "MODEL/SCOPE' names the next free one, 'model-registry add' registers it) and "
            "restore these folders to their published content. Nothing was published.",
            refs=changed,
        )


def _merge(
    model: str, current: ModelIndex | None, refs: Iterable[ModelRef], yanked: Mapping[str, str]
) -> ModelIndex:
    """`current`'s versions plus `refs`, by scope (sorted), each scope in version order; the
    yanks are the repository's (git is the source of truth, so an unyank removes one)."""
    by_scope: dict[str, set[str]] = {}
    for scope, versions in (current.versions if current else {}).items():
        by_scope.setdefault(scope, set()).update(versions)
    for ref in refs:
        by_scope.setdefault(ref.scope, set()).add(str(ref.version))
    return ModelIndex(
        model=model,
        versions={
            scope: _in_version_order(scope, versions)
            for scope, versions in sorted(by_scope.items())
        },
        yanked=dict(yanked),
    )


def _in_version_order(scope: str, versions: Iterable[str]) -> list[str]:
    parsed = {version: parse_version(scope, version) for version in versions}
    return sorted(parsed, key=parsed.__getitem__)


# --------------------------------------------------------------------------- writing S3


def _b64_sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")


def _encryption(config: AgentConfig) -> dict[str, Any]:
    args: dict[str, Any] = {}
    if config.sse:
        args["ServerSideEncryption"] = config.sse
    if config.sse_kms_key_id:
        args["SSEKMSKeyId"] = config.sse_kms_key_id
    return args


class _Uploader:
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

    def check_local(self, missing: Sequence[_Object], remote: RemoteRoot) -> None:
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

    def upload_all(self, missing: Sequence[_Object]) -> list[_Object]:
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

    def _upload(self, obj: _Object, cancel: threading.Event) -> bool:
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


def _dump(document: Manifest | ModelIndex) -> str:
    """The JSON of a manifest or index; an empty record or yank list is left out, so that
    readers from before they existed still read what has none."""
    if isinstance(document, Manifest):
        empty = {"record"} if document.record is None else set()
    else:
        empty = set() if document.yanked else {"yanked"}
    return document.model_dump_json(indent=2, exclude=empty)


def _sent(future: Future[bool]) -> bool:
    return future.result()


class _Writer:
    """PUTs the release files (manifests, indexes)."""

    def __init__(self, client: S3Api, config: AgentConfig, remote: RemoteRoot) -> None:
        self.client = client
        self.config = config
        self.remote = remote

    def put_index(
        self,
        model: str,
        reader: _Reader,
        update: Callable[[ModelIndex | None], ModelIndex],
        refs: Sequence[ModelRef],
    ) -> None:
        """Write the model's index conditionally, merging again on a conflict."""
        key = self.remote.index_key(model)
        wanted = [(ref.scope, str(ref.version)) for ref in refs]
        write_index(
            f"s3://{self.remote.bucket}/{key}",
            lambda: reader.tagged_index(model),
            lambda index, etag: self.put_json(key, _dump(index), conditions(etag)),
            update,
            lambda back: all(v in back.versions.get(scope, ()) for scope, v in wanted),
        )

    def put_json(self, key: str, text: str, condition: Mapping[str, str] | None = None) -> None:
        body = (text + "\n").encode()
        args: dict[str, Any] = {**_encryption(self.config), **(condition or {})}
        if self.config.checksum == "sha256":
            args["ChecksumSHA256"] = _b64_sha256(body)
        try:
            self.client.put_object(
                Bucket=self.remote.bucket,
                Key=key,
                Body=body,
                ContentLength=len(body),
                ContentType="application/json",
                **args,
            )
        except Exception as exc:
            if error_code(exc) in _CONFLICT:
                raise IndexConflict(f"s3://{self.remote.bucket}/{key} changed") from exc
            where = _where(self.client, "write", self.remote.bucket, key)
            raise store_error(exc, where) from exc
