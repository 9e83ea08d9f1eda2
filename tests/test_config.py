"""Settings: layers as plain dicts, precedence, lfs.url, validation, layout and part sizes."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lfs_agent.config import (
    COMMITTABLE,
    COMMITTED_FILE,
    MAX_PARTS,
    SETTINGS,
    AgentConfig,
    GiB,
    Layer,
    MiB,
    Value,
    build,
    check_committed_endpoint,
    defaults,
    env_layer,
    location_from_url,
    resolve,
    section_layer,
)
from lfs_agent.errors import ConfigError

OID = "0123456789abcdef" * 4
URL = "https://lfs-s3.invalid"
TiB = 1024 * GiB


def git(*entries: tuple[str, str], scope: str = "local") -> Layer:
    return section_layer((k, v, f"git config ({scope})") for k, v in entries)


def committed(*entries: tuple[str, str]) -> Layer:
    return section_layer(((k, v, COMMITTED_FILE) for k, v in entries), committed=True)


def config_of(**raw: str) -> AgentConfig:
    """build() from settings given as keyword arguments (underscores for dashes)."""
    values = {k.replace("_", "-"): Value(v, "test") for k, v in raw.items()}
    return build({"bucket": Value("bucket", "test"), **values})


# --- layers -------------------------------------------------------------------------------------


def test_env_layer_reads_only_known_upper_case_variables() -> None:
    layer = env_layer(
        {
            "LFS_S3_BUCKET": "env-bucket",
            "LFS_S3_PART_SIZE": "32MiB",
            "LFS_S3_ADDRESSING_STYLE": "path",
            "LFS_S3_SSE_KMS_KEY_ID": "key-1",
            "LFS_S3_SECRET": "ignored",
            "lfs_s3_region": "ignored",
            "AWS_REGION": "ignored",
        }
    )
    assert layer == {
        "bucket": Value("env-bucket", "environment LFS_S3_BUCKET"),
        "part-size": Value("32MiB", "environment LFS_S3_PART_SIZE"),
        "addressing-style": Value("path", "environment LFS_S3_ADDRESSING_STYLE"),
        "sse-kms-key-id": Value("key-1", "environment LFS_S3_SSE_KMS_KEY_ID"),
    }


def test_every_setting_has_an_environment_variable() -> None:
    environ = {"LFS_S3_" + name.upper().replace("-", "_"): "x" for name in SETTINGS}
    assert set(env_layer(environ)) == set(SETTINGS)


def test_section_layer_keeps_its_section_only_and_the_last_value_wins() -> None:
    layer = section_layer(
        [
            ("lfs.url", f"{URL}/models", "git config (local)"),
            ("core.bare", "false", "git config (local)"),
            ("lfs-s3.region", "eu-west-1", "git config (global)"),
            ("lfs-s3.region", "eu-west-3", "git config (local)"),
            ("lfs-s3x.region", "ignored", "git config (local)"),
        ]
    )
    assert layer == {"region": Value("eu-west-3", "git config (local) lfs-s3.region")}


def test_resolve_takes_each_key_from_the_first_layer_that_has_it() -> None:
    high = {"region": Value("high", "a")}
    middle = {"region": Value("middle", "b"), "bucket": Value("middle", "b")}
    low = {"region": Value("low", "c"), "bucket": Value("low", "c"), "prefix": Value("p", "c")}
    assert resolve([high, {}, middle, low]) == {
        "region": Value("high", "a"),
        "bucket": Value("middle", "b"),
        "prefix": Value("p", "c"),
    }
    assert resolve([]) == {}


def layers(
    *,
    env: dict[str, str] | None = None,
    git_entries: tuple[tuple[str, str], ...] = (),
    git_url: str | None = None,
    file_entries: tuple[tuple[str, str], ...] = (),
    file_url: str | None = None,
) -> list[Layer]:
    """The layers in the order sources.layers gives them, highest first."""
    return [
        env_layer(env or {}),
        git(*git_entries),
        location_from_url(git_url, "git config (local)") if git_url else {},
        committed(*file_entries),
        location_from_url(file_url, ".lfsconfig") if file_url else {},
    ]


@pytest.mark.parametrize(
    ("present", "winner"),
    [
        ({"env", "git", "file"}, "env"),
        ({"git", "file"}, "git"),
        ({"env", "file"}, "env"),
        ({"file"}, "file"),
        ({"env"}, "env"),
        (set(), None),
    ],
)
def test_precedence_env_then_git_then_committed_file_then_default(
    present: set[str], winner: str | None
) -> None:
    resolved = resolve(
        layers(
            env={"LFS_S3_REGION": "env"} if "env" in present else None,
            git_entries=(("lfs-s3.region", "git"),) if "git" in present else (),
            file_entries=(("lfs-s3.region", "file"),) if "file" in present else (),
            file_url=f"{URL}/bucket",
        )
    )
    assert build(resolved).region == winner


@pytest.mark.parametrize(
    ("present", "bucket", "source"),
    [
        ({"env", "git", "git-url", "file-url"}, "env-b", "environment LFS_S3_BUCKET"),
        ({"git", "git-url", "file-url"}, "git-b", "git config (local) lfs-s3.bucket"),
        ({"git-url", "file-url"}, "git-url-b", "git config (local) lfs.url"),
        ({"file-url"}, "file-url-b", ".lfsconfig lfs.url"),
        ({"env", "file-url"}, "env-b", "environment LFS_S3_BUCKET"),
    ],
)
def test_precedence_of_the_bucket(present: set[str], bucket: str, source: str) -> None:
    resolved = resolve(
        layers(
            env={"LFS_S3_BUCKET": "env-b"} if "env" in present else None,
            git_entries=(("lfs-s3.bucket", "git-b"),) if "git" in present else (),
            git_url=f"{URL}/git-url-b/git-prefix" if "git-url" in present else None,
            file_url=f"{URL}/file-url-b/file-prefix" if "file-url" in present else None,
        )
    )
    assert resolved["bucket"] == Value(bucket, source)
    assert build(resolved).bucket == bucket


def test_a_setting_in_the_committed_file_beats_lfs_url_and_defaults() -> None:
    resolved = resolve(
        layers(
            file_entries=(("lfs-s3.endpoint", "https://s3.example.com"),), file_url=f"{URL}/models"
        )
    )
    config = build(resolved)
    assert config.endpoint == "https://s3.example.com"
    assert resolved["endpoint"].source == ".lfs-s3config lfs-s3.endpoint"
    assert config.checksum == "sha256"  # default


def test_prefix_comes_with_lfs_url_unless_set_higher() -> None:
    assert build(resolve(layers(file_url=f"{URL}/models/team/models"))).prefix == "team/models"
    with_git = layers(
        git_entries=(("lfs-s3.prefix", "mine"),), file_url=f"{URL}/models/team/models"
    )
    assert build(resolve(with_git)).prefix == "mine"
    with_env = layers(env={"LFS_S3_PREFIX": ""}, file_url=f"{URL}/models/team/models")
    assert build(resolve(with_env)).prefix == ""


# --- lfs.url ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "bucket", "prefix"),
    [
        (f"{URL}/models", "models", ""),
        (f"{URL}/models/", "models", ""),
        (f"{URL}/models/registry", "models", "registry"),
        (f"{URL}/models/team/a/registry", "models", "team/a/registry"),
        (f"{URL}//models//team///x/", "models", "team/x"),
        (f"{URL}/my%2Dbucket/team%20a/mod%C3%A8les", "my-bucket", "team a/modèles"),
        ("HTTPS://LFS-S3.INVALID/models/p", "models", "p"),
        ("http://lfs-s3.invalid:8443/models/p?x=1#frag", "models", "p"),
        (f"  {URL}/models/p \n", "models", "p"),
    ],
)
def test_location_from_url(url: str, bucket: str, prefix: str) -> None:
    assert location_from_url(url, ".lfsconfig") == {
        "bucket": Value(bucket, ".lfsconfig lfs.url"),
        "prefix": Value(prefix, ".lfsconfig lfs.url"),
    }


@pytest.mark.parametrize(
    "url",
    [
        "https://lfs.example.com/models/registry",
        "https://lfs-s3.invalid.example.com/models",
        "https://example.com/lfs-s3.invalid/models",
        "git@github.com:org/registry.git",
        "s3://models/registry",
        "",
    ],
)
def test_location_from_url_ignores_other_hosts(url: str) -> None:
    assert location_from_url(url, ".lfsconfig") == {}


@pytest.mark.parametrize("url", [URL, f"{URL}/", f"{URL}///", f"{URL}?bucket=x"])
def test_location_from_url_without_a_bucket(url: str) -> None:
    with pytest.raises(ConfigError, match="names no bucket") as info:
        location_from_url(url, "git config (global)")
    assert "git config (global)" in str(info.value)
    assert f"{URL}/<bucket>/<prefix>" in str(info.value)


def test_location_from_url_unparsable_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="lfs.url"):
        location_from_url("https://[lfs-s3.invalid/models", ".lfsconfig")


def test_a_percent_encoded_dot_dot_prefix_is_still_rejected() -> None:
    with pytest.raises(ConfigError, match=r"invalid prefix 'a/\.\./b'"):
        build(location_from_url(f"{URL}/models/a/%2E%2E/b", ".lfsconfig"))


# --- sizes --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("16MiB", 16 * MiB),
        ("16MB", 16_000_000),
        ("16m", 16 * MiB),
        ("16M", 16 * MiB),
        ("16mib", 16 * MiB),
        (" 16 MiB ", 16 * MiB),
        ("8388608", 8 * MiB),
        ("5MiB", 5 * MiB),
        ("5GiB", 5 * GiB),
        ("1g", GiB),
        ("1GB", 10**9),
        ("6000KB", 6_000_000),
        ("6144k", 6 * MiB),
    ],
)
def test_sizes(text: str, size: int) -> None:
    assert config_of(part_size=text).part_size == size
    assert config_of(multipart_threshold=text).multipart_threshold == size


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("sixteen", "expected a size such as 16MiB, 64MB or 8388608"),
        ("16.5MiB", "expected a size"),
        ("-16MiB", "expected a size"),
        ("16 MiBs", "expected a size"),
        ("16PiB", "expected a size"),
        ("", "expected a size"),
        ("0x100000", "expected a size"),
        ("16KiB", "part-size must be from 5 MiB to 5 GiB"),
        ("5MB", "part-size must be from 5 MiB to 5 GiB"),
        ("6GiB", "part-size must be from 5 MiB to 5 GiB"),
        ("0", "part-size must be from 5 MiB to 5 GiB"),
    ],
)
def test_bad_sizes_name_the_setting_value_and_source(text: str, why: str) -> None:
    values = {
        "bucket": Value("models", "test"),
        "part-size": Value(text, "environment LFS_S3_PART_SIZE"),
    }
    with pytest.raises(ConfigError) as info:
        build(values)
    message = str(info.value)
    assert f"invalid part-size '{text}'" in message
    assert "(from environment LFS_S3_PART_SIZE)" in message
    assert why in message
    assert "git config lfs-s3.part-size VALUE" in message


def test_a_bad_threshold_names_its_own_setting() -> None:
    with pytest.raises(ConfigError, match="multipart-threshold must be from 5 MiB to 5 GiB"):
        config_of(multipart_threshold="1MiB")


# --- validators ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"bucket": " my-bucket "}, {"bucket": "my-bucket"}),
        ({"bucket": "a.b_c-9"}, {"bucket": "a.b_c-9"}),
        ({"bucket": "ab"}, {"bucket": "ab"}),
        ({"bucket": "b" * 255}, {"bucket": "b" * 255}),
        ({"prefix": "/team//reg/"}, {"prefix": "team/reg"}),
        ({"prefix": ""}, {"prefix": ""}),
        ({"prefix": "a/..b/.c"}, {"prefix": "a/..b/.c"}),
        ({"region": " eu-west-3 "}, {"region": "eu-west-3"}),
        ({"endpoint": "https://s3.example.com/"}, {"endpoint": "https://s3.example.com"}),
        ({"endpoint": "http://127.0.0.1:9000"}, {"endpoint": "http://127.0.0.1:9000"}),
        ({"addressing-style": "path"}, {"addressing_style": "path"}),
        ({"addressing-style": " virtual "}, {"addressing_style": "virtual"}),
        ({"storage-class": "standard_ia"}, {"storage_class": "STANDARD_IA"}),
        ({"storage-class": "GLACIER_IR"}, {"storage_class": "GLACIER_IR"}),
        ({"sse": "AES256"}, {"sse": "AES256"}),
        ({"sse": "aws:kms"}, {"sse": "aws:kms"}),
        (
            {"sse": "aws:kms", "sse-kms-key-id": "alias/models"},
            {"sse": "aws:kms", "sse_kms_key_id": "alias/models"},
        ),
        ({"concurrency": "1"}, {"concurrency": 1}),
        ({"concurrency": " 64 "}, {"concurrency": 64}),
        ({"max-connections": "256"}, {"max_connections": 256}),
        ({"retries": "0"}, {"retries": 0}),
        ({"retries": "20"}, {"retries": 20}),
        ({"checksum": "off"}, {"checksum": "off"}),
    ],
)
def test_valid_values(raw: dict[str, str], expected: dict[str, object]) -> None:
    values = {"bucket": Value("bucket", "test")} | {k: Value(v, "test") for k, v in raw.items()}
    config = build(values)
    for field, value in expected.items():
        assert getattr(config, field) == value


@pytest.mark.parametrize(
    ("name", "raw", "why"),
    [
        ("bucket", "a", "a bucket name is 2 to 255"),
        ("bucket", "-models", "a bucket name"),
        ("bucket", "my/bucket", "a bucket name"),
        ("bucket", "my bucket", "a bucket name"),
        ("bucket", "b" * 256, "a bucket name"),
        ("bucket", "", "a bucket name"),
        ("prefix", "a/../b", "may not contain '.' or '..' segments"),
        ("prefix", "..", "segments"),
        ("prefix", "./models", "segments"),
        ("region", "  ", "expected a non-empty value"),
        ("endpoint", "s3.example.com", "expected an http:// or https:// URL"),
        ("endpoint", "ftp://s3.example.com", "http:// or https://"),
        ("endpoint", "https://", "http:// or https://"),
        ("endpoint", "http://[::1", "Invalid IPv6 URL"),
        ("addressing-style", "Path", "expected one of auto, path, virtual"),
        ("addressing-style", "dns", "expected one of auto, path, virtual"),
        ("storage-class", "FAST", "expected one of DEEP_ARCHIVE, EXPRESS_ONEZONE, GLACIER"),
        ("sse", "kms", "expected one of AES256, aws:kms"),
        ("concurrency", "0", "expected a whole number from 1 to 64"),
        ("concurrency", "65", "from 1 to 64"),
        ("concurrency", "four", "from 1 to 64"),
        ("concurrency", "2.5", "from 1 to 64"),
        ("max-connections", "0", "from 1 to 256"),
        ("max-connections", "257", "from 1 to 256"),
        ("retries", "-1", "from 0 to 20"),
        ("retries", "21", "from 0 to 20"),
        ("checksum", "crc32", "expected one of sha256, off"),
    ],
)
def test_invalid_values(name: str, raw: str, why: str) -> None:
    values = {"bucket": Value("bucket", "test"), name: Value(raw, "git config (local) x")}
    with pytest.raises(ConfigError) as info:
        build(values)
    message = str(info.value)
    assert f"invalid {name} '{raw}' (from git config (local) x)" in message
    assert why in message


@pytest.mark.parametrize("sse", [None, "AES256"])
def test_kms_key_without_aws_kms(sse: str | None) -> None:
    raw = {"sse-kms-key-id": "alias/models"} | ({"sse": sse} if sse else {})
    values = {"bucket": Value("models", "t")} | {k: Value(v, "t") for k, v in raw.items()}
    with pytest.raises(ConfigError, match="sse-kms-key-id is set but sse is not 'aws:kms'"):
        build(values)


# --- unknown and uncommittable keys ------------------------------------------------------------


@pytest.mark.parametrize("key", ["lfs-s3.bucketname", "lfs-s3.colour", "lfs-s3.part_size"])
def test_unknown_key_lists_the_known_ones(key: str) -> None:
    with pytest.raises(ConfigError) as info:
        git((key, "x"))
    message = str(info.value)
    assert f"unknown setting '{key}' in git config (local)" in message
    for name in SETTINGS:
        assert name in message
    assert "Credentials" not in message


@pytest.mark.parametrize(
    "key",
    [
        "lfs-s3.access-key-id",
        "lfs-s3.secret-access-key",
        "lfs-s3.session-token",
        "lfs-s3.profile",
        "lfs-s3.credentials",
    ],
)
def test_credential_looking_key_gets_the_boto3_hint(key: str) -> None:
    with pytest.raises(ConfigError) as info:
        git((key, "AKIA..."))
    message = str(info.value)
    assert f"unknown setting '{key}'" in message
    assert "Credentials are not settings: boto3 reads them" in message


@pytest.mark.parametrize("name", sorted(COMMITTABLE))
def test_committed_file_may_set_committable_keys(name: str) -> None:
    raw = {"endpoint": "https://s3.example.com", "addressing-style": "path"}.get(name, "x")
    assert committed((f"lfs-s3.{name}", raw)) == {
        name: Value(raw, f"{COMMITTED_FILE} lfs-s3.{name}")
    }


@pytest.mark.parametrize("name", sorted(set(SETTINGS) - COMMITTABLE))
def test_committed_file_may_not_set_other_keys(name: str) -> None:
    with pytest.raises(ConfigError) as info:
        committed((f"lfs-s3.{name}", "x"))
    message = str(info.value)
    assert f"'lfs-s3.{name}' may not be committed ({COMMITTED_FILE})" in message
    assert "addressing-style, checksum, endpoint, region" in message
    assert f"git config lfs-s3.{name} VALUE" in message


def test_committed_file_ignores_other_sections_but_not_unknown_keys() -> None:
    assert committed(("core.editor", "vim"), ("lfs.url", "x")) == {}
    with pytest.raises(ConfigError, match="unknown setting 'lfs-s3.nope' in .lfs-s3config"):
        committed(("lfs-s3.nope", "x"))


def test_no_bucket_says_how_to_set_one() -> None:
    with pytest.raises(ConfigError) as info:
        build({"region": Value("eu-west-1", "test")})
    message = str(info.value)
    assert "no S3 bucket" in message
    assert "git config lfs-s3.bucket" in message
    assert "LFS_S3_BUCKET" in message
    assert f"{URL}/NAME/PREFIX" in message


# --- AgentConfig --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "oid", "key"),
    [
        ("", OID, f"objects/01/23/{OID}"),
        ("registry", OID, f"registry/objects/01/23/{OID}"),
        ("team/a/registry", "f" * 64, f"team/a/registry/objects/ff/ff/{'f' * 64}"),
        ("", "a0b1" + "0" * 60, f"objects/a0/b1/a0b1{'0' * 60}"),
    ],
)
def test_object_key(prefix: str, oid: str, key: str) -> None:
    assert AgentConfig(bucket="b", prefix=prefix).object_key(oid) == key


def test_object_key_with_a_prefix_from_lfs_url() -> None:
    config = build(location_from_url(f"{URL}/models//team//reg/", ".lfsconfig"))
    assert config.object_key(OID) == f"team/reg/objects/01/23/{OID}"


@pytest.mark.parametrize(
    ("part_size", "size", "expected"),
    [
        (16 * MiB, 0, 16 * MiB),
        (16 * MiB, 16 * MiB * MAX_PARTS, 16 * MiB),  # exactly 10,000 parts: kept
        (16 * MiB, 16 * MiB * MAX_PARTS + 1, 17 * MiB),  # one byte more: raised to a MiB
        (5 * MiB, 100 * GiB, 11 * MiB),
        (16_000_000, 1 * GiB, 16_000_000),  # a non-MiB setting is kept when it suffices
        (16 * MiB, 5 * TiB, 525 * MiB),
    ],
)
def test_part_size_for(part_size: int, size: int, expected: int) -> None:
    assert AgentConfig(bucket="b", part_size=part_size).part_size_for(size) == expected


@given(
    size=st.integers(min_value=0, max_value=5 * TiB),
    part_size=st.integers(min_value=5 * MiB, max_value=5 * GiB),
)
def test_part_size_for_keeps_parts_within_the_limit(size: int, part_size: int) -> None:
    chosen = AgentConfig(bucket="b", part_size=part_size).part_size_for(size)
    assert chosen >= part_size
    assert -(-size // chosen) <= MAX_PARTS
    assert chosen <= 5 * GiB
    if chosen != part_size:
        assert chosen % MiB == 0
        # raised by less than one MiB more than the 10,000-part minimum needs
        assert chosen - MiB < -(-size // MAX_PARTS)


def test_settings_and_fields_match() -> None:
    fields = list(AgentConfig._fields)
    mapped = [field for field, _, _ in SETTINGS.values()]
    assert sorted(mapped) == sorted(fields)
    for name, (field, parse, help_text) in SETTINGS.items():
        assert field == name.replace("-", "_")
        assert callable(parse)
        assert help_text
    assert COMMITTABLE <= set(SETTINGS)


def test_defaults() -> None:
    assert defaults() == {
        "addressing-style": "auto",
        "part-size": str(16 * MiB),
        "multipart-threshold": str(16 * MiB),
        "concurrency": "4",
        "max-connections": "16",
        "checksum": "sha256",
        "retries": "5",
        "connect-timeout": "10.0",
        "read-timeout": "15.0",
        "request-timeout": "30.0",
        "min-rate": "1024",
    }


@pytest.mark.parametrize(
    ("name", "raw", "field", "value"),
    [
        ("read-timeout", "2.5", "read_timeout", 2.5),
        ("read-timeout", "20s", "read_timeout", 20.0),
        ("connect-timeout", "1", "connect_timeout", 1.0),
        ("request-timeout", "600", "request_timeout", 600.0),
        ("min-rate", "10KiB", "min_rate", 10 * 1024),
        ("min-rate", "0", "min_rate", 0),
    ],
)
def test_deadline_settings_parse(name: str, raw: str, field: str, value: float) -> None:
    config = build({"bucket": Value("bk", "t"), name: Value(raw, "git config")})
    assert getattr(config, field) == value


@pytest.mark.parametrize(
    ("name", "raw"),
    [("read-timeout", "0"), ("read-timeout", "soon"), ("min-rate", "fast"), ("min-rate", "2GiB")],
)
def test_bad_deadline_settings_name_the_setting(name: str, raw: str) -> None:
    with pytest.raises(ConfigError, match=f"invalid {name} '{raw}'"):
        build({"bucket": Value("bk", "t"), name: Value(raw, "git config")})


def test_defaults_parse_back_to_the_default_config() -> None:
    values = {name: Value(raw, "default") for name, raw in defaults().items()}
    assert build({"bucket": Value("models", "t"), **values}) == AgentConfig(bucket="models")


def test_agent_config_is_frozen() -> None:
    config = AgentConfig(bucket="b")
    with pytest.raises(AttributeError):
        config.bucket = "other"  # type: ignore[misc]


def test_messages_quote_the_raw_value_not_a_regex() -> None:
    # A value with regex metacharacters is quoted as given.
    with pytest.raises(ConfigError, match=re.escape("invalid concurrency '4+'")):
        config_of(concurrency="4+")


COMMITTED_HTTP = {
    "bucket": Value("models", ".lfsconfig lfs.url"),
    "endpoint": Value("http://10.0.0.5:9000/", ".lfs-s3config lfs-s3.endpoint"),
}


def test_a_committed_http_endpoint_is_refused_until_trusted() -> None:
    with pytest.raises(ConfigError) as caught:
        check_committed_endpoint(COMMITTED_HTTP, [], {})
    message = str(caught.value)
    assert "'http://10.0.0.5:9000'" in message
    assert "lfs-s3-agent trust http://10.0.0.5:9000" in message
    assert "nothing was sent" in message
    trusted = check_committed_endpoint(COMMITTED_HTTP, ["HTTP://10.0.0.5:9000"], {})
    assert build(trusted).endpoint == "http://10.0.0.5:9000"
    with pytest.raises(ConfigError):  # another port is another endpoint
        check_committed_endpoint(COMMITTED_HTTP, ["http://10.0.0.5:9001"], {})


def test_a_committed_https_endpoint_needs_no_consent_but_the_users_own_wins() -> None:
    https = {
        **COMMITTED_HTTP,
        "endpoint": Value("https://s3.example.com", COMMITTED_HTTP["endpoint"].source),
    }
    assert build(check_committed_endpoint(https, [], {})).endpoint == "https://s3.example.com"
    for var in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        mine = check_committed_endpoint(COMMITTED_HTTP, [], {var: "http://127.0.0.1:1"})
        assert "endpoint" not in mine  # the client takes the user's from the environment


def test_an_endpoint_from_the_users_own_config_is_never_questioned() -> None:
    own = {
        **COMMITTED_HTTP,
        "endpoint": Value("http://10.0.0.5:9000", "git config (local) lfs-s3.endpoint"),
    }
    assert check_committed_endpoint(own, [], {})["endpoint"].raw == "http://10.0.0.5:9000"


def test_trust_may_not_be_committed() -> None:
    entries = [("lfs-s3.trusted-endpoint", "http://evil:80", ".lfs-s3config")]
    with pytest.raises(ConfigError, match="may not be committed"):
        section_layer(entries, committed=True)
    assert section_layer([("lfs-s3.trusted-endpoint", "http://x:1", "git config (global)")]) == {}
