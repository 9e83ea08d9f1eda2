"""The fault proxy itself, with boto3 against moto's server on 127.0.0.1 behind it."""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from botocore.exceptions import ClientError

from devtools.s3servers import S3Bucket
from tests.faultproxy import Fault, FaultProxy

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

DATA = os.urandom(300_000)


@pytest.fixture
def proxy(moto_s3: S3Bucket) -> Iterator[FaultProxy]:
    with FaultProxy(moto_s3.server.endpoint) as proxy:
        yield proxy


def client_via(
    proxy: FaultProxy, bucket: S3Bucket, attempts: int = 1, **config: object
) -> S3Client:
    server = dataclasses.replace(bucket.server, endpoint=proxy.endpoint)
    return server.client(retries={"total_max_attempts": attempts, "mode": "standard"}, **config)


def put(client: S3Client, bucket: S3Bucket, key: str = "k", data: bytes = DATA) -> None:
    client.put_object(Bucket=bucket.name, Key=key, Body=data)


def test_relays_requests_unchanged_and_counts_them(proxy: FaultProxy, moto_s3: S3Bucket) -> None:
    client = client_via(proxy, moto_s3)
    put(client, moto_s3)
    assert client.get_object(Bucket=moto_s3.name, Key="k")["Body"].read() == DATA
    assert client.head_object(Bucket=moto_s3.name, Key="k")["ContentLength"] == len(DATA)
    assert proxy.count("PUT") == 1 and proxy.count("GET", "/k") == 1 and proxy.count("HEAD") == 1
    assert proxy.count(fault="reset") == 0


def test_status_fault_is_an_s3_error_then_passes(proxy: FaultProxy, moto_s3: S3Bucket) -> None:
    client = client_via(proxy, moto_s3)
    put(client, moto_s3)
    proxy.add(Fault("status", method="GET", status=503, code="SlowDown", times=1))
    with pytest.raises(ClientError) as caught:
        client.get_object(Bucket=moto_s3.name, Key="k")
    assert caught.value.response["Error"]["Code"] == "SlowDown"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert client.get_object(Bucket=moto_s3.name, Key="k")["Body"].read() == DATA
    assert proxy.count("GET", fault="status") == 1


def test_status_fault_on_upload_with_expect_continue(proxy: FaultProxy, moto_s3: S3Bucket) -> None:
    client = client_via(proxy, moto_s3)
    proxy.add(Fault("status", method="PUT", status=403, code="AccessDenied"))
    big = os.urandom(2 * 1024 * 1024)  # botocore sends Expect: 100-continue above 1 MiB
    with pytest.raises(ClientError) as caught:
        put(client, moto_s3, data=big)
    assert caught.value.response["Error"]["Code"] == "AccessDenied"
    put(client, moto_s3, data=big)
    assert client.get_object(Bucket=moto_s3.name, Key="k")["Body"].read() == big


def test_skip_lets_matches_through_first(proxy: FaultProxy, moto_s3: S3Bucket) -> None:
    client = client_via(proxy, moto_s3)
    put(client, moto_s3)
    proxy.add(Fault("status", method="GET", skip=2, status=500, code="InternalError"))
    for _ in range(2):
        client.get_object(Bucket=moto_s3.name, Key="k")["Body"].read()
    with pytest.raises(ClientError, match="InternalError"):
        client.get_object(Bucket=moto_s3.name, Key="k")
    assert client.get_object(Bucket=moto_s3.name, Key="k")["Body"].read() == DATA


def test_reset_before_forwarding(proxy: FaultProxy, moto_s3: S3Bucket) -> None:
    client = client_via(proxy, moto_s3)
    proxy.add(Fault("reset", method="PUT"))
    with pytest.raises(Exception) as caught:
        put(client, moto_s3)
    assert not isinstance(caught.value, ClientError)
    assert proxy.count("PUT", fault="reset") == 1
    put(client, moto_s3)  # the next connection works


def test_reset_after_request_bytes_leaves_no_object(proxy: FaultProxy, moto_s3: S3Bucket) -> None:
    client = client_via(proxy, moto_s3)
    proxy.add(Fault("reset", method="PUT", request_bytes=100_000))
    with pytest.raises(Exception) as caught:
        put(client, moto_s3)
    assert not isinstance(caught.value, ClientError)
    direct = moto_s3.server.client()
    assert direct.list_objects_v2(Bucket=moto_s3.name).get("KeyCount") == 0


@pytest.mark.parametrize("kind", ["truncate", "reset"])
def test_response_body_cut_after_bytes(proxy: FaultProxy, moto_s3: S3Bucket, kind: str) -> None:
    client = client_via(proxy, moto_s3)
    put(client, moto_s3)
    proxy.add(Fault(kind, method="GET", response_bytes=1000))  # type: ignore[arg-type]
    body = client.get_object(Bucket=moto_s3.name, Key="k")["Body"]
    with pytest.raises(Exception) as caught:
        body.read()
    assert not isinstance(caught.value, ClientError)
    assert client.get_object(Bucket=moto_s3.name, Key="k")["Body"].read() == DATA


def test_stall_delays_then_relays(proxy: FaultProxy, moto_s3: S3Bucket) -> None:
    client = client_via(proxy, moto_s3)
    put(client, moto_s3)
    proxy.add(Fault("stall", method="GET", seconds=0.5))
    start = time.monotonic()
    assert client.get_object(Bucket=moto_s3.name, Key="k")["Body"].read() == DATA
    assert time.monotonic() - start >= 0.5


def test_stall_mid_body_trips_the_read_timeout(proxy: FaultProxy, moto_s3: S3Bucket) -> None:
    client = client_via(proxy, moto_s3, read_timeout=0.3)
    put(client, moto_s3)
    proxy.add(Fault("stall", method="GET", seconds=2, response_bytes=1000))
    body = client.get_object(Bucket=moto_s3.name, Key="k")["Body"]
    with pytest.raises(Exception, match="(?i)timed? ?out"):
        body.read()


def test_only_loopback_upstreams() -> None:
    with pytest.raises(ValueError, match="127.0.0.1"):
        FaultProxy("http://example.com:80")
