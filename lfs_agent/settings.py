"""The agent's settings table: each setting's name, its `AgentConfig` field, parser and help.

A parser takes the raw text of a setting (from the environment, git config or a committed file)
and returns its value, or raises ValueError with what was expected; `config.build` quotes the
value and where it came from around that message.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

MiB = 1024 * 1024
GiB = 1024 * MiB
STORAGE_CLASSES = frozenset(
    {
        "STANDARD",
        "REDUCED_REDUNDANCY",
        "STANDARD_IA",
        "ONEZONE_IA",
        "INTELLIGENT_TIERING",
        "GLACIER_IR",
        "GLACIER",
        "DEEP_ARCHIVE",
        "EXPRESS_ONEZONE",
    }
)


def _size(text: str) -> int:
    m = re.fullmatch(r"\s*(\d+)\s*([kmgt]?)(i?b?)\s*", text, re.IGNORECASE)
    if not m:
        raise ValueError("expected a size such as 16MiB, 64MB or 8388608")
    power = " kmgt".index(m.group(2).lower() or " ")
    base = 1000 if m.group(3).lower() == "b" else 1024
    return int(m.group(1)) * int(base**power)


def _int_in(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            n = int(text.strip())
        except ValueError:
            raise ValueError(f"expected a whole number from {low} to {high}") from None
        if not low <= n <= high:
            raise ValueError(f"expected a whole number from {low} to {high}")
        return n

    return parse


def _size_in(low: int, high: int, what: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        n = _size(text)
        if not low <= n <= high:
            raise ValueError(f"{what} must be from {low // MiB} MiB to {high // GiB} GiB")
        return n

    return parse


def _seconds(low: float, high: float) -> Callable[[str], float]:
    def parse(text: str) -> float:
        value = text.strip().lower().removesuffix("s").strip()
        try:
            n = float(value)
        except ValueError:
            n = -1.0
        if not low <= n <= high:
            raise ValueError(f"expected seconds from {low:g} to {high:g}, such as 15 or 2.5")
        return n

    return parse


def _rate(text: str) -> int:
    n = _size(text.strip().lower().removesuffix("/s"))
    if n > GiB:
        raise ValueError("expected bytes per second up to 1GiB, such as 1KiB or 0")
    return n


def _choice(*options: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = text.strip()
        if value not in options:
            raise ValueError("expected one of " + ", ".join(options))
        return value

    return parse


def _bucket(text: str) -> str:
    value = text.strip()
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{1,254}", value):
        raise ValueError("a bucket name is 2 to 255 letters, digits, '.', '-' or '_'")
    return value


def _prefix(text: str) -> str:
    parts = [p for p in text.strip().split("/") if p]
    if any(p in (".", "..") for p in parts):
        raise ValueError("a prefix may not contain '.' or '..' segments")
    return "/".join(parts)


def parse_endpoint(text: str) -> str:
    """An endpoint URL, normalised (no trailing slash).

    Raises:
        ValueError: not an http:// or https:// URL with a host.
    """
    return _endpoint(text)


def _endpoint(text: str) -> str:
    value = text.strip().rstrip("/")
    url = urlsplit(value)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise ValueError("expected an http:// or https:// URL such as https://s3.example.com")
    return value


def _storage_class(text: str) -> str:
    value = text.strip().upper()
    if value not in STORAGE_CLASSES:
        raise ValueError("expected one of " + ", ".join(sorted(STORAGE_CLASSES)))
    return value


def _text(text: str) -> str:
    value = text.strip()
    if not value:
        raise ValueError("expected a non-empty value")
    return value


# setting name (as in git config) -> (AgentConfig field, parser, help)
SETTINGS: dict[str, tuple[str, Callable[[str], Any], str]] = {
    "bucket": ("bucket", _bucket, "S3 bucket holding the LFS objects"),
    "prefix": ("prefix", _prefix, "key prefix inside the bucket ('' for none)"),
    "region": ("region", _text, "AWS region (default: boto3's chain)"),
    "endpoint": ("endpoint", _endpoint, "S3 endpoint URL for non-AWS stores"),
    "addressing-style": (
        "addressing_style",
        _choice("auto", "path", "virtual"),
        "bucket in the path or in the host name",
    ),
    "storage-class": ("storage_class", _storage_class, "S3 storage class for uploads"),
    "sse": ("sse", _choice("AES256", "aws:kms"), "server-side encryption for uploads"),
    "sse-kms-key-id": ("sse_kms_key_id", _text, "KMS key id when sse = aws:kms"),
    "part-size": (
        "part_size",
        _size_in(5 * MiB, 5 * GiB, "part-size"),
        "multipart part and ranged-download size",
    ),
    "multipart-threshold": (
        "multipart_threshold",
        _size_in(5 * MiB, 5 * GiB, "multipart-threshold"),
        "objects above this size use multipart upload / ranged download",
    ),
    "concurrency": ("concurrency", _int_in(1, 64), "parallel parts per object"),
    "max-connections": (
        "max_connections",
        _int_in(1, 256),
        "S3 requests in flight across all agent processes of a repository",
    ),
    "checksum": (
        "checksum",
        _choice("sha256", "off"),
        "send SHA-256 checksums to the store; 'off' for stores that reject them",
    ),
    "retries": ("retries", _int_in(0, 20), "attempts after a transient S3 failure"),
    "connect-timeout": (
        "connect_timeout",
        _seconds(0.1, 600),
        "seconds to open a connection to the store",
    ),
    "read-timeout": (
        "read_timeout",
        _seconds(0.1, 3600),
        "seconds the store may stay silent, before or within a reply",
    ),
    "request-timeout": (
        "request_timeout",
        _seconds(0.1, 3600),
        "seconds for a whole reply without an object body (HEAD, errors, multipart calls)",
    ),
    "min-rate": (
        "min_rate",
        _rate,
        "bytes/s an object body must average over read-timeout seconds (0: any progress)",
    ),
}
