"""Build the boto3 S3 client from the agent's settings (imported on the first transfer only).

Credentials, profiles, SSO and `AWS_ENDPOINT_URL(_S3)` come from boto3's default chain; only
what the user configured for this agent is passed explicitly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .config import AgentConfig

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

USER_AGENT = "lfs-s3-agent/0.1"


def make_client(config: AgentConfig, pool_size: int) -> S3Client:
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
        connect_timeout=10,
        read_timeout=60,
        tcp_keepalive=True,
        # We send the checksums we want ourselves (SHA-256 or CRC32); botocore's default CRC on
        # every request is what some S3-compatible stores reject (boto3 >= 1.36).
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        user_agent_extra=USER_AGENT,
    )
    session = boto3.session.Session()
    return session.client("s3", endpoint_url=config.endpoint, config=client_config)
