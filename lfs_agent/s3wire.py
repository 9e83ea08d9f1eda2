"""S3's wire formats for the calls `s3http` makes, kept apart from its request loop.

Requests: the bucket's address per addressing style (`Target`), boto3's argument names as S3's
headers (`write_headers`), a body's length and signed payload hash (`body_payload`),
CompleteMultipartUpload's XML body (`complete_body`). Replies: an object's headers, the XML of
ListParts and ListObjectsV2 in boto3's reply shapes, a streaming GET body shaped like
botocore's (`StreamingBody`), and the code, message and region of an error reply
(`error_fields`; `errors.S3HttpError` lays them out as botocore does). And `ClientMeta`,
boto3's `client.meta`.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, BinaryIO

from .errors import HttpProtocolError
from .sigv4 import EMPTY_SHA256, UNSIGNED

if TYPE_CHECKING:
    from .http1 import Connection, Response

_DNS_SAFE = re.compile(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")
_STATUS_TEXT = {400: "Bad Request", 403: "Forbidden", 404: "Not Found", 500: "Internal Error"}
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


class ClientMeta:
    """What callers may ask of a client besides its calls (boto3's `client.meta`)."""

    def __init__(self, endpoint_url: str, region_name: str) -> None:
        self.endpoint_url = endpoint_url
        self.region_name = region_name


class Target:
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


def write_headers(args: Mapping[str, Any]) -> dict[str, str]:
    """The headers for a PutObject's or CreateMultipartUpload's further boto3 arguments."""
    headers: dict[str, str] = {}
    for name, value in args.items():
        if name == "Metadata":
            headers.update({f"x-amz-meta-{k}": v for k, v in value.items()})
        elif name in _HEADERS:
            headers[_HEADERS[name]] = str(value)
        else:
            raise TypeError(f"unsupported argument {name}")
    return headers


def body_payload(
    body: BinaryIO | bytes | None, headers: Iterable[str], *, sign: bool
) -> tuple[int, str]:
    """A request body's length and the payload hash to sign: its SHA-256 when `sign`, unless
    the request carries an `x-amz-checksum-*` the store verifies; else UNSIGNED-PAYLOAD."""
    if body is None:
        return 0, EMPTY_SHA256
    if isinstance(body, bytes):
        length = len(body)
    else:
        body.seek(0)
        length = _remaining(body)
    if not sign or any(h.startswith("x-amz-checksum-") for h in headers):
        return length, UNSIGNED
    return length, _sha256_of(body)


def complete_body(parts: Iterable[Mapping[str, Any]]) -> bytes:
    """CompleteMultipartUpload's XML body for boto3's `MultipartUpload["Parts"]`."""
    from xml.sax.saxutils import escape

    items = []
    for part in parts:
        fields = "".join(
            f"<{name}>{escape(str(part[name]))}</{name}>"
            for name in ("PartNumber", "ETag", "ChecksumCRC32")
            if part.get(name) is not None
        )
        items.append(f"<Part>{fields}</Part>")
    return (
        '<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        + "".join(items)
        + "</CompleteMultipartUpload>"
    ).encode()


def object_reply(headers: Mapping[str, str]) -> dict[str, Any]:
    """HeadObject's and GetObject's reply fields, from the reply's headers."""
    reply: dict[str, Any] = {
        "ContentLength": int(headers.get("content-length", "-1")),
        "ETag": headers.get("etag", ""),
        "Metadata": {
            k[len("x-amz-meta-") :]: v for k, v in headers.items() if k.startswith("x-amz-meta-")
        },
    }
    return reply


def parts_reply(data: bytes) -> dict[str, Any]:
    """One page of ListParts, as boto3 shapes it."""
    root = xml_root(data)
    parts = []
    for node in root.iter():
        if _local(node.tag) != "Part":
            continue
        fields = _children(node)
        part: dict[str, Any] = {
            "PartNumber": int(fields.get("PartNumber", "0")),
            "ETag": fields.get("ETag", ""),
            "Size": int(fields.get("Size", "-1")),
        }
        if fields.get("ChecksumCRC32"):
            part["ChecksumCRC32"] = fields["ChecksumCRC32"]
        parts.append(part)
    top = _children(root)
    reply: dict[str, Any] = {"Parts": parts, "IsTruncated": top.get("IsTruncated") == "true"}
    if top.get("NextPartNumberMarker"):
        reply["NextPartNumberMarker"] = int(top["NextPartNumberMarker"])
    return reply


def objects_reply(data: bytes) -> dict[str, Any]:
    """One page of ListObjectsV2, as boto3 shapes it: `Contents` and `CommonPrefixes`."""
    root = xml_root(data)
    contents: list[dict[str, Any]] = []
    prefixes: list[dict[str, str]] = []
    for node in root:
        tag = _local(node.tag)
        fields = _children(node)
        if tag == "Contents":
            contents.append({"Key": fields.get("Key", ""), "Size": int(fields.get("Size", "0"))})
        elif tag == "CommonPrefixes":
            prefixes.append({"Prefix": fields.get("Prefix", "")})
    top = _children(root)
    reply: dict[str, Any] = {
        "Contents": contents,
        "CommonPrefixes": prefixes,
        "IsTruncated": top.get("IsTruncated") == "true",
    }
    if top.get("NextContinuationToken"):
        reply["NextContinuationToken"] = top["NextContinuationToken"]
    return reply


class StreamingBody:
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


def is_error_document(data: bytes) -> bool:
    """Whether a body is an <Error>: S3 may pad the body of a 200 reply with spaces, before or
    after the XML declaration, while it works (CompleteMultipartUpload)."""
    head = data.lstrip()
    if head.startswith(b"<?xml"):
        head = head[head.find(b"?>") + 2 :].lstrip()
    return head.startswith(b"<Error>")


def error_fields(data: bytes, status: int) -> tuple[str, str, str | None]:
    """(code, message, region) of an error reply; the status stands in for a missing code."""
    code, message = str(status), _STATUS_TEXT.get(status, "")
    if not data.strip():
        return code, message, None
    try:
        root = xml_root(data)
    except HttpProtocolError:
        return code, message, None
    fields = _children(root)
    return fields.get("Code") or code, fields.get("Message") or message, fields.get("Region")


def xml_root(data: bytes) -> Any:
    """The root element of an XML reply.

    Raises:
        HttpProtocolError: the reply is not XML.
    """
    from xml.etree import ElementTree

    try:
        return ElementTree.fromstring(data.lstrip())
    except ElementTree.ParseError as exc:
        raise HttpProtocolError(f"unreadable reply from S3: {exc}") from None


def xml_text(data: bytes, name: str) -> str:
    """The text of the first element called `name` in an XML reply."""
    for node in xml_root(data).iter():
        if _local(node.tag) == name:
            return node.text or ""
    raise HttpProtocolError(f"S3 reply has no {name}")


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _children(node: Any) -> dict[str, str]:
    return {_local(c.tag): (c.text or "") for c in node}


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
