"""The agent's own S3 client (`s3http` over `http1`, signed by `sigv4`, built by `s3client`).

Three kinds of server:
- moto and SeaweedFS (conftest): the calls' shapes and errors against real S3 implementations;
  SeaweedFS also verifies every signature and checksum;
- `ScriptedServer` below: canned bytes on 127.0.0.1, for what real servers do rarely or not at
  will (framing, cut-short bodies, closed keep-alive connections, 5xx, 200-with-error, AWS's
  region redirects and its ListParts with checksums).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from devtools.s3servers import LOOPBACK, S3Bucket
from lfs_agent import s3http
from lfs_agent.config import AgentConfig
from lfs_agent.errors import (
    AccessDenied,
    CorruptObject,
    ObjectNotFound,
    StorageUnavailable,
    StoreRejected,
)
from lfs_agent.http1 import HttpProtocolError, Limits, Stalled
from lfs_agent.s3client import make_data_client
from lfs_agent.s3errors import Where, error_code, translate
from lfs_agent.s3http import S3Http, S3HttpError
from lfs_agent.s3resume import _list_parts, crc32_b64, verified_part
from lfs_agent.slots import Slots
from lfs_agent.transfer import Transfer

MiB = 1024 * 1024
OID = "4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393"
KEY = f"reg/objects/4d/7a/{OID}"
NS = "http://s3.amazonaws.com/doc/2006-03-01/"


def data_of(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


def md5_etag(data: bytes) -> str:
    return '"' + hashlib.md5(data, usedforsecurity=False).hexdigest() + '"'


def where(bucket: str, endpoint: str, action: str = "download") -> Where:
    return Where(action, OID, bucket, KEY, endpoint)


# ============================================================================================
# 1. Against real servers: moto and SeaweedFS


@pytest.fixture(params=["moto", "seaweed"])
def bucket(request: pytest.FixtureRequest) -> S3Bucket:
    found: S3Bucket = request.getfixturevalue(f"{request.param}_s3")
    return found


pytestmark = pytest.mark.usefixtures("close_s3http_clients")


def client_for(where: S3Bucket, **overrides: Any) -> S3Http:
    server = where.server
    args: dict[str, Any] = {
        "bucket": where.name,
        "region": server.region,
        "endpoint": server.endpoint,
        "credentials": (server.access_key, server.secret_key, None),
        "retries": 0,
    }
    args.update(overrides)
    return S3Http(**args)


def test_put_head_get_round_trip(bucket: S3Bucket) -> None:
    client = client_for(bucket)
    data = data_of(300_000)
    reply = client.put_object(
        Bucket=bucket.name,
        Key=KEY,
        Body=data,
        ContentLength=len(data),
        Metadata={"oid": OID},
        ChecksumSHA256=b64(hashlib.sha256(data).digest()),
    )
    assert reply["ETag"] == md5_etag(data)

    head = client.head_object(Bucket=bucket.name, Key=KEY)
    assert head["ContentLength"] == len(data)
    assert head["Metadata"] == {"oid": OID}
    assert head["ETag"] == md5_etag(data)

    whole = client.get_object(Bucket=bucket.name, Key=KEY)
    assert whole["ContentLength"] == len(data)
    assert b"".join(whole["Body"].iter_chunks(64 * 1024)) == data
    whole["Body"].close()

    ranged = client.get_object(Bucket=bucket.name, Key=KEY, Range="bytes=1000-1999")
    assert ranged["ContentRange"] == f"bytes 1000-1999/{len(data)}"
    assert ranged["ContentLength"] == 1000
    assert ranged["Body"].read() == data[1000:2000]
    ranged["Body"].close()

    # What the admin's boto3 client sees is what we wrote.
    admin = bucket.server.client()
    try:
        assert admin.get_object(Bucket=bucket.name, Key=KEY)["Body"].read() == data
    finally:
        admin.close()
    client.close()


def test_put_if_none_match_refuses_an_existing_key(bucket: S3Bucket) -> None:
    client = client_for(bucket)
    client.put_object(Bucket=bucket.name, Key=KEY, Body=b"first", ContentLength=5)
    with pytest.raises(S3HttpError) as caught:
        client.put_object(
            Bucket=bucket.name, Key=KEY, Body=b"second", ContentLength=6, IfNoneMatch="*"
        )
    assert caught.value.status == 412
    assert error_code(caught.value) == "PreconditionFailed"
    got = client.get_object(Bucket=bucket.name, Key=KEY)
    assert got["Body"].read() == b"first"
    got["Body"].close()


def test_multipart_upload_with_crc32_list_complete(bucket: S3Bucket) -> None:
    client = client_for(bucket)
    parts = [data_of(5 * MiB, seed=1), data_of(1234, seed=2)]
    upload_id = client.create_multipart_upload(
        Bucket=bucket.name, Key=KEY, ChecksumAlgorithm="CRC32", Metadata={"oid": OID}
    )["UploadId"]
    assert upload_id
    sent = []
    for number, part in enumerate(parts, start=1):
        # One bytes body, one file body: both are sent and (with the checksum) not hashed.
        body: bytes | io.BytesIO = part if number == 1 else io.BytesIO(part)
        reply = client.upload_part(
            Bucket=bucket.name,
            Key=KEY,
            UploadId=upload_id,
            PartNumber=number,
            Body=body,
            ContentLength=len(part),
            ChecksumCRC32=crc32_b64(part),
        )
        assert reply["ETag"] == md5_etag(part)
        sent.append({"PartNumber": number, "ETag": reply["ETag"], "ChecksumCRC32": crc32_b64(part)})

    listed = client.list_parts(Bucket=bucket.name, Key=KEY, UploadId=upload_id)
    assert listed["IsTruncated"] is False
    assert [(p["PartNumber"], p["Size"], p["ETag"]) for p in listed["Parts"]] == [
        (1, 5 * MiB, md5_etag(parts[0])),
        (2, 1234, md5_etag(parts[1])),
    ]

    done = client.complete_multipart_upload(
        Bucket=bucket.name, Key=KEY, UploadId=upload_id, MultipartUpload={"Parts": sent}
    )
    assert done["ETag"].strip('"').endswith("-2")
    head = client.head_object(Bucket=bucket.name, Key=KEY)
    assert head["ContentLength"] == 5 * MiB + 1234
    assert head["Metadata"] == {"oid": OID}
    got = client.get_object(Bucket=bucket.name, Key=KEY, Range=f"bytes={5 * MiB - 10}-")
    assert got["Body"].read() == parts[0][-10:] + parts[1]
    got["Body"].close()


def test_abort_multipart_upload(bucket: S3Bucket) -> None:
    client = client_for(bucket)
    upload_id = client.create_multipart_upload(Bucket=bucket.name, Key=KEY)["UploadId"]
    client.upload_part(
        Bucket=bucket.name,
        Key=KEY,
        UploadId=upload_id,
        PartNumber=1,
        Body=b"x" * 100,
        ContentLength=100,
    )
    assert client.abort_multipart_upload(Bucket=bucket.name, Key=KEY, UploadId=upload_id) == {}
    admin = bucket.server.client()
    try:
        uploads = admin.list_multipart_uploads(Bucket=bucket.name).get("Uploads", [])
    finally:
        admin.close()
    assert upload_id not in [u.get("UploadId") for u in uploads]
    with pytest.raises(S3HttpError) as caught:
        client.list_parts(Bucket=bucket.name, Key=KEY, UploadId=upload_id)
    assert error_code(caught.value) == "NoSuchUpload"


def test_missing_key_and_bucket(bucket: S3Bucket) -> None:
    client = client_for(bucket)
    endpoint = bucket.server.endpoint
    with pytest.raises(S3HttpError) as get_missing:
        client.get_object(Bucket=bucket.name, Key=KEY)
    assert (get_missing.value.status, error_code(get_missing.value)) == (404, "NoSuchKey")
    with pytest.raises(S3HttpError) as head_missing:
        client.head_object(Bucket=bucket.name, Key=KEY)  # a HEAD reply has no body: no code
    assert (head_missing.value.status, error_code(head_missing.value)) == (404, "404")
    for exc in (get_missing.value, head_missing.value):
        error = translate(exc, where(bucket.name, endpoint))
        assert isinstance(error, ObjectNotFound)
        assert f"s3://{bucket.name}/{KEY} does not exist" in str(error)

    gone = bucket.name + "-missing"
    with pytest.raises(S3HttpError) as no_bucket:
        client_for(bucket, bucket=gone).get_object(Bucket=gone, Key=KEY)
    assert (no_bucket.value.status, error_code(no_bucket.value)) == (404, "NoSuchBucket")
    error = translate(no_bucket.value, where(gone, endpoint))
    assert isinstance(error, ObjectNotFound)
    assert f"bucket '{gone}' does not exist" in str(error)


def test_keys_that_need_encoding(seaweed_s3: S3Bucket) -> None:
    # SeaweedFS checks the signature, so the path must be encoded as it was signed.
    client = client_for(seaweed_s3)
    for key in ("dir/a b+c=d&e~f.bin", "dir/é/ü €.bin", "dir/x%2Fy:z@w$.bin"):
        body = key.encode()
        client.put_object(Bucket=seaweed_s3.name, Key=key, Body=body, ContentLength=len(body))
        assert client.head_object(Bucket=seaweed_s3.name, Key=key)["ContentLength"] == len(body)
        got = client.get_object(Bucket=seaweed_s3.name, Key=key)
        assert got["Body"].read() == body
        got["Body"].close()


@pytest.mark.parametrize("sign_payload", [True, False])
def test_seaweedfs_accepts_signed_and_unsigned_payloads(
    seaweed_s3: S3Bucket, sign_payload: bool
) -> None:
    client = client_for(seaweed_s3, sign_payload=sign_payload)
    data = data_of(70_000)  # over the size sent with the request head in one write
    client.put_object(Bucket=seaweed_s3.name, Key=KEY, Body=io.BytesIO(data), ContentLength=70_000)
    got = client.get_object(Bucket=seaweed_s3.name, Key=KEY)
    assert got["Body"].read() == data
    got["Body"].close()


def test_seaweedfs_refuses_a_wrong_secret(seaweed_s3: S3Bucket) -> None:
    server = seaweed_s3.server
    client = client_for(seaweed_s3, credentials=(server.access_key, "not-the-secret", None))
    with pytest.raises(S3HttpError) as caught:
        client.put_object(Bucket=seaweed_s3.name, Key=KEY, Body=b"data", ContentLength=4)
    assert (caught.value.status, error_code(caught.value)) == (403, "SignatureDoesNotMatch")
    error = translate(caught.value, where(seaweed_s3.name, server.endpoint, "upload"))
    assert isinstance(error, AccessDenied)
    assert "wrong secret key (SignatureDoesNotMatch)" in str(error)


def test_seaweedfs_refuses_bytes_that_do_not_match_their_checksum(seaweed_s3: S3Bucket) -> None:
    client = client_for(seaweed_s3)
    with pytest.raises(S3HttpError) as caught:
        client.put_object(
            Bucket=seaweed_s3.name,
            Key=KEY,
            Body=b"these are not the bytes",
            ContentLength=23,
            ChecksumSHA256=b64(bytes.fromhex(OID)),
        )
    assert caught.value.status == 400
    error = translate(caught.value, where(seaweed_s3.name, seaweed_s3.server.endpoint, "upload"))
    assert isinstance(error, CorruptObject)
    admin = seaweed_s3.server.client()
    try:
        assert admin.list_objects_v2(Bucket=seaweed_s3.name).get("KeyCount") == 0
    finally:
        admin.close()


# ============================================================================================
# 2. A scripted server: the bytes of each reply, in order


class Reply(NamedTuple):
    """One canned reply and what the server does next on that connection: "keep" reads the
    next request, "close" closes it, "half" stops sending (shutdown SHUT_WR) but still records
    any request the client sends there."""

    data: bytes
    then: str = "keep"
    # Bytes sent at once, then the rest one byte every `drip` seconds; "silent": say nothing.
    at_once: int = -1
    drip: float = 0.0


class Seen(NamedTuple):
    connection: int
    method: str
    target: str
    headers: dict[str, str]
    body: bytes


def http_reply(
    status: int,
    body: bytes = b"",
    headers: Mapping[str, str] | None = None,
    *,
    length: int | None = None,
) -> bytes:
    """A reply with a Content-Length (`length`, or the body's)."""
    head = f"HTTP/1.1 {status} Whatever\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    head += f"Content-Length: {len(body) if length is None else length}\r\n\r\n"
    return head.encode() + body


def error_xml(code: str, message: str = "m", **extra: str) -> bytes:
    fields = "".join(f"<{k}>{v}</{k}>" for k, v in extra.items())
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
        f"<Message>{message}</Message>{fields}<RequestId>R1</RequestId></Error>"
    ).encode()


