"""Helpers for the registry's tests against a real S3 server: releases written by hand, as
`model-registry publish` would write them, the root URLs that name them, and `S3`, a client
that records every call (for the publish tests)."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from devtools.s3servers import S3Bucket
from registry.refs import parse_ref
from registry.releases.formats import FileEntry, Manifest, ModelIndex, RemoteRoot

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

PREFIX = "registry"
PUBLISH_PREFIX = "team/reg"
WRITES = frozenset(
    {
        "PutObject",
        "CreateMultipartUpload",
        "UploadPart",
        "CompleteMultipartUpload",
        "CopyObject",
        "DeleteObject",
        "DeleteObjects",
    }
)


def put(bucket: S3Bucket, key: str, data: bytes) -> None:
    bucket.server.client().put_object(Bucket=bucket.name, Key=key, Body=data)


def publish_by_hand(
    bucket: S3Bucket, versions: dict[str, dict[str, bytes]]
) -> dict[str, dict[str, bytes]]:
    """Write objects, manifests and indexes as `model-registry publish` would."""
    root = RemoteRoot(bucket=bucket.name, prefix=PREFIX)
    index: dict[str, dict[str, list[str]]] = {}
    for spec, files in versions.items():
        ref = parse_ref(spec)
        entries = []
        for name, data in files.items():
            oid = hashlib.sha256(data).hexdigest()
            put(bucket, root.object_key(oid), data)
            entries.append(FileEntry(name=name, oid=oid, size=len(data)))
        manifest = Manifest(ref=spec, commit="c0ffee" * 6 + "abcd", files=tuple(entries))
        put(bucket, root.manifest_key(ref), manifest.model_dump_json().encode())
        index.setdefault(ref.model, {}).setdefault(ref.scope, []).append(str(ref.version))
    for model, scopes in index.items():
        body = ModelIndex(model=model, versions=scopes).model_dump_json().encode()
        put(bucket, root.index_key(model), body)
    return versions


def files_of(version: str, size: int = 4096) -> dict[str, bytes]:
    return {
        "config.yaml": f"version: {version}\n".encode(),
        "checkpoint.pth": os.urandom(size),
        "sub/extra.onnx": os.urandom(100),
    }


def url(bucket: S3Bucket, model: str = "YOLOX-l") -> str:
    return f"s3://{bucket.name}/{PREFIX}/{model}"


@dataclass
class S3:
    """The bucket, a client on it that records every call, and the registry's remote root."""

    bucket: S3Bucket
    client: S3Client
    remote: RemoteRoot
    calls: list[str] = field(default_factory=list)
    """the operation of every call, in order"""
    written: list[str] = field(default_factory=list)
    """the key of every write, in order"""

    def record(self, event_name: str, params: dict[str, Any], **_: Any) -> None:
        op = event_name.rsplit(".", 1)[1]
        self.calls.append(op)
        if op in WRITES:
            self.written.append(str(params.get("Key")))

    def clear(self) -> None:
        self.calls.clear()
        self.written.clear()

    def writes(self) -> list[str]:
        return [op for op in self.calls if op in WRITES]

    def manifest(self, version: str) -> Manifest:
        return Manifest.model_validate_json(self.get(self.remote.manifest_key(parse_ref(version))))

    def get(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket.name, Key=key)["Body"].read()

    def json(self, key: str) -> Any:
        return json.loads(self.get(key))

    def snapshot(self) -> dict[str, tuple[str, int]]:
        """Every key with its ETag and size."""
        found: dict[str, tuple[str, int]] = {}
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket.name):
            for obj in page.get("Contents", []):
                found[obj["Key"]] = (obj["ETag"], obj["Size"])
        return found

    def objects(self) -> dict[str, int]:
        """oid -> size of every object under `<prefix>/objects/`."""
        head = f"{self.remote.prefix}/objects/"
        return {
            k.rsplit("/", 1)[1]: s for k, (_, s) in self.snapshot().items() if k.startswith(head)
        }


def make_s3(bucket: S3Bucket, prefix: str = PUBLISH_PREFIX) -> Iterator[S3]:
    """An `S3` on `bucket`, recording every call, the release under `prefix`."""
    client = bucket.server.client()
    s3 = S3(bucket, client, RemoteRoot(bucket=bucket.name, prefix=prefix))
    client.meta.events.register("provide-client-params.s3.*", s3.record)
    yield s3
    client.close()
