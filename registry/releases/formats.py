"""Published releases in S3: where they live and what the files say (no I/O here).

Under the same bucket and prefix as the LFS objects:

```
<prefix>/objects/<oid[0:2]>/<oid[2:4]>/<oid>                    every file, by SHA-256
<prefix>/releases/<model>/index.json                             the model's versions
<prefix>/releases/<model>/<scope>/<version>/manifest.json       one version's files
```
Every file of a version (checkpoints from Git LFS, and small files such as config.yaml) is an
object keyed by the SHA-256 of its content, so one small read of the index answers any
selector, the manifest lists what to fetch, and each object can be verified by its key.
Manifests are immutable once published (a manifest also carries the version's record: metrics,
provenance, dataset); the index grows, and carries the model's yanked versions.

What a store returns is validated before anything acts on it: a manifest or index over
`MAX_META_SIZE` bytes is refused unread; object sizes are capped as the LFS agent caps them
(`MAX_OBJECT_SIZE`: 10,000 multipart parts of 5 GiB); file names are plain relative
paths, each once, none also the folder of another; scopes and versions follow the grammar.

An application names a model's location as `root_url`:
`s3://my-bucket/registry/YOLOX-l` (bucket `my-bucket`, prefix `registry`, model `YOLOX-l`).
`s3://my-bucket/registry` names the registry, and selectors then include the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from lfs_agent.oids import OID_PATTERN as _OID
from lfs_agent.oids import object_key
from lfs_agent.protocol import MAX_SIZE as MAX_OBJECT_SIZE
from registry.errors import InvalidReference
from registry.records.record import Record
from registry.refs import ModelRef, parse_model_name, parse_ref, parse_scope, parse_version

MAX_META_SIZE = 16 << 20
"""A manifest or index larger than this (16 MiB; real ones are a few KB) is refused unread."""


class FileEntry(BaseModel):
    """One file of a published version."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str  # relative to the version folder, `/`-separated
    oid: str  # SHA-256 of the content
    size: int

    @field_validator("name")
    @classmethod
    def _inside(cls, name: str) -> str:
        path = PurePosixPath(name)
        if (
            not name
            or "\0" in name
            or "\\" in name
            or path.is_absolute()
            or any(part in ("", ".", "..") for part in name.split("/"))
        ):
            raise ValueError(f"file name {name!r} is not a plain path inside the version folder")
        return name

    @field_validator("oid")
    @classmethod
    def _oid(cls, oid: str) -> str:
        if not _OID.fullmatch(oid):
            raise ValueError(f"oid {oid!r} is not 64 lowercase hex digits")
        return oid

    @field_validator("size")
    @classmethod
    def _size(cls, size: int) -> int:
        if not 0 <= size <= MAX_OBJECT_SIZE:
            raise ValueError(
                f"size {size} is outside 0 to {MAX_OBJECT_SIZE} bytes (the LFS agent's cap)"
            )
        return size


class Manifest(BaseModel):
    """What one published version holds."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    schema_version: Literal[1] = 1
    ref: str  # e.g. "YOLOX-l/base/1.2"
    commit: str | None
    files: tuple[FileEntry, ...]
    record: Record | None = None  # meta.yaml and log metrics, as published (None: none)

    @field_validator("ref")
    @classmethod
    def _ref(cls, ref: str) -> str:
        parse_ref(ref)  # InvalidReference is a ValueError: a validation error naming it
        return ref

    @model_validator(mode="after")
    def _names(self) -> Manifest:
        check_file_names([entry.name for entry in self.files])
        return self

    def same_content(self, other: Manifest) -> bool:
        """Equal files (names, oids, sizes); the commit may differ (a rebase, a re-tag)."""
        return sorted(self.files, key=lambda f: f.name) == sorted(other.files, key=lambda f: f.name)


class ModelIndex(BaseModel):
    """The versions of one model that are published, by scope."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    schema_version: Literal[1] = 1
    model: str
    versions: dict[str, list[str]]  # scope -> version strings
    yanked: dict[str, str] = Field(default_factory=dict)  # "scope/version" -> reason

    @field_validator("model")
    @classmethod
    def _model(cls, model: str) -> str:
        return parse_model_name(model)

    @field_validator("versions")
    @classmethod
    def _versions(cls, versions: dict[str, list[str]]) -> dict[str, list[str]]:
        for scope, names in versions.items():
            parse_scope(scope)
            for name in names:
                parse_version(scope, name)
        return versions


class RemoteRoot(BaseModel):
    """A registry (or one model of it) in S3: bucket, prefix and optionally the model."""

    model_config = ConfigDict(frozen=True)
    bucket: str
    prefix: str
    model: str | None = None

    def __str__(self) -> str:
        parts = [p for p in (self.prefix, self.model) if p]
        return f"s3://{self.bucket}/" + "/".join(parts)

    def _join(self, *parts: str) -> str:
        return "/".join(p for p in (self.prefix, *parts) if p)

    def object_key(self, oid: str) -> str:
        """Same layout as the LFS agent's: `<prefix>/objects/<oid[0:2]>/<oid[2:4]>/<oid>`."""
        return object_key(self.prefix, oid)

    def index_key(self, model: str) -> str:
        return self._join("releases", model, "index.json")

    def manifest_key(self, ref: ModelRef) -> str:
        return self._join("releases", ref.model, ref.scope, str(ref.version), "manifest.json")


def parse_root_url(url: str) -> RemoteRoot:
    """Parse `s3://bucket/prefix[/model]`; the last part is the model when it is a model name.

    Raises:
        InvalidReference: not an s3:// URL with a bucket.
    """
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise InvalidReference(
            f"invalid root_url '{url}': expected s3://BUCKET/PREFIX[/MODEL], e.g. "
            "'s3://my-bucket/registry/YOLOX-l'",
            value=url,
        )
    if parts.query or parts.fragment:
        raise InvalidReference(f"invalid root_url '{url}': no '?' or '#' parts", value=url)
    segments = [s for s in parts.path.split("/") if s]
    if any(s in (".", "..") for s in segments):
        raise InvalidReference(f"invalid root_url '{url}': '.' and '..' are not allowed", value=url)
    model = None
    if segments:
        try:
            model = parse_model_name(segments[-1])
            segments = segments[:-1]
        except InvalidReference:
            model = None
    return RemoteRoot(bucket=parts.netloc, prefix="/".join(segments), model=model)


def check_file_names(names: Sequence[str]) -> None:
    """A version's file names can all be files of one folder: none twice, none also a folder.

    Raises:
        ValueError: names listed more than once, or names that are also folders of others.
    """
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"files listed more than once: {', '.join(dupes)}")
    folders = {"/".join(n.split("/")[:i]) for n in names for i in range(1, n.count("/") + 1)}
    clash = sorted(folders & set(names))
    if clash:
        raise ValueError(f"files that are also folders of other files: {', '.join(clash)}")
