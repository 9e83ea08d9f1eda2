"""The agent's S3 client on the data path: SigV4 over a plain HTTP/1.1 connection (`http1`).

Why not boto3 here: git-lfs starts the agent once per transfer queue (PROTOCOL.md), and a boto3
client costs 0.5-1 s of CPU to build (service model, endpoint rules) and several CPU-seconds per
GiB; this client is ready in about a millisecond and moves bytes with `sendall` and buffered
reads. See the README's Performance section for the measurements behind the choice.

It speaks the few S3 calls the transfer engines make, with boto3's argument names and reply
shapes (`put_object(Bucket=, Key=, Body=...)` -> `{"ETag": ...}`), so the engines run on either
client (tests and callers may pass a boto3 one). Errors are `S3HttpError` with botocore's
`response` layout, translated in `s3errors` like botocore's own. This module holds the calls and
the request loop; S3's wire formats (addressing, headers, XML bodies and replies) are `s3wire`.

- Credentials, region and endpoint follow boto3's chain. The environment is read first
  (`AWS_ACCESS_KEY_ID`..., `AWS_REGION`, `AWS_ENDPOINT_URL_S3`/`AWS_ENDPOINT_URL`); only when it
  does not settle them is botocore's session asked (profiles, SSO, web identity, instance roles),
  once per process, and its refreshable credentials are re-read before each request.
- Addressing `auto`: virtual-hosted on AWS for DNS-safe bucket names, path-style on any other
  endpoint (what MinIO, SeaweedFS, Ceph... serve without DNS set-up).
- Payload: `UNSIGNED-PAYLOAD` over https, or when the request carries an `x-amz-checksum-*` the
  store verifies; otherwise the SHA-256 of the body is signed.
- Deadlines (`http1.Limits`): connect, silence, a minimum rate for bodies, a total for replies
  read at once. A request that hit one is tried once more on a new connection, not `retries`
  times: a stalled server is reported in seconds, naming the endpoint and the setting.
- Retries (`retries` attempts after the first) on connection errors, 5xx and throttling,
  with jittered exponential back-off; a bucket in another AWS region is followed once, to AWS's
  own endpoint for that region and never to a host a reply names.
"""

from __future__ import annotations

import os
import queue
import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, BinaryIO, Protocol

from . import logs

# The client's errors live with the package's others (`errors.py`); importable from here too.
from .errors import NoCredentials as NoCredentials
from .errors import S3HttpError as S3HttpError
from .errors import Stalled
from .http1 import DEFAULT_LIMITS, Connection, Limits, Response
from .s3wire import (
    ClientMeta,
    StreamingBody,
    Target,
    body_payload,
    complete_body,
    error_fields,
    is_error_document,
    object_reply,
    objects_reply,
    parts_reply,
    write_headers,
    xml_text,
)
from .sigv4 import Signer, encode_path, encode_query

log = logs.get(__name__)

