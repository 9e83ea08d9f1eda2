"""S3Store against moto's in-process S3: keys, metadata, multipart, checksums, cleanup, errors.

The store's boto3 client is the real one (`make_client`), built inside `mock_aws`; faults are
injected through botocore's own event hooks. Objects are a few MiB of random bytes.
"""

from __future__ import annotations

import base64
import hashlib
import os
import threading
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import IO, TYPE_CHECKING, Any, cast

import boto3
import pytest
import urllib3.exceptions
from botocore.exceptions import (
    ClientError,
    IncompleteReadError,
    ResponseStreamingError,
)
from botocore.response import StreamingBody
from moto import mock_aws

from lfs_agent import s3download
from lfs_agent.config import AgentConfig, MiB
from lfs_agent.errors import (
    AccessDenied,
    CorruptObject,
    Interrupted,
    LocalIOError,
    ObjectNotFound,
    StorageUnavailable,
    StoreRejected,
    TransferError,
)
from lfs_agent.s3client import USER_AGENT, make_client
from lfs_agent.store import S3Store

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

BUCKET = "lfs-test"
PREFIX = "reg"
PART = 5 * MiB
SMALL = 3 * MiB
LARGE = 12 * MiB  # three parts: 5 + 5 + 2 MiB

ENV_TO_CLEAR = (
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_REGION",
    "AWS_CA_BUNDLE",
    "AWS_REQUEST_CHECKSUM_CALCULATION",
    "AWS_RESPONSE_CHECKSUM_VALIDATION",
    "AWS_MAX_ATTEMPTS",
    "AWS_RETRY_MODE",
)


# --------------------------------------------------------------------------- fixtures & helpers


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Fake credentials only; no profile, config file, endpoint override or metadata service."""
    for var in ENV_TO_CLEAR:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))


_SESSIONS: list[boto3.session.Session] = []


@pytest.fixture
def admin(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Client]:
    """A plain client on a fresh mocked S3 holding the empty bucket BUCKET.

    make_client builds a new boto3 Session per client, which reloads botocore's models (~0.1 s
    each); here every client comes from one shared Session, with make_client's own Config.
    """
    with mock_aws():
        if not _SESSIONS:
            _SESSIONS.append(boto3.session.Session())
        session = _SESSIONS[0]
        monkeypatch.setattr(boto3.session, "Session", lambda: session)
        client = session.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Backoff delays s3download asked for; it never really sleeps in these tests."""
    delays: list[float] = []
    monkeypatch.setattr(s3download, "time", SimpleNamespace(sleep=delays.append))
    return delays


@dataclass
class Harness:
    store: S3Store
    client: S3Client
    admin: S3Client
    lfs_dir: Path
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def ops(self, name: str) -> list[dict[str, Any]]:
        """The API parameters (Body left out) of every `name` call the store's client made."""
        return [params for op, params in self.calls if op == name]

    def temp_files(self) -> list[Path]:
        tmp = self.lfs_dir / "tmp"
        return sorted(tmp.iterdir()) if tmp.exists() else []

    def stored(self, oid: str) -> bytes | None:
        try:
            return self.admin.get_object(Bucket=BUCKET, Key=key_of(oid))["Body"].read()
        except self.admin.exceptions.NoSuchKey:
            return None

    def open_uploads(self) -> list[Any]:
        return list(self.admin.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []))


def make_harness(admin: S3Client, tmp_path: Path, **overrides: Any) -> Harness:
    settings: dict[str, Any] = {
        "bucket": BUCKET,
        "prefix": PREFIX,
        "part_size": PART,
        "multipart_threshold": PART,
        "concurrency": 3,
    }
    settings.update(overrides)
    config = AgentConfig(**settings)
    client = make_client(config, config.concurrency)
    lfs_dir = tmp_path / "lfs"
    harness = Harness(
        S3Store(config, lfs_dir, client_factory=lambda cfg, pool: client), client, admin, lfs_dir
    )

    def record(event_name: str, params: dict[str, Any], **_: Any) -> None:
        op = event_name.rsplit(".", 1)[1]
        harness.calls.append((op, {k: v for k, v in params.items() if k != "Body"}))

    client.meta.events.register("provide-client-params.s3.*", record)
    return harness


def key_of(oid: str) -> str:
    return f"{PREFIX}/objects/{oid[0:2]}/{oid[2:4]}/{oid}"


def blob(size: int) -> tuple[bytes, str]:
    data = os.urandom(size)
    return data, hashlib.sha256(data).hexdigest()


def local_file(tmp_path: Path, data: bytes, name: str = "object.bin") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def put_object(h: Harness, data: bytes, oid: str) -> None:
    """Store `data` under `oid` directly, as a previous push would have."""
    h.admin.put_object(Bucket=BUCKET, Key=key_of(oid), Body=data, Metadata={"lfs-oid": oid})


class Progress:
    """A progress callback that keeps every delta; `hook` sees the running total."""

    def __init__(self, hook: Callable[[int], None] | None = None) -> None:
        self.deltas: list[int] = []
        self._lock = threading.Lock()
        self._hook = hook

    def __call__(self, delta: int) -> None:
        with self._lock:
            self.deltas.append(delta)
            total = sum(self.deltas)
        if self._hook is not None:
            self._hook(total)

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self.deltas)


