"""Resolve published versions from S3 alone: no git, no git-lfs, no clone of the registry.

`resolve("base/1", root="s3://bucket/registry/YOLOX-l")` reads the model's index (one small GET),
picks the version, reads its manifest, and makes sure every file is in the local cache, each
verified by SHA-256 and size before it becomes visible (`registry.cache`). The files are
exposed by name in a per-version folder of the cache.

- A cached exact version resolves with no network call at all.
- Offline (`offline=True` or MODEL_REGISTRY_OFFLINE=1), selectors are answered from the cached
  index, and anything not cached is an error that names it.
- Objects come through the agent's download engine (`registry.releases.s3fetch`): parallel
  ranged GETs, planned lazily once the store's first reply confirmed the size the manifest
  gives, hashed as they arrive. Interrupted downloads resume from the bytes already on disk
  (the cache keeps the partial).
- The client is the agent's own (`lfs_agent.s3http`, deadlines from `LFS_S3_*`), unless
  `client_factory` gives another (a boto3 client works too). S3 failures are worded by
  `registry.releases.storeerrors`.
- What the store says is validated before it is acted on (`registry.releases.formats`), and a
  manifest enters the cache only once its version folder was built from it, an index only once
  it parsed: a bad one is never cached, so repairing the store repairs every client. A cached
  copy that no longer validates (written by an older version) is dropped and read again.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, TypeVar

from pydantic import ValidationError

from lfs_agent.config import AgentConfig
from lfs_agent.s3errors import Where
from lfs_agent.slots import Slots
from lfs_agent.transfer import Transfer
from registry import hints
from registry.cache import Cache
from registry.cache.partial import PartialFile
from registry.errors import CacheError, InvalidReference, NotFound, OfflineMiss, RegistryError
from registry.records.yank import scope_yanks
from registry.refs import ModelRef, Version, parse_version
from registry.releases import s3fetch
from registry.releases.formats import MAX_META_SIZE, FileEntry, Manifest, ModelIndex, RemoteRoot
from registry.releases.storeerrors import is_missing, store_error
from registry.repo.pointer import LfsPointer
from registry.resolved import ResolvedModel
from registry.selector import Exact, Selector, parse_selector, pick_version, skipped

if TYPE_CHECKING:
    from lfs_agent.transfer import S3Api

OFFLINE_ENV = hints.OFFLINE_ENV


def is_offline(offline: bool | None, environ: Mapping[str, str] = os.environ) -> bool:
    if offline is not None:
        return offline
    return hints.offline_source(None, given_as="", environ=environ) is not None


class RemoteRegistry:
    """A registry's published releases in S3, read through a local cache."""

    def __init__(
        self,
        root: RemoteRoot,
        cache: Cache,
        *,
        client_factory: Callable[[], S3Api] | None = None,
        offline: bool = False,
        offline_source: str = "offline=True",
        progress: Callable[[int], None] | None = None,
        transfer: s3fetch.TransferSettings = s3fetch.DEFAULT_SETTINGS,
        environ: Mapping[str, str] = os.environ,
    ) -> None:
        """`client_factory`: the S3 client to use (default: the agent's own, from the AWS chain
        in `environ`); `environ` also gives the deadlines (`LFS_S3_READ_TIMEOUT`...)."""
        self.root = root
        self.transfer = transfer
        self.cache = cache
        self.offline = offline
        self.offline_source = offline_source  # what set offline mode, for the hints
        self.progress = progress
        self._client_factory = client_factory
        self._environ = environ
        self._client: S3Api | None = None
        self._config: AgentConfig | None = None
        self._slots = Slots(None, transfer.concurrency)
        self._fresh: dict[str, bytes] = {}  # manifests read from the store, cached once used

    def close(self) -> None:
        """Close the connections of the client this built (a factory's client is its caller's)."""
        if self._client is not None and self._client_factory is None:
            self._client.close()
        self._client = None

    def __enter__(self) -> RemoteRegistry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def config(self) -> AgentConfig:
        """The settings objects are fetched with (built on first use)."""
        if self._config is None:
            self._config = s3fetch.registry_config(self.root.bucket, self.transfer, self._environ)
        return self._config

    @property
    def client(self) -> S3Api:
        if self.offline:
            raise OfflineMiss(f"offline: not reading {self.root}")  # a bug if reached
        if self._client is None:
            try:
                if self._client_factory is None:
                    self._client = s3fetch.default_client(self.config, self._environ)
                else:
                    self._client = self._client_factory()
            except RegistryError:
                raise
            except Exception as exc:
                raise store_error(exc, self._where("read", str(self.root))) from exc
        return self._client

    def _where(self, action: str, key: str, oid: str = "") -> Where:
        endpoint = "AWS S3" if self._client is None else str(self._client.meta.endpoint_url)
        return Where(action, oid, self.root.bucket, key, endpoint)

    def _meta_key(self, key: str) -> str:
        return f"{self.root.bucket}/{key}"

    def _get(self, key: str) -> bytes | None:
        """An S3 object's bytes, or None when it does not exist."""
        client = self.client
        where = self._where("read", key)
        try:
            response = client.get_object(Bucket=self.root.bucket, Key=key)
            body = response["Body"]
            try:
                if response.get("ContentLength", 0) > MAX_META_SIZE:
                    data = b""
                    size = response["ContentLength"]
                else:
                    data = bytes(body.read(MAX_META_SIZE + 1))
                    size = len(data)
            finally:
                body.close()
        except Exception as exc:
            if is_missing(exc, where):
                return None
            raise store_error(exc, where) from exc
        if size > MAX_META_SIZE:
            raise RegistryError(
                f"{where.url} is {size:,} bytes or more, over the {MAX_META_SIZE:,} a manifest "
                "or index may have: it was not written by 'model-registry publish'. Publish the "
                "version again, or check the root_url"
            )
        return data

    def index(self, model: str) -> ModelIndex:
        key = self.root.index_key(model)
        if self.offline:
            data = self.cache.read_meta(self._meta_key(key))
            if data is None:
                raise OfflineMiss(
                    f"offline, and no index of {model} from {self.root} is cached: "
                    + hints.go_online(self.offline_source)
                )
        else:
            data = self._get(key)
            if data is None:
                raise NotFound(
                    f"model {model} is not published at {self.root}: no {key}. Run "
                    "'model-registry publish' in the registry, or check the root_url",
                    wanted=model,
                )
            index = _parse(ModelIndex, data, key)
            _check_model(index, model, key)
            # Kept for offline use only: a read-only cache still serves what it holds.
            with contextlib.suppress(CacheError):
                self.cache.write_meta(self._meta_key(key), data)
            return index
        try:
            index = _parse(ModelIndex, data, key)
            _check_model(index, model, key)
        except RegistryError:
            self.cache.drop_meta(self._meta_key(key))
            raise
        return index

    def manifest(self, ref: ModelRef) -> Manifest:
        key = self.root.manifest_key(ref)
        cached = self._cached_manifest(ref)
        if cached is None:
            if self.offline:
                raise OfflineMiss(
                    f"offline, and {ref} is not cached: " + hints.go_online(self.offline_source)
                )
            data = self._get(key)
            if data is None:
                raise NotFound(
                    f"{ref} is listed but its manifest {key} is missing: publish "
                    "it again ('model-registry publish')",
                    wanted=str(ref),
                )
            manifest = _parse(Manifest, data, key)
            _check_ref(manifest, ref, key)
            # Published manifests are immutable, so a cached copy never goes stale; it is
            # cached once its version was built from it (`_materialize`), never before.
            self._fresh[key] = data
            return manifest
        return cached

    def _cached_manifest(self, ref: ModelRef) -> Manifest | None:
        """The cached manifest of `ref`; None when there is none or it no longer validates
        (then it is dropped, so the next read goes to the store)."""
        key = self.root.manifest_key(ref)
        data = self.cache.read_meta(self._meta_key(key))
        if data is None:
            return None
        try:
            manifest = _parse(Manifest, data, key)
            _check_ref(manifest, ref, key)
        except RegistryError:
            self.cache.drop_meta(self._meta_key(key))
            return None
        return manifest

    def fetch_object(self, entry: FileEntry) -> Path:
        if self.offline and not self.cache.has(entry.oid, entry.size):
            raise OfflineMiss(
                f"offline, and {entry.name} ({entry.oid}) is not in the cache at "
                f"{self.cache.root}: " + hints.go_online(self.offline_source)
            )
        key = self.root.object_key(entry.oid)
        return self.cache.ensure(
            entry.oid, entry.size, lambda out, offset: self._download(key, out, offset)
        )

    def _download(self, key: str, out: PartialFile, offset: int) -> None:
        """Deliver the object's bytes from `offset` on to `out` (the cache verifies them)."""
        client = self.client
        progress = self.progress or _ignore
        t = Transfer(client, self.config, self._slots, progress, threading.Event())
        s3fetch.fetch(t, self._where("download", key, key.rpartition("/")[2]), out, offset)

    def resolve(self, spec: str) -> ResolvedModel:
        try:
            selector = parse_selector(spec, model=self.root.model)
        except InvalidReference:
            if self.root.model is not None or spec.count("/") != 1:
                raise
            hint = hints.root_url_hint(str(self.root), self.root.prefix)
            raise InvalidReference(f"invalid reference '{spec}': {hint}", value=spec) from None
        assert selector.model is not None
        if isinstance(selector.target, Exact):
            ref = ModelRef(
                model=selector.model, scope=selector.scope, version=selector.target.version
            )
            self._warn_if_yanked(selector, ref)
            cached = self._cached(ref)
            if cached is not None:
                return cached
            if self.offline and (manifest := self._cached_manifest(ref)) is not None:
                # Say which file is missing (OfflineMiss from fetch_object), not "no index".
                return self._materialize(ref, manifest)
            if not self.offline:
                # An exact version needs no index: its manifest says whether it exists.
                return self._materialize(ref, self._exact_manifest(ref))
        index = self.index(selector.model)
        names = index.versions.get(selector.scope, [])
        versions: dict[Version, str] = {parse_version(selector.scope, v): v for v in names}
        yanked = scope_yanks(index.yanked, selector.scope)
        picked = pick_version(selector, versions, yanked)
        if picked is None:
            available = ", ".join(str(v) for v in sorted(versions)) or "none"
            scopes = ", ".join(sorted(index.versions)) or "none"
            raise NotFound(
                f"no published version of {selector.model}/{selector.scope} matches "
                f"'{selector}'{skipped(selector, versions, yanked)}; available: {available} "
                f"(scopes: {scopes})",
                wanted=str(selector),
                available=[str(v) for v in sorted(versions)],
            )
        ref = ModelRef(model=selector.model, scope=selector.scope, version=picked)
        return self._cached(ref) or self._materialize(ref, self.manifest(ref))

    def _warn_if_yanked(self, selector: Selector, ref: ModelRef) -> None:
        """Warn when the index this host last read yanks `ref`; no network call, so that an
        exact version keeps resolving from the cache alone."""
        data = self.cache.read_meta(self._meta_key(self.root.index_key(ref.model)))
        if data is not None:
            yanked = scope_yanks(_parse(ModelIndex, data, "index").yanked, ref.scope)
            pick_version(selector, [ref.version], yanked)

    def _exact_manifest(self, ref: ModelRef) -> Manifest:
        try:
            return self.manifest(ref)
        except NotFound:
            index = self.index(ref.model)
            available = ", ".join(index.versions.get(ref.scope, [])) or "none"
            raise NotFound(
                f"{ref} is not published at {self.root}; available in {ref.model}/{ref.scope}: "
                f"{available}",
                wanted=str(ref),
                available=index.versions.get(ref.scope, []),
            ) from None

    def _cached(self, ref: ModelRef) -> ResolvedModel | None:
        """The version from the cache alone, when its manifest and every object are there."""
        manifest = self._cached_manifest(ref)
        if manifest is None:
            return None
        if not all(self.cache.has(f.oid, f.size) for f in manifest.files):
            return None
        return self._materialize(ref, manifest)

    def _materialize(self, ref: ModelRef, manifest: Manifest) -> ResolvedModel:
        _check_ref(manifest, ref, self.root.manifest_key(ref))
        for entry in manifest.files:
            self.fetch_object(entry)
        key = "/".join((self.root.bucket, self.root.prefix, str(ref))).replace("//", "/")
        folder = self.cache.version_dir(key, manifest.files)
        fresh = self._fresh.pop(self.root.manifest_key(ref), None)
        if fresh is not None:
            self.cache.write_meta(self._meta_key(self.root.manifest_key(ref)), fresh)
        return ResolvedModel(
            ref=ref,
            path=folder,
            files=MappingProxyType({f.name: folder / f.name for f in manifest.files}),
            commit=manifest.commit,
            objects=MappingProxyType(
                {f.name: LfsPointer(oid=f.oid, size=f.size) for f in manifest.files}
            ),
        )