USER_AGENT = "lfs-s3-agent/0.1"
# CompleteMultipartUpload of a big object may take minutes, AWS keeping the reply alive with
# a space now and then: any byte per `idle` window is progress, up to this many seconds.
COMPLETE_WITHIN = 900.0
MAX_ERROR_BODY = 64 * 1024
MAX_XML_BODY = 16 * 1024 * 1024
_RETRY_STATUS = frozenset({500, 502, 503, 504})
_RETRY_CODES = frozenset(
    {"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "InternalError"}
)
_REGION_CODES = frozenset({"PermanentRedirect", "AuthorizationHeaderMalformed", "301", "400"})


def backoff(failures: int) -> float:
    """Seconds to wait before attempt `failures + 1`: exponential, capped at 5 s, jittered."""
    jitter = int.from_bytes(os.urandom(2), "big") / 0xFFFF  # `random` costs 1.5 ms to import
    return min(5.0, 0.2 * 2.0**failures) * (0.5 + jitter / 2)


class _Credentials(Protocol):
    def get_frozen_credentials(self) -> Any: ...


def _aws_endpoint(region: str) -> str:
    return f"https://s3.{region}.amazonaws.com"


class S3Http:
    """A thread-safe S3 client for one bucket's objects, with a pool of keep-alive connections."""

    def __init__(
        self,
        *,
        bucket: str,
        region: str,
        endpoint: str | None,
        addressing_style: str = "auto",
        credentials: tuple[str, str, str | None] | _Credentials,
        retries: int = 5,
        pool_size: int = 16,
        sign_payload: bool = True,
        ca_bundle: str | None = None,
        limits: Limits = DEFAULT_LIMITS,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._bucket = bucket
        self._limits = limits
        self._style = addressing_style
        self._aws = endpoint is None
        self._credentials = credentials
        self._retries = retries
        self._sign_payload = sign_payload
        self._ca_bundle = ca_bundle
        self._sleep = sleep
        self._pool: queue.LifoQueue[Connection] = queue.LifoQueue(pool_size)
        self._lock = threading.Lock()
        self._set_region(region, endpoint)

    def _set_region(self, region: str, endpoint: str | None) -> None:
        with self._lock:
            self._endpoint = endpoint or _aws_endpoint(region)
            self._target = Target(self._endpoint, self._style, self._bucket, self._aws)
            self._signer: Signer | None = None
            self._region = region
            self.meta = ClientMeta(self._endpoint, region)
        self.close()

    # ---------------------------------------------------------------- calls (boto3's shapes)

    def head_object(self, *, Bucket: str, Key: str) -> dict[str, Any]:  # noqa: N803
        _, headers, _ = self._call("HeadObject", "HEAD", Key)
        return object_reply(headers)

    def get_object(self, *, Bucket: str, Key: str, Range: str | None = None) -> dict[str, Any]:  # noqa: N803
        extra = {"Range": Range} if Range else {}
        _, headers, stream = self._call("GetObject", "GET", Key, headers=extra, stream=True)
        reply = object_reply(headers)
        reply["Body"] = StreamingBody(stream, self._done)
        if headers.get("content-range"):
            reply["ContentRange"] = headers["content-range"]
        return reply

    def put_object(
        self,
        *,
        Bucket: str,  # noqa: N803
        Key: str,  # noqa: N803
        Body: BinaryIO | bytes,  # noqa: N803
        ContentLength: int,  # noqa: N803
        **args: Any,
    ) -> dict[str, Any]:
        headers = write_headers(args)
        _, reply, _ = self._call("PutObject", "PUT", Key, headers=headers, body=Body)
        return {"ETag": reply.get("etag", "")}

    def create_multipart_upload(self, *, Bucket: str, Key: str, **args: Any) -> dict[str, Any]:  # noqa: N803
        headers = write_headers(args)
        _, _, data = self._call(
            "CreateMultipartUpload", "POST", Key, query=[("uploads", "")], headers=headers
        )
        return {"UploadId": xml_text(data, "UploadId")}

    def upload_part(
        self,
        *,
        Bucket: str,  # noqa: N803
        Key: str,  # noqa: N803
        UploadId: str,  # noqa: N803
        PartNumber: int,  # noqa: N803
        Body: BinaryIO | bytes,  # noqa: N803
        ContentLength: int,  # noqa: N803
        ChecksumCRC32: str | None = None,  # noqa: N803
    ) -> dict[str, Any]:
        headers = {"x-amz-checksum-crc32": ChecksumCRC32} if ChecksumCRC32 else {}
        query = [("partNumber", str(PartNumber)), ("uploadId", UploadId)]
        _, reply, _ = self._call("UploadPart", "PUT", Key, query=query, headers=headers, body=Body)
        return {"ETag": reply.get("etag", "")}

    def complete_multipart_upload(
        self,
        *,
        Bucket: str,  # noqa: N803
        Key: str,  # noqa: N803
        UploadId: str,  # noqa: N803
        MultipartUpload: Mapping[str, Any],  # noqa: N803
    ) -> dict[str, Any]:
        xml = complete_body(MultipartUpload["Parts"])
        _, _, data = self._call(
            "CompleteMultipartUpload", "POST", Key, query=[("uploadId", UploadId)], body=xml
        )
        return {"ETag": xml_text(data, "ETag")}

    def abort_multipart_upload(self, *, Bucket: str, Key: str, UploadId: str) -> dict[str, Any]:  # noqa: N803
        self._call("AbortMultipartUpload", "DELETE", Key, query=[("uploadId", UploadId)])
        return {}

    def list_parts(
        self,
        *,
        Bucket: str,  # noqa: N803
        Key: str,  # noqa: N803
        UploadId: str,  # noqa: N803
        PartNumberMarker: int = 0,  # noqa: N803
    ) -> dict[str, Any]:
        query = [("uploadId", UploadId)]
        if PartNumberMarker:
            query.append(("part-number-marker", str(PartNumberMarker)))
        _, _, data = self._call("ListParts", "GET", Key, query=query)
        return parts_reply(data)

    def list_objects_v2(
        self,
        *,
        Bucket: str,  # noqa: N803
        Prefix: str = "",  # noqa: N803
        Delimiter: str = "",  # noqa: N803
        ContinuationToken: str = "",  # noqa: N803
    ) -> dict[str, Any]:
        """One page of keys (`Contents`) and, with a delimiter, `CommonPrefixes`."""
        query = [("list-type", "2")]
        for name, value in (
            ("prefix", Prefix),
            ("delimiter", Delimiter),
            ("continuation-token", ContinuationToken),
        ):
            if value:
                query.append((name, value))
        _, _, data = self._call("ListObjectsV2", "GET", "", query=query)
        return objects_reply(data)

    def close(self) -> None:
        while True:
            try:
                self._pool.get_nowait().close()
            except queue.Empty:
                return

    # ---------------------------------------------------------------- the request loop

    def _call(
        self,
        operation: str,
        method: str,
        key: str,
        *,
        query: list[tuple[str, str]] | None = None,
        headers: Mapping[str, str] | None = None,
        body: BinaryIO | bytes | None = None,
        stream: bool = False,
    ) -> tuple[int, dict[str, str], Any]:
        """Send one request, retrying what is transient; (status, headers, body bytes or the
        open response when `stream`)."""
        query = query or []
        failures = 0
        stalls = 0
        followed = False
        while True:
            try:
                return self._once(operation, method, key, query, headers or {}, body, stream)
            except S3HttpError as exc:
                region = None if followed else self._region_to_follow(exc)
                if region:
                    log.info("bucket %s is in %s; following", self._bucket, region)
                    self._set_region(region, None)
                    followed = True
                    continue
                if exc.status not in _RETRY_STATUS and exc.code not in _RETRY_CODES:
                    raise
                problem: Exception = exc
            except Stalled as exc:
                stalls += 1
                if stalls > 1 or failures >= self._retries:
                    raise
                problem = exc
            except OSError as exc:
                problem = exc
            failures += 1
            if failures > self._retries:
                raise problem
            delay = backoff(failures)
            log.info(
                "%s %s failed (%s); retry %d in %.1fs", operation, key, problem, failures, delay
            )
            self._sleep(delay)

    def _region_to_follow(self, exc: S3HttpError) -> str | None:
        """The AWS region a reply says the bucket is in, when it is another one than ours."""
        region = exc.response["Error"].get("Region")
        if (
            self._aws
            and exc.code in _REGION_CODES
            and region
            and region != self._region
            and re.fullmatch(r"[a-z0-9-]{1,40}", region)
        ):
            return str(region)
        return None

    def _signer_now(self) -> Signer:
        creds = self._credentials
        if isinstance(creds, tuple):
            access, secret, token = creds
        else:
            frozen = creds.get_frozen_credentials()
            access, secret, token = frozen.access_key, frozen.secret_key, frozen.token
        signer = self._signer
        if signer is None or not signer.uses(access, secret, token):
            signer = self._signer = Signer(access, secret, token, self._region)
        return signer

    def _once(
        self,
        operation: str,
        method: str,
        key: str,
        query: list[tuple[str, str]],
        headers: Mapping[str, str],
        body: BinaryIO | bytes | None,
        stream: bool,
    ) -> tuple[int, dict[str, str], Any]:
        target = self._target
        path = target.path(key)
        # Unsigned over https, or where the store verifies a checksum the request carries.
        sign = self._sign_payload and not target.https
        length, payload = body_payload(body, headers, sign=sign)
        send = self._signer_now().sign(method, target.host, path, query, headers, payload)
        send["Host"] = target.host
        send["User-Agent"] = USER_AGENT
        if body is not None or method in ("PUT", "POST"):
            send["Content-Length"] = str(length)
        url = encode_path(path) + ("?" + encode_query(query) if query else "")
        conn = self._connection(target)
        reused = conn.used
        completing = operation == "CompleteMultipartUpload"
        within = None if stream else self._limits.total
        if completing:
            within = max(COMPLETE_WITHIN, self._limits.total)
        try:
            response = conn.request(
                method, url, send, body, reply_within=within, trickle=completing
            )
        except Stalled:
            conn.close()
            raise
        except OSError:
            conn.close()
            if reused:
                # A keep-alive connection the server had closed: not a failure of the store.
                return self._once(operation, method, key, query, headers, body, stream)
            raise
        status = response.status
        if status >= 300:
            try:
                data = response.drain(MAX_ERROR_BODY)
            finally:
                self._done(conn, response)
            raise S3HttpError(operation, status, error_fields(data, status), response.headers)
        if stream:
            return status, response.headers, (conn, response)
        try:
            data = response.drain(MAX_XML_BODY)
        finally:
            self._done(conn, response)
        if not response.complete:
            raise ConnectionResetError(f"the connection ended within the reply to {operation}")
        if is_error_document(data):
            # CompleteMultipartUpload may fail after its 200 status line.
            raise S3HttpError(operation, 200, error_fields(data, 500), response.headers)
        return status, response.headers, data

    def _connection(self, target: Target) -> Connection:
        try:
            return self._pool.get_nowait()
        except queue.Empty:
            host, port = target.address
            return Connection(
                host,
                port,
                https=target.https,
                limits=self._limits,
                ca_bundle=self._ca_bundle,
            )

    def _done(self, conn: Connection, response: Response) -> None:
        """Keep a connection whose reply was read to its end for the next request."""
        if response.complete and not response.will_close and conn.open:
            try:
                self._pool.put_nowait(conn)
                return
            except queue.Full:
                pass
        conn.close()