def client_error(code: str, status: int, operation: str) -> ClientError:
    # Any: the stubs' TypedDict wants every ResponseMetadata key, as a real response has.
    response: Any = {
        "Error": {"Code": code, "Message": f"injected {code}"},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, operation)


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


# --------------------------------------------------------------------------- upload


def test_upload_small_object_is_one_put_at_the_lfs_key(admin: S3Client, tmp_path: Path) -> None:
    h = make_harness(admin, tmp_path)
    data, oid = blob(SMALL)
    progress = Progress()

    assert h.store.upload(oid, SMALL, local_file(tmp_path, data), progress, threading.Event())

    got = admin.get_object(Bucket=BUCKET, Key=f"reg/objects/{oid[0:2]}/{oid[2:4]}/{oid}")
    assert got["Body"].read() == data
    assert got["Metadata"] == {"lfs-oid": oid}
    assert [o["Key"] for o in admin.list_objects_v2(Bucket=BUCKET)["Contents"]] == [key_of(oid)]
    assert len(h.ops("PutObject")) == 1
    assert h.ops("CreateMultipartUpload") == []
    assert progress.total == SMALL
    assert all(d > 0 for d in progress.deltas)


def test_upload_at_exactly_the_threshold_is_still_one_put(admin: S3Client, tmp_path: Path) -> None:
    h = make_harness(admin, tmp_path)
    data, oid = blob(PART)

    assert h.store.upload(oid, PART, local_file(tmp_path, data), Progress(), threading.Event())

    assert len(h.ops("PutObject")) == 1
    assert h.ops("CreateMultipartUpload") == []
    assert h.stored(oid) == data


def test_upload_large_object_is_multipart_and_leaves_no_upload(
    admin: S3Client, tmp_path: Path
) -> None:
    h = make_harness(admin, tmp_path)
    data, oid = blob(LARGE)
    progress = Progress()

    assert h.store.upload(oid, LARGE, local_file(tmp_path, data), progress, threading.Event())

    assert h.ops("PutObject") == []
    assert len(h.ops("CreateMultipartUpload")) == 1
    parts = sorted(h.ops("UploadPart"), key=lambda p: int(p["PartNumber"]))
    assert [(p["PartNumber"], p["ContentLength"]) for p in parts] == [
        (1, PART),
        (2, PART),
        (3, LARGE - 2 * PART),
    ]
    assert len(h.ops("CompleteMultipartUpload")) == 1
    assert h.ops("AbortMultipartUpload") == []
    got = admin.get_object(Bucket=BUCKET, Key=key_of(oid))
    assert got["Body"].read() == data
    assert got["Metadata"] == {"lfs-oid": oid}
    assert got["ETag"].strip('"').endswith("-3")
    assert h.open_uploads() == []
    assert progress.total == LARGE


def test_upload_of_empty_object_round_trips(admin: S3Client, tmp_path: Path) -> None:
    h = make_harness(admin, tmp_path)
    data, oid = blob(0)

    assert h.store.upload(oid, 0, local_file(tmp_path, data), Progress(), threading.Event())
    path = h.store.download(oid, 0, Progress(), threading.Event())

    assert h.stored(oid) == b""
    assert path.read_bytes() == b""


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["put", "multipart"])
def test_second_upload_of_same_oid_sends_nothing(
    admin: S3Client, tmp_path: Path, size: int
) -> None:
    h = make_harness(admin, tmp_path)
    data, oid = blob(size)
    path = local_file(tmp_path, data)
    assert h.store.upload(oid, size, path, Progress(), threading.Event())
    before = admin.head_object(Bucket=BUCKET, Key=key_of(oid))
    h.calls.clear()
    writes: list[str] = []
    for op in ("PutObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload"):
        h.client.meta.events.register(
            f"before-call.s3.{op}", lambda event_name, **_: writes.append(event_name)
        )

    assert h.store.upload(oid, size, path, Progress(), threading.Event()) is False

    assert writes == []
    assert [op for op, _ in h.calls] == ["HeadObject"]
    after = admin.head_object(Bucket=BUCKET, Key=key_of(oid))
    assert after["LastModified"] == before["LastModified"]
    assert after["ETag"] == before["ETag"]


TINY = 100 * 1024  # below CONDITIONAL_PUT_MAX: sent with If-None-Match, no HEAD first


def test_tiny_new_object_is_one_conditional_put(admin: S3Client, tmp_path: Path) -> None:
    h = make_harness(admin, tmp_path)
    data, oid = blob(TINY)
    progress = Progress()

    assert h.store.upload(oid, TINY, local_file(tmp_path, data), progress, threading.Event())

    assert [op for op, _ in h.calls] == ["PutObject"]
    assert h.ops("PutObject")[0]["IfNoneMatch"] == "*"
    assert h.stored(oid) == data
    assert progress.total == TINY


def test_tiny_object_already_stored_is_not_overwritten(admin: S3Client, tmp_path: Path) -> None:
    h = make_harness(admin, tmp_path)
    data, oid = blob(TINY)
    path = local_file(tmp_path, data)
    assert h.store.upload(oid, TINY, path, Progress(), threading.Event())
    before = admin.head_object(Bucket=BUCKET, Key=key_of(oid))
    h.calls.clear()
    progress = Progress()

    assert h.store.upload(oid, TINY, path, progress, threading.Event()) is False

    assert [op for op, _ in h.calls] == ["PutObject", "HeadObject"]  # refused, then checked
    after = admin.head_object(Bucket=BUCKET, Key=key_of(oid))
    assert (after["ETag"], after["LastModified"]) == (before["ETag"], before["LastModified"])
    assert progress.total == 0  # the refused bytes are not reported as sent