class ScriptedServer:
    """Answers each request, in arrival order, with the next `Reply`; records every request."""

    def __init__(self, replies: Sequence[Reply], host: str = LOOPBACK) -> None:
        self._replies = list(replies)
        self.requests: list[Seen] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._listener = socket.create_server((host, 0), family=family)
        self._listener.settimeout(0.02)
        port = self._listener.getsockname()[1]
        self.endpoint = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
        self._connections = 0
        self._sockets: list[socket.socket] = []
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    @property
    def unused(self) -> int:
        return len(self._replies)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            with self._lock:
                self._connections += 1
                number = self._connections
                self._sockets.append(sock)
            thread = threading.Thread(target=self._serve, args=(sock, number), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, sock: socket.socket, number: int) -> None:
        sock.settimeout(10)
        rfile = sock.makefile("rb")
        half_closed = False
        try:
            while True:
                line = rfile.readline()
                if not line:
                    return
                method, target, _ = line.decode("latin-1").split(" ", 2)
                headers: dict[str, str] = {}
                while (header := rfile.readline().decode("latin-1").rstrip("\r\n")) != "":
                    name, _, value = header.partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = rfile.read(int(headers.get("content-length", "0")))
                with self._lock:
                    self.requests.append(Seen(number, method, target, headers, body))
                    reply = self._replies.pop(0) if self._replies and not half_closed else None
                if reply is None:
                    return
                if reply.then == "silent":
                    self._stop.wait(30)
                    return
                if reply.at_once >= 0:
                    sock.sendall(reply.data[: reply.at_once])
                    for i in range(reply.at_once, len(reply.data)):
                        if self._stop.wait(reply.drip):
                            return
                        sock.sendall(reply.data[i : i + 1])
                else:
                    sock.sendall(reply.data)
                if reply.then == "close":
                    return
                if reply.then == "half":
                    sock.shutdown(socket.SHUT_WR)
                    half_closed = True
        except OSError:
            return
        finally:
            rfile.close()
            sock.close()

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)  # wakes a thread waiting for a request
        for thread in self._threads:
            thread.join(timeout=15)
        self._listener.close()


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., ScriptedServer]]:
    """`scripted(reply, ...)` starts a server with those replies; all stop after the test."""
    del monkeypatch
    servers: list[ScriptedServer] = []

    def start(*replies: Reply | bytes, host: str = LOOPBACK) -> ScriptedServer:
        server = ScriptedServer([r if isinstance(r, Reply) else Reply(r) for r in replies], host)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def scripted_client(
    server: ScriptedServer, sleeps: list[float] | None = None, **overrides: Any
) -> S3Http:
    args: dict[str, Any] = {
        "bucket": "bkt",
        "region": "us-east-1",
        "endpoint": server.endpoint,
        "credentials": ("AKIDEXAMPLE", "secret", None),
        "retries": 0,
        "sleep": (sleeps if sleeps is not None else []).append,
        # A client waiting for a reply the script does not send fails in seconds, not a minute.
        "limits": Limits(idle=5.0),
    }
    args.update(overrides)
    return S3Http(**args)


