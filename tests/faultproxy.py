"""A fault-injecting HTTP proxy for tests: sits between a client and a real S3 server.

`FaultProxy(upstream)` listens on a free port of 127.0.0.1 and relays HTTP/1.1 requests, one
upstream connection per client connection, byte for byte (the Host header is left alone, so
SigV4 signatures made for the proxy's address still verify upstream). Point the client at
`proxy.endpoint` through its normal endpoint setting.

A `Fault` names which requests it hits (method and target regexes, letting `skip` matches
through first, firing `times` times) and what happens to them:

- `reset`: the client's connection is reset (RST): at once, after `request_bytes` bytes of the
  request body were relayed upstream, or after `response_bytes` bytes of the response body;
- `stall`: nothing moves for `seconds` (before the request is forwarded, or after
  `response_bytes` bytes of the response body), then the relay goes on;
- `status`: the proxy answers `status` with an S3 XML error body naming `code`, and closes;
- `truncate`: the response head is relayed as is, then only `response_bytes` bytes of its body,
  then a clean close (the client sees a short read).

Every request is recorded (`proxy.requests`) with the fault applied to it, so tests can count.

    with FaultProxy(server.endpoint) as proxy:
        proxy.add(Fault("status", method="PUT", path=r"partNumber=2", status=503, code="SlowDown"))
"""

from __future__ import annotations

import re
import socket
import struct
import threading
from dataclasses import dataclass, field
from types import TracebackType
from typing import Literal
from urllib.parse import urlsplit

LOOPBACK = "127.0.0.1"
Kind = Literal["reset", "stall", "status", "truncate"]
_BUF = 64 * 1024


class _Dropped(Exception):
    """The connection ends here (a fault, or a peer went away)."""


@dataclass
class Fault:
    """One rule: what to do to which requests."""

    kind: Kind
    method: str = ".*"
    path: str = ".*"
    skip: int = 0  # matching requests let through before the fault fires
    times: int | None = 1  # how many times it fires; None: every later match
    seconds: float = 0.0  # stall
    status: int = 503
    code: str = "SlowDown"
    request_bytes: int | None = None  # reset after this many request body bytes
    response_bytes: int | None = None  # reset/stall/truncate after this many response body bytes
    matched: int = field(default=0, init=False)
    fired: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.kind == "truncate" and self.response_bytes is None:
            raise ValueError("a truncate fault needs response_bytes")

    def take(self, method: str, target: str) -> bool:
        """Count a request; True when this fault fires on it (called under the proxy's lock)."""
        if not (re.fullmatch(self.method, method) and re.search(self.path, target)):
            return False
        self.matched += 1
        if self.matched <= self.skip or (self.times is not None and self.fired >= self.times):
            return False
        self.fired += 1
        return True


@dataclass(frozen=True)
class Seen:
    """A request that reached the proxy, and the fault applied to it (None: relayed as is)."""

    method: str
    target: str
    fault: Kind | None


