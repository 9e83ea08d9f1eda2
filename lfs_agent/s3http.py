"""The agent's S3 client on the data path: SigV4 over a plain HTTP/1.1 connection (`http1`).

Why not boto3 here: git-lfs starts the agent once per transfer queue (PROTOCOL.md), and a boto3
client costs 0.5-1 s of CPU to build (service model, endpoint rules) and several CPU-seconds per
GiB; this client is ready in about a millisecond and moves bytes with `sendall` and buffered
reads. See the README's Performance section for the measurements behind the choice.

It speaks the few S3 calls the transfer engines make, with boto3's argument names and reply
shapes (`put_object(Bucket=, Key=, Body=...)` -> `{"ETag": ...}`), so the engines run on either
client (tests and callers may pass a boto3 one). Errors are `S3HttpError` with botocore's
`response` layout, translated in `s3errors` like botocore's own.

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

import hashlib
import os
import queue
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, BinaryIO, Protocol

from . import logs
from .http1 import DEFAULT_LIMITS, Connection, HttpProtocolError, Limits, Response, Stalled
from .sigv4 import EMPTY_SHA256, UNSIGNED, Signer, encode_path, encode_query

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
_DNS_SAFE = re.compile(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")
_STATUS_TEXT = {400: "Bad Request", 403: "Forbidden", 404: "Not Found", 500: "Internal Error"}


def backoff(failures: int) -> float:
    """Seconds to wait before attempt `failures + 1`: exponential, capped at 5 s, jittered."""
    jitter = int.from_bytes(os.urandom(2), "big") / 0xFFFF  # `random` costs 1.5 ms to import
    return min(5.0, 0.2 * 2.0**failures) * (0.5 + jitter / 2)


class S3HttpError(Exception):
    """S3 answered with an error. `response` has botocore's layout (`Error`, `ResponseMetadata`)."""

    def __init__(
        self,
        operation: str,
        status: int,
        fields: tuple[str, str, str | None],
        headers: Any,
    ) -> None:
        code, message, region = fields
        super().__init__(
            f"An error occurred ({code}) when calling the {operation} operation: {message}"
        )
        error = {"Code": code, "Message": message}
        # The header on a 301 (a HEAD has no body), else the body's <Region>.
        region = headers.get("x-amz-bucket-region") or region
        if region:
            error["Region"] = region
        self.response: dict[str, Any] = {
            "Error": error,
            "ResponseMetadata": {
                "HTTPStatusCode": status,
                "HTTPHeaders": {k.lower(): v for k, v in headers.items()},
            },
        }
        self.status = status
        self.code = code


class NoCredentials(Exception):
    """No AWS credentials were found anywhere in the chain."""


class _Credentials(Protocol):
    def get_frozen_credentials(self) -> Any: ...


class ClientMeta:
    """What callers may ask of a client besides its calls (boto3's `client.meta`)."""

    def __init__(self, endpoint_url: str, region_name: str) -> None:
        self.endpoint_url = endpoint_url
        self.region_name = region_name


