"""The transfer core shared by the agent and the registry (issue 10, item 2; issue 11, row 5).

- The download engine plans ranges lazily and checks the object's size on the first reply:
  a manifest giving a 110-byte object the size 10**15 fails at once, in bounded memory.
- `upload_bytes`: bytes in memory go through the upload engine like a file would.

The registry's side (its client, deadlines and wording) is in test_registry_transfers.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from devtools.s3servers import S3Bucket
from lfs_agent.config import AgentConfig, MiB
from lfs_agent.errors import CorruptObject, Interrupted, WrongSize
from lfs_agent.s3client import make_data_client
from lfs_agent.s3download import fetch
from lfs_agent.s3errors import Where
from lfs_agent.s3http import S3Http
from lfs_agent.s3upload import OID_METADATA, upload_bytes
from lfs_agent.slots import Slots
from lfs_agent.transfer import Transfer
from registry import resolve
from registry.cache import Cache
from registry.errors import RegistryError, StoreObjectMismatch
from registry.releases.formats import FileEntry, RemoteRoot
from registry.releases.remote import RemoteRegistry
from tests.s3releases import PREFIX, put, url

HUGE = 10**15


pytestmark = pytest.mark.usefixtures("close_s3http_clients")


class Recorder:
    """Our seam around the agent's client: every GetObject, its reply, and the body's close."""

    def __init__(self, inner: S3Http) -> None:
        self.inner = inner
        self.meta = inner.meta
        self.events: list[tuple[str, int]] = []
        self.open = 0
        self.most_open = 0
        self._lock = threading.Lock()

    def get_object(self, **args: Any) -> dict[str, Any]:
        start = int(str(args.get("Range", "bytes=0-")).removeprefix("bytes=").split("-")[0])
        with self._lock:
            self.events.append(("get", start))
            self.open += 1
            self.most_open = max(self.most_open, self.open)
        try:
            reply = self.inner.get_object(**args)
        except BaseException:
            self._closed()
            raise
        with self._lock:
            self.events.append(("reply", start))
        reply["Body"] = _Body(reply["Body"], self._closed)
        return reply

    def _closed(self) -> None:
        with self._lock:
            self.open -= 1

    def gets(self) -> list[int]:
        return [start for kind, start in self.events if kind == "get"]


class _Body:
    """A reply's body that tells the recorder when it is closed."""

    def __init__(self, inner: Any, closed: Any) -> None:
        self._inner = inner
        self._closed = closed
        self.iter_chunks = inner.iter_chunks

    def close(self) -> None:
        self._inner.close()
        self._closed()


class Collected:
    """A sink that keeps what it is given."""

    def __init__(self) -> None:
        self.chunks: dict[int, bytes] = {}
        self._lock = threading.Lock()

    def write(self, offset: int, data: bytes) -> None:
        with self._lock:
            self.chunks[offset] = data

    def data(self) -> bytes:
        return b"".join(self.chunks[k] for k in sorted(self.chunks))


def agent_client(bucket: S3Bucket, config: AgentConfig) -> S3Http:
    return make_data_client(config, config.concurrency, bucket.server.env())


def transfer(client: Any, config: AgentConfig) -> Transfer:
    return Transfer(client, config, Slots(None, 8), lambda n: None, threading.Event())


def where_of(bucket: S3Bucket, oid: str, action: str = "download") -> Where:
    key = RemoteRoot(bucket=bucket.name, prefix=PREFIX).object_key(oid)
    return Where(action, oid, bucket.name, key, bucket.server.endpoint)


# --------------------------------------------------------------------------- the download engine


def test_ranges_are_planned_lazily_after_the_first_reply(moto_s3: S3Bucket) -> None:
    data = os.urandom(6 * MiB + 5)
    oid = hashlib.sha256(data).hexdigest()
    put(moto_s3, where_of(moto_s3, oid).key, data)
    config = AgentConfig(bucket=moto_s3.name, part_size=MiB, concurrency=2)
    client = Recorder(agent_client(moto_s3, config))
    sink = Collected()
    completed: list[tuple[int, int]] = []

    fetch(
        transfer(client, config),
        where_of(moto_s3, oid),
        len(data),
        0,
        sink,
        complete=lambda start, end: completed.append((start, end)),
    )

    assert sink.data() == data
    # The first range alone, its reply (and size) checked, then the others.
    first_reply = client.events.index(("reply", 0))
    assert {start for _, start in client.events[:first_reply]} == {0}, client.events
    assert set(client.gets()) >= set(range(0, len(data), MiB))
    assert client.most_open <= 2  # never more than `concurrency` ahead
    assert completed == [(s, min(s + MiB, len(data))) for s in range(0, len(data), MiB)]


def test_nothing_is_requested_when_nothing_is_left_or_the_transfer_is_cancelled(
    moto_s3: S3Bucket,
) -> None:
    data = os.urandom(3 * MiB)
    oid = hashlib.sha256(data).hexdigest()
    put(moto_s3, where_of(moto_s3, oid).key, data)
    config = AgentConfig(bucket=moto_s3.name, part_size=MiB, concurrency=2)
    client = Recorder(agent_client(moto_s3, config))

    fetch(transfer(client, config), where_of(moto_s3, oid), len(data), len(data), Collected())
    cancelled = transfer(client, config)
    cancelled.cancel.set()
    with pytest.raises(Interrupted):
        fetch(cancelled, where_of(moto_s3, oid), len(data), 0, Collected())

    assert client.events == []


