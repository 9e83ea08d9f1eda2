"""Build S3 clients from the agent's settings (imported on the first transfer only).

- `make_data_client`: the agent's own client (`s3http`), for `git push` and `git lfs pull`, and
  for the registry's `publish` and remote `resolve`.
  The environment settles credentials, region and endpoint without importing botocore when it
  holds them (`AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` plus a region or an endpoint); anything
  else goes through botocore's session, once per process: profiles, SSO, web identity,
  container and instance roles, the region and `endpoint_url` of `~/.aws/config`.
- `make_client`: a boto3 client with the same settings, for whoever wants boto3 (tests).

Credentials and profiles are never agent settings: they come from the standard AWS chain.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from . import logs
from .config import AgentConfig
from .http1 import Limits
from .s3http import USER_AGENT, NoCredentials, S3Http

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

__all__ = ["USER_AGENT", "make_client", "make_data_client"]

log = logs.get(__name__)
DEFAULT_REGION = "us-east-1"


def make_data_client(config: AgentConfig, pool_size: int, environ: Mapping[str, str]) -> S3Http:
    """The agent's S3 client for `config.bucket`.

    Raises:
        NoCredentials: no credentials anywhere in the chain.
    """
    access = environ.get("AWS_ACCESS_KEY_ID")
    secret = environ.get("AWS_SECRET_ACCESS_KEY")
    token = environ.get("AWS_SESSION_TOKEN") or environ.get("AWS_SECURITY_TOKEN") or None
    region = config.region or environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")
    endpoint = (
        config.endpoint or environ.get("AWS_ENDPOINT_URL_S3") or environ.get("AWS_ENDPOINT_URL")
    )
    ca_bundle = environ.get("AWS_CA_BUNDLE") or None
    credentials: Any
    if access and secret and (region or endpoint):
        credentials = (access, secret, token)
    else:
        started = time.monotonic()
        credentials, found_region, found_endpoint, found_ca = _from_botocore()
        region = region or found_region
        endpoint = endpoint or found_endpoint
        ca_bundle = ca_bundle or found_ca
        log.info("AWS credentials from botocore's chain in %.3fs", time.monotonic() - started)
    return S3Http(
        bucket=config.bucket,
        region=region or DEFAULT_REGION,
        endpoint=endpoint.rstrip("/") if endpoint else None,
        addressing_style=config.addressing_style,
        credentials=credentials,
        retries=config.retries,
        pool_size=pool_size,
        sign_payload=config.checksum != "sha256",
        ca_bundle=ca_bundle,
        limits=limits_of(config),
    )


def limits_of(config: AgentConfig) -> Limits:
    """The deadlines `config` sets for the agent's client."""
    return Limits(
        connect=config.connect_timeout,
        idle=config.read_timeout,
        total=config.request_timeout,
        min_rate=config.min_rate,
    )


def ensure_site() -> None:
    """Put site-packages on `sys.path`: the agent runs as `python -S` (`_launch.py`), and
    botocore lives there."""
    if sys.flags.no_site and "site" not in sys.modules:
        import site

        site.main()


def _from_botocore() -> tuple[Any, str | None, str | None, str | None]:
    """(credentials, region, endpoint, CA bundle) from botocore's session and chain."""
    ensure_site()
    import botocore.session

    session = botocore.session.get_session()
    credentials = session.get_credentials()
    if credentials is None:
        raise NoCredentials(
            "Unable to locate credentials (environment, AWS_PROFILE, ~/.aws, SSO, web identity, "
            "container or instance role)"
        )
    scoped = session.get_scoped_config()
    endpoint = None
    if not session.get_config_variable("ignore_configured_endpoint_urls"):
        endpoint = scoped.get("endpoint_url")
    region = session.get_config_variable("region")
    ca_bundle = session.get_config_variable("ca_bundle")
    return credentials, region, endpoint, ca_bundle


def make_client(config: AgentConfig, pool_size: int) -> S3Client:
    ensure_site()
    import boto3
    from botocore.config import Config

    s3: dict[str, Any] = {"addressing_style": config.addressing_style}
    if config.checksum == "sha256":
        # Every upload carries its own checksum header (signed, like every x-amz-* header) that
        # the store verifies, so botocore need not hash each payload a second time for SigV4
        # over plain http; on https botocore already skips it when a checksum is present.
        s3["payload_signing_enabled"] = False
    client_config = Config(
        region_name=config.region,
        s3=s3,  # type: ignore[arg-type]
        retries={"max_attempts": config.retries, "mode": "standard"},
        max_pool_connections=pool_size,
        connect_timeout=config.connect_timeout,
        read_timeout=config.read_timeout,
        tcp_keepalive=True,
        # We send the checksums we want ourselves (SHA-256 or CRC32); botocore's default CRC on
        # every request is what some S3-compatible stores reject (boto3 >= 1.36).
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        user_agent_extra=USER_AGENT,
    )
    session = boto3.session.Session()
    return session.client("s3", endpoint_url=config.endpoint, config=client_config)
