"""The S3 checks of `lfs-s3-agent doctor`: credentials, the bucket, read and write permission,
addressing and checksums, with the client the registry uses (`s3client.make_client`).

The write probe (`--write` only) puts a small object under the prefix, outside `objects/`,
reads it back and removes it again; it also learns whether the store accepts, and verifies,
the SHA-256 checksum the agent sends with every upload.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .findings import Check, Context, Result
from .s3client import ensure_site, make_client

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

PROBE = b"lfs-s3-agent doctor: a probe object, removed again at once\n"


def _code(exc: Exception) -> str:
    response: Any = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = str(response.get("Error", {}).get("Code", ""))
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode", "")
        return code or str(status)
    return type(exc).__name__


def _location(ctx: Context) -> str:
    assert ctx.loaded is not None
    config = ctx.loaded.config
    return f"s3://{config.bucket}/{config.prefix}" if config.prefix else f"s3://{config.bucket}"


def client_for(ctx: Context) -> S3Client | None:
    """The boto3 client the S3 checks share (None without settings or credentials)."""
    return _client(ctx)


def _client(ctx: Context) -> S3Client | None:
    client = ctx.shared.get("client")
    if client is None and ctx.loaded is not None and "no-credentials" not in ctx.shared:
        config = ctx.loaded.config._replace(retries=1)
        client = make_client(config, 4)
        ctx.shared["client"] = client
    return client  # type: ignore[return-value]


def check_credentials(ctx: Context) -> Iterable[Result]:
    if ctx.loaded is None:
        return
    ensure_site()
    import botocore.session

    session = botocore.session.Session()
    try:
        credentials = session.get_credentials()
    except Exception as exc:  # a broken profile raises botocore's own errors here
        ctx.shared["no-credentials"] = True
        yield Result("credentials", "problem", f"the AWS credential chain failed: {exc}")
        return
    if credentials is None:
        ctx.shared["no-credentials"] = True
        yield Result(
            "credentials",
            "problem",
            "no AWS credentials found (environment, AWS_PROFILE, ~/.aws, SSO, web identity, "
            "container or instance role)",
            "set AWS_PROFILE (and run 'aws sso login' for an SSO profile), or "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
        )
        return
    key = credentials.access_key or ""
    profile = ctx.environ.get("AWS_PROFILE")
    detail = f"found by botocore's '{credentials.method}' provider, access key id ...{key[-4:]}"
    yield Result("credentials", "ok", detail + (f" (AWS_PROFILE={profile})" if profile else ""))


def check_bucket(ctx: Context) -> Iterable[Result]:
    client = _client(ctx)
    if client is None or ctx.loaded is None:
        return
    bucket = ctx.loaded.config.bucket
    try:
        client.head_bucket(Bucket=bucket)
    except Exception as exc:
        code = _code(exc)
        ctx.shared["bucket-failed"] = True
        if code in ("404", "NoSuchBucket", "NotFound"):
            yield Result(
                "bucket",
                "problem",
                f"bucket '{bucket}' does not exist at {_endpoint(client)}",
                "fix the bucket in lfs.url (.lfsconfig), or create the bucket",
            )
        elif code in ("403", "AccessDenied", "Forbidden"):
            yield Result(
                "bucket",
                "problem",
                f"these credentials may not access bucket '{bucket}' ({code})",
                "use a key whose policy allows s3:ListBucket on the bucket and s3:GetObject "
                "(and s3:PutObject to push) under the prefix",
            )
        else:
            yield Result(
                "bucket",
                "problem",
                f"cannot reach bucket '{bucket}' at {_endpoint(client)}: {exc}",
                "check the network and the endpoint (lfs-s3.endpoint, AWS_ENDPOINT_URL_S3 or "
                "AWS_ENDPOINT_URL) and the addressing style (lfs-s3.addressing-style)",
            )
        return
    yield Result("bucket", "ok", f"'{bucket}' exists at {_endpoint(client)}")
    yield from _freshness(ctx, client, bucket)


def _endpoint(client: S3Client) -> str:
    return str(client.meta.endpoint_url)


def _freshness(ctx: Context, client: S3Client, bucket: str) -> Iterable[Result]:
    """A bucket created moments ago may be a typo that a server created on the first push."""
    try:
        listed = client.list_buckets().get("Buckets", [])
    except Exception:
        return  # not every key may list buckets; the age is then unknown
    created = next((b.get("CreationDate") for b in listed if b.get("Name") == bucket), None)
    if created is None:
        return
    age = (datetime.datetime.now(datetime.UTC) - created).total_seconds()
    if age < ctx.fresh_bucket_seconds:
        yield Result(
            "bucket",
            "warning",
            f"'{bucket}' was created {max(age, 0):.0f} s ago. Some servers (SeaweedFS, for an "
            "admin key) create a missing bucket on the first upload, so a typo in lfs.url "
            "would look like success: check that this is the bucket you meant",
        )


def check_read(ctx: Context) -> Iterable[Result]:
    client = _client(ctx)
    if client is None or ctx.loaded is None or "bucket-failed" in ctx.shared:
        return
    config = ctx.loaded.config
    probe = f"{config.prefix}/objects/" if config.prefix else "objects/"
    try:
        client.list_objects_v2(Bucket=config.bucket, Prefix=probe, MaxKeys=1)
        client.head_object(Bucket=config.bucket, Key=f"{probe}doctor-{uuid.uuid4().hex}")
    except Exception as exc:
        if _code(exc) not in ("404", "NoSuchKey", "NotFound"):
            yield Result(
                "read",
                "problem",
                f"cannot read under {_location(ctx)} ({_code(exc)})",
                "use a key whose policy allows s3:ListBucket and s3:GetObject there",
            )
            return
    yield Result("read", "ok", f"listing and reading under {_location(ctx)} are allowed")


def check_write(ctx: Context) -> Iterable[Result]:
    client = _client(ctx)
    if client is None or ctx.loaded is None or "bucket-failed" in ctx.shared:
        return
    config = ctx.loaded.config
    if not ctx.write:
        yield Result("write", "note", "not probed (pass --write to put and remove a probe object)")
        return
    key = "/".join(p for p in (config.prefix, "doctor", f"probe-{uuid.uuid4().hex}") if p)
    digest = base64.b64encode(hashlib.sha256(PROBE).digest()).decode()
    args: dict[str, Any] = {"Bucket": config.bucket, "Key": key, "Body": PROBE}
    if config.checksum == "sha256":
        args["ChecksumSHA256"] = digest
    try:
        client.put_object(**args)
    except Exception as exc:
        code = _code(exc)
        if config.checksum == "sha256" and code in ("InvalidRequest", "NotImplemented", "400"):
            yield Result(
                "checksum",
                "problem",
                f"the store refused an upload with a SHA-256 checksum ({code}: {exc})",
                "set 'git config lfs-s3.checksum off' (or commit checksum = off in "
                ".lfs-s3config) for this store",
            )
        else:
            yield Result(
                "write",
                "problem",
                f"these credentials cannot write under {_location(ctx)} ({code}), so pushes "
                "will fail",
                "use a key whose policy allows s3:PutObject there (s3:AbortMultipartUpload and "
                "s3:DeleteObject too)",
            )
        return
    try:
        got = client.get_object(Bucket=config.bucket, Key=key)["Body"].read()
    finally:
        removed = _remove(client, config.bucket, key)
    if got != PROBE:
        yield Result("write", "problem", f"the probe object {key} came back changed")
    else:
        yield Result("write", "ok", f"put, read back and removed a probe object under {key}")
    if not removed:
        yield Result(
            "write",
            "problem",
            f"could not remove the probe object s3://{config.bucket}/{key}",
            "remove it by hand; pushes need s3:DeleteObject only to clean up",
        )
    if config.checksum == "sha256":
        yield from _checksum_verified(client, config.bucket, key)


def _remove(client: S3Client, bucket: str, key: str) -> bool:
    try:
        client.delete_object(Bucket=bucket, Key=key)
    except Exception:
        return False
    return True


def _checksum_verified(client: S3Client, bucket: str, key: str) -> Iterable[Result]:
    """Whether the store refuses bytes that do not match their SHA-256 (a wrong one is sent)."""
    wrong = base64.b64encode(hashlib.sha256(b"other bytes").digest()).decode()
    try:
        client.put_object(Bucket=bucket, Key=key, Body=PROBE, ChecksumSHA256=wrong)
    except Exception:
        yield Result("checksum", "ok", "the store verifies the SHA-256 checksum of uploads")
        return
    _remove(client, bucket, key)
    yield Result(
        "checksum",
        "warning",
        "the store accepts an upload whose SHA-256 checksum does not match: it does not "
        "verify checksums, so only the agent's own hashing guards the bytes",
    )


def check_addressing(ctx: Context) -> Iterable[Result]:
    client = _client(ctx)
    if client is None or ctx.loaded is None:
        return
    style = ctx.loaded.config.addressing_style
    source = ctx.loaded.values.get("addressing-style")
    origin = f" (from {source.source})" if source else " (default)"
    yield Result(
        "addressing", "note", f"{style}-style bucket addressing{origin} at {_endpoint(client)}"
    )


CHECKS: list[Check] = [check_credentials, check_bucket, check_read, check_write, check_addressing]