def test_tiny_object_stored_by_someone_else_is_replaced(admin: S3Client, tmp_path: Path) -> None:
    h = make_harness(admin, tmp_path)
    data, oid = blob(TINY)
    admin.put_object(Bucket=BUCKET, Key=key_of(oid), Body=b"not the object")

    assert h.store.upload(oid, TINY, local_file(tmp_path, data), Progress(), threading.Event())

    assert [op for op, _ in h.calls] == ["PutObject", "HeadObject", "PutObject"]
    assert "IfNoneMatch" not in h.ops("PutObject")[1]
    assert h.stored(oid) == data


def test_existing_object_with_wrong_size_is_replaced(admin: S3Client, tmp_path: Path) -> None:
    h = make_harness(admin, tmp_path)
    data, oid = blob(SMALL)
    put_object(h, data[:1000], oid)  # a truncated object, even with our metadata

    assert h.store.upload(oid, SMALL, local_file(tmp_path, data), Progress(), threading.Event())

    assert len(h.ops("PutObject")) == 1
    assert h.stored(oid) == data


def test_existing_object_without_oid_metadata_is_replaced(admin: S3Client, tmp_path: Path) -> None:
    h = make_harness(admin, tmp_path)
    data, oid = blob(SMALL)
    admin.put_object(Bucket=BUCKET, Key=key_of(oid), Body=os.urandom(SMALL))  # same size, no tag

    assert h.store.upload(oid, SMALL, local_file(tmp_path, data), Progress(), threading.Event())

    assert h.stored(oid) == data
    assert admin.head_object(Bucket=BUCKET, Key=key_of(oid))["Metadata"] == {"lfs-oid": oid}


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["put", "multipart"])
def test_local_file_not_matching_its_oid_is_not_stored(
    admin: S3Client, tmp_path: Path, size: int
) -> None:
    h = make_harness(admin, tmp_path)
    data, oid = blob(size)
    damaged = data[:-1] + bytes([data[-1] ^ 0xFF])  # the last byte, so every part but one is sent

    with pytest.raises(CorruptObject) as caught:
        h.store.upload(oid, size, local_file(tmp_path, damaged), Progress(), threading.Event())

    err = caught.value
    assert err.code == 422
    assert err.oid == oid
    assert oid in str(err)
    assert hashlib.sha256(damaged).hexdigest() in str(err)
    assert h.stored(oid) is None
    assert h.open_uploads() == []
    assert h.ops("PutObject") == []
    assert h.ops("CompleteMultipartUpload") == []
    if size > PART:
        assert len(h.ops("AbortMultipartUpload")) == 1


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["put", "multipart"])
def test_local_file_shorter_than_size_is_corrupt(
    admin: S3Client, tmp_path: Path, size: int
) -> None:
    h = make_harness(admin, tmp_path)
    data, oid = blob(size)

    with pytest.raises(CorruptObject) as caught:
        h.store.upload(
            oid, size, local_file(tmp_path, data[: size - 100]), Progress(), threading.Event()
        )

    assert caught.value.oid == oid
    assert f"has {size - 100} bytes, expected {size}" in str(caught.value)
    assert h.stored(oid) is None
    assert h.open_uploads() == []


def test_missing_local_file_is_local_io_error(admin: S3Client, tmp_path: Path) -> None:
    h = make_harness(admin, tmp_path)
    _, oid = blob(SMALL)

    with pytest.raises(LocalIOError) as caught:
        h.store.upload(oid, SMALL, tmp_path / "absent", Progress(), threading.Event())

    assert caught.value.oid == oid
    assert "absent" in str(caught.value)
    assert h.stored(oid) is None


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["put", "multipart"])
def test_upload_cancelled_before_start_stores_nothing(
    admin: S3Client, tmp_path: Path, size: int
) -> None:
    h = make_harness(admin, tmp_path)
    data, oid = blob(size)
    cancel = threading.Event()
    cancel.set()

    with pytest.raises(Interrupted):
        h.store.upload(oid, size, local_file(tmp_path, data), Progress(), cancel)

    assert h.ops("PutObject") == []
    assert h.ops("UploadPart") == []
    assert h.stored(oid) is None
    assert h.open_uploads() == []


def upload_records(h: Harness) -> list[str]:
    records = h.lfs_dir / "lfs-s3" / "uploads"
    return sorted(p.name for p in records.glob("*.json")) if records.exists() else []


def interrupt_upload(h: Harness, oid: str, path: Path, *, after: int) -> None:
    """Start uploading `path` and cancel it once `after` bytes were sent (a Ctrl-C)."""
    cancel = threading.Event()

    def hook(total: int) -> None:
        if total >= after:
            cancel.set()

    with pytest.raises(Interrupted):
        h.store.upload(oid, LARGE, path, Progress(hook), cancel)


