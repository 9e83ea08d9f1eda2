"""The agent's settings: one frozen value, built from layered sources with provenance.

Precedence, highest first (ARCHITECTURE.md):
1. the environment, `LFS_S3_<KEY>` (`LFS_S3_BUCKET`, `LFS_S3_PART_SIZE`...);
2. git config, `lfs-s3.<key>` (worktree, local, global, system: git's own order), then the
   bucket and prefix named by an `lfs.url` set in git config;
3. what the repository commits: `.lfs-s3config` (endpoint, region, addressing style, checksum),
   then the bucket and prefix named by `lfs.url` in `.lfsconfig`;
4. defaults.

`lfs.url = https://lfs-s3.invalid/<bucket>/<prefix>` both routes git-lfs to this agent and names
the location. Credentials and profiles are never settings here: boto3's default chain finds them.
Sources are plain mappings, so precedence is testable without git or an environment.
Each setting's parser and help are in the settings table (`settings.py`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple
from urllib.parse import unquote, urlsplit

from . import oids
from .errors import ConfigError

# Defined with the settings table (`settings.py`); importable from here as before, as is
# `UntrustedEndpoint` (with the package's other errors).
from .errors import UntrustedEndpoint as UntrustedEndpoint
from .settings import SETTINGS as SETTINGS
from .settings import STORAGE_CLASSES as STORAGE_CLASSES
from .settings import GiB as GiB
from .settings import MiB as MiB
from .settings import parse_endpoint as parse_endpoint

PLACEHOLDER_HOST = "lfs-s3.invalid"
SECTION = "lfs-s3"
ENV_PREFIX = "LFS_S3_"
COMMITTED_FILE = ".lfs-s3config"
MAX_PARTS = 10_000

# Endpoints the user accepts from a repository's committed file (git config, never committed).
TRUST_KEY = "trusted-endpoint"
# Keys a committed file may set: nothing that moves data elsewhere than lfs.url says, except
# the endpoint the repository's store lives at (and that one only over https, or with consent).
COMMITTABLE = frozenset({"endpoint", "region", "addressing-style", "checksum"})


class AgentConfig(NamedTuple):
    """Validated settings for one agent process (a named tuple: cheap to define at start-up;
    `_replace` makes a changed copy)."""

    bucket: str
    prefix: str = ""
    region: str | None = None
    endpoint: str | None = None
    addressing_style: str = "auto"
    storage_class: str | None = None
    sse: str | None = None
    sse_kms_key_id: str | None = None
    part_size: int = 16 * MiB
    multipart_threshold: int = 16 * MiB
    concurrency: int = 4
    max_connections: int = 16
    checksum: str = "sha256"
    retries: int = 5
    connect_timeout: float = 10.0
    read_timeout: float = 15.0
    request_timeout: float = 30.0
    min_rate: int = 1024

    def object_key(self, oid: str) -> str:
        """Where an object lives: `<prefix>/objects/<oid[0:2]>/<oid[2:4]>/<oid>`.

        >>> AgentConfig(bucket="b", prefix="team/reg").object_key("ab" * 32)[:27]
        'team/reg/objects/ab/ab/abab'
        >>> AgentConfig(bucket="b").object_key("0123" + "0" * 60)[:19]
        'objects/01/23/01230'
        """
        return oids.object_key(self.prefix, oid)

    def part_size_for(self, size: int) -> int:
        """The part size for an object: the setting, raised so no upload needs over 10,000 parts."""
        smallest = -(-size // MAX_PARTS)
        if smallest <= self.part_size:
            return self.part_size
        return -(-smallest // MiB) * MiB


class Value(NamedTuple):
    """A raw setting and where it came from, for messages and `lfs-s3-agent config`."""

    raw: str
    source: str


Layer = Mapping[str, Value]


def env_layer(environ: Mapping[str, str]) -> dict[str, Value]:
    """Settings from `LFS_S3_<KEY>` environment variables."""
    layer: dict[str, Value] = {}
    for name in SETTINGS:
        var = ENV_PREFIX + name.upper().replace("-", "_")
        if var in environ:
            layer[name] = Value(environ[var], f"environment {var}")
    return layer


def section_layer(entries: Iterable[tuple[str, str, str]], *, committed: bool = False) -> Layer:
    """Settings from `lfs-s3.<key>` entries given as (key, value, where) tuples; last one wins.

    Raises:
        ConfigError: an unknown key, or a key a committed file may not set.
    """
    layer: dict[str, Value] = {}
    for key, raw, where in entries:
        section, _, name = key.partition(".")
        if section != SECTION:
            continue
        if name == TRUST_KEY:
            if committed:
                raise ConfigError(
                    f"'{key}' may not be committed ({where}): only you can trust an endpoint, "
                    "with 'lfs-s3-agent trust URL' in your own git config"
                )
            continue  # not a setting: `sources.trusted_endpoints` reads it
        if name not in SETTINGS:
            known = ", ".join(SETTINGS)
            hint = (
                " Credentials are not settings: boto3 reads them from the environment, "
                "AWS_PROFILE, ~/.aws or SSO."
                if any(w in name for w in ("key", "secret", "token", "profile", "credential"))
                and name != "sse-kms-key-id"
                else ""
            )
            raise ConfigError(f"unknown setting '{key}' in {where}; known: {known}.{hint}")
        if committed and name not in COMMITTABLE:
            allowed = ", ".join(sorted(COMMITTABLE))
            raise ConfigError(
                f"'{key}' may not be committed ({where}); a committed file may set only "
                f"{allowed}. Name the bucket and prefix with lfs.url in .lfsconfig, or use "
                f"'git config {key} VALUE' for this clone."
            )
        layer[name] = Value(raw, f"{where} {key}")
    return layer


def location_from_url(url: str, where: str) -> Layer:
    """Bucket and prefix from an `lfs.url` of the form https://lfs-s3.invalid/<bucket>/<prefix>."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
    except ValueError as exc:
        raise ConfigError(f"cannot parse lfs.url '{url}' in {where}: {exc}") from None
    if host != PLACEHOLDER_HOST:
        return {}
    segments = [unquote(s) for s in parts.path.split("/") if s]
    if not segments:
        raise ConfigError(
            f"lfs.url '{url}' in {where} names no bucket; "
            f"use https://{PLACEHOLDER_HOST}/<bucket>/<prefix>"
        )
    source = f"{where} lfs.url"
    return {
        "bucket": Value(segments[0], source),
        "prefix": Value("/".join(segments[1:]), source),
    }


