"""A minimal HTTP/1.1 client connection over a socket: what S3 needs, nothing more.

`http.client` costs about 24 ms to import (it brings `email` and `ssl`), paid by every agent
process before its first byte moves (PROTOCOL.md: one process per transfer queue). This module
needs `socket` only, and `ssl` for https endpoints.

Framing follows RFC 9112: no body for HEAD, 1xx, 204 and 304; `Transfer-Encoding: chunked`;
else `Content-Length`; else the body runs to the end of the connection. A reply whose body ended
early reads as short (`Response.complete` stays False) rather than raising, so that a ranged
download resumes from the byte it reached.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    from io import BufferedReader

MAX_HEADER_LINE = 64 * 1024
MAX_HEADERS = 200
READ_BUFFER = 256 * 1024
SEND_BLOCK = 1024 * 1024


class HttpProtocolError(OSError):
    """The server's reply is not HTTP/1.x we can read."""


class Response:
    """A reply: status, headers (lower-case names), and a body read with `read(n)`."""

    def __init__(self, rfile: BufferedReader, method: str) -> None:
        self._rfile = rfile
        line = self._line()
        version, _, rest = line.partition(" ")
        code, _, reason = rest.partition(" ")
        if not version.startswith("HTTP/1.") or not code.isdigit():
            raise HttpProtocolError(f"not an HTTP/1.x reply: {line[:80]!r}")
        self.status = int(code)
        self.reason = reason.strip()
        self.headers: dict[str, str] = {}
        for _ in range(MAX_HEADERS + 1):
            header = self._line()
            if not header:
                break
            name, sep, value = header.partition(":")
            if not sep:
                raise HttpProtocolError(f"malformed header line {header[:80]!r}")
            name = name.strip().lower()
            value = value.strip()
            self.headers[name] = f"{self.headers[name]}, {value}" if name in self.headers else value
        else:
            raise HttpProtocolError(f"more than {MAX_HEADERS} header lines")
        connection = self.headers.get("connection", "").lower()
        self.will_close = version == "HTTP/1.0" or "close" in connection
        self._chunked = "chunked" in self.headers.get("transfer-encoding", "").lower()
        self._chunk_left = 0
        # Bytes of the body still to come; None: until the connection closes.
        self.length: int | None
        if method == "HEAD" or self.status in (204, 304) or 100 <= self.status < 200:
            self.length = 0
        elif self._chunked:
            self.length = None
        elif "content-length" in self.headers:
            try:
                self.length = int(self.headers["content-length"])
            except ValueError:
                raise HttpProtocolError("invalid Content-Length") from None
            if self.length < 0:
                raise HttpProtocolError("invalid Content-Length")
        else:
            self.length = None
            self.will_close = True
        self.complete = self.length == 0

    def _line(self) -> str:
        raw = self._rfile.readline(MAX_HEADER_LINE + 1)
        if not raw:
            raise ConnectionResetError("the server closed the connection without a reply")
        if len(raw) > MAX_HEADER_LINE:
            raise HttpProtocolError("header line too long")
        return raw.decode("latin-1").rstrip("\r\n")

    def read(self, amt: int = -1) -> bytes:
        """Up to `amt` bytes of the body (all of it when negative); b"" at its end, or when the
        connection ended early (then `complete` is False)."""
        if self.complete:
            return b""
        if self._chunked:
            return self._read_chunked(amt)
        if self.length is not None and (amt < 0 or amt > self.length):
            amt = self.length
        data = self._rfile.read(amt)
        if self.length is None:
            if not data or amt < 0:
                self.complete = True
            return data
        self.length -= len(data)
        if self.length == 0:
            self.complete = True
        elif len(data) < amt:
            self.will_close = True  # ended early: the connection is not reusable
        return data

    def _read_chunked(self, amt: int) -> bytes:
        parts: list[bytes] = []
        want = amt
        while want != 0:
            if self._chunk_left == 0:
                size_line = self._line().partition(";")[0].strip()
                try:
                    self._chunk_left = int(size_line, 16)
                except ValueError:
                    raise HttpProtocolError(f"bad chunk size {size_line[:20]!r}") from None
                if self._chunk_left == 0:
                    while self._line():  # trailers, up to the blank line
                        pass
                    self.complete = True
                    break
            n = self._chunk_left if want < 0 else min(want, self._chunk_left)
            data = self._rfile.read(n)
            if not data:
                self.will_close = True
                break
            parts.append(data)
            self._chunk_left -= len(data)
            if self._chunk_left == 0:
                self._line()  # the CRLF after the chunk
            if want > 0:
                want -= len(data)
        return b"".join(parts)

    def drain(self, cap: int) -> bytes:
        """The rest of the body, at most `cap` bytes.

        Raises:
            HttpProtocolError: the body is larger than `cap`.
        """
        data = self.read(cap + 1)
        while not self.complete and len(data) <= cap:
            more = self.read(cap + 1 - len(data))
            if not more:
                break
            data += more
        if len(data) > cap:
            self.will_close = True
            raise HttpProtocolError(f"reply larger than {cap} bytes")
        return data


class Connection:
    """One keep-alive connection to `host:port`; `request` sends, `Response` reads."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        https: bool,
        connect_timeout: float,
        read_timeout: float,
        ca_bundle: str | None = None,
    ) -> None:
        sock = socket.create_connection((host, port), timeout=connect_timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if https:
                import ssl

                context = ssl.create_default_context(cafile=ca_bundle)
                sock = context.wrap_socket(sock, server_hostname=host)
            sock.settimeout(read_timeout)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self._rfile: BufferedReader = sock.makefile("rb", buffering=READ_BUFFER)  # type: ignore[assignment]
        self.open = True
        self.used = False

    def request(
        self, method: str, target: str, headers: dict[str, str], body: bytes | BinaryIO | None
    ) -> Response:
        """Send a request (headers must include Host and, with a body, Content-Length); read the
        status line and headers of the reply."""
        self.used = True
        head = f"{method} {target} HTTP/1.1\r\n" + "".join(
            f"{name}: {value}\r\n" for name, value in headers.items()
        )
        data = (head + "\r\n").encode("latin-1")
        if isinstance(body, bytes) and len(body) <= 64 * 1024:
            self._sock.sendall(data + body)
        else:
            self._sock.sendall(data)
            if isinstance(body, bytes):
                self._sock.sendall(body)
            elif body is not None:
                while block := body.read(SEND_BLOCK):
                    self._sock.sendall(block)
        return Response(self._rfile, method)

    def close(self) -> None:
        if self.open:
            self.open = False
            self._rfile.close()
            self._sock.close()
