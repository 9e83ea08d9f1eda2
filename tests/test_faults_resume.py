"""Resumable downloads and the local resume records, at the store level on moto's mock S3.

Upload resume is covered in tests/test_s3store.py (the multipart contract) and end to end in
tests/test_faults_e2e.py.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from lfs_agent.errors import CorruptObject, Interrupted, StorageUnavailable
from lfs_agent.resume import Records
from tests.test_s3store import (
    LARGE,
    PART,
    Harness,
    Progress,
    admin,
    aws_env,
    blob,
    client_error,
    make_harness,
    put_object,
    sleeps,
)

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

__all__ = ["admin", "aws_env", "sleeps"]  # fixtures, imported for pytest


def downloads(h: Harness) -> Path:
    return h.lfs_dir / "lfs-s3" / "downloads"


def leftovers(h: Harness) -> list[str]:
    d = downloads(h)
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


def interrupted_download(h: Harness, oid: str, after: int) -> None:
    """Download with concurrency 1, cancelled once `after` bytes came in."""
    cancel = threading.Event()
    gate = threading.Event()

    def stop(total: int) -> None:
        if total >= after and not cancel.is_set():
            cancel.set()
            # Ranges run in threads that the main thread stops when it polls `cancel` (every
            # 0.2 s): hold this one until then, or the download could finish first.
            gate.wait(0.5)

    with pytest.raises(Interrupted):
        h.store.download(oid, LARGE, Progress(stop), cancel)


def test_interrupted_download_resumes_from_verified_ranges(admin: S3Client, tmp_path: Path) -> None:
    h = make_harness(admin, tmp_path, concurrency=1)
    data, oid = blob(LARGE)
    put_object(h, data, oid)
    interrupted_download(h, oid, PART + 1)
    assert h.temp_files() == []
    assert f"{oid}.part" in leftovers(h)
    record = json.loads((downloads(h) / f"{oid}.json").read_text())
    assert len(record["ranges"]) >= 1

    h.calls.clear()
    progress = Progress()
    path = h.store.download(oid, LARGE, progress, threading.Event())
    assert path.read_bytes() == data
    assert path.parent == h.lfs_dir / "tmp" and path.name.startswith("lfs-s3-")
    ranges = [p["Range"] for p in h.ops("GetObject")]
    assert "bytes=0-5242879" not in ranges  # the first range was kept, not fetched again
    assert progress.total == LARGE
    assert leftovers(h) == []


def test_kept_range_damaged_on_disk_is_fetched_again(admin: S3Client, tmp_path: Path) -> None:
    h = make_harness(admin, tmp_path, concurrency=1)
    data, oid = blob(LARGE)
    put_object(h, data, oid)
    interrupted_download(h, oid, PART + 1)
    part = downloads(h) / f"{oid}.part"
    with part.open("r+b") as f:
        f.seek(100)
        f.write(b"\0" * 10)

    h.calls.clear()
    path = h.store.download(oid, LARGE, Progress(), threading.Event())
    assert path.read_bytes() == data
    assert "bytes=0-5242879" in [p["Range"] for p in h.ops("GetObject")]


def test_kept_bytes_of_another_object_version_are_dropped_once(
    admin: S3Client, tmp_path: Path
) -> None:
    # The partial file verifies range by range (its CRCs were recorded from what the store
    # sent then), but the store held other bytes at the time: start over rather than fail.
    h = make_harness(admin, tmp_path, concurrency=1)
    data, oid = blob(LARGE)
    wrong = bytearray(data)
    wrong[10] ^= 0xFF
    put_object(h, bytes(wrong), oid)
    interrupted_download(h, oid, PART + 1)
    put_object(h, data, oid)  # repaired in the store

    path = h.store.download(oid, LARGE, Progress(), threading.Event())
    assert path.read_bytes() == data
    assert leftovers(h) == []


def test_corrupt_object_in_store_leaves_no_partial(admin: S3Client, tmp_path: Path) -> None:
    h = make_harness(admin, tmp_path)
    data, oid = blob(LARGE)
    damaged = bytearray(data)
    damaged[-10] ^= 0xFF
    put_object(h, bytes(damaged), oid)
    with pytest.raises(CorruptObject):
        h.store.download(oid, LARGE, Progress(), threading.Event())
    assert leftovers(h) == []
    assert h.temp_files() == []


def test_transient_failure_keeps_the_partial(
    admin: S3Client, tmp_path: Path, sleeps: list[float]
) -> None:
    h = make_harness(admin, tmp_path, concurrency=1)
    data, oid = blob(LARGE)
    put_object(h, data, oid)

    def fail_third_range(params: dict[str, object], **_: object) -> None:
        headers = params.get("headers")
        if isinstance(headers, dict) and str(headers.get("Range", "")).startswith("bytes=10485760"):
            raise client_error("SlowDown", 503, "GetObject")

    h.client.meta.events.register("before-call.s3.GetObject", fail_third_range)
    with pytest.raises(StorageUnavailable):
        h.store.download(oid, LARGE, Progress(), threading.Event())
    record = json.loads((downloads(h) / f"{oid}.json").read_text())
    assert len(record["ranges"]) == 2

    h.client.meta.events.unregister("before-call.s3.GetObject", fail_third_range)
    h.calls.clear()
    assert h.store.download(oid, LARGE, Progress(), threading.Event()).read_bytes() == data
    assert [p["Range"] for p in h.ops("GetObject")] == ["bytes=10485760-12582911"]


def test_same_oid_at_once_second_process_uses_its_own_temp_file(
    admin: S3Client, tmp_path: Path
) -> None:
    h = make_harness(admin, tmp_path)
    data, oid = blob(LARGE)
    put_object(h, data, oid)
    records = Records(downloads(h))
    with records.locked(oid) as mine:  # as if another process were fetching it
        assert mine
        path = h.store.download(oid, LARGE, Progress(), threading.Event())
    assert path.read_bytes() == data
    assert not (downloads(h) / f"{oid}.part").exists()


def test_records_lock_is_exclusive_and_removed_when_nothing_is_kept(tmp_path: Path) -> None:
    records = Records(tmp_path / "r")
    oid = "ab" * 32
    with records.locked(oid) as first:
        assert first
        with records.locked(oid, wait=False) as second:
            assert not second
        records.save(oid, {"x": 1})
    assert records.load(oid) == {"x": 1}
    assert (tmp_path / "r" / f"{oid}.lock").exists()
    records.forget(oid)
    with records.locked(oid):
        pass
    assert sorted(os.listdir(tmp_path / "r")) == []


def test_unreadable_record_is_ignored(tmp_path: Path) -> None:
    records = Records(tmp_path)
    (tmp_path / ("cd" * 32 + ".json")).write_text("{not json")
    assert records.load("cd" * 32) is None
    assert Records(None).load("cd" * 32) is None