class _Target:
    """Where requests go: scheme, host and path for a bucket, per the addressing style."""

    def __init__(self, endpoint: str, style: str, bucket: str, aws: bool) -> None:
        scheme, _, rest = endpoint.partition("://")
        netloc, _, path = rest.partition("/")
        self.https = scheme == "https"
        self.base = ("/" + path).rstrip("/") if path else ""
        virtual = style == "virtual" or (
            style == "auto" and aws and _DNS_SAFE.fullmatch(bucket) is not None
        )
        self.host = f"{bucket}.{netloc}" if virtual else netloc
        self.prefix = self.base if virtual else f"{self.base}/{bucket}"
        name, colon, port = self.host.rpartition(":")
        # A port follows a name, an IPv4 address or a bracketed IPv6 one ("[::1]:9000").
        if colon and port.isdigit() and (name.endswith("]") or ":" not in name):
            self.address = (name.strip("[]"), int(port))
        else:
            self.address = (self.host.strip("[]"), 443 if self.https else 80)

    def path(self, key: str) -> str:
        return f"{self.prefix}/{key}"


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
            self._target = _Target(self._endpoint, self._style, self._bucket, self._aws)
            self._signer: Signer | None = None
            self._region = region
            self.meta = ClientMeta(self._endpoint, region)
        self.close()

    # ---------------------------------------------------------------- calls (boto3's shapes)

    def head_object(self, *, Bucket: str, Key: str) -> dict[str, Any]:  # noqa: N803
        _, headers, _ = self._call("HeadObject", "HEAD", Key)
        return _object_reply(headers)

    def get_object(self, *, Bucket: str, Key: str, Range: str | None = None) -> dict[str, Any]:  # noqa: N803
        extra = {"Range": Range} if Range else {}
        _, headers, stream = self._call("GetObject", "GET", Key, headers=extra, stream=True)
        reply = _object_reply(headers)
        reply["Body"] = _Body(stream, self._done)
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
        headers = _write_headers(args)
        _, reply, _ = self._call("PutObject", "PUT", Key, headers=headers, body=Body)
        return {"ETag": reply.get("etag", "")}

    def create_multipart_upload(self, *, Bucket: str, Key: str, **args: Any) -> dict[str, Any]:  # noqa: N803
        headers = _write_headers(args)
        _, _, data = self._call(
            "CreateMultipartUpload", "POST", Key, query=[("uploads", "")], headers=headers
        )
        return {"UploadId": _xml_text(data, "UploadId")}

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
        from xml.sax.saxutils import escape

        parts = []
        for part in MultipartUpload["Parts"]:
            fields = "".join(
                f"<{name}>{escape(str(part[name]))}</{name}>"
                for name in ("PartNumber", "ETag", "ChecksumCRC32")
                if part.get(name) is not None
            )
            parts.append(f"<Part>{fields}</Part>")
        xml = (
            '<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            + "".join(parts)
            + "</CompleteMultipartUpload>"
        ).encode()
        _, _, data = self._call(
            "CompleteMultipartUpload", "POST", Key, query=[("uploadId", UploadId)], body=xml
        )
        return {"ETag": _xml_text(data, "ETag")}

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
        root = _xml(data)
        parts = []
        for node in root.iter():
            if _local(node.tag) != "Part":
                continue
            fields = {_local(c.tag): (c.text or "") for c in node}
            part: dict[str, Any] = {
                "PartNumber": int(fields.get("PartNumber", "0")),
                "ETag": fields.get("ETag", ""),
                "Size": int(fields.get("Size", "-1")),
            }
            if fields.get("ChecksumCRC32"):
                part["ChecksumCRC32"] = fields["ChecksumCRC32"]
            parts.append(part)
        fields = {_local(c.tag): (c.text or "") for c in root}
        reply: dict[str, Any] = {"Parts": parts, "IsTruncated": fields.get("IsTruncated") == "true"}
        if fields.get("NextPartNumberMarker"):
            reply["NextPartNumberMarker"] = int(fields["NextPartNumberMarker"])
        return reply

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
        root = _xml(data)
        contents: list[dict[str, Any]] = []
        prefixes: list[dict[str, str]] = []
        for node in root:
            tag = _local(node.tag)
            fields = {_local(c.tag): (c.text or "") for c in node}
            if tag == "Contents":
                contents.append(
                    {"Key": fields.get("Key", ""), "Size": int(fields.get("Size", "0"))}
                )
            elif tag == "CommonPrefixes":
                prefixes.append({"Prefix": fields.get("Prefix", "")})
        top = {_local(c.tag): (c.text or "") for c in root}
        reply: dict[str, Any] = {
            "Contents": contents,
            "CommonPrefixes": prefixes,
            "IsTruncated": top.get("IsTruncated") == "true",
        }
        if top.get("NextContinuationToken"):
            reply["NextContinuationToken"] = top["NextContinuationToken"]
        return reply

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
                region = exc.response["Error"].get("Region")
                if (
                    self._aws
                    and not followed
                    and exc.code in _REGION_CODES
                    and region
                    and region != self._region
                    and re.fullmatch(r"[a-z0-9-]{1,40}", region)
                ):
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
        length = 0
        payload = EMPTY_SHA256
        if isinstance(body, bytes):
            length = len(body)
        elif body is not None:
            body.seek(0)
            length = _remaining(body)
        if body is not None:
            if target.https or any(h.startswith("x-amz-checksum-") for h in headers):
                payload = UNSIGNED
            elif not self._sign_payload:
                payload = UNSIGNED
            else:
                payload = _sha256_of(body)
        send = self._signer_now().sign(method, target.host, path, query, headers, payload)
        send["Host"] = target.host
        send["User-Agent"] = USER_AGENT
        if body is not None or method in ("PUT", "POST"):
            send["Content-Length"] = str(length)
        url = encode_path(path) + ("?" + encode_query(query) if query else "")
        conn = self._connection(target)
        reused = conn.used
        within = None if stream else self._limits.total
        if operation == "CompleteMultipartUpload":
            within = max(COMPLETE_WITHIN, self._limits.total)
        try:
            response = conn.request(
                method, url, send, body, reply_within=within, trickle=within == COMPLETE_WITHIN
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
            raise S3HttpError(operation, status, _error_fields(data, status), response.headers)
        if stream:
            return status, response.headers, (conn, response)
        try:
            data = response.drain(MAX_XML_BODY)
        finally:
            self._done(conn, response)
        if not response.complete:
            raise ConnectionResetError(f"the connection ended within the reply to {operation}")
        if _is_error_document(data):
            # CompleteMultipartUpload may fail after its 200 status line.
            raise S3HttpError(operation, 200, _error_fields(data, 500), response.headers)
        return status, response.headers, data

    def _connection(self, target: _Target) -> Connection:
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


class _Body:
    """A streaming GET body: `iter_chunks`, `read`, `close`, like botocore's StreamingBody."""

    def __init__(
        self, stream: tuple[Connection, Response], done: Callable[[Connection, Response], None]
    ) -> None:
        self._conn, self._response = stream
        self._done = done
        self._closed = False

    def iter_chunks(self, chunk_size: int = 1024 * 1024) -> Iterator[bytes]:
        # A body that ends early just stops: the caller checks how far it got and resumes.
        while chunk := self._response.read(chunk_size):
            yield chunk

    def read(self, amt: int = -1) -> bytes:
        """The rest of the body, or at most `amt` bytes of it (fewer only at its end)."""
        return self._response.read(amt)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._done(self._conn, self._response)


def _remaining(body: BinaryIO) -> int:
    here = body.tell()
    end = body.seek(0, os.SEEK_END)
    body.seek(here)
    return end - here


def _sha256_of(body: BinaryIO | bytes) -> str:
    if isinstance(body, bytes):
        return hashlib.sha256(body).hexdigest()
    data = body.getvalue() if hasattr(body, "getvalue") else None
    if isinstance(data, bytes):
        return hashlib.sha256(data).hexdigest()
    raise TypeError("a signed payload needs a bytes or BytesIO body")


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _is_error_document(data: bytes) -> bool:
    """Whether a body is an <Error>: S3 may pad the body of a 200 reply with spaces, before or
    after the XML declaration, while it works (CompleteMultipartUpload)."""
    head = data.lstrip()
    if head.startswith(b"<?xml"):
        head = head[head.find(b"?>") + 2 :].lstrip()
    return head.startswith(b"<Error>")


def _xml(data: bytes) -> Any:
    from xml.etree import ElementTree

    try:
        return ElementTree.fromstring(data.lstrip())
    except ElementTree.ParseError as exc:
        raise HttpProtocolError(f"unreadable reply from S3: {exc}") from None


def _xml_text(data: bytes, name: str) -> str:
    for node in _xml(data).iter():
        if _local(node.tag) == name:
            return node.text or ""
    raise HttpProtocolError(f"S3 reply has no {name}")


def _error_fields(data: bytes, status: int) -> tuple[str, str, str | None]:
    """(code, message, region) of an error reply; the status stands in for a missing code."""
    code, message = str(status), _STATUS_TEXT.get(status, "")
    if not data.strip():
        return code, message, None
    try:
        root = _xml(data)
    except HttpProtocolError:
        return code, message, None
    fields = {_local(c.tag): (c.text or "") for c in root}
    return fields.get("Code") or code, fields.get("Message") or message, fields.get("Region")


def _object_reply(headers: Mapping[str, str]) -> dict[str, Any]:
    reply: dict[str, Any] = {
        "ContentLength": int(headers.get("content-length", "-1")),
        "ETag": headers.get("etag", ""),
        "Metadata": {
            k[len("x-amz-meta-") :]: v for k, v in headers.items() if k.startswith("x-amz-meta-")
        },
    }
    return reply


_HEADERS = {
    "StorageClass": "x-amz-storage-class",
    "ServerSideEncryption": "x-amz-server-side-encryption",
    "SSEKMSKeyId": "x-amz-server-side-encryption-aws-kms-key-id",
    "ChecksumSHA256": "x-amz-checksum-sha256",
    "ChecksumAlgorithm": "x-amz-checksum-algorithm",
    "IfNoneMatch": "If-None-Match",
    "IfMatch": "If-Match",
    "ContentType": "Content-Type",
}


def _write_headers(args: Mapping[str, Any]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in args.items():
        if name == "Metadata":
            headers.update({f"x-amz-meta-{k}": v for k, v in value.items()})
        elif name in _HEADERS:
            headers[_HEADERS[name]] = str(value)
        else:
            raise TypeError(f"unsupported argument {name}")
    return headers