def test_chunked_body_is_read_whole_and_the_connection_reused(
    scripted: Callable[..., ScriptedServer],
) -> None:
    chunked = (
        b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nETag: "e"\r\n\r\n'
        b"5;name=value\r\nhello\r\n1\r\n \r\n6\r\nworld!\r\n0\r\nX-Trailer: t\r\n\r\n"
    )
    server = scripted(chunked, http_reply(200, b"second"))
    client = scripted_client(server)
    got = client.get_object(Bucket="bkt", Key="k")
    assert b"".join(got["Body"].iter_chunks(4)) == b"hello world!"
    got["Body"].close()
    again = client.get_object(Bucket="bkt", Key="k")
    assert again["Body"].read() == b"second"
    again["Body"].close()
    assert [(s.connection, s.method, s.target) for s in server.requests] == [
        (1, "GET", "/bkt/k"),
        (1, "GET", "/bkt/k"),
    ]


def test_read_to_close_body(scripted: Callable[..., ScriptedServer]) -> None:
    server = scripted(
        Reply(b'HTTP/1.1 200 OK\r\nETag: "e"\r\n\r\nuntil the end', "close"),
        http_reply(200, b"next"),
    )
    client = scripted_client(server)
    got = client.get_object(Bucket="bkt", Key="k")
    assert got["Body"].read() == b"until the end"
    got["Body"].close()
    again = client.get_object(Bucket="bkt", Key="k")
    assert again["Body"].read() == b"next"
    again["Body"].close()
    assert [s.connection for s in server.requests] == [1, 2]