def test_upload_cancelled_after_first_part_is_kept_and_resumed(
    admin: S3Client, tmp_path: Path
) -> None:
    # The contract since resumable uploads: an interruption keeps the upload and its record;
    # the next upload of the object sends only the missing parts and leaves nothing open.
    h = make_harness(admin, tmp_path, concurrency=1)
    data, oid = blob(LARGE)
    path = local_file(tmp_path, data)
    interrupt_upload(h, oid, path, after=PART)

    assert [p["PartNumber"] for p in h.ops("UploadPart")] == [1]
    assert h.ops("CompleteMultipartUpload") == []
    assert h.ops("AbortMultipartUpload") == []
    assert h.stored(oid) is None
    assert [u["Key"] for u in h.open_uploads()] == [key_of(oid)]
    assert upload_records(h) == [f"{oid}.json"]

    h.calls.clear()
    progress = Progress()
    assert h.store.upload(oid, LARGE, path, progress, threading.Event())
    assert h.ops("CreateMultipartUpload") == []
    assert [p["PartNumber"] for p in h.ops("UploadPart")] == [2, 3]
    assert h.stored(oid) == data
    assert progress.total == LARGE
    assert h.open_uploads() == []
    assert upload_records(h) == []


def test_resume_sends_again_a_stored_part_that_differs(admin: S3Client, tmp_path: Path) -> None:
    h = make_harness(admin, tmp_path, concurrency=1)
    data, oid = blob(LARGE)
    path = local_file(tmp_path, data)
    interrupt_upload(h, oid, path, after=2 * PART)
    (upload,) = h.open_uploads()
    # Part 2 replaced behind our back by other bytes of the same size.
    admin.upload_part(
        Bucket=BUCKET,
        Key=key_of(oid),
        UploadId=upload["UploadId"],
        PartNumber=2,
        Body=os.urandom(PART),
    )
    h.calls.clear()
    assert h.store.upload(oid, LARGE, path, Progress(), threading.Event())
    assert [p["PartNumber"] for p in h.ops("UploadPart")] == [2, 3]
    assert h.stored(oid) == data
    assert h.open_uploads() == []


def test_recorded_upload_with_other_part_size_is_aborted(admin: S3Client, tmp_path: Path) -> None:
    h = make_harness(admin, tmp_path, concurrency=1)
    data, oid = blob(LARGE)
    path = local_file(tmp_path, data)
    interrupt_upload(h, oid, path, after=PART)
    (old,) = h.open_uploads()

    bigger = make_harness(admin, tmp_path, part_size=6 * MiB, concurrency=1)
    assert bigger.store.upload(oid, LARGE, path, Progress(), threading.Event())
    assert [a["UploadId"] for a in bigger.ops("AbortMultipartUpload")] == [old["UploadId"]]
    assert len(bigger.ops("UploadPart")) == 2
    assert h.stored(oid) == data
    assert h.open_uploads() == []
    assert upload_records(h) == []


def test_recorded_upload_is_aborted_once_the_object_is_stored(
    admin: S3Client, tmp_path: Path
) -> None:
    h = make_harness(admin, tmp_path, concurrency=1)
    data, oid = blob(LARGE)
    path = local_file(tmp_path, data)
    interrupt_upload(h, oid, path, after=PART)
    put_object(h, data, oid)  # another clone pushed it meanwhile
    h.calls.clear()
    assert h.store.upload(oid, LARGE, path, Progress(), threading.Event()) is False
    assert len(h.ops("AbortMultipartUpload")) == 1
    assert h.open_uploads() == []
    assert upload_records(h) == []


def _fail_part_2(code: str, status: int) -> Callable[..., None]:
    def handler(params: dict[str, Any], **_: Any) -> None:
        if int(params["query_string"]["partNumber"]) == 2:
            raise client_error(code, status, "UploadPart")

    return handler


def test_failed_part_keeps_the_multipart_upload_for_the_next_push(
    admin: S3Client, tmp_path: Path
) -> None:
    h = make_harness(admin, tmp_path)
    data, oid = blob(LARGE)
    failing = _fail_part_2("InternalError", 500)
    h.client.meta.events.register("before-call.s3.UploadPart", failing)
    path = local_file(tmp_path, data)

    with pytest.raises(StorageUnavailable) as caught:
        h.store.upload(oid, LARGE, path, Progress(), threading.Event())

    assert caught.value.oid == oid
    assert "InternalError" in str(caught.value)
    assert "push again to resume" in str(caught.value)
    assert h.ops("CompleteMultipartUpload") == []
    assert h.ops("AbortMultipartUpload") == []
    assert h.stored(oid) is None
    assert len(h.open_uploads()) == 1

    h.client.meta.events.unregister("before-call.s3.UploadPart", failing)
    h.calls.clear()
    assert h.store.upload(oid, LARGE, path, Progress(), threading.Event())
    assert 2 in [p["PartNumber"] for p in h.ops("UploadPart")]
    assert h.ops("CreateMultipartUpload") == []
    assert h.stored(oid) == data
    assert h.open_uploads() == []


