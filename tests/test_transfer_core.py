"""One transfer core for the agent and the registry (issue 10, item 2; issue 11, rows 5 and 8).

- The download engine plans ranges lazily and checks the object's size on the first reply:
  a manifest giving a 110-byte object the size 10**15 fails at once, in bounded memory.
- The registry reads through the agent's own client by default: a server that accepts and
  never answers is reported in seconds, naming the endpoint and the setting.
- `upload_bytes`: bytes in memory go through the upload engine like a file would.
- `registry.storeerrors`: one wording per class of S3 failure, the same for fetch and publish.

Servers: moto, SeaweedFS (`model-registry publish` end to end) and a scripted socket server.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from devtools.s3servers import S3Bucket
from lfs_agent.config import AgentConfig, MiB
from lfs_agent.errors import CorruptObject, Interrupted, WrongSize
from lfs_agent.http1 import Stalled
from lfs_agent.s3client import make_data_client
from lfs_agent.s3download import fetch
from lfs_agent.s3errors import Where
from lfs_agent.s3http import NoCredentials, S3Http, S3HttpError
from lfs_agent.s3upload import OID_METADATA, upload_bytes
from lfs_agent.slots import Slots
from lfs_agent.transfer import Transfer
from registry import resolve
from registry.cache import Cache
from registry.cli import cli
from registry.errors import NotFound, RegistryError
from registry.release import FileEntry, Manifest, RemoteRoot
from registry.remote import RemoteRegistry
from registry.s3fetch import StoreObjectMismatch
from registry.storeerrors import store_error
from tests.registry_fixtures import GitEnv, init_registry, sha256
from tests.test_remote import PREFIX, put, url
from tests.test_s3http import Reply, ScriptedServer, http_reply

HUGE = 10**15


@pytest.fixture(autouse=True)
def _close_clients(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every agent client a test builds (directly or through the registry) is closed after it."""
    opened: list[S3Http] = []
    build = S3Http.__init__

    def init(self: S3Http, **args: Any) -> None:
        build(self, **args)
        opened.append(self)

    monkeypatch.setattr(S3Http, "__init__", init)
    yield
    for client in opened:
        client.close()


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


# --------------------------------------------------------------------------- the registry's client


def test_a_registry_fetch_from_a_server_that_never_answers_fails_in_seconds(
    tmp_path: Path,
) -> None:
    # Issue 11, row 8 (registry side): silent for 6 minutes before.
    server = ScriptedServer([Reply(b"", then="silent"), Reply(b"", then="silent")])
    environ = {
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "secret",
        "AWS_ENDPOINT_URL": server.endpoint,
        "AWS_REGION": "us-east-1",
        "LFS_S3_READ_TIMEOUT": "1",
    }
    remote = RemoteRegistry(
        RemoteRoot(bucket="models", prefix=PREFIX, model="YOLOX-l"),
        Cache(tmp_path),
        environ=environ,
    )
    started = time.monotonic()
    try:
        with pytest.raises(RegistryError) as caught:
            remote.resolve("base/1.0")
    finally:
        server.close()

    assert time.monotonic() - started < 10
    message = str(caught.value)
    assert server.endpoint in message
    assert "LFS_S3_READ_TIMEOUT" in message
    assert "stalled" in message
    assert len(server.requests) == 2  # tried once more, then reported


def test_a_registry_download_from_a_dripping_server_fails_in_seconds(tmp_path: Path) -> None:
    # Issue 11, row 8: headers, then a byte now and then; tried once more, then reported.
    data = os.urandom(4096)
    oid = hashlib.sha256(data).hexdigest()
    manifest = Manifest(
        ref="YOLOX-l/base/1.0",
        commit=None,
        files=(FileEntry(name="checkpoint.pth", oid=oid, size=len(data)),),
    )
    drip = http_reply(200, data)
    server = ScriptedServer(
        [
            Reply(http_reply(200, manifest.model_dump_json().encode())),
            Reply(drip, at_once=len(drip) - len(data) + 10, drip=0.3),
            Reply(drip, at_once=len(drip) - len(data) + 10, drip=0.3),
        ]
    )
    environ = {
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "secret",
        "AWS_ENDPOINT_URL": server.endpoint,
        "AWS_REGION": "us-east-1",
        "LFS_S3_READ_TIMEOUT": "1",
    }
    remote = RemoteRegistry(
        RemoteRoot(bucket="models", prefix=PREFIX, model="YOLOX-l"),
        Cache(tmp_path),
        environ=environ,
    )
    started = time.monotonic()
    try:
        with pytest.raises(RegistryError) as caught:
            remote.resolve("base/1.0")
    finally:
        server.close()

    assert time.monotonic() - started < 10
    message = str(caught.value)
    assert server.endpoint in message and "LFS_S3_MIN_RATE" in message and oid in message
    gets = [seen for seen in server.requests if oid in seen.target]
    assert len(gets) == 2  # resumed once, then reported
    assert not Cache(tmp_path).has(oid, len(data))


