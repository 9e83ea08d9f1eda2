"""Shared fixtures: AWS isolation for every test, and real S3 servers on 127.0.0.1.

The servers live for the whole session (SeaweedFS takes about 1.5 s to start, moto none);
each test gets a bucket of its own on them, so tests cannot see each other's objects.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import ClientError

from devtools import s3servers
from devtools.s3servers import S3Bucket, S3Server
from tests.gitlfs import READ_ONLY, READ_WRITE
from tests.registry_fixtures import GitEnv, make_git_env

if TYPE_CHECKING:
    from mypy_boto3_s3.type_defs import ObjectIdentifierTypeDef

# Fixture modules: their fixtures are known to every test module without an import.
pytest_plugins = ["tests.gitrepos", "tests.registry_repos"]


def _isolate_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith(("AWS_", "LFS_S3_")):
            monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    # botocore would send even 127.0.0.1 traffic through a developer's HTTP(S)_PROXY.
    monkeypatch.setenv("NO_PROXY", s3servers.LOOPBACK)
    monkeypatch.setenv("no_proxy", s3servers.LOOPBACK)


@pytest.fixture(autouse=True)
def aws_isolation(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing from the developer's AWS setup (variables, ~/.aws, instance metadata) leaks in."""
    _isolate_aws(monkeypatch)


# The session fixtures start before any function-scoped fixture, aws_isolation included, so
# they isolate themselves while they start their server.


@pytest.fixture(scope="session")
def moto_server() -> Iterator[S3Server]:
    with contextlib.ExitStack() as stack:
        with pytest.MonkeyPatch.context() as monkeypatch:
            _isolate_aws(monkeypatch)
            server = stack.enter_context(s3servers.moto_server())
        yield server


@pytest.fixture(scope="session")
def seaweed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    data_dir = tmp_path_factory.mktemp("seaweedfs")
    with contextlib.ExitStack() as stack:
        with pytest.MonkeyPatch.context() as monkeypatch:
            _isolate_aws(monkeypatch)
            server = stack.enter_context(s3servers.seaweedfs(data_dir))
        yield server


@pytest.fixture(scope="session")
def seaweed_acl_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A second SeaweedFS that also accepts the READ_WRITE and READ_ONLY keys (tests.gitlfs)
    for their actions only; the server's own key is an admin's. Started only when used."""
    data_dir = tmp_path_factory.mktemp("seaweedfs-acl")
    with contextlib.ExitStack() as stack:
        with pytest.MonkeyPatch.context() as monkeypatch:
            _isolate_aws(monkeypatch)
            server = stack.enter_context(
                s3servers.seaweedfs(data_dir, identities=[READ_WRITE, READ_ONLY])
            )
        yield server


def _new_bucket(server: S3Server) -> S3Bucket:
    bucket = S3Bucket(server=server, name=f"t-{uuid.uuid4().hex[:12]}")
    server.create_bucket(bucket.name)
    return bucket


def _drop_bucket(bucket: S3Bucket) -> None:
    client = bucket.server.client()
    try:
        try:
            client.head_bucket(Bucket=bucket.name)
        except ClientError:
            return  # the test removed it itself
        for upload in client.list_multipart_uploads(Bucket=bucket.name).get("Uploads", []):
            client.abort_multipart_upload(
                Bucket=bucket.name, Key=upload["Key"], UploadId=upload["UploadId"]
            )
        # Versions rather than objects: a test may have turned versioning on.
        for page in client.get_paginator("list_object_versions").paginate(Bucket=bucket.name):
            doomed: list[ObjectIdentifierTypeDef] = [
                {"Key": version["Key"], "VersionId": version["VersionId"]}
                for version in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]
            ]
            if doomed:
                client.delete_objects(Bucket=bucket.name, Delete={"Objects": doomed})
        client.delete_bucket(Bucket=bucket.name)
    finally:
        client.close()


@pytest.fixture
def moto_s3(moto_server: S3Server) -> Iterator[S3Bucket]:
    """A fresh bucket on the session's moto server."""
    bucket = _new_bucket(moto_server)
    yield bucket
    # moto keeps every object in this process's memory for the rest of the session.
    _drop_bucket(bucket)


@pytest.fixture
def seaweed_s3(seaweed_server: S3Server) -> Iterator[S3Bucket]:
    """A fresh bucket on the session's SeaweedFS server (auth on: only its keys are accepted).

    Left in place after the test: it is on disk in pytest's temporary directory, where it helps
    to look into a failure.
    """
    yield _new_bucket(seaweed_server)


@pytest.fixture
def seaweed_acl_s3(seaweed_acl_server: S3Server) -> Iterator[S3Bucket]:
    """A fresh bucket on the SeaweedFS with identities, seen with its admin key."""
    yield _new_bucket(seaweed_acl_server)


@pytest.fixture(scope="module")
def git_env(tmp_path_factory: pytest.TempPathFactory) -> GitEnv:
    """A HOME and git configuration of its own (git-lfs's filters installed), per module."""
    home = tmp_path_factory.mktemp("git-home")
    return make_git_env(home, ceiling=tmp_path_factory.getbasetemp())


@pytest.fixture
def isolated(git_env: GitEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make this test process use `git_env`, for code that runs git in-process."""
    git_env.apply(monkeypatch)


@pytest.fixture
def close_s3http_clients(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every agent client (`S3Http`) a test builds, directly or through the registry, is closed
    after it: a pooled socket left open warns."""
    from lfs_agent.s3http import S3Http

    opened: list[S3Http] = []
    build = S3Http.__init__

    def init(self: S3Http, **args: Any) -> None:
        build(self, **args)
        opened.append(self)

    monkeypatch.setattr(S3Http, "__init__", init)
    yield
    for client in opened:
        client.close()