def test_part_rejected_by_the_store_aborts_the_multipart_upload(
    admin: S3Client, tmp_path: Path
) -> None:
    h = make_harness(admin, tmp_path)
    data, oid = blob(LARGE)
    h.client.meta.events.register("before-call.s3.UploadPart", _fail_part_2("InvalidArgument", 400))

    with pytest.raises(StoreRejected):
        h.store.upload(oid, LARGE, local_file(tmp_path, data), Progress(), threading.Event())

    assert h.ops("CompleteMultipartUpload") == []
    assert len(h.ops("AbortMultipartUpload")) == 1
    assert h.stored(oid) is None
    assert h.open_uploads() == []
    assert upload_records(h) == []


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        pytest.param("InvalidArgument", 400, StoreRejected, id="rejected"),
        pytest.param("InternalError", 500, StorageUnavailable, id="5xx"),
        pytest.param("AccessDenied", 403, AccessDenied, id="denied"),
    ],
)
@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["put", "multipart"])
def test_upload_store_error_keeps_its_class(
    admin: S3Client,
    tmp_path: Path,
    size: int,
    code: str,
    status: int,
    expected: type[TransferError],
) -> None:
    h = make_harness(admin, tmp_path)
    data, oid = blob(size)
    if size > PART:
        h.client.meta.events.register("before-call.s3.UploadPart", _fail_part_2(code, status))
    else:

        def fail_put(**_: Any) -> None:
            raise client_error(code, status, "PutObject")

        h.client.meta.events.register("before-call.s3.PutObject", fail_put)

    with pytest.raises(TransferError) as caught:
        h.store.upload(oid, size, local_file(tmp_path, data), Progress(), threading.Event())

    assert type(caught.value) is expected
    assert caught.value.code == expected.code
    assert "cannot read local object" not in str(caught.value)
    assert code in str(caught.value)


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["put", "multipart"])
def test_checksum_sha256_sends_sha256_and_part_crc32(
    admin: S3Client, tmp_path: Path, size: int
) -> None:
    h = make_harness(admin, tmp_path, checksum="sha256")
    data, oid = blob(size)
    headers: list[dict[str, str]] = []
    h.client.meta.events.register(
        "before-sign.s3.*", lambda request, **_: headers.append(dict(request.headers))
    )

    assert h.store.upload(oid, size, local_file(tmp_path, data), Progress(), threading.Event())

    if size <= PART:
        (put,) = h.ops("PutObject")
        assert put["ChecksumSHA256"] == b64(bytes.fromhex(oid))
        assert any(hd.get("x-amz-checksum-sha256") == b64(bytes.fromhex(oid)) for hd in headers)
    else:
        (create,) = h.ops("CreateMultipartUpload")
        assert create["ChecksumAlgorithm"] == "CRC32"
        parts = sorted(h.ops("UploadPart"), key=lambda p: int(p["PartNumber"]))
        expected = [
            b64(zlib.crc32(data[o : o + PART]).to_bytes(4, "big")) for o in range(0, size, PART)
        ]
        assert [p["ChecksumCRC32"] for p in parts] == expected
        (complete,) = h.ops("CompleteMultipartUpload")
        assert [p["ChecksumCRC32"] for p in complete["MultipartUpload"]["Parts"]] == expected
    assert h.stored(oid) == data


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["put", "multipart"])
def test_checksum_off_sends_no_checksum(admin: S3Client, tmp_path: Path, size: int) -> None:
    h = make_harness(admin, tmp_path, checksum="off")
    data, oid = blob(size)
    headers: list[dict[str, str]] = []
    h.client.meta.events.register(
        "before-sign.s3.*", lambda request, **_: headers.append(dict(request.headers))
    )

    assert h.store.upload(oid, size, local_file(tmp_path, data), Progress(), threading.Event())

    for op, params in h.calls:
        assert not any(k.startswith("Checksum") for k in params), (op, params)
    assert headers
    for hd in headers:  # nor did botocore add a checksum of its own
        assert not any(k.lower().startswith(("x-amz-checksum", "x-amz-sdk-checksum")) for k in hd)
    assert h.stored(oid) == data


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["put", "multipart"])
def test_storage_class_and_sse_reach_the_store(admin: S3Client, tmp_path: Path, size: int) -> None:
    h = make_harness(admin, tmp_path, storage_class="STANDARD_IA", sse="AES256")
    data, oid = blob(size)

    assert h.store.upload(oid, size, local_file(tmp_path, data), Progress(), threading.Event())

    (params,) = h.ops("PutObject" if size <= PART else "CreateMultipartUpload")
    assert params["StorageClass"] == "STANDARD_IA"
    assert params["ServerSideEncryption"] == "AES256"
    assert "SSEKMSKeyId" not in params
    head = admin.head_object(Bucket=BUCKET, Key=key_of(oid))
    assert head["StorageClass"] == "STANDARD_IA"
    assert head["ServerSideEncryption"] == "AES256"


def test_sse_kms_key_id_reaches_the_store(admin: S3Client, tmp_path: Path) -> None:
    key_id = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    h = make_harness(admin, tmp_path, sse="aws:kms", sse_kms_key_id=key_id)
    data, oid = blob(SMALL)

    assert h.store.upload(oid, SMALL, local_file(tmp_path, data), Progress(), threading.Event())

    (params,) = h.ops("PutObject")
    assert params["ServerSideEncryption"] == "aws:kms"
    assert params["SSEKMSKeyId"] == key_id
    assert "StorageClass" not in params


def test_one_connection_slot_serialises_parts(admin: S3Client, tmp_path: Path) -> None:
    h = make_harness(admin, tmp_path, concurrency=3, max_connections=1)
    data, oid = blob(LARGE)
    lock = threading.Lock()
    in_flight = [0, 0]  # now, most

    def start(**_: Any) -> None:
        with lock:
            in_flight[0] += 1
            in_flight[1] = max(in_flight[1], in_flight[0])

    def end(**_: Any) -> None:
        with lock:
            in_flight[0] -= 1

    h.client.meta.events.register("before-call.s3.*", start)
    h.client.meta.events.register("after-call.s3.*", end)
    h.client.meta.events.register("after-call-error.s3.*", end)

    assert h.store.upload(oid, LARGE, local_file(tmp_path, data), Progress(), threading.Event())
    assert h.store.download(oid, LARGE, Progress(), threading.Event()).read_bytes() == data

    assert in_flight == [0, 1]


