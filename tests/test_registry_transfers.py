"""The registry's transfers on the agent's core (issue 10, item 2; issue 11, row 8).

- The registry reads through the agent's own client by default: a server that accepts and
  never answers, or drips its body, is reported in seconds, naming the endpoint and the setting.
- `registry.releases.storeerrors`: one wording per class of S3 failure, the same for fetch and
  publish.
- `model-registry publish` then `fetch`, end to end on SeaweedFS, through the agent's client.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from devtools.s3servers import S3Bucket
from lfs_agent.errors import CorruptObject
from lfs_agent.http1 import Stalled
from lfs_agent.s3errors import Where
from lfs_agent.s3http import NoCredentials, S3HttpError
from registry import resolve
from registry.cache import Cache
from registry.cli import cli
from registry.errors import NotFound, RegistryError, StoreObjectMismatch
from registry.releases.formats import FileEntry, Manifest, RemoteRoot
from registry.releases.remote import RemoteRegistry
from registry.releases.storeerrors import store_error
from tests.registry_fixtures import GitEnv, init_registry, sha256
from tests.s3releases import PREFIX
from tests.test_s3http import Reply, ScriptedServer, http_reply

# --------------------------------------------------------------------------- the registry's client


def resolve_fails_within(server: ScriptedServer, cache: Path, *, seconds: float) -> str:
    """Resolve `base/1.0` through the registry's own client from `server` (read-timeout 1 s);
    the RegistryError's message, which must come within `seconds`. The server is closed."""
    environ = {
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "secret",
        "AWS_ENDPOINT_URL": server.endpoint,
        "AWS_REGION": "us-east-1",
        "LFS_S3_READ_TIMEOUT": "1",
    }
    started = time.monotonic()
    try:
        with (
            RemoteRegistry(
                RemoteRoot(bucket="models", prefix=PREFIX, model="YOLOX-l"),
                Cache(cache),
                environ=environ,
            ) as remote,
            pytest.raises(RegistryError) as caught,
        ):
            remote.resolve("base/1.0")
    finally:
        server.close()
    assert time.monotonic() - started < seconds
    return str(caught.value)


def test_a_registry_fetch_from_a_server_that_never_answers_fails_in_seconds(
    tmp_path: Path,
) -> None:
    # Issue 11, row 8 (registry side): silent for 6 minutes before.
    server = ScriptedServer([Reply(b"", then="silent"), Reply(b"", then="silent")])
    message = resolve_fails_within(server, tmp_path, seconds=10)
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
    message = resolve_fails_within(server, tmp_path, seconds=10)
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


# --------------------------------------------------------------------------- wording


def s3_error(code: str, status: int = 403) -> S3HttpError:
    return S3HttpError("GetObject", status, (code, f"message for {code}", None), {})


# Each credentials problem, and the hint its cause gets (registry.hints), whatever the action.
CREDENTIALS = {
    "denied": (s3_error("AccessDenied"), "these credentials may not do this"),
    "unknown-key": (s3_error("InvalidAccessKeyId"), "the store rejected the credentials"),
    "wrong-secret": (s3_error("SignatureDoesNotMatch"), "the store rejected the credentials"),
    "expired": (s3_error("ExpiredToken", 400), "the store rejected the credentials"),
    "none": (NoCredentials("Unable to locate credentials"), "no AWS credentials were found"),
}


@pytest.mark.parametrize(("exc", "hint"), CREDENTIALS.values(), ids=CREDENTIALS.keys())
@pytest.mark.parametrize("action", ["read", "download", "check", "upload", "write"])
def test_a_credentials_problem_reads_the_same_for_fetch_and_publish(
    exc: Exception, hint: str, action: str
) -> None:
    where = Where(action, "ab" * 32, "models", "reg/objects/ab/ab/" + "ab" * 32, "http://s3")
    error = store_error(exc, where)
    assert type(error) is RegistryError
    assert "access denied" in str(error)
    assert hint in str(error)
    assert "network" not in str(error)  # never sent to look at the network
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

    published = CliRunner().invoke(
        cli, ["publish", "--root", str(reg.root), "--quiet", "--allow-unpushed"]
    )
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