def test_a_body_cut_short_reads_short_and_its_connection_is_dropped(
    scripted: Callable[..., ScriptedServer],
) -> None:
    data = data_of(100)
    server = scripted(
        # 40 of the 100 bytes, then the server sends no more (the connection stays open for
        # reading: a request sent on it would be seen, on connection 1).
        Reply(http_reply(200, data[:40], {"ETag": '"e"'}, length=100), "half"),
        http_reply(206, data[40:], {"Content-Range": "bytes 40-99/100"}),
    )
    sleeps: list[float] = []
    client = scripted_client(server, sleeps)
    got = client.get_object(Bucket="bkt", Key="k")
    assert got["ContentLength"] == 100
    received = b"".join(got["Body"].iter_chunks(16))
    assert received == data[:40]
    got["Body"].close()

    rest = client.get_object(Bucket="bkt", Key="k", Range=f"bytes={len(received)}-")
    assert rest["ContentRange"] == "bytes 40-99/100"
    assert received + rest["Body"].read() == data
    rest["Body"].close()
    assert [(s.connection, s.headers.get("range")) for s in server.requests] == [
        (1, None),
        (2, "bytes=40-"),
    ]
    assert sleeps == []


def test_an_xml_reply_cut_short_is_retried(scripted: Callable[..., ScriptedServer]) -> None:
    page = list_parts_page(PARTS[:1], 0, None)
    server = scripted(
        Reply(http_reply(200, page[:150], length=len(page)), "half"),
        http_reply(200, page),
    )
    sleeps: list[float] = []
    client = scripted_client(server, sleeps, retries=2)
    listed = client.list_parts(Bucket="bkt", Key=KEY, UploadId="up")
    assert [p["PartNumber"] for p in listed["Parts"]] == [1]
    assert [s.connection for s in server.requests] == [1, 2]
    assert len(sleeps) == 1


def test_an_ipv6_endpoint_with_a_port(scripted: Callable[..., ScriptedServer]) -> None:
    try:
        server = scripted(http_reply(200, headers={"ETag": '"six"'}), host="::1")
    except OSError as exc:
        pytest.skip(f"no IPv6 loopback: {exc}")
    client = scripted_client(server)
    assert client.head_object(Bucket="bkt", Key="k")["ETag"] == '"six"'
    [seen] = server.requests
    assert seen.headers["host"] == server.endpoint.removeprefix("http://")


def test_a_keep_alive_connection_closed_by_the_server_is_replaced_silently(
    scripted: Callable[..., ScriptedServer],
) -> None:
    # The first reply promises keep-alive (HTTP/1.1, no "Connection: close"), then the server
    # closes: the next request finds the connection dead and goes on a new one, no retry.
    server = scripted(
        Reply(http_reply(200, headers={"ETag": '"one"'}), "close"),
        http_reply(200, headers={"ETag": '"two"'}),
    )
    sleeps: list[float] = []
    client = scripted_client(server, sleeps)
    assert client.put_object(Bucket="bkt", Key="k", Body=b"1", ContentLength=1) == {"ETag": '"one"'}
    assert client.put_object(Bucket="bkt", Key="k", Body=b"2", ContentLength=1) == {"ETag": '"two"'}
    assert [(s.connection, s.body) for s in server.requests] == [(1, b"1"), (2, b"2")]
    assert sleeps == []


def test_a_reply_with_connection_close_ends_the_connection(
    scripted: Callable[..., ScriptedServer],
) -> None:
    server = scripted(
        http_reply(200, headers={"ETag": '"one"', "Connection": "close"}),
        http_reply(200, headers={"ETag": '"two"'}),
    )
    client = scripted_client(server)
    client.head_object(Bucket="bkt", Key="k")
    client.head_object(Bucket="bkt", Key="k")
    assert [s.connection for s in server.requests] == [1, 2]


def test_503_then_200_is_retried_with_back_off(scripted: Callable[..., ScriptedServer]) -> None:
    busy = http_reply(503, error_xml("SlowDown", "Please reduce your request rate."))
    server = scripted(busy, busy, http_reply(200, headers={"ETag": '"e"'}))
    sleeps: list[float] = []
    client = scripted_client(server, sleeps, retries=5)
    data = data_of(1000)
    assert client.put_object(Bucket="bkt", Key="k", Body=data, ContentLength=1000) == {
        "ETag": '"e"'
    }
    assert len(server.requests) == 3
    assert all(s.body == data for s in server.requests)
    # Jittered exponential back-off: 0.2 * 2**n seconds, times 0.5 to 1.
    assert len(sleeps) == 2
    assert 0.2 <= sleeps[0] <= 0.4 and 0.4 <= sleeps[1] <= 0.8
    # The error body was read whole: the connection served the next attempt.
    assert {s.connection for s in server.requests} == {1}


def test_retries_give_up_with_the_last_error(scripted: Callable[..., ScriptedServer]) -> None:
    busy = http_reply(500, length=280)  # a reply to HEAD: the length, but no body
    server = scripted(busy, busy, busy)
    sleeps: list[float] = []
    client = scripted_client(server, sleeps, retries=2)
    with pytest.raises(S3HttpError) as caught:
        client.head_object(Bucket="bkt", Key="k")
    assert (caught.value.status, caught.value.code) == (500, "500")  # HEAD: no body, no code
    assert len(server.requests) == 3 and len(sleeps) == 2
    error = translate(caught.value, where("bkt", server.endpoint))
    assert isinstance(error, StorageUnavailable)


def test_client_errors_are_not_retried(scripted: Callable[..., ScriptedServer]) -> None:
    server = scripted(http_reply(403, error_xml("AccessDenied", "Access Denied")))
    sleeps: list[float] = []
    client = scripted_client(server, sleeps, retries=5)
    with pytest.raises(S3HttpError) as caught:
        client.get_object(Bucket="bkt", Key="k")
    assert caught.value.response["Error"] == {"Code": "AccessDenied", "Message": "Access Denied"}
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert len(server.requests) == 1 and sleeps == []
    assert isinstance(translate(caught.value, where("bkt", server.endpoint)), AccessDenied)


COMPLETE_OK = (
    f'<?xml version="1.0" encoding="UTF-8"?>\n<CompleteMultipartUploadResult xmlns="{NS}">'
    "<Location>http://bkt.s3.amazonaws.com/k</Location><Bucket>bkt</Bucket><Key>k</Key>"
    '<ETag>"3858f62230ac3c915f300c664312c11f-2"</ETag></CompleteMultipartUploadResult>'
).encode()