def test_upload_to_missing_bucket_names_the_bucket(admin: S3Client, tmp_path: Path) -> None:
    h = make_harness(admin, tmp_path, bucket="no-such-bucket")
    data, oid = blob(SMALL)

    with pytest.raises(ObjectNotFound) as caught:
        h.store.upload(oid, SMALL, local_file(tmp_path, data), Progress(), threading.Event())

    assert "'no-such-bucket'" in str(caught.value)
    assert caught.value.code == 404


# --------------------------------------------------------------------------- download


def test_download_small_object_into_a_temp_file(
    admin: S3Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    config = AgentConfig(bucket=BUCKET, prefix=PREFIX, part_size=PART, multipart_threshold=PART)
    client = make_client(config, 2)
    store = S3Store(config, Path("lfs"), client_factory=lambda cfg, pool: client)  # relative
    data, oid = blob(SMALL)
    admin.put_object(Bucket=BUCKET, Key=key_of(oid), Body=data)
    progress = Progress()

    path = store.download(oid, SMALL, progress, threading.Event())

    assert path.is_absolute()
    assert path.parent == tmp_path / "lfs" / "tmp"
    assert not path.name.startswith(oid)
    assert path.read_bytes() == data
    assert progress.total == SMALL
    assert all(d > 0 for d in progress.deltas)


def test_download_large_object_with_ranged_gets(admin: S3Client, tmp_path: Path) -> None:
    h = make_harness(admin, tmp_path)
    data, oid = blob(LARGE)
    put_object(h, data, oid)
    progress = Progress()

    path = h.store.download(oid, LARGE, progress, threading.Event())

    assert path.read_bytes() == data
    assert path.parent == h.lfs_dir / "tmp"
    assert sorted(p["Range"] for p in h.ops("GetObject")) == [
        f"bytes=0-{PART - 1}",
        f"bytes={2 * PART}-{LARGE - 1}",
        f"bytes={PART}-{2 * PART - 1}",
    ]
    assert progress.total == LARGE


def test_concurrent_downloads_of_one_oid_use_two_temp_files(
    admin: S3Client, tmp_path: Path
) -> None:
    h = make_harness(admin, tmp_path)
    data, oid = blob(SMALL)
    put_object(h, data, oid)
    both_running = threading.Barrier(2, timeout=10)

    def fetch() -> Path:
        first = [True]

        def meet(total: int) -> None:
            if first[0]:  # both temp files exist and are being written
                first[0] = False
                both_running.wait()

        return h.store.download(oid, SMALL, Progress(meet), threading.Event())

    with ThreadPoolExecutor(2) as pool:
        a, b = (f.result(timeout=30) for f in [pool.submit(fetch), pool.submit(fetch)])

    assert a != b
    assert a.read_bytes() == data
    assert b.read_bytes() == data
    assert h.temp_files() == sorted([a, b])


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["whole", "ranged"])
def test_download_of_missing_oid_is_object_not_found(
    admin: S3Client, tmp_path: Path, size: int, sleeps: list[float]
) -> None:
    h = make_harness(admin, tmp_path)
    _, oid = blob(size)

    with pytest.raises(TransferError) as caught:
        h.store.download(oid, size, Progress(), threading.Event())

    err = caught.value
    assert type(err) is ObjectNotFound
    assert err.code == 404
    assert err.oid == oid
    assert err.key == key_of(oid)
    assert oid in str(err)
    assert f"s3://{BUCKET}/{key_of(oid)}" in str(err)
    assert sleeps == []  # a 404 is an answer, not a broken stream
    assert h.temp_files() == []


def test_download_from_missing_bucket_names_the_bucket(
    admin: S3Client, tmp_path: Path, sleeps: list[float]
) -> None:
    h = make_harness(admin, tmp_path, bucket="no-such-bucket")
    _, oid = blob(SMALL)

    with pytest.raises(TransferError) as caught:
        h.store.download(oid, SMALL, Progress(), threading.Event())

    assert type(caught.value) is ObjectNotFound
    assert "'no-such-bucket'" in str(caught.value)
    assert h.temp_files() == []


def test_download_access_denied_is_not_retried(
    admin: S3Client, tmp_path: Path, sleeps: list[float]
) -> None:
    h = make_harness(admin, tmp_path)
    data, oid = blob(SMALL)
    put_object(h, data, oid)

    def deny(**_: Any) -> None:
        raise client_error("AccessDenied", 403, "GetObject")

    h.client.meta.events.register("before-call.s3.GetObject", deny)

    with pytest.raises(TransferError) as caught:
        h.store.download(oid, SMALL, Progress(), threading.Event())

    assert type(caught.value) is AccessDenied
    assert len(h.ops("GetObject")) == 1
    assert h.temp_files() == []