@dataclass
class _Head:
    first: str
    headers: list[tuple[str, str]]

    def get(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    def encode(self, drop: tuple[str, ...] = ()) -> bytes:
        lines = [self.first] + [f"{k}: {v}" for k, v in self.headers if k.lower() not in drop]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class _Reader:
    """Buffered reads from a socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def _fill(self) -> None:
        try:
            chunk = self.sock.recv(_BUF)
        except OSError as exc:
            raise _Dropped(str(exc)) from exc
        if not chunk:
            raise _Dropped("closed")
        self.buf += chunk

    def head(self) -> _Head:
        while b"\r\n\r\n" not in self.buf:
            if len(self.buf) > 1 << 20:
                raise _Dropped("head too large")
            self._fill()
        raw, _, self.buf = self.buf.partition(b"\r\n\r\n")
        first, *rest = raw.decode("latin-1").split("\r\n")
        headers = [(k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in rest)]
        return _Head(first, headers)

    def line(self) -> bytes:
        while b"\r\n" not in self.buf:
            self._fill()
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line + b"\r\n"

    def some(self, most: int) -> bytes:
        if not self.buf:
            self._fill()
        chunk, self.buf = self.buf[:most], self.buf[most:]
        return chunk

    def rest(self) -> bytes:
        """What is left until the peer closes; b"" once it has."""
        if self.buf:
            chunk, self.buf = self.buf, b""
            return chunk
        try:
            return self.sock.recv(_BUF)
        except OSError:
            return b""


def _reset(sock: socket.socket) -> None:
    """Close with an RST rather than a FIN."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


def _error_response(status: int, code: str) -> bytes:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>injected by the fault proxy</Message>"
        "<RequestId>faultproxy</RequestId></Error>"
    ).encode()
    reason = {403: "Forbidden", 500: "Internal Server Error", 503: "Service Unavailable"}
    head = (
        f"HTTP/1.1 {status} {reason.get(status, 'Error')}\r\n"
        "Content-Type: application/xml\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode("latin-1") + body


class FaultProxy:
    """The proxy; a context manager that starts and stops it."""

    def __init__(self, upstream: str) -> None:
        url = urlsplit(upstream)
        if url.hostname != LOOPBACK or url.port is None:
            raise ValueError(f"the fault proxy relays to {LOOPBACK}:PORT only, not {upstream}")
        self._upstream = (url.hostname, url.port)
        self._listener = socket.create_server((LOOPBACK, 0))
        self.port = int(self._listener.getsockname()[1])
        self.endpoint = f"http://{LOOPBACK}:{self.port}"
        self.faults: list[Fault] = []
        self.requests: list[Seen] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sockets: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._accept, name="faultproxy", daemon=True)

    def __enter__(self) -> FaultProxy:
        self._acceptor.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self.faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self.faults.clear()

    def count(self, method: str = ".*", path: str = ".*", fault: Kind | None = None) -> int:
        """Requests seen whose method and target match (and that got `fault`, when given)."""
        with self._lock:
            seen = list(self.requests)
        return sum(
            1
            for r in seen
            if re.fullmatch(method, r.method)
            and re.search(path, r.target)
            and (fault is None or r.fault == fault)
        )

    def close(self) -> None:
        self._stop.set()
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes accept() on Linux; close does not
        except OSError:
            pass
        self._listener.close()
        with self._lock:
            for sock in list(self._sockets):
                # shutdown, not close: it wakes the thread blocked in recv on it, which closes.
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        if self._acceptor.is_alive():
            self._acceptor.join(timeout=5)
        for thread in self._threads:
            thread.join(timeout=5)

    # ---------------------------------------------------------------------------- internals

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            thread = threading.Thread(
                target=self._serve, args=(client,), name="faultproxy-conn", daemon=True
            )
            self._threads.append(thread)
            thread.start()

    def _track(self, sock: socket.socket) -> socket.socket:
        with self._lock:
            self._sockets.add(sock)
        return sock

    def _forget(self, sock: socket.socket, *, reset: bool = False) -> None:
        with self._lock:
            self._sockets.discard(sock)
        if reset:
            _reset(sock)
        else:
            try:
                sock.close()
            except OSError:
                pass

    def _pick(self, method: str, target: str) -> Fault | None:
        with self._lock:
            chosen = next((f for f in self.faults if f.take(method, target)), None)
            self.requests.append(Seen(method, target, chosen.kind if chosen else None))
            return chosen

    def _serve(self, client: socket.socket) -> None:
        self._track(client)
        upstream: socket.socket | None = None
        reset = False
        try:
            upstream = self._track(socket.create_connection(self._upstream, timeout=120))
            from_client, from_upstream = _Reader(client), _Reader(upstream)
            while not self._stop.is_set():
                if not self._exchange(client, upstream, from_client, from_upstream):
                    break
        except _Reset:
            reset = True
        except (_Dropped, OSError):
            pass
        finally:
            self._forget(client, reset=reset)
            if upstream is not None:
                self._forget(upstream, reset=reset)

    def _exchange(
        self,
        client: socket.socket,
        upstream: socket.socket,
        from_client: _Reader,
        from_upstream: _Reader,
    ) -> bool:
        """Relay one request and its response; False when the connection must end."""
        try:
            head = from_client.head()
        except _Dropped:
            return False
        method, target = (head.first.split(" ") + ["", ""])[:2]
        fault = self._pick(method, target)
        length = int(head.get("Content-Length") or 0)
        expects = (head.get("Expect") or "").lower() == "100-continue"
        if head.get("Transfer-Encoding"):
            raise _Dropped("chunked request bodies are not supported")
        if fault is not None and fault.kind == "reset" and fault.request_bytes is None:
            if fault.response_bytes is None:
                raise _Reset
        if fault is not None and fault.kind == "status":
            if not expects:
                _skip(from_client, length)  # unread bytes would turn our close into an RST
            client.sendall(_error_response(fault.status, fault.code))
            return False
        if fault is not None and fault.kind == "stall" and fault.response_bytes is None:
            self._stop.wait(fault.seconds)
        if expects:
            # Answered here, so the body follows at once; upstream gets no Expect header.
            client.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        upstream.sendall(head.encode(drop=("expect",)))
        limit = fault.request_bytes if fault is not None and fault.kind == "reset" else None
        _relay(from_client, upstream, length, limit)
        return self._respond(client, method, from_upstream, fault)

    def _respond(
        self, client: socket.socket, method: str, from_upstream: _Reader, fault: Fault | None
    ) -> bool:
        while True:
            head = from_upstream.head()
            status = int(head.first.split(" ")[1])
            client.sendall(head.encode())
            if status >= 200:
                break
        keep = (head.get("Connection") or "").lower() != "close"
        cut = fault.response_bytes if fault is not None else None
        body = _BodyRelay(from_upstream, client, fault, cut, self._stop)
        if method == "HEAD" or status in (204, 304):
            return keep
        if (head.get("Transfer-Encoding") or "").lower() == "chunked":
            while True:
                size_line = from_upstream.line()
                body.send(size_line)
                size = int(size_line.split(b";")[0], 16)
                if size == 0:
                    body.send(from_upstream.line())
                    return keep
                body.copy(size + 2)
        length = head.get("Content-Length")
        if length is None:
            while chunk := from_upstream.rest():
                body.send(chunk)
            return False
        body.copy(int(length))
        return keep