def complete(client: S3Http) -> dict[str, Any]:
    return client.complete_multipart_upload(
        Bucket="bkt",
        Key="k",
        UploadId="up-1",
        MultipartUpload={
            "Parts": [
                {"PartNumber": 1, "ETag": '"a"', "ChecksumCRC32": "AAAAAA=="},
                {"PartNumber": 2, "ETag": '"b"'},
            ]
        },
    )


def test_complete_multipart_upload_sends_its_parts(scripted: Callable[..., ScriptedServer]) -> None:
    server = scripted(http_reply(200, COMPLETE_OK))
    assert complete(scripted_client(server)) == {"ETag": '"3858f62230ac3c915f300c664312c11f-2"'}
    [seen] = server.requests
    assert (seen.method, seen.target) == ("POST", "/bkt/k?uploadId=up-1")
    assert (
        seen.body
        == (
            f'<CompleteMultipartUpload xmlns="{NS}">'
            '<Part><PartNumber>1</PartNumber><ETag>"a"</ETag>'
            "<ChecksumCRC32>AAAAAA==</ChecksumCRC32></Part>"
            '<Part><PartNumber>2</PartNumber><ETag>"b"</ETag></Part>'
            "</CompleteMultipartUpload>"
        ).encode()
    )


DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'
PADDINGS = {
    # S3 sends 200 as soon as it starts to complete, then spaces while it works, then the
    # result, which may be an <Error>.
    "plain": lambda xml: DECLARATION + xml,
    "spaces-after-declaration": lambda xml: DECLARATION + b" " * 2000 + xml,
    "spaces-before-declaration": lambda xml: b" " * 2000 + b"\n" + DECLARATION + xml,
}


def without_declaration(xml: bytes) -> bytes:
    return xml.removeprefix(DECLARATION)


@pytest.mark.parametrize("pad", PADDINGS.values(), ids=PADDINGS.keys())
def test_complete_answering_200_with_an_error(
    scripted: Callable[..., ScriptedServer], pad: Callable[[bytes], bytes]
) -> None:
    body = pad(without_declaration(error_xml("InvalidPart", "One or more parts not found")))
    server = scripted(http_reply(200, body))
    sleeps: list[float] = []
    with pytest.raises(S3HttpError) as caught:
        complete(scripted_client(server, sleeps, retries=3))
    assert (caught.value.status, caught.value.code) == (200, "InvalidPart")
    assert len(server.requests) == 1 and sleeps == []
    error = translate(caught.value, where("bkt", server.endpoint, "upload"))
    assert isinstance(error, StoreRejected)
    assert "InvalidPart" in str(error)


@pytest.mark.parametrize("pad", PADDINGS.values(), ids=PADDINGS.keys())
def test_complete_answering_200_padded_with_spaces(
    scripted: Callable[..., ScriptedServer], pad: Callable[[bytes], bytes]
) -> None:
    server = scripted(http_reply(200, pad(without_declaration(COMPLETE_OK))))
    assert complete(scripted_client(server)) == {"ETag": '"3858f62230ac3c915f300c664312c11f-2"'}


def test_complete_answering_200_with_internal_error_is_retried(
    scripted: Callable[..., ScriptedServer],
) -> None:
    server = scripted(
        http_reply(200, error_xml("InternalError", "We encountered an internal error.")),
        http_reply(200, COMPLETE_OK),
    )
    sleeps: list[float] = []
    assert complete(scripted_client(server, sleeps, retries=3))["ETag"].endswith('-2"')
    assert len(server.requests) == 2 and len(sleeps) == 1


def test_an_error_body_larger_than_the_cap(scripted: Callable[..., ScriptedServer]) -> None:
    huge = error_xml("AccessDenied", "x" * (s3http.MAX_ERROR_BODY + 1))
    server = scripted(http_reply(403, huge), http_reply(403, huge))
    sleeps: list[float] = []
    client = scripted_client(server, sleeps, retries=1)
    with pytest.raises(HttpProtocolError, match=f"larger than {s3http.MAX_ERROR_BODY} bytes"):
        client.get_object(Bucket="bkt", Key="k")
    # Not read to its end: the connection is dropped, not reused.
    assert [s.connection for s in server.requests] == [1, 2]
    assert len(sleeps) == 1


@pytest.mark.parametrize(
    "garbage",
    [b"SSH-2.0-OpenSSH_9.6\r\n", b"HTTP/2 200\r\n\r\n", b"HTTP/1.1 abc OK\r\n\r\n"],
    ids=["ssh", "http2", "no-status"],
)
def test_a_reply_that_is_not_http(scripted: Callable[..., ScriptedServer], garbage: bytes) -> None:
    server = scripted(Reply(garbage, "close"))
    with pytest.raises(HttpProtocolError, match="not an HTTP/1.x reply") as caught:
        scripted_client(server).head_object(Bucket="bkt", Key="k")
    error = translate(caught.value, where("bkt", server.endpoint))
    assert isinstance(error, StorageUnavailable)


@pytest.mark.parametrize(
    ("head", "problem"),
    [
        (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "malformed header line"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "invalid Content-Length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n", "invalid Content-Length"),
        (b"HTTP/1.1 200 OK\r\n" + b"X-A: b\r\n" * 201 + b"\r\n", "more than 200 header"),
        (b"HTTP/1.1 200 OK\r\nX-A: " + b"b" * 65536 + b"\r\n\r\n", "header line too long"),
    ],
    ids=["no-colon", "negative-length", "bad-length", "too-many", "too-long"],
)
def test_malformed_reply_heads(
    scripted: Callable[..., ScriptedServer], head: bytes, problem: str
) -> None:
    server = scripted(Reply(head, "close"))
    with pytest.raises(HttpProtocolError, match=problem):
        scripted_client(server).get_object(Bucket="bkt", Key="k")