@pytest.mark.parametrize(
    ("stored", "requested"),
    [
        (SMALL, SMALL + 1),  # whole GET, store has fewer bytes
        (LARGE, SMALL),  # whole GET, store has more bytes
        (LARGE, LARGE - 1),  # ranged GETs, store has more bytes
        (LARGE, LARGE + PART),  # ranged GETs reaching past the stored end
        (SMALL, LARGE),  # ranged GETs, store has far fewer bytes
    ],
)
def test_download_size_mismatch_is_corrupt(
    admin: S3Client, tmp_path: Path, stored: int, requested: int, sleeps: list[float]
) -> None:
    h = make_harness(admin, tmp_path)
    data, oid = blob(stored)
    put_object(h, data, oid)

    with pytest.raises(CorruptObject) as caught:
        h.store.download(oid, requested, Progress(), threading.Event())

    assert f"has {stored} bytes, expected {requested}" in str(caught.value)
    assert caught.value.key == key_of(oid)
    assert h.temp_files() == []


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["whole", "ranged"])
def test_download_of_object_not_matching_its_oid_is_corrupt(
    admin: S3Client, tmp_path: Path, size: int
) -> None:
    h = make_harness(admin, tmp_path)
    data, oid = blob(size)
    damaged = bytearray(data)
    damaged[size - 10] ^= 0xFF  # in the last range
    put_object(h, bytes(damaged), oid)

    with pytest.raises(CorruptObject) as caught:
        h.store.download(oid, size, Progress(), threading.Event())

    assert caught.value.oid == oid
    assert caught.value.key == key_of(oid)
    assert hashlib.sha256(damaged).hexdigest() in str(caught.value)
    assert f"s3://{BUCKET}/{key_of(oid)}" in str(caught.value)
    assert h.temp_files() == []


def test_download_cancelled_before_start_sends_no_get(admin: S3Client, tmp_path: Path) -> None:
    h = make_harness(admin, tmp_path)
    data, oid = blob(SMALL)
    put_object(h, data, oid)
    cancel = threading.Event()
    cancel.set()

    with pytest.raises(Interrupted):
        h.store.download(oid, SMALL, Progress(), cancel)

    assert h.ops("GetObject") == []
    assert h.temp_files() == []


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["whole", "ranged"])
def test_download_cancelled_midway_leaves_no_temp_file(
    admin: S3Client, tmp_path: Path, size: int
) -> None:
    # A ranged download keeps its partial file for the next download, outside lfs/tmp
    # (tests/test_faults_resume.py); nothing is left where git-lfs looks.
    h = make_harness(admin, tmp_path)
    data, oid = blob(size)
    put_object(h, data, oid)
    cancel = threading.Event()
    gate = threading.Event()

    def cancel_now(total: int) -> None:
        cancel.set()
        if size > PART:
            # Ranges run in threads that the main thread stops when it polls `cancel` (every
            # 0.2 s): hold this one until then, or the download could finish first.
            gate.wait(0.5)

    with pytest.raises(Interrupted):
        h.store.download(oid, size, Progress(cancel_now), cancel)

    assert h.temp_files() == []


class _BreakingRaw:
    """A raw HTTP stream that fails after `budget` bytes: reset, truncation or urllib3 error."""

    def __init__(self, inner: StreamingBody, budget: int, how: str) -> None:
        self._inner = inner
        self._budget = budget
        self._how = how

    def read(self, amt: int | None = None) -> bytes:
        if self._budget <= 0:
            if self._how == "truncated":
                return b""
            if self._how == "reset":
                raise ConnectionResetError(104, "Connection reset by peer")
            raise urllib3.exceptions.ProtocolError("Connection broken: IncompleteRead")
        want = self._budget if amt is None else min(amt, self._budget)
        data = self._inner.read(want)
        self._budget -= len(data)
        return data

    def close(self) -> None:
        self._inner.close()


def _break_streams(h: Harness, budget: int, how: str, *, times: int) -> list[str]:
    """Make the first `times` GetObject bodies break after `budget` bytes; returns their ranges."""
    broken: list[str] = []
    lock = threading.Lock()

    def wrap(parsed: dict[str, Any], **_: Any) -> None:
        with lock:
            if len(broken) >= times:
                return
            broken.append(str(parsed.get("ContentRange", "")))
        body = parsed["Body"]
        raw = cast("IO[bytes]", _BreakingRaw(body, budget, how))
        parsed["Body"] = StreamingBody(raw, parsed["ContentLength"])

    h.client.meta.events.register("after-call.s3.GetObject", wrap)
    return broken