_T = TypeVar("_T", ModelIndex, Manifest)


def _ignore(_: int) -> None:
    pass


def _parse(kind: type[_T], data: bytes, key: str) -> _T:
    if len(data) > MAX_META_SIZE:
        raise RegistryError(f"{key} is {len(data):,} bytes, over the {MAX_META_SIZE:,} allowed")
    try:
        return kind.model_validate_json(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'the file'}: {e['msg']}" for e in exc.errors()[:5]
        )
        raise RegistryError(
            f"{key} is not a valid {kind.__name__} ({problems}); nothing from it was used or "
            "cached. Publish the version again ('model-registry publish'), or check the root_url"
        ) from None
    except (RecursionError, MemoryError) as exc:
        raise RegistryError(
            f"{key} is not a valid {kind.__name__}: too deeply nested ({type(exc).__name__})"
        ) from None


def _check_ref(manifest: Manifest, ref: ModelRef, key: str) -> None:
    if manifest.ref != str(ref):
        raise RegistryError(
            f"the manifest at {key} is for {manifest.ref}, not {ref}; nothing from it was used "
            "or cached. Publish the version again ('model-registry publish')"
        )


def _check_model(index: ModelIndex, model: str, key: str) -> None:
    if index.model != model:
        raise RegistryError(
            f"the index at {key} is for model {index.model}, not {model}; nothing from it was "
            "used or cached. Publish again ('model-registry publish'), or check the root_url"
        )