def test_a_bad_chunk_size(scripted: Callable[..., ScriptedServer]) -> None:
    server = scripted(
        Reply(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nzz\r\n", "close")
    )
    got = scripted_client(server).get_object(Bucket="bkt", Key="k")
    with pytest.raises(HttpProtocolError, match="bad chunk size 'zz'"):
        got["Body"].read()
    got["Body"].close()


def test_connection_refused_is_retried_then_raised(scripted: Callable[..., ScriptedServer]) -> None:
    with socket.create_server((LOOPBACK, 0)) as probe:
        port = probe.getsockname()[1]
    sleeps: list[float] = []
    server = scripted()
    client = scripted_client(server, sleeps, endpoint=f"http://{LOOPBACK}:{port}", retries=2)
    with pytest.raises(ConnectionRefusedError) as caught:
        client.head_object(Bucket="bkt", Key="k")
    assert len(sleeps) == 2
    error = translate(caught.value, where("bkt", f"http://{LOOPBACK}:{port}"))
    assert isinstance(error, StorageUnavailable)


# -------------------------------------------------------------------------- region redirects


def moved(region: str, *, body: bool = True) -> bytes:
    content = error_xml("PermanentRedirect", "The bucket is in this region", Bucket="bkt")
    return http_reply(301, content if body else b"", {"x-amz-bucket-region": region})


def signed_region(seen: Seen) -> str:
    # Credential=AKID/20250101/<region>/s3/aws4_request
    return seen.headers["authorization"].split("Credential=")[1].split("/")[2]


@pytest.fixture
def aws_is_local(monkeypatch: pytest.MonkeyPatch) -> Callable[[ScriptedServer], list[str]]:
    """Point AWS's regional endpoints at a scripted server; returns the regions asked for."""

    def point(server: ScriptedServer) -> list[str]:
        asked: list[str] = []

        def endpoint(region: str) -> str:
            asked.append(region)
            return server.endpoint

        monkeypatch.setattr(s3http, "_aws_endpoint", endpoint)
        return asked

    return point


MALFORMED = http_reply(
    400,
    error_xml(
        "AuthorizationHeaderMalformed",
        "The authorization header is malformed; the region 'us-east-1' is wrong; expecting "
        "'eu-west-1'",
        Region="eu-west-1",
    ),
    {"x-amz-bucket-region": "eu-west-1"},
)


# The same, with the region in the body only.
MALFORMED_BODY_ONLY = http_reply(
    400,
    error_xml(
        "AuthorizationHeaderMalformed", "the region 'us-east-1' is wrong", Region="eu-west-1"
    ),
)


@pytest.mark.parametrize(
    ("method", "first"),
    [
        ("GET", moved("eu-west-1")),
        ("HEAD", moved("eu-west-1", body=False)),
        ("GET", MALFORMED),
        ("GET", MALFORMED_BODY_ONLY),
    ],
    ids=["GET-301", "HEAD-301", "GET-400", "GET-400-body"],
)
def test_an_aws_bucket_in_another_region_is_followed_once(
    scripted: Callable[..., ScriptedServer],
    aws_is_local: Callable[[ScriptedServer], list[str]],
    method: str,
    first: bytes,
) -> None:
    server = scripted(first, http_reply(200, b"here", {"ETag": '"e"'}))
    asked = aws_is_local(server)
    sleeps: list[float] = []
    client = scripted_client(server, sleeps, endpoint=None, addressing_style="path")
    if method == "GET":
        got = client.get_object(Bucket="bkt", Key="k")
        assert got["Body"].read() == b"here"
        got["Body"].close()
    else:
        assert client.head_object(Bucket="bkt", Key="k")["ETag"] == '"e"'
    assert asked == ["us-east-1", "eu-west-1"]
    assert [(s.method, signed_region(s)) for s in server.requests] == [
        (method, "us-east-1"),
        (method, "eu-west-1"),
    ]
    assert client.meta.region_name == "eu-west-1"
    assert sleeps == []


def test_a_second_redirect_is_not_followed(
    scripted: Callable[..., ScriptedServer],
    aws_is_local: Callable[[ScriptedServer], list[str]],
) -> None:
    server = scripted(moved("eu-west-1"), moved("us-west-2"), http_reply(200))
    asked = aws_is_local(server)
    client = scripted_client(server, endpoint=None, addressing_style="path", retries=3)
    with pytest.raises(S3HttpError) as caught:
        client.get_object(Bucket="bkt", Key="k")
    assert (caught.value.status, caught.value.code) == (301, "PermanentRedirect")
    assert asked == ["us-east-1", "eu-west-1"] and len(server.requests) == 2
    error = translate(caught.value, where("bkt", server.endpoint))
    assert isinstance(error, StoreRejected)
    assert "git config lfs-s3.region us-west-2" in str(error)


@pytest.mark.parametrize("region", ["evil.example.com/x", "eu-west-1"])
def test_redirects_not_followed_off_aws_or_to_odd_regions(
    scripted: Callable[..., ScriptedServer],
    aws_is_local: Callable[[ScriptedServer], list[str]],
    region: str,
) -> None:
    server = scripted(moved(region), http_reply(200))
    asked = aws_is_local(server)
    # A custom endpoint is never left; on AWS, a region that is not a region name is refused.
    custom = region == "eu-west-1"
    endpoint = server.endpoint if custom else None
    client = scripted_client(server, endpoint=endpoint, addressing_style="path", retries=3)
    with pytest.raises(S3HttpError) as caught:
        client.get_object(Bucket="bkt", Key="k")
    assert caught.value.code == "PermanentRedirect"
    assert len(server.requests) == 1
    assert asked == ([] if custom else ["us-east-1"])
    assert client.meta.endpoint_url == server.endpoint


# ============================================================================================
# 3. Resuming an upload from AWS's ListParts, which lists each part's CRC32


def list_parts_page(
    parts: Sequence[tuple[int, bytes]], marker: int, next_marker: int | None
) -> bytes:
    """A ListParts reply as AWS writes it (namespace, owner, checksums per part)."""
    listed = "".join(
        f"<Part><ChecksumCRC32>{crc32_b64(data)}</ChecksumCRC32>"
        f"<ETag>&quot;{hashlib.md5(data, usedforsecurity=False).hexdigest()}&quot;</ETag>"
        f"<LastModified>2025-03-04T10:11:12.000Z</LastModified>"
        f"<PartNumber>{number}</PartNumber><Size>{len(data)}</Size></Part>"
        for number, data in parts
    )
    truncated = next_marker is not None
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<ListPartsResult xmlns="{NS}"><Bucket>bkt</Bucket><Key>{KEY}</Key>'
        "<UploadId>VXBsb2FkIElEIGZvciBlbHZpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA</UploadId>"
        f"<PartNumberMarker>{marker}</PartNumberMarker>"
        f"<NextPartNumberMarker>{next_marker or parts[-1][0]}</NextPartNumberMarker>"
        f"<MaxParts>2</MaxParts><IsTruncated>{str(truncated).lower()}</IsTruncated>"
        "<Initiator><ID>arn:aws:iam::111122223333:user/dev</ID><DisplayName>dev</DisplayName>"
        "</Initiator><Owner><ID>75aa57f09aa0c8caeab4f8c24e99d10f8e7faeebf76c078efc7c6caea54ba06a"
        "</ID><DisplayName>owner</DisplayName></Owner><StorageClass>STANDARD</StorageClass>"
        f"<ChecksumAlgorithm>CRC32</ChecksumAlgorithm><ChecksumType>COMPOSITE</ChecksumType>"
        f"{listed}</ListPartsResult>"
    ).encode()