@pytest.mark.parametrize("how", ["protocol", "truncated", "reset"])
def test_broken_stream_is_retried_and_download_succeeds(
    admin: S3Client, tmp_path: Path, how: str, sleeps: list[float]
) -> None:
    h = make_harness(admin, tmp_path, retries=1)
    data, oid = blob(SMALL)
    put_object(h, data, oid)
    broken = _break_streams(h, MiB + MiB // 2, how, times=1)

    path = h.store.download(oid, SMALL, Progress(), threading.Event())

    assert path.read_bytes() == data
    assert len(broken) == 1
    assert len(h.ops("GetObject")) == 2
    assert len(sleeps) == 1
    assert 0 < sleeps[0] <= 5
    assert h.temp_files() == [path]


@pytest.mark.parametrize("how", ["protocol", "truncated", "reset"])
def test_broken_stream_is_resumed_where_it_stopped(
    admin: S3Client, tmp_path: Path, how: str, sleeps: list[float]
) -> None:
    h = make_harness(admin, tmp_path, retries=1)
    data, oid = blob(SMALL)
    put_object(h, data, oid)
    cut = MiB + MiB // 2
    _break_streams(h, cut, how, times=1)
    progress = Progress()

    path = h.store.download(oid, SMALL, progress, threading.Event())

    assert path.read_bytes() == data
    assert [g.get("Range") for g in h.ops("GetObject")] == [None, f"bytes={cut}-{SMALL - 1}"]
    assert progress.total == SMALL


def test_broken_range_is_retried_and_download_succeeds(
    admin: S3Client, tmp_path: Path, sleeps: list[float]
) -> None:
    h = make_harness(admin, tmp_path, retries=1)
    data, oid = blob(LARGE)
    put_object(h, data, oid)
    broken = _break_streams(h, MiB // 2, "protocol", times=1)

    path = h.store.download(oid, LARGE, progress := Progress(), threading.Event())

    assert path.read_bytes() == data
    assert len(broken) == 1
    assert len(h.ops("GetObject")) == 4
    assert len(sleeps) == 1
    assert progress.total >= LARGE


def test_broken_range_is_resumed_within_its_range(
    admin: S3Client, tmp_path: Path, sleeps: list[float]
) -> None:
    h = make_harness(admin, tmp_path, retries=1)
    data, oid = blob(LARGE)
    put_object(h, data, oid)
    cut = MiB // 2
    broken = _break_streams(h, cut, "protocol", times=1)
    progress = Progress()

    path = h.store.download(oid, LARGE, progress, threading.Event())

    assert path.read_bytes() == data
    # "bytes a-b/total" of the broken GET: the resumed GET asks for [a + cut, b].
    (content_range,) = broken
    start, end = (int(n) for n in content_range.split()[1].split("/")[0].split("-"))
    assert f"bytes={start + cut}-{end}" in [g["Range"] for g in h.ops("GetObject")]
    assert progress.total == LARGE


@pytest.mark.parametrize("retries", [0, 2])
def test_stream_breaking_every_time_gives_up_after_retries(
    admin: S3Client, tmp_path: Path, retries: int, sleeps: list[float]
) -> None:
    h = make_harness(admin, tmp_path, retries=retries)
    data, oid = blob(SMALL)
    put_object(h, data, oid)
    _break_streams(h, 256 * 1024, "protocol", times=1000)

    with pytest.raises(StorageUnavailable) as caught:
        h.store.download(oid, SMALL, Progress(), threading.Event())

    assert caught.value.code == 503
    assert caught.value.oid == oid
    assert f"after {retries} retries" in str(caught.value)
    assert isinstance(caught.value.__cause__, ResponseStreamingError)
    assert len(h.ops("GetObject")) == retries + 1
    assert len(sleeps) == retries
    assert h.temp_files() == []


def test_truncated_body_is_detected_not_accepted(
    admin: S3Client, tmp_path: Path, sleeps: list[float]
) -> None:
    h = make_harness(admin, tmp_path, retries=0)
    data, oid = blob(SMALL)
    put_object(h, data, oid)
    _break_streams(h, MiB, "truncated", times=1)

    with pytest.raises(StorageUnavailable) as caught:
        h.store.download(oid, SMALL, Progress(), threading.Event())

    assert isinstance(caught.value.__cause__, IncompleteReadError)
    assert h.temp_files() == []


# --------------------------------------------------------------------------- the client


def test_store_builds_its_client_once_on_first_use(aws_env: None, tmp_path: Path) -> None:
    config = AgentConfig(bucket=BUCKET, concurrency=8, max_connections=2)
    built: list[tuple[AgentConfig, int]] = []

    def factory(cfg: AgentConfig, pool: int) -> S3Client:
        built.append((cfg, pool))
        return make_client(
            AgentConfig(bucket=BUCKET, endpoint="http://127.0.0.1:9", region="eu-west-1"), pool
        )

    store = S3Store(config, tmp_path, client_factory=factory)
    assert built == []
    assert store.where("download", "ab" * 32).endpoint == "AWS S3"

    client = store.client
    assert store.client is client
    assert built == [(config, 2)]
    where = store.where("upload", "ab" * 32)
    assert where.endpoint == "http://127.0.0.1:9"
    assert where.key == config.object_key("ab" * 32)
    assert where.bucket == BUCKET


@pytest.mark.parametrize("checksum", ["sha256", "off"])
def test_make_client_applies_the_settings(aws_env: None, checksum: str) -> None:
    config = AgentConfig(
        bucket="b",
        endpoint="http://127.0.0.1:9",
        addressing_style="path",
        region="eu-west-1",
        checksum=checksum,
        retries=3,
    )

    client = make_client(config, 4)

    assert client.meta.endpoint_url == "http://127.0.0.1:9"
    assert client.meta.region_name == "eu-west-1"
    cfg: Any = client.meta.config
    assert cfg.max_pool_connections == 4
    assert cfg.retries["mode"] == "standard"
    assert cfg.retries["total_max_attempts"] == 4  # the first attempt and 3 retries
    assert cfg.s3["addressing_style"] == "path"
    assert cfg.s3.get("payload_signing_enabled") is (False if checksum == "sha256" else None)
    assert cfg.request_checksum_calculation == "when_required"
    assert cfg.response_checksum_validation == "when_required"
    assert USER_AGENT in cfg.user_agent_extra


def test_make_client_defaults_follow_boto3s_chain(
    aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-southeast-2")

    client = make_client(AgentConfig(bucket="b"), 16)

    assert client.meta.endpoint_url == "http://127.0.0.1:9"
    assert client.meta.region_name == "ap-southeast-2"
    cfg: Any = client.meta.config
    assert cfg.s3["addressing_style"] == "auto"
