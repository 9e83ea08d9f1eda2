"""A loopback TCP proxy that adds network latency, for benchmarks that care about round trips.

Everything here is on 127.0.0.1, where a round trip costs microseconds: a client that makes one
request per object looks as fast as one that batches. `LatencyProxy` puts a WAN-like delay
between a client and a local server, the way `tc qdisc ... netem delay` would, without root:

- each chunk read from one side is queued with a delivery time (now + delay_ms / 2) and written
  to the other side in order once due, so a request/response exchange costs delay_ms more but
  the throughput is not throttled (up to `QUEUE_BYTES` per direction in flight);
- a new connection costs one more round trip before its first byte goes through, as the TCP
  handshake would (the client's connect() itself returns at once: the proxy accepts locally).

It runs an asyncio loop on a thread of its own; the context manager stops it and closes every
connection. `python -m bench.latency` measures it against a tiny local HTTP server.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import http.server
import socket
import statistics
import threading
import time
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, TypeVar

LOOPBACK = "127.0.0.1"
# Read size per chunk, and how many chunks may wait per direction (the "netem limit"):
# throughput is capped at QUEUE_BYTES per one-way delay, e.g. 64 MiB per 25 ms.
CHUNK = 256 * 1024
QUEUE_CHUNKS = 256
QUEUE_BYTES = CHUNK * QUEUE_CHUNKS
START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0

T = TypeVar("T")
# (due time on the loop's clock, data); b"" is the end of the stream.
Delivery = tuple[float, bytes]


class LatencyProxy:
    """A TCP proxy 127.0.0.1:port -> target_host:target_port adding delay_ms per round trip."""

    def __init__(
        self,
        target_port: int,
        delay_ms: float,
        *,
        target_host: str = LOOPBACK,
        handshake: bool = True,
    ) -> None:
        if target_host != LOOPBACK:
            # A benchmark helper must not become a way to send traffic off the machine.
            raise ValueError(f"LatencyProxy forwards to {LOOPBACK} only, not {target_host}")
        if delay_ms < 0:
            raise ValueError(f"delay_ms must be >= 0, not {delay_ms}")
        self.target = (target_host, target_port)
        self.delay_ms = delay_ms
        self.handshake = handshake
        self._one_way = delay_ms / 2000
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name=f"latency-proxy-{target_port}", daemon=True
        )
        self._server: asyncio.Server | None = None
        self._sessions: set[asyncio.Task[Any]] = set()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def __enter__(self) -> LatencyProxy:
        self._thread.start()
        try:
            self._server = self._call(self._listen(), START_TIMEOUT)
        except BaseException:
            self._shutdown_loop()
            raise
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self._call(self._stop(), STOP_TIMEOUT)
        finally:
            self._shutdown_loop()

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        """Run `coro` on the proxy's loop and wait for its result from this thread."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def _shutdown_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(STOP_TIMEOUT)
        if not self._thread.is_alive():
            self._loop.close()

    async def _listen(self) -> asyncio.Server:
        return await asyncio.start_server(self._session, LOOPBACK, 0)

    async def _stop(self) -> None:
        """Stop accepting, then end every session (which closes both of its sockets)."""
        assert self._server is not None
        self._server.close()
        while self._sessions:
            for task in self._sessions:
                task.cancel()
            await asyncio.gather(*self._sessions, return_exceptions=True)
        # Let the transports' connection_lost callbacks run before the loop stops.
        await asyncio.sleep(0)

    async def _session(
        self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter
    ) -> None:
        """One client connection: connect upstream, then pump both ways until both ends close."""
        task = asyncio.current_task()
        assert task is not None
        self._sessions.add(task)
        writers = [client_w]
        try:
            if self.handshake:
                await asyncio.sleep(2 * self._one_way)
            upstream_r, upstream_w = await asyncio.open_connection(*self.target)
            writers.append(upstream_w)
            for writer in writers:
                _no_delay(writer)
            await asyncio.gather(self._pipe(client_r, upstream_w), self._pipe(upstream_r, client_w))
        except OSError:
            pass  # the target refused us, or a side reset: drop the connection
        except asyncio.CancelledError:
            # Only _stop cancels; and asyncio's stream server (3.11) logs an error for a
            # connection callback that ends cancelled.
            pass
        finally:
            self._sessions.discard(task)
            for writer in writers:
                writer.transport.abort()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One direction: read chunks as they come, deliver each one-way-delay later, in order."""
        queue: asyncio.Queue[Delivery] = asyncio.Queue(maxsize=QUEUE_CHUNKS)
        deliver = asyncio.create_task(self._deliver(queue, writer))
        try:
            while chunk := await reader.read(CHUNK):
                await queue.put((self._due(), chunk))
            await queue.put((self._due(), b""))
            await deliver
        except OSError:
            # This side is gone: so is the other (a reset is passed on as a reset).
            writer.transport.abort()
        finally:
            deliver.cancel()

    def _due(self) -> float:
        return self._loop.time() + self._one_way

    async def _deliver(self, queue: asyncio.Queue[Delivery], writer: asyncio.StreamWriter) -> None:
        while True:
            due, chunk = await queue.get()
            wait = due - self._loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if not chunk:
                # Half-close, as the sender did: the other direction may still be busy.
                if writer.can_write_eof() and not writer.transport.is_closing():
                    writer.write_eof()
                return
            writer.write(chunk)
            await writer.drain()


def _no_delay(writer: asyncio.StreamWriter) -> None:
    """Nagle's algorithm would hold small writes back for an ACK that itself is delayed."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