PARTS = [(n, data_of(1000 + n, seed=n)) for n in (1, 2, 3)]


def test_list_parts_reads_aws_pages_with_checksums(scripted: Callable[..., ScriptedServer]) -> None:
    server = scripted(
        http_reply(200, list_parts_page(PARTS[:2], 0, 2)),
        http_reply(200, list_parts_page(PARTS[2:], 2, None)),
    )
    client = scripted_client(server)
    config = AgentConfig(bucket="bkt", endpoint=server.endpoint)
    transfer = Transfer(client, config, Slots(None, 1), lambda n: None, threading.Event())
    stored = _list_parts(transfer, where("bkt", server.endpoint, "upload"), "up/1+2=")
    assert stored == {
        n: {
            "PartNumber": n,
            "ETag": md5_etag(data),
            "Size": len(data),
            "ChecksumCRC32": crc32_b64(data),
        }
        for n, data in PARTS
    }
    assert [s.target for s in server.requests] == [
        f"/bkt/{KEY}?uploadId=up%2F1%2B2%3D",
        f"/bkt/{KEY}?part-number-marker=2&uploadId=up%2F1%2B2%3D",
    ]


def test_a_stored_part_is_kept_only_when_its_crc32_matches() -> None:
    number, data = PARTS[0]
    stored = {
        "PartNumber": number,
        "ETag": md5_etag(data),
        "Size": len(data),
        "ChecksumCRC32": crc32_b64(data),
    }
    assert verified_part(stored, number, data, "sha256") == {
        "PartNumber": number,
        "ETag": md5_etag(data),
        "ChecksumCRC32": crc32_b64(data),
    }
    assert verified_part(stored, number, data, "off") == {
        "PartNumber": number,
        "ETag": md5_etag(data),
    }
    # The ETag matches the local bytes, the CRC32 does not: the CRC32 decides.
    other_crc = b64((zlib.crc32(data) ^ 1).to_bytes(4, "big"))
    assert verified_part({**stored, "ChecksumCRC32": other_crc}, number, data, "sha256") is None
    # Without a CRC32, the ETag (the part's MD5) decides.
    no_crc = {k: v for k, v in stored.items() if k != "ChecksumCRC32"}
    assert verified_part(no_crc, number, data, "sha256") is not None
    assert verified_part({**no_crc, "ETag": f'"{"0" * 32}"'}, number, data, "sha256") is None
    assert verified_part({**stored, "Size": len(data) + 1}, number, data, "sha256") is None


# ============================================================================================
# 4. Signing, and building the client from the environment


def test_upload_part_signed_with_query_and_checksum_header(
    scripted: Callable[..., ScriptedServer],
) -> None:
    # What the request carries; that SeaweedFS accepts such a signature is shown above.
    server = scripted(http_reply(200, headers={"ETag": '"p"'}))
    data = b"part bytes"
    scripted_client(server).upload_part(
        Bucket="bkt",
        Key="a b/c",
        UploadId="u+1",
        PartNumber=7,
        Body=data,
        ContentLength=len(data),
        ChecksumCRC32=crc32_b64(data),
    )
    [seen] = server.requests
    assert seen.target == "/bkt/a%20b/c?partNumber=7&uploadId=u%2B1"
    assert seen.headers["x-amz-checksum-crc32"] == crc32_b64(data)
    assert seen.headers["x-amz-content-sha256"] == "UNSIGNED-PAYLOAD"
    assert seen.headers["content-length"] == str(len(data))
    signed = seen.headers["authorization"].split("SignedHeaders=")[1].split(",")[0]
    assert signed.split(";") == [
        "host",
        "x-amz-checksum-crc32",
        "x-amz-content-sha256",
        "x-amz-date",
    ]
    assert seen.body == data


def test_make_data_client_from_the_environment_reaches_seaweedfs(seaweed_s3: S3Bucket) -> None:
    environ = seaweed_s3.server.env()
    client = make_data_client(AgentConfig(bucket=seaweed_s3.name), 4, environ)
    assert client.meta.endpoint_url == seaweed_s3.server.endpoint
    assert client.meta.region_name == seaweed_s3.server.region
    client.put_object(Bucket=seaweed_s3.name, Key=KEY, Body=b"env", ContentLength=3)
    assert client.head_object(Bucket=seaweed_s3.name, Key=KEY)["ContentLength"] == 3


def write_profile(tmp_path: Path, bucket: S3Bucket) -> dict[str, str]:
    """A profile `lfs` with the server's keys, region and endpoint; the variables naming it."""
    server = bucket.server
    config = tmp_path / "config"
    config.write_text(f"[profile lfs]\nregion = eu-central-1\nendpoint_url = {server.endpoint}\n")
    credentials = tmp_path / "credentials"
    credentials.write_text(
        f"[lfs]\naws_access_key_id = {server.access_key}\n"
        f"aws_secret_access_key = {server.secret_key}\n"
    )
    return {
        "AWS_CONFIG_FILE": str(config),
        "AWS_SHARED_CREDENTIALS_FILE": str(credentials),
        "AWS_PROFILE": "lfs",
    }


