"""Each error's hint matches its cause (issue 13, finding 3): missing credentials are not a
network problem, offline mode names what set it, a root URL without the model gets the
`s3://bucket/prefix/MODEL` form. Real S3 calls go to moto on 127.0.0.1 or a closed port."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
)
from click.testing import CliRunner

from devtools.s3servers import S3Bucket, free_port
from lfs_agent.s3http import NoCredentials
from registry import InvalidReference, RegistryError, resolve
from registry.cli import cli
from registry.errors import OfflineMiss
from registry.hints import go_online, offline_source, s3_cause
from tests.s3releases import PREFIX, url


def client_error(code: str, status: int = 400) -> ClientError:
    # Any: the stubs' TypedDict wants every ResponseMetadata key, as a real response has.
    response: Any = {
        "Error": {"Code": code, "Message": code},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, "GetObject")


@pytest.mark.parametrize(
    ("exc", "cause"),
    [
        (NoCredentialsError(), "no-credentials"),
        (
            PartialCredentialsError(provider="env", cred_var="AWS_SECRET_ACCESS_KEY"),
            "no-credentials",
        ),
        (NoCredentials("none"), "no-credentials"),
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), "unreachable"),
        (client_error("InvalidAccessKeyId", 403), "bad-credentials"),
        (client_error("SignatureDoesNotMatch", 403), "bad-credentials"),
        (client_error("ExpiredToken", 400), "bad-credentials"),
        (client_error("AccessDenied", 403), "denied"),
        (client_error("NoSuchBucket", 404), "no-bucket"),
        (client_error("SlowDown", 503), "other"),
    ],
)
def test_causes(exc: Exception, cause: str) -> None:
    assert s3_cause(exc) == cause


@pytest.mark.parametrize(
    ("explicit", "env", "source", "says", "never"),
    [
        (True, None, "the --offline flag", "without --offline", "MODEL_REGISTRY_OFFLINE"),
        (None, "yes", "MODEL_REGISTRY_OFFLINE=yes", "unset MODEL_REGISTRY_OFFLINE", "--offline"),
        (None, None, None, "", ""),
        (False, "1", None, "", ""),  # an explicit choice wins over the variable
    ],
)
def test_offline_source_names_what_set_it(
    explicit: bool | None, env: str | None, source: str | None, says: str, never: str
) -> None:
    environ = {"MODEL_REGISTRY_OFFLINE": env} if env is not None else {}
    found = offline_source(explicit, given_as="the --offline flag", environ=environ)
    assert found == source
    if found is not None:
        assert says in go_online(found)
        assert never not in go_online(found)


def test_no_credentials_is_not_a_network_problem(
    moto_s3: S3Bucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_s3.server.endpoint)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with pytest.raises(RegistryError) as err:
        resolve("base/1", root=url(moto_s3), cache_dir=tmp_path)
    message = str(err.value)
    assert "no AWS credentials were found" in message
    assert "AWS_PROFILE" in message and "lfs-s3-agent doctor" in message
    assert "network" not in message and "offline" not in message.lower()


def test_an_unreachable_endpoint_says_network_and_offline(
    moto_s3: S3Bucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in moto_s3.server.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    with pytest.raises(RegistryError) as err:
        resolve("base/1", root=url(moto_s3), cache_dir=tmp_path)
    message = str(err.value)
    assert "could not be reached: check the network and the endpoint" in message
    assert "AWS_ENDPOINT_URL" in message and "MODEL_REGISTRY_OFFLINE=1" in message
    assert "credentials" not in message


def test_a_rejected_key_names_the_credentials(
    seaweed_s3: S3Bucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in seaweed_s3.server.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "nobody-knows-this-key")
    with pytest.raises(RegistryError) as err:
        resolve("base/1", root=f"s3://{seaweed_s3.name}/{PREFIX}/YOLOX-l", cache_dir=tmp_path)
    message = str(err.value)
    assert "the store rejected the credentials" in message
    assert "network" not in message


@pytest.mark.parametrize(
    ("env", "args", "says", "never"),
    [
        ({}, ["--offline"], "without --offline", "MODEL_REGISTRY_OFFLINE"),
        ({"MODEL_REGISTRY_OFFLINE": "true"}, [], "unset MODEL_REGISTRY_OFFLINE", "--offline"),
    ],
)
def test_fetch_offline_names_what_set_offline_mode(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
    args: list[str],
    says: str,
    never: str,
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    result = CliRunner().invoke(
        cli,
        ["fetch", "base/1.2", "--root-url", "s3://bucket/registry/YOLOX-l", "--cache-dir",
         str(tmp_path), *args],
    )  # fmt: skip
    assert result.exit_code == 1
    assert says in result.stderr
    assert never not in result.stderr


def test_library_offline_names_the_argument(tmp_path: Path) -> None:
    with pytest.raises(OfflineMiss) as err:
        resolve("base/1", root="s3://bucket/registry/YOLOX-l", cache_dir=tmp_path, offline=True)
    assert "call without offline=True" in str(err.value)
    assert "MODEL_REGISTRY_OFFLINE" not in str(err.value)


@pytest.mark.parametrize(
    ("root", "form"),
    [
        ("s3://bucket", "s3://bucket/PREFIX/MODEL (e.g. s3://bucket/PREFIX/YOLOX-l)"),
        (
            f"s3://bucket/{PREFIX}",
            f"s3://bucket/{PREFIX}/MODEL (e.g. s3://bucket/{PREFIX}/YOLOX-l)",
        ),
    ],
)
def test_a_root_url_without_the_model_gets_the_url_form(
    tmp_path: Path, root: str, form: str
) -> None:
    with pytest.raises(InvalidReference) as err:
        resolve("base/1", root=root, cache_dir=tmp_path, offline=True)
    message = str(err.value)
    assert form in message
    assert "model's folder" not in message  # no checkout path for an s3:// root