def resolve(layers: Sequence[Layer]) -> dict[str, Value]:
    """Merge layers, highest precedence first: the first layer that has a key wins."""
    merged: dict[str, Value] = {}
    for layer in layers:
        for name, value in layer.items():
            merged.setdefault(name, value)
    return merged


def build(values: Mapping[str, Value]) -> AgentConfig:
    """Validate merged settings into an AgentConfig.

    Raises:
        ConfigError: a value is invalid or the bucket is missing; the message says what to set.
    """
    if "bucket" not in values:
        raise ConfigError(
            "no S3 bucket is configured for this repository. Set one of: "
            "'git config lfs-s3.bucket NAME' (this clone), LFS_S3_BUCKET=NAME (environment), "
            f"or commit .lfsconfig with '[lfs] url = https://{PLACEHOLDER_HOST}/NAME/PREFIX' "
            "(everyone who clones)"
        )
    kwargs: dict[str, Any] = {}
    for name, value in values.items():
        field, parse, _ = SETTINGS[name]
        try:
            kwargs[field] = parse(value.raw)
        except ValueError as exc:
            raise ConfigError(
                f"invalid {name} '{value.raw}' (from {value.source}): {exc}. "
                f"Fix it there, or override it with 'git config lfs-s3.{name} VALUE'"
            ) from None
    config = AgentConfig(**kwargs)
    if config.sse_kms_key_id and config.sse != "aws:kms":
        raise ConfigError(
            "sse-kms-key-id is set but sse is not 'aws:kms'; "
            "run 'git config lfs-s3.sse aws:kms' or unset the key id"
        )
    return config


def defaults() -> dict[str, str]:
    """The default of every setting that has one, as text."""
    base = AgentConfig(bucket="-")
    out: dict[str, str] = {}
    for name, (field, _, _) in SETTINGS.items():
        value = getattr(base, field)
        if name != "bucket" and value not in (None, ""):
            out[name] = str(value)
    return out


def same_endpoint(a: str, b: str) -> bool:
    """Whether two endpoint URLs name the same place (scheme and host compare without case)."""
    x, y = urlsplit(a.strip().rstrip("/")), urlsplit(b.strip().rstrip("/"))
    return (x.scheme.lower(), (x.netloc or "").lower(), x.path) == (
        y.scheme.lower(),
        (y.netloc or "").lower(),
        y.path,
    )


def check_committed_endpoint(
    values: Mapping[str, Value], trusted: Sequence[str], environ: Mapping[str, str]
) -> dict[str, Value]:
    """`values` with a committed endpoint kept only where the user consented to it.

    A repository's `.lfs-s3config` may name its store's endpoint, but the agent signs requests
    with the user's credentials: a plain-http endpoint from a repository (anyone's, once
    cloned) is used only when the user trusted it in their own git config. The user's own
    endpoint (`AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`) wins over the committed one.

    Raises:
        ConfigError: the committed endpoint is plain http and not trusted; nothing was sent.
    """
    endpoint = values.get("endpoint")
    if endpoint is None or not endpoint.source.startswith(COMMITTED_FILE):
        return dict(values)
    if environ.get("AWS_ENDPOINT_URL_S3") or environ.get("AWS_ENDPOINT_URL"):
        return {k: v for k, v in values.items() if k != "endpoint"}
    url = endpoint.raw.strip().rstrip("/")
    if urlsplit(url).scheme.lower() == "https" or any(same_endpoint(url, t) for t in trusted):
        return dict(values)
    raise UntrustedEndpoint(
        url,
        f"this repository's {COMMITTED_FILE} sends S3 requests to '{url}', a plain-http "
        "endpoint you have not trusted. The agent signs requests with your AWS credentials "
        "and sends them only where you agreed to; nothing was sent. If this is your team's "
        f"store, trust it: 'lfs-s3-agent trust {url}' (this clone) or "
        f"'lfs-s3-agent trust --global {url}'; or name your own endpoint "
        "(AWS_ENDPOINT_URL_S3, or 'git config lfs-s3.endpoint URL')",
    )
