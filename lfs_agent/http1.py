"""A minimal HTTP/1.1 client connection over a socket: what S3 needs, nothing more.

`http.client` costs about 24 ms to import (it brings `email` and `ssl`), paid by every agent
process before its first byte moves (PROTOCOL.md: one process per transfer queue). This module
needs `socket` only, and `ssl` for https endpoints.

Framing follows RFC 9112: no body for HEAD, 1xx, 204 and 304; `Transfer-Encoding: chunked`;
else `Content-Length`; else the body runs to the end of the connection. A reply whose body ended
early reads as short (`Response.complete` stays False) rather than raising, so that a ranged
download resumes from the byte it reached.

Deadlines (`Limits`): a server that accepts and never answers, or answers a byte at a time, is
detected in seconds. Every socket operation runs under a pace: silence for `idle` seconds is a
timeout, and so is a body (sent or received) averaging under `min_rate` bytes/s over `idle`
seconds; a reply the caller reads whole (metadata, errors) must also end within its deadline.
Socket timeouts alone cannot do this: each `recv` that returns a byte restarts them.
"""

from __future__ import annotations

import io
import socket
import time
from typing import TYPE_CHECKING, BinaryIO, NamedTuple

# Defined with the package's other errors (`errors.py`); importable from here as before.
from .errors import HttpProtocolError as HttpProtocolError
from .errors import Stalled as Stalled

if TYPE_CHECKING:
    from io import BufferedReader

MAX_HEADER_LINE = 64 * 1024
MAX_HEADERS = 200
READ_BUFFER = 256 * 1024
SEND_BLOCK = 1024 * 1024


class Limits(NamedTuple):
    """How long a server may take. Seconds, and bytes per second."""

    connect: float = 10.0  # to open a connection (and finish TLS)
    idle: float = 15.0  # of silence, before the reply starts or within it
    total: float = 30.0  # for a whole reply read at once (metadata, errors)
    min_rate: int = 1024  # that a body must average over `idle` seconds, sent or received


DEFAULT_LIMITS = Limits()


class _Pace:
    """The limits of the phase a connection is in, checked around every socket operation."""

    def __init__(self, sock: socket.socket, limits: Limits, peer: str) -> None:
        self._sock = sock
        self._limits = limits
        self._peer = peer
        self.phase(need=1, deadline=None)

    def phase(self, *, need: int, deadline: float | None) -> None:
        """From now on: at least `need` bytes per `idle` window, and all done by `deadline`."""
        self._need = max(1, need)  # silence for a whole window is never progress
        self._deadline = deadline
        self._window_end = time.monotonic() + self._limits.idle
        self._moved = 0

    def timeout(self) -> float:
        """Start of an operation: the socket timeout it gets.

        Raises:
            Stalled: the window that just ended moved too little, or the deadline passed.
        """
        now = time.monotonic()
        if now >= self._window_end:
            if self._moved < self._need:
                raise self._stalled()
            self._window_end = now + self._limits.idle
            self._moved = 0
        left = self._window_end - now
        if self._deadline is not None:
            if now >= self._deadline:
                raise Stalled(
                    f"{self._peer} did not finish its reply in time",
                    setting="request-timeout",
                )
            left = min(left, self._deadline - now)
        return max(left, 0.001)

    def moved(self, n: int) -> None:
        self._moved += n

    def _stalled(self) -> Stalled:
        idle = self._limits.idle
        if self._moved == 0:
            return Stalled(f"{self._peer} sent nothing for {idle:g} s", setting="read-timeout")
        return Stalled(
            f"{self._peer} moved {self._moved} bytes in {idle:g} s, below the minimum of "
            f"{self._limits.min_rate} bytes/s",
            setting="min-rate",
        )


class _PacedSocket(io.RawIOBase):
    """The socket as a raw stream whose every read and send is under the connection's pace."""

    def __init__(self, sock: socket.socket, pace: _Pace) -> None:
        self._sock = sock
        self._pace = pace

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        while True:
            self._sock.settimeout(self._pace.timeout())
            try:
                n = self._sock.recv_into(buffer)
            except TimeoutError:
                continue  # the pace decides whether the window that ended was too slow
            self._pace.moved(n)
            return n

    def send_all(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        while view:
            self._sock.settimeout(self._pace.timeout())
            try:
                n = self._sock.send(view)
            except TimeoutError:
                continue
            self._pace.moved(n)
            view = view[n:]


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
        limits: Limits = DEFAULT_LIMITS,
        ca_bundle: str | None = None,
    ) -> None:
        peer = f"{host}:{port}"
        try:
            sock = socket.create_connection((host, port), timeout=limits.connect)
        except TimeoutError:
            raise Stalled(
                f"cannot connect to {peer} within {limits.connect:g} s", setting="connect-timeout"
            ) from None
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if https:
                import ssl

                context = ssl.create_default_context(cafile=ca_bundle)
                sock = context.wrap_socket(sock, server_hostname=host)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self._limits = limits
        self._pace = _Pace(sock, limits, peer)
        self._raw = _PacedSocket(sock, self._pace)
        self._rfile: BufferedReader = io.BufferedReader(self._raw, READ_BUFFER)
        self.open = True
        self.used = False

    def request(
        self,
        method: str,
        target: str,
        headers: dict[str, str],
        body: bytes | BinaryIO | None,
        *,
        reply_within: float | None = None,
        trickle: bool = False,
    ) -> Response:
        """Send a request (headers must include Host and, with a body, Content-Length); read the
        status line and headers of the reply. `reply_within`: seconds the whole reply may take
        once the request is sent (the caller reads it at once); None: a body read as it streams,
        limited by the pace only. `trickle`: any byte per window is progress in the reply's body
        too (a reply kept alive with spaces while the server works)."""
        self.used = True
        head = f"{method} {target} HTTP/1.1\r\n" + "".join(
            f"{name}: {value}\r\n" for name, value in headers.items()
        )
        data = (head + "\r\n").encode("latin-1")
        self._pace.phase(need=int(self._limits.min_rate * self._limits.idle), deadline=None)
        if isinstance(body, bytes) and len(body) <= 64 * 1024:
            self._raw.send_all(data + body)
        else:
            self._raw.send_all(data)
            if isinstance(body, bytes):
                self._raw.send_all(body)
            elif body is not None:
                while block := body.read(SEND_BLOCK):
                    self._raw.send_all(block)
        deadline = None if reply_within is None else time.monotonic() + reply_within
        # Until the reply starts, any byte at all per window will do: the server may be working.
        self._pace.phase(need=1, deadline=deadline)
        response = Response(self._rfile, method)
        need = 1 if trickle else self._limits.min_rate * self._limits.idle
        self._pace.phase(need=int(need), deadline=deadline)
        return response

    def close(self) -> None:
        if self.open:
            self.open = False
            self._rfile.close()
            self._sock.close()