def test_an_invalid_deadline_setting_is_a_registry_error_naming_it(tmp_path: Path) -> None:
    remote = RemoteRegistry(
        RemoteRoot(bucket="models", prefix=PREFIX),
        Cache(tmp_path),
        environ={"LFS_S3_READ_TIMEOUT": "soon"},
    )
    with pytest.raises(RegistryError, match="LFS_S3_READ_TIMEOUT"):
        remote.resolve("YOLOX-l/base/1.0")


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


# --------------------------------------------------------------------------- wording


def s3_error(code: str, status: int = 403) -> S3HttpError:
    return S3HttpError("GetObject", status, (code, f"message for {code}", None), {})


CREDENTIALS = {
    "denied": s3_error("AccessDenied"),
    "unknown-key": s3_error("InvalidAccessKeyId"),
    "wrong-secret": s3_error("SignatureDoesNotMatch"),
    "expired": s3_error("ExpiredToken", 400),
    "none": NoCredentials("Unable to locate credentials"),
}


@pytest.mark.parametrize("exc", CREDENTIALS.values(), ids=CREDENTIALS.keys())
@pytest.mark.parametrize("action", ["read", "download", "check", "upload", "write"])
def test_a_credentials_problem_reads_the_same_for_fetch_and_publish(
    exc: Exception, action: str
) -> None:
    where = Where(action, "ab" * 32, "models", "reg/objects/ab/ab/" + "ab" * 32, "http://s3")
    error = store_error(exc, where)
    assert type(error) is RegistryError
    assert "access denied" in str(error)
    assert "Check your AWS credentials" in str(error)
    assert where.url in str(error)


def test_each_class_has_the_registry_s_own_words() -> None:
    oid = "ab" * 32
    where = Where("download", oid, "models", f"reg/objects/ab/ab/{oid}", "http://s3:9000")
    missing = store_error(s3_error("NoSuchKey", 404), where)
    assert isinstance(missing, NotFound) and "model-registry publish" in str(missing)
    no_bucket = store_error(s3_error("NoSuchBucket", 404), where)
    assert "bucket 'models' does not exist at http://s3:9000" in str(no_bucket)
    short = store_error(s3_error("InvalidRange", 416), where)
    assert isinstance(short, StoreObjectMismatch)
    stalled = store_error(Stalled("s3:9000 sent nothing for 15 s", setting="read-timeout"), where)
    assert "http://s3:9000" in str(stalled) and "LFS_S3_READ_TIMEOUT" in str(stalled)
    unreachable = store_error(ConnectionRefusedError(111, "refused"), where._replace(action="read"))
    assert "cannot reach S3 at http://s3:9000" in str(unreachable)
    assert "MODEL_REGISTRY_OFFLINE=1" in str(unreachable)
    broken = store_error(ConnectionResetError(104, "reset"), where)
    assert "running the same command again resumes it" in str(broken)
    changed = store_error(
        CorruptObject("local object does not match", oid=oid),
        where._replace(action="upload"),
        what="YOLOX-l/base/1.0/config.yaml",
    )
    assert "YOLOX-l/base/1.0/config.yaml" in str(changed)
    assert f"no longer hash to {oid}" in str(changed) and "publish again" in str(changed)


# --------------------------------------------------------------------------- end to end


@pytest.mark.usefixtures("isolated")
def test_publish_and_fetch_through_the_agent_s_client(
    git_env: GitEnv, tmp_path: Path, seaweed_s3: S3Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The CLI's own wiring: the agent's client, credentials and endpoint from the environment.
    for key, value in seaweed_s3.server.env().items():
        monkeypatch.setenv(key, value)
    reg = init_registry(tmp_path / "registry", git_env)
    lfs_url = f"https://lfs-s3.invalid/{seaweed_s3.name}/{PREFIX}"
    reg.write(".lfsconfig", f"[lfs]\n\turl = {lfs_url}\n".encode())
    files = reg.add_version("YOLOX-l/base/1.0")
    reg.commit()

    published = CliRunner().invoke(cli, ["publish", "--root", str(reg.root), "--quiet"])
    assert published.exit_code == 0, published.output
    assert "published YOLOX-l/base/1.0" in published.stdout

    cache = tmp_path / "cache"
    root_url = f"s3://{seaweed_s3.name}/{PREFIX}/YOLOX-l"
    fetched = CliRunner().invoke(
        cli, ["fetch", "base/1.0", "--root-url", root_url, "--cache-dir", str(cache), "--quiet"]
    )
    assert fetched.exit_code == 0, fetched.output
    model = resolve("base/1.0", root=root_url, cache_dir=cache, offline=True)
    for name, data in files.items():
        assert sha256(model.files[name].read_bytes()) == sha256(data)