# --------------------------------------------------------------------------------------------
# Self-test: python -m bench.latency [--delay-ms 50]


class _Handler(http.server.BaseHTTPRequestHandler):
    """A tiny keep-alive HTTP/1.1 answer, so the measurement is the proxy, not the server."""

    protocol_version = "HTTP/1.1"
    # Headers and body are two writes: with Nagle the body waits for the client's delayed ACK.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        body = b"ok\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _get_times(port: int, requests: int) -> tuple[float, list[float]]:
    """Seconds for the first GET on a new connection, and for each following keep-alive GET."""
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=30)
    try:
        times = []
        for _ in range(requests + 1):
            start = time.perf_counter()
            conn.request("GET", "/")
            response = conn.getresponse()
            assert response.status == 200 and response.read() == b"ok\n"
            times.append(time.perf_counter() - start)
        return times[0], times[1:]
    finally:
        conn.close()


def _bulk_seconds(port: int, size: int) -> float:
    """Seconds to push `size` bytes through and get them echoed back (throughput check)."""
    payload = bytes(size)
    with socket.create_connection((LOOPBACK, port), timeout=30) as sock:
        start = time.perf_counter()
        sender = threading.Thread(target=_send_all, args=(sock, payload))
        sender.start()
        received = 0
        while chunk := sock.recv(CHUNK):
            received += len(chunk)
        sender.join()
        assert received == size, (received, size)
        return time.perf_counter() - start


def _send_all(sock: socket.socket, payload: bytes) -> None:
    sock.sendall(payload)
    sock.shutdown(socket.SHUT_WR)


class _Echo(threading.Thread):
    """A TCP echo server on 127.0.0.1 for the throughput check."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.listener = socket.create_server((LOOPBACK, 0))
        self.port = int(self.listener.getsockname()[1])

    def run(self) -> None:
        conn, _ = self.listener.accept()
        with conn:
            while chunk := conn.recv(CHUNK):
                conn.sendall(chunk)
            conn.shutdown(socket.SHUT_WR)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--delay-ms", type=float, default=50.0)
    parser.add_argument("--requests", type=int, default=20)
    args = parser.parse_args()
    server = http.server.ThreadingHTTPServer((LOOPBACK, 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = int(server.server_address[1])
    try:
        _, direct = _get_times(port, args.requests)
        with LatencyProxy(port, args.delay_ms) as proxy:
            first, delayed = _get_times(proxy.port, args.requests)
            echo = _Echo()
            echo.start()
            with LatencyProxy(echo.port, args.delay_ms) as bulk:
                seconds = _bulk_seconds(bulk.port, 256 * 1024 * 1024)
    finally:
        server.shutdown()
        server.server_close()
    _report(args.delay_ms, direct, first, delayed, seconds)


def _report(
    delay_ms: float, direct: list[float], first: float, delayed: list[float], bulk: float
) -> None:
    base = statistics.median(direct) * 1000
    added = statistics.median(delayed) * 1000 - base
    print(f"direct GET (keep-alive), median       {base:8.2f} ms")
    print(
        f"through proxy, first GET (new conn.)  {first * 1000:8.2f} ms  (expect ~{2 * delay_ms:g})"
    )
    print(f"through proxy, keep-alive GET, median {base + added:8.2f} ms")
    print(f"added per request                     {added:8.2f} ms  (expect ~{delay_ms:g})")
    print(f"256 MiB echoed through proxy          {bulk:8.2f} s   ({512 / bulk:.0f} MiB/s moved)")
    if not 0.9 * delay_ms <= added <= 1.1 * delay_ms + 2:
        raise SystemExit(f"added latency {added:.2f} ms is not about {delay_ms:g} ms")


if __name__ == "__main__":
    main()
