"""The release documents in S3, for `publish`: reading what is published (manifests, indexes,
objects' presence) and writing manifests and indexes (the index conditionally)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from lfs_agent.config import AgentConfig
from lfs_agent.s3errors import Where, error_code
from registry.errors import IndexConflict, RegistryError
from registry.refs import ModelRef, parse_version
from registry.releases.collect import PublishObject
from registry.releases.formats import Manifest, ModelIndex, RemoteRoot
from registry.releases.indexwrite import conditions, write_index
from registry.releases.storeerrors import is_missing, store_error

if TYPE_CHECKING:
    from lfs_agent.transfer import S3Api


def _where(client: S3Api, action: str, bucket: str, key: str, oid: str = "") -> Where:
    return Where(action, oid, bucket, key, str(client.meta.endpoint_url))


_CONFLICT = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict", "409"})


class Reader:
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

    def has_object(self, obj: PublishObject) -> bool:
        key = self.remote.object_key(obj.oid)
        try:
            head = self.client.head_object(Bucket=self.remote.bucket, Key=key)
        except Exception as exc:
            where = _where(self.client, "check", self.remote.bucket, key, obj.oid)
            if is_missing(exc, where):
                return False
            raise store_error(exc, where, what=obj.paths[0]) from exc
        return head.get("ContentLength") == obj.size


def _b64_sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")


def _encryption(config: AgentConfig) -> dict[str, Any]:
    args: dict[str, Any] = {}
    if config.sse:
        args["ServerSideEncryption"] = config.sse
    if config.sse_kms_key_id:
        args["SSEKMSKeyId"] = config.sse_kms_key_id
    return args


def dump(document: Manifest | ModelIndex) -> str:
    """The JSON of a manifest or index; an empty record or yank list is left out, so that
    readers from before they existed still read what has none."""
    if isinstance(document, Manifest):
        empty = {"record"} if document.record is None else set()
    else:
        empty = set() if document.yanked else {"yanked"}
    return document.model_dump_json(indent=2, exclude=empty)


class Writer:
    """PUTs the release files (manifests, indexes)."""

    def __init__(self, client: S3Api, config: AgentConfig, remote: RemoteRoot) -> None:
        self.client = client
        self.config = config
        self.remote = remote

    def put_index(
        self,
        model: str,
        reader: Reader,
        update: Callable[[ModelIndex | None], ModelIndex],
        refs: Sequence[ModelRef],
    ) -> None:
        """Write the model's index conditionally, merging again on a conflict."""
        key = self.remote.index_key(model)
        wanted = [(ref.scope, str(ref.version)) for ref in refs]
        write_index(
            f"s3://{self.remote.bucket}/{key}",
            lambda: reader.tagged_index(model),
            lambda index, etag: self.put_json(key, dump(index), conditions(etag)),
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
