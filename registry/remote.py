"""Resolve published versions from S3 alone: no git, no git-lfs, no clone of the registry.

`resolve("base/1", root="s3://bucket/registry/YOLOX-l")` reads the model's index (one small GET),
picks the version, reads its manifest, and makes sure every file is in the local cache, each
verified by SHA-256 and size before it becomes visible (`registry.cache`). The files are exposed
by name in a per-version folder of the cache.

- A cached exact version resolves with no network call at all.
- Offline (`offline=True` or MODEL_REGISTRY_OFFLINE=1), selectors are answered from the cached
  index, and anything not cached is an error that names it.
- Large objects come in parallel ranged GETs (`registry.s3fetch`), hashed as they arrive.
- Interrupted downloads resume from the bytes already on disk (the cache keeps the partial).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, TypeVar

from pydantic import ValidationError

from . import s3fetch
from .cache import Cache
from .errors import NotFound, RegistryError
from .partial import PartialFile
from .pointer import LfsPointer
from .refs import ModelRef, Selector, Version, parse_selector, parse_version
from .release import FileEntry, Manifest, ModelIndex, RemoteRoot
from .resolve import ResolvedModel
from .yank import pick, scope_yanks, skipped

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

OFFLINE_ENV = "MODEL_REGISTRY_OFFLINE"


class OfflineMiss(RegistryError, LookupError):
    """Offline, and what was asked for is not in the cache."""


def is_offline(offline: bool | None, environ: Mapping[str, str] = os.environ) -> bool:
    if offline is not None:
        return offline
    return environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def default_client() -> S3Client:
    """A boto3 client from the default chain (credentials, AWS_PROFILE, AWS_ENDPOINT_URL...)."""
    from lfs_agent.config import AgentConfig
    from lfs_agent.s3client import make_client

    return make_client(
        AgentConfig(bucket="-", checksum="off"), s3fetch.DEFAULT_SETTINGS.concurrency
    )


class RemoteRegistry:
    """A registry's published releases in S3, read through a local cache."""

    def __init__(
        self,
        root: RemoteRoot,
        cache: Cache,
        *,
        client_factory: Callable[[], S3Client] = default_client,
        offline: bool = False,
        progress: Callable[[int], None] | None = None,
        transfer: s3fetch.TransferSettings = s3fetch.DEFAULT_SETTINGS,
    ) -> None:
        self.root = root
        self.transfer = transfer
        self.cache = cache
        self.offline = offline
        self.progress = progress
        self._client_factory = client_factory
        self._client: S3Client | None = None

    @property
    def client(self) -> S3Client:
        if self.offline:
            raise OfflineMiss(f"offline: not reading {self.root}")  # a bug if reached
        if self._client is None:
            self._client = self._client_factory()
        return self._client

    def _meta_key(self, key: str) -> str:
        return f"{self.root.bucket}/{key}"

    def _get(self, key: str) -> bytes | None:
        """An S3 object's bytes, or None when it does not exist."""
        try:
            with s3fetch.translated(f"s3://{self.root.bucket}/{key}"):
                return self.client.get_object(Bucket=self.root.bucket, Key=key)["Body"].read()
        except NotFound:
            return None

    def index(self, model: str) -> ModelIndex:
        key = self.root.index_key(model)
        if self.offline:
            data = self.cache.read_meta(self._meta_key(key))
            if data is None:
                raise OfflineMiss(
                    f"offline, and no index of {model} from {self.root} is cached: resolve it "
                    f"once online (unset {OFFLINE_ENV})"
                )
        else:
            data = self._get(key)
            if data is None:
                raise NotFound(
                    f"model {model} is not published at {self.root}: no {key}. Run "
                    "'model-registry publish' in the registry, or check the root_url",
                    wanted=model,
                )
            self.cache.write_meta(self._meta_key(key), data)
        return _parse(ModelIndex, data, key)

    def manifest(self, ref: ModelRef) -> Manifest:
        key = self.root.manifest_key(ref)
        data = self.cache.read_meta(self._meta_key(key))
        if data is None:
            if self.offline:
                raise OfflineMiss(
                    f"offline, and {ref} is not cached: resolve it once online "
                    f"(unset {OFFLINE_ENV})"
                )
            data = self._get(key)
            if data is None:
                raise NotFound(
                    f"{ref} is listed but its manifest {key} is missing: publish "
                    "it again ('model-registry publish')",
                    wanted=str(ref),
                )
            manifest = _parse(Manifest, data, key)
            # Published manifests are immutable, so a cached copy never goes stale.
            self.cache.write_meta(self._meta_key(key), data)
            return manifest
        return _parse(Manifest, data, key)

    def fetch_object(self, entry: FileEntry) -> Path:
        if self.offline and not self.cache.has(entry.oid, entry.size):
            raise OfflineMiss(
                f"offline, and {entry.name} ({entry.oid}) is not in the cache at "
                f"{self.cache.root}: resolve it once online (unset {OFFLINE_ENV})"
            )
        key = self.root.object_key(entry.oid)
        return self.cache.ensure(
            entry.oid, entry.size, lambda out, offset: self._download(key, out, offset)
        )

    def _download(self, key: str, out: PartialFile, offset: int) -> None:
        """Deliver the object's bytes from `offset` on to `out` (the cache verifies them)."""
        s3fetch.fetch(
            self.client,
            self.root.bucket,
            key,
            out,
            offset,
            settings=self.transfer,
            progress=self.progress,
        )

    def resolve(self, spec: str) -> ResolvedModel:
        selector = parse_selector(spec, model=self.root.model)
        assert selector.model is not None
        if selector.kind == "exact" and selector.exact is not None:
            ref = ModelRef(model=selector.model, scope=selector.scope, version=selector.exact)
            self._warn_if_yanked(selector, ref)
            cached = self._cached(ref)
            if cached is not None:
                return cached
            if not self.offline:
                # An exact version needs no index: its manifest says whether it exists.
                return self._materialize(ref, self._exact_manifest(ref))
        index = self.index(selector.model)
        names = index.versions.get(selector.scope, [])
        versions: dict[Version, str] = {parse_version(selector.scope, v): v for v in names}
        yanked = scope_yanks(index.yanked, selector.scope)
        picked = pick(selector, versions, yanked)
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
            pick(selector, [ref.version], yanked)

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
        data = self.cache.read_meta(self._meta_key(self.root.manifest_key(ref)))
        if data is None:
            return None
        manifest = _parse(Manifest, data, self.root.manifest_key(ref))
        if not all(self.cache.has(f.oid, f.size) for f in manifest.files):
            return None
        return self._materialize(ref, manifest)

    def _materialize(self, ref: ModelRef, manifest: Manifest) -> ResolvedModel:
        if manifest.ref != str(ref):
            raise RegistryError(
                f"the manifest at {self.root.manifest_key(ref)} is for {manifest.ref}, not {ref}"
            )
        for entry in manifest.files:
            self.fetch_object(entry)
        key = "/".join((self.root.bucket, self.root.prefix, str(ref))).replace("//", "/")
        folder = self.cache.version_dir(key, manifest.files)
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


def _parse(kind: type[_T], data: bytes, key: str) -> _T:
    try:
        return kind.model_validate_json(data)
    except ValidationError as exc:
        raise RegistryError(f"{key} is not a valid {kind.__name__}: {exc}") from None
