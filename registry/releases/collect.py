"""What a revision publishes: the manifest of every version, and the objects they name."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field

from pydantic import ValidationError

from lfs_agent.config import MiB
from registry.errors import RegistryError
from registry.records.record import record_of
from registry.refs import ModelRef
from registry.releases.formats import FileEntry, Manifest
from registry.repo import layout
from registry.repo.checks import load_settings
from registry.repo.gitrepo import GitRepo
from registry.repo.layout import FileInfo, TreeSource

_BLOB_BATCH = 64 * MiB  # bytes of small git blobs read into memory at once for hashing


@dataclass
class PublishObject:
    """One object a manifest names, and where its bytes are."""

    oid: str
    size: int
    paths: list[str] = field(default_factory=list)
    """the registry paths holding it (for messages)"""
    blob: str | None = None
    """a git blob with its content (a non-LFS file); None: in the local LFS store"""


@dataclass(frozen=True)
class Plan:
    manifests: dict[ModelRef, Manifest]
    objects: dict[str, PublishObject]


def build_manifests(source: TreeSource) -> dict[ModelRef, Manifest]:
    """The manifest of every valid version at `source`'s revision, in version order.

    LFS files are listed with their pointer's oid and size, other files with the SHA-256 and
    size of their content; `commit` is the last commit that changed the version folder.
    Folders whose names break the grammar are not versions and are left out (`check` reports
    them).

    Raises:
        RegistryError: a file name or LFS pointer that cannot be published.
    """
    return collect(source).manifests


def collect(source: TreeSource, model: str | None = None) -> Plan:
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
    objects: dict[str, PublishObject] = {}
    for ref, files in listed.items():
        entries = []
        for info in files:
            if info.lfs is not None:
                blob, oid, size = None, info.lfs.oid, info.lfs.size
            else:
                blob = source.object_id(info.path)
                oid, size = hashes[blob], info.size
            entries.append(_entry(ref, info, oid, size))
            obj = objects.setdefault(oid, PublishObject(oid, size))
            obj.paths.append(info.path)
            obj.blob = obj.blob or blob
        commit = source.repo.last_commit(folders[ref], source.commit)
        record = record_of(source, ref, settings.metrics)
        manifests[ref] = Manifest(ref=str(ref), commit=commit, files=tuple(entries), record=record)
    return Plan(manifests, objects)


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
