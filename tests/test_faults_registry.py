"""Faults under `registry.resolve` of an s3:// root: moto's server behind the fault proxy.

`resolve` builds its client from the default chain, so the proxy comes in through
AWS_ENDPOINT_URL. Each test checks what the caller gets (files or an error naming the object),
that nothing unverified is in the cache's objects, and that a plain retry heals.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.s3servers import S3Bucket
from registry import resolve
from registry.cache import Cache
from tests.faultproxy import Fault, FaultProxy
from tests.s3releases import files_of, publish_by_hand, url

MiB = 1024 * 1024
SPEC = "base/1.2"


@pytest.fixture
def proxied(moto_s3: S3Bucket, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultProxy]:
    with FaultProxy(moto_s3.server.endpoint) as proxy:
        for key, value in moto_s3.server.env().items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
        yield proxy


@pytest.fixture
def checkpoint(moto_s3: S3Bucket) -> bytes:
    files = files_of("1.2", size=3 * MiB)
    publish_by_hand(moto_s3, {f"YOLOX-l/{SPEC}": files})
    return files["checkpoint.pth"]


def assert_cache_sound(cache_dir: Path) -> None:
    objects = cache_dir / "objects"
    for path in objects.rglob("*") if objects.exists() else []:
        if path.is_file() and len(path.name) == 64:
            assert hashlib.sha256(path.read_bytes()).hexdigest() == path.name, path


def test_reset_mid_body_is_resumed_within_resolve(
    moto_s3: S3Bucket, proxied: FaultProxy, checkpoint: bytes, tmp_path: Path
) -> None:
    oid = hashlib.sha256(checkpoint).hexdigest()
    proxied.add(Fault("reset", method="GET", path=oid, response_bytes=MiB))
    model = resolve(SPEC, root=url(moto_s3), cache_dir=tmp_path)
    assert model.files["checkpoint.pth"].read_bytes() == checkpoint
    assert proxied.count("GET", oid, fault="reset") == 1
    assert proxied.count("GET", oid) == 2
    assert_cache_sound(tmp_path)


def test_access_denied_names_the_object_and_caches_nothing(
    moto_s3: S3Bucket, proxied: FaultProxy, checkpoint: bytes, tmp_path: Path
) -> None:
    oid = hashlib.sha256(checkpoint).hexdigest()
    proxied.add(Fault("status", method="GET", path=oid, status=403, code="AccessDenied"))
    with pytest.raises(Exception, match=oid) as caught:
        resolve(SPEC, root=url(moto_s3), cache_dir=tmp_path)
    assert "denied" in str(caught.value).lower()
    assert not Cache(tmp_path).has(oid, len(checkpoint))
    assert_cache_sound(tmp_path)

    proxied.clear()
    model = resolve(SPEC, root=url(moto_s3), cache_dir=tmp_path)
    assert model.files["checkpoint.pth"].read_bytes() == checkpoint


def test_body_truncated_every_time_keeps_what_came_and_retry_resumes(
    moto_s3: S3Bucket, proxied: FaultProxy, checkpoint: bytes, tmp_path: Path
) -> None:
    oid = hashlib.sha256(checkpoint).hexdigest()
    # Each GET delivers 256 KiB more, then the body ends short.
    proxied.add(Fault("truncate", method="GET", path=oid, times=None, response_bytes=256 * 1024))
    with pytest.raises(Exception, match=oid) as caught:
        resolve(SPEC, root=url(moto_s3), cache_dir=tmp_path)
    assert "running the same command again resumes it" in str(caught.value)
    assert not Cache(tmp_path).has(oid, len(checkpoint))
    assert_cache_sound(tmp_path)
    tries = proxied.count("GET", oid)

    proxied.clear()
    model = resolve(SPEC, root=url(moto_s3), cache_dir=tmp_path)
    assert model.files["checkpoint.pth"].read_bytes() == checkpoint
    assert proxied.count("GET", oid) == tries + 1
    assert_cache_sound(tmp_path)
