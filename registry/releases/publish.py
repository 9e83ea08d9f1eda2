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

import functools
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from lfs_agent.config import AgentConfig
from registry.errors import NotFound, ObjectsUnavailable, PublishedVersionChanged
from registry.records.yank import load_yanks
from registry.refs import ModelRef, parse_version
from registry.releases.collect import Plan, PublishObject, build_manifests, collect
from registry.releases.documents import Reader, Writer, dump
from registry.releases.formats import Manifest, ModelIndex, RemoteRoot
from registry.releases.upload import Uploader
from registry.repo import layout
from registry.repo.gitrepo import GitRepo
from registry.repo.layout import TreeSource

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
_T = TypeVar("_T")
_R = TypeVar("_R")


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
    plan = collect(source, remote.model)
    _refuse_nothing(source, plan, remote)
    reader = Reader(client, remote)

    # 1. What is published; refuse any change before writing anything.
    published = dict(zip(plan.manifests, _parallel(reader.manifest, plan.manifests), strict=True))
    _refuse_changes(plan.manifests, published, remote, rev)
    new = [ref for ref in plan.manifests if published[ref] is None]
    models = sorted({ref.model for ref in plan.manifests})
    current = dict(zip(models, _parallel(reader.index, models), strict=True))
    yanks = load_yanks(source)
    mine = {model: [r for r in plan.manifests if r.model == model] for model in models}

    def merged(model: str, index: ModelIndex | None) -> ModelIndex:
        return _merge(model, index, mine[model], yanks.for_model(model))

    # 2. Every object the new manifests name, in the store.
    missing = _missing_objects(reader, plan, new)
    uploader = Uploader(client, config, repo, lfs_dir, progress or _ignore)
    uploader.check_local(missing, remote)
    uploaded = uploader.upload_all(missing)

    # 3. Manifests, then indexes.
    writer = Writer(client, config, remote)
    for ref in new:
        writer.put_json(remote.manifest_key(ref), dump(plan.manifests[ref]))
    for model in models:
        if merged(model, current[model]) != current[model]:
            writer.put_index(model, reader, functools.partial(merged, model), mine[model])
    return PublishReport(
        published=tuple(str(ref) for ref in new),
        unchanged=tuple(str(ref) for ref in plan.manifests if published[ref] is not None),
        uploaded_objects=len(uploaded),
        uploaded_bytes=sum(obj.size for obj in uploaded),
    )


def _refuse_nothing(source: TreeSource, plan: Plan, remote: RemoteRoot) -> None:
    """A model named by `remote` must have versions to publish."""
    if remote.model is None or plan.manifests:
        return
    available = layout.models(source)
    raise NotFound(
        f"model '{remote.model}' has no versions at {source.rev} in '{source.repo.root}', so "
        f"there is nothing to publish to {remote}; models there: {', '.join(available) or 'none'}",
        wanted=remote.model,
        available=available,
    )


def _missing_objects(reader: Reader, plan: Plan, new: Iterable[ModelRef]) -> list[PublishObject]:
    """The objects the `new` manifests name that the store does not hold yet."""
    needed = {e.oid: plan.objects[e.oid] for ref in new for e in plan.manifests[ref].files}
    present = _parallel(reader.has_object, needed.values())
    return [obj for obj, there in zip(needed.values(), present, strict=True) if not there]


def _ignore(n: int) -> None:
    del n


def _parallel(function: Callable[[_T], _R], items: Iterable[_T]) -> list[_R]:
    work = list(items)
    if len(work) <= 1:
        return [function(item) for item in work]
    with ThreadPoolExecutor(min(_READERS, len(work)), thread_name_prefix="publish-read") as pool:
        return list(pool.map(function, work))


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