def test_a_size_of_10_to_the_15_fails_on_the_first_reply(moto_s3: S3Bucket) -> None:
    data = os.urandom(110)
    oid = hashlib.sha256(data).hexdigest()
    put(moto_s3, where_of(moto_s3, oid).key, data)
    config = AgentConfig(bucket=moto_s3.name, part_size=8 * MiB, concurrency=8)
    client = Recorder(agent_client(moto_s3, config))
    sink = Collected()

    tracemalloc.start()
    started = time.monotonic()
    try:
        with pytest.raises(WrongSize) as caught:
            fetch(transfer(client, config), where_of(moto_s3, oid), HUGE, 0, sink)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert time.monotonic() - started < 10
    assert peak < 16 * MiB  # 1.2e8 planned ranges would be gigabytes
    assert (caught.value.stored, caught.value.expected) == (110, HUGE)
    assert client.gets() == [0]  # one request: nothing else was planned
    assert sink.chunks == {}
    assert client.open == 0


def test_a_manifest_giving_a_110_byte_object_the_size_10_to_the_15(
    moto_s3: S3Bucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Issue 11, row 5: it used to build 1.2e8 range tuples (12 GB RSS after 60 s).
    for key, value in moto_s3.server.env().items():
        monkeypatch.setenv(key, value)
    data = os.urandom(110)
    oid = hashlib.sha256(data).hexdigest()
    root = RemoteRoot(bucket=moto_s3.name, prefix=PREFIX)
    put(moto_s3, root.object_key(oid), data)
    manifest = {
        "schema_version": 1,
        "ref": "YOLOX-l/base/1.0",
        "commit": None,
        "files": [{"name": "checkpoint.pth", "oid": oid, "size": HUGE}],
    }
    put(moto_s3, f"{PREFIX}/releases/YOLOX-l/base/1.0/manifest.json", json.dumps(manifest).encode())
    remote = RemoteRegistry(root, Cache(tmp_path / "cache"))

    tracemalloc.start()
    started = time.monotonic()
    try:
        # Refused by the manifest's validation (a size cap) or by the store's first reply.
        with pytest.raises(RegistryError):
            resolve("base/1.0", root=url(moto_s3), cache_dir=tmp_path / "cache")
        # Past any validation: the engine itself stops at the first reply.
        entry = FileEntry.model_construct(name="checkpoint.pth", oid=oid, size=HUGE)
        with pytest.raises(
            StoreObjectMismatch, match=f"has 110 bytes, but the manifest says {HUGE}"
        ):
            remote.fetch_object(entry)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert time.monotonic() - started < 15
    assert peak < 32 * MiB
    assert not Cache(tmp_path / "cache").object_path(oid).exists()


# --------------------------------------------------------------------------- the upload engine


def test_upload_bytes_is_a_conditional_put_with_metadata_then_a_no_op(moto_s3: S3Bucket) -> None:
    config = AgentConfig(bucket=moto_s3.name, prefix=PREFIX, storage_class="STANDARD_IA")
    client = agent_client(moto_s3, config)
    data = b"model: yolox\n"
    oid = hashlib.sha256(data).hexdigest()
    where = where_of(moto_s3, oid, "upload")

    assert upload_bytes(transfer(client, config), where, data, name="config.yaml") is True
    assert upload_bytes(transfer(client, config), where, data, name="config.yaml") is False

    admin = moto_s3.server.client()
    head = admin.head_object(Bucket=moto_s3.name, Key=where.key)
    assert head["Metadata"] == {OID_METADATA: oid}
    assert head.get("StorageClass") == "STANDARD_IA"
    assert admin.get_object(Bucket=moto_s3.name, Key=where.key)["Body"].read() == data


def test_upload_bytes_above_the_threshold_is_multipart(moto_s3: S3Bucket) -> None:
    config = AgentConfig(
        bucket=moto_s3.name, prefix=PREFIX, part_size=5 * MiB, multipart_threshold=5 * MiB
    )
    client = agent_client(moto_s3, config)
    data = os.urandom(11 * MiB)
    oid = hashlib.sha256(data).hexdigest()
    where = where_of(moto_s3, oid, "upload")
    sent: list[int] = []

    t = transfer(client, config)._replace(progress=sent.append)
    assert upload_bytes(t, where, data, name="big blob") is True

    admin = moto_s3.server.client()
    assert admin.get_object(Bucket=moto_s3.name, Key=where.key)["Body"].read() == data
    assert admin.list_multipart_uploads(Bucket=moto_s3.name).get("Uploads", []) == []
    assert sum(sent) == len(data)


def test_upload_bytes_that_do_not_match_their_oid_stores_nothing(moto_s3: S3Bucket) -> None:
    config = AgentConfig(bucket=moto_s3.name, prefix=PREFIX)
    client = agent_client(moto_s3, config)
    where = where_of(moto_s3, "ab" * 32, "upload")

    with pytest.raises(CorruptObject, match="the git blob of a/b.txt"):
        upload_bytes(transfer(client, config), where, b"other", name="the git blob of a/b.txt")

    listed = moto_s3.server.client().list_objects_v2(Bucket=moto_s3.name)
    assert listed.get("KeyCount") == 0