def test_make_data_client_falls_back_to_botocore_profiles(
    seaweed_s3: S3Bucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in write_profile(tmp_path, seaweed_s3).items():
        monkeypatch.setenv(name, value)
    client = make_data_client(AgentConfig(bucket=seaweed_s3.name), 4, dict(os.environ))
    assert client.meta.endpoint_url == seaweed_s3.server.endpoint
    assert client.meta.region_name == "eu-central-1"
    # SeaweedFS ignores the region but checks the signature: the profile's keys signed it.
    client.put_object(Bucket=seaweed_s3.name, Key=KEY, Body=b"profile", ContentLength=7)
    assert client.head_object(Bucket=seaweed_s3.name, Key=KEY)["ContentLength"] == 7


def test_make_data_client_without_credentials_anywhere() -> None:
    # conftest's isolation: no AWS variables, no config files, no instance metadata.
    with pytest.raises(s3http.NoCredentials) as caught:
        make_data_client(AgentConfig(bucket="bkt"), 4, dict(os.environ))
    error = translate(caught.value, where("bkt", "https://s3.amazonaws.com"))
    assert isinstance(error, AccessDenied)
    assert "no usable AWS credentials" in str(error)


BUILD = """
import json, os, sys
from lfs_agent.config import AgentConfig
from lfs_agent.s3client import make_data_client
c = make_data_client(AgentConfig(bucket="bkt"), 4, os.environ)
print(json.dumps({"botocore": "botocore" in sys.modules, "endpoint": c.meta.endpoint_url,
                  "region": c.meta.region_name}))
"""


@pytest.mark.parametrize(
    ("variables", "botocore", "endpoint", "region"),
    [
        (
            {"AWS_REGION": "eu-west-3"},
            False,
            "https://s3.eu-west-3.amazonaws.com",
            "eu-west-3",
        ),
        (
            {"AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9/", "AWS_DEFAULT_REGION": "x-1"},
            False,
            "http://127.0.0.1:9",
            "x-1",
        ),
        # Keys but neither region nor endpoint: botocore settles the rest (here: nothing).
        ({}, True, "https://s3.us-east-1.amazonaws.com", "us-east-1"),
    ],
    ids=["region", "endpoint", "keys-only"],
)
def test_make_data_client_imports_botocore_only_when_needed(
    variables: dict[str, str], botocore: bool, endpoint: str, region: str
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LFS_S3_"))} | {
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "secret",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
        **variables,
    }
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run(
        [sys.executable, "-c", BUILD],
        env=env,
        cwd=root,
        capture_output=True,
        check=True,
        timeout=60,
    )
    assert json.loads(out.stdout) == {"botocore": botocore, "endpoint": endpoint, "region": region}


# ------------------------------------------------------------------------------ deadlines


def test_a_server_that_never_answers_is_reported_after_one_more_try(
    scripted: Callable[..., ScriptedServer],
) -> None:
    server = scripted(Reply(b"", then="silent"), Reply(b"", then="silent"))
    client = scripted_client(server, retries=5, limits=Limits(idle=0.5))
    started = time.monotonic()
    with pytest.raises(Stalled, match=r"sent nothing for 0.5 s") as caught:
        client.head_object(Bucket="bkt", Key="k")
    assert caught.value.setting == "read-timeout"
    assert len(server.requests) == 2  # tried once more, not five times
    assert time.monotonic() - started < 3


def test_a_dripping_body_is_cut_by_the_minimum_rate(
    scripted: Callable[..., ScriptedServer],
) -> None:
    body = b"x" * 200
    data = http_reply(200, body)
    server = scripted(Reply(data, at_once=len(data) - len(body) + 5, drip=0.05))
    client = scripted_client(server, limits=Limits(idle=0.5, min_rate=1000))
    reply = client.get_object(Bucket="bkt", Key="k")
    started = time.monotonic()
    with pytest.raises(Stalled, match=r"below the minimum of 1000 bytes/s") as caught:
        try:
            b"".join(reply["Body"].iter_chunks())
        finally:
            reply["Body"].close()
    assert caught.value.setting == "min-rate"
    assert time.monotonic() - started < 2


def test_a_dripping_metadata_reply_meets_the_request_deadline(
    scripted: Callable[..., ScriptedServer],
) -> None:
    data = http_reply(200, b"<a>" + b" " * 100 + b"</a>")
    server = scripted(Reply(data, at_once=20, drip=0.02), Reply(data, at_once=20, drip=0.02))
    # Fast enough for the rate (any byte per window, while headers come), too slow in total.
    client = scripted_client(server, limits=Limits(idle=0.5, total=0.6, min_rate=1))
    started = time.monotonic()
    with pytest.raises(Stalled, match="did not finish its reply in time") as caught:
        client.abort_multipart_upload(Bucket="bkt", Key="k", UploadId="u")
    assert caught.value.setting == "request-timeout"
    assert time.monotonic() - started < 3


def test_complete_may_keep_its_reply_alive_with_spaces(
    scripted: Callable[..., ScriptedServer],
) -> None:
    xml = b"<Result><ETag>&quot;e-1&quot;</ETag></Result>"
    head = b"HTTP/1.1 200 OK\r\nContent-Length: " + str(12 + len(xml)).encode() + b"\r\n\r\n"
    server = scripted(Reply(head + b" " * 12 + xml, at_once=len(head), drip=0.05))
    # 12 spaces over 0.6 s: longer than `total`, slower than `min_rate`, yet never silent.
    client = scripted_client(server, limits=Limits(idle=0.3, total=0.2, min_rate=1000))
    reply = client.complete_multipart_upload(
        Bucket="bkt", Key="k", UploadId="u", MultipartUpload={"Parts": []}
    )
    assert reply["ETag"] == '"e-1"'