class _Reset(Exception):
    """Reset both connections."""


def _skip(reader: _Reader, length: int) -> None:
    while length > 0:
        length -= len(reader.some(length))


def _relay(reader: _Reader, sock: socket.socket, length: int, limit: int | None) -> None:
    sent = 0
    while sent < length:
        most = length - sent if limit is None else min(length - sent, limit - sent)
        if most <= 0:
            raise _Reset
        chunk = reader.some(most)
        sock.sendall(chunk)
        sent += len(chunk)
    if limit is not None and sent >= limit:
        raise _Reset


class _BodyRelay:
    """Response body bytes to the client, applying a fault after `cut` bytes."""

    def __init__(
        self,
        reader: _Reader,
        client: socket.socket,
        fault: Fault | None,
        cut: int | None,
        stop: threading.Event,
    ) -> None:
        self._reader = reader
        self._client = client
        self._fault = fault
        self._cut = cut
        self._stop = stop
        self._sent = 0

    def copy(self, length: int) -> None:
        while length > 0:
            chunk = self._reader.some(length)
            length -= len(chunk)
            self.send(chunk)

    def send(self, chunk: bytes) -> None:
        if self._cut is None or self._fault is None:
            self._client.sendall(chunk)
            return
        room = self._cut - self._sent
        if room >= len(chunk):
            self._client.sendall(chunk)
            self._sent += len(chunk)
            return
        self._client.sendall(chunk[: max(room, 0)])
        self._sent = self._cut
        kind = self._fault.kind
        if kind == "stall":
            self._cut = None
            self._stop.wait(self._fault.seconds)
            self._client.sendall(chunk[max(room, 0) :])
            return
        if kind == "reset":
            raise _Reset
        raise _Dropped("truncated")  # a clean close: the client sees a short body
