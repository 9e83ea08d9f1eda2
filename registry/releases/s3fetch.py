"""The registry's downloads from S3, through the agent's download engine (`lfs_agent.s3download`).

- `TransferSettings`: the size of each ranged GET, how many run at once, and how often a broken
  stream is resumed.
- `registry_config`: the agent settings the registry's transfers run with: those, and the
  deadlines and retries of the `LFS_S3_*` environment variables (`LFS_S3_READ_TIMEOUT`,
  `LFS_S3_CONNECT_TIMEOUT`, `LFS_S3_REQUEST_TIMEOUT`, `LFS_S3_MIN_RATE`, `LFS_S3_RETRIES`).
  Credentials, region and endpoint come from the standard AWS chain, as for boto3.
- `default_client`: the agent's own S3 client (`lfs_agent.s3client.make_data_client`), whose
  deadlines report a silent or dripping server in seconds, naming the endpoint and the setting.
- `fetch`: bytes of one object from an offset into a `PartialFile`, which hashes the prefix as
  it completes. The engine plans ranges lazily and checks the object's size on the first reply
  before planning more; its errors are worded by `registry.releases.storeerrors`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lfs_agent import s3download
from lfs_agent.config import AgentConfig, Value, build, env_layer
from lfs_agent.errors import ConfigError, TransferError
from lfs_agent.s3errors import Where
from registry.cache.partial import PartialFile
from registry.errors import RegistryError, StoreObjectMismatch
from registry.releases.storeerrors import store_error

if TYPE_CHECKING:
    from lfs_agent.s3http import S3Http
    from lfs_agent.transfer import Transfer

__all__ = [
    "DEFAULT_SETTINGS",
    "StoreObjectMismatch",
    "TransferSettings",
    "default_client",
    "fetch",
    "registry_config",
]

MiB = 1 << 20
# The agent settings the registry takes from the environment: how long a store may take, and
# how often to retry. The location comes from the root_url, the rest from TransferSettings.
ENV_SETTINGS = frozenset(
    {"retries", "connect-timeout", "read-timeout", "request-timeout", "min-rate"}
)


@dataclass(frozen=True)
class TransferSettings:
    """How objects are fetched (measured in bench/; see the README's performance section)."""

    # 8 MiB x 8 (boto3's own transfer defaults are 8 MiB x 10): on the same server, alternating,
    # 1 GiB took 1.72-1.86 s at 8 MiB against 2.79-3.90 s at 16 MiB x 8 (medians of 3).
    part_size: int = 8 * MiB
    concurrency: int = 8
    stream_retries: int = 5


DEFAULT_SETTINGS = TransferSettings()


def registry_config(
    bucket: str,
    settings: TransferSettings = DEFAULT_SETTINGS,
    environ: Mapping[str, str] = os.environ,
) -> AgentConfig:
    """The settings the registry's transfers from `bucket` run with.

    Raises:
        RegistryError: an `LFS_S3_*` deadline or retry count is invalid (the message names it).
    """
    # `build` validates; it wants a bucket, and the root_url's is set afterwards, unchecked.
    values = {
        "bucket": Value("root-url", "the root_url"),
        "retries": Value(str(settings.stream_retries), "the registry's transfer settings"),
    }
    values.update({k: v for k, v in env_layer(environ).items() if k in ENV_SETTINGS})
    try:
        config = build(values)
    except ConfigError as exc:
        raise RegistryError(str(exc)) from None
    return config._replace(
        bucket=bucket,
        part_size=settings.part_size,
        concurrency=settings.concurrency,
        checksum="off",
    )


def default_client(config: AgentConfig, environ: Mapping[str, str] = os.environ) -> S3Http:
    """The agent's own client for `config.bucket`, from the AWS chain (`environ` first).

    Raises:
        NoCredentials: no credentials anywhere in the chain.
    """
    from lfs_agent.s3client import make_data_client

    return make_data_client(config, config.concurrency, environ)


def fetch(t: Transfer, where: Where, out: PartialFile, offset: int) -> None:
    """Deliver bytes [offset, out.size) of the object at `where` to `out`.

    Raises:
        StoreObjectMismatch: the store's object does not have `out.size` bytes.
        RegistryError: S3, the network or the cache failed; the message says what to do.
    """
    try:
        s3download.fetch(t, where, out.size, offset, out)
    except TransferError as exc:
        raise store_error(exc, where) from exc
