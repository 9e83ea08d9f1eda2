"""Conditional writes of a model's index, so that two people publishing at once keep both
versions.

S3 has compare-and-swap on PUT: `If-Match: <ETag>` writes only if the object is still the one
read, `If-None-Match: *` only if there is none yet; either fails with 412 when someone wrote
in between. `write_index` reads the index with its ETag, merges its own change in, writes
conditionally, and on a 412 reads again and merges again. After a write it reads the index
back and checks that its versions are listed: a store that ignores the conditions (see the
README's "Concurrent publishing") is then caught in most interleavings, though not all;
`probe_conditional_writes` tells whether a store honours them (for `doctor`).
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from registry.errors import IndexConflict, RegistryError
from registry.releases.formats import ModelIndex

if TYPE_CHECKING:
    from collections.abc import Iterable

    from mypy_boto3_s3.client import S3Client

    from lfs_agent.doctor import Context, Result

ATTEMPTS = 12


Read = Callable[[], tuple[ModelIndex | None, str | None]]
"""The index as published (None: there is none) and its ETag."""
Put = Callable[[ModelIndex, str | None], None]
"""Write the index if its ETag is still the given one (None: only if there is no index);
raise IndexConflict otherwise."""


def conditions(etag: str | None) -> dict[str, str]:
    """boto3's put_object arguments that make a write conditional on `etag`."""
    return {"IfMatch": etag} if etag is not None else {"IfNoneMatch": "*"}


def write_index(
    key: str,
    read: Read,
    put: Put,
    update: Callable[[ModelIndex | None], ModelIndex],
    holds: Callable[[ModelIndex], bool],
    *,
    attempts: int = ATTEMPTS,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """Write `update(current)` until it lands on the index it was made from.

    Args:
        key: the index's key (for messages).
        read, put: the store's side (see `Read` and `Put`).
        update: the new index from the current one; equal to it means nothing to write.
        holds: whether an index read back holds our change (our versions are listed).

    Returns:
        True when a write was made, False when the index already held our change.

    Raises:
        RegistryError: still conflicting after `attempts` tries (others keep publishing).
    """
    for attempt in range(attempts):
        current, etag = read()
        new = update(current)
        if new == current:
            return False
        try:
            put(new, etag)
        except IndexConflict:
            sleep(random.uniform(0.02, 0.1) * (attempt + 1))
            continue
        back, _ = read()
        if back is not None and holds(back):
            return True
        # Someone overwrote our write: a store that does not honour the condition.
    raise RegistryError(
        f"could not update {key}: it kept changing under {attempts} attempts (others are "
        "publishing the same model, or the store ignores conditional writes). The manifests "
        "are in place; publish again to add the versions to the index"
    )


def probe_conditional_writes(client: S3Client, bucket: str, prefix: str) -> str | None:
    """Whether the store honours conditional PUTs, by trying them on a scratch key under
    `<prefix>/releases/` (removed afterwards). None when it does; else what it ignored, for
    `doctor` and for people choosing a store.

    Raises:
        Exception: whatever the client raises for a failure other than a refused condition
            (no access, no bucket): the caller reports it as it reports any S3 failure.
    """
    key = "/".join(p for p in (prefix, "releases", f".conditional-probe-{uuid.uuid4().hex}") if p)
    ignored: list[str] = []
    try:
        client.put_object(Bucket=bucket, Key=key, Body=b"1", IfNoneMatch="*")
        for header, condition in (
            ("If-None-Match: *", conditions(None)),
            ("If-Match", conditions('"00000000000000000000000000000000"')),
        ):
            args: dict[str, Any] = dict(condition)
            try:
                client.put_object(Bucket=bucket, Key=key, Body=b"2", **args)
            except Exception as exc:
                if _refused(exc):
                    continue
                raise
            ignored.append(header)
    finally:
        try:
            client.delete_object(Bucket=bucket, Key=key)
        except Exception:  # noqa: BLE001  (a scratch key left behind is harmless)
            pass
    if not ignored:
        return None
    return (
        f"s3://{bucket} ignores conditional writes ({', '.join(ignored)} accepted when it "
        "should be refused): two people publishing the same model at the same moment can lose "
        "a version from its index; publish again to repair it, or publish from one place (CI)"
    )


def _refused(exc: Exception) -> bool:
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return False
    code = str(response.get("Error", {}).get("Code", ""))
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code in ("PreconditionFailed", "ConditionalRequestConflict") or status in (409, 412)


def check_conditional_writes(ctx: Context) -> Iterable[Result]:
    """`model-registry doctor`: whether the store honours conditional PUTs (with --write only:
    the probe writes and removes a scratch key)."""
    from lfs_agent.doctor import Result
    from lfs_agent.doctor_s3 import client_for

    client = client_for(ctx)
    if client is None or ctx.loaded is None or "bucket-failed" in ctx.shared:
        return
    if not ctx.write:
        yield Result("conditional writes", "note", "not probed (pass --write)")
        return
    config = ctx.loaded.config
    try:
        ignored = probe_conditional_writes(client, config.bucket, config.prefix)
    except Exception as exc:  # noqa: BLE001  (the write check reports access problems)
        yield Result("conditional writes", "note", f"not probed: {exc}")
        return
    if ignored is None:
        yield Result("conditional writes", "ok", "the store honours If-Match and If-None-Match")
    else:
        yield Result(
            "conditional writes",
            "warning",
            ignored,
            "publish from one place (CI), or publish again after concurrent publishes",
        )
