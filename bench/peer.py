"""The peer: git-lfs's own HTTP transfers, through an LFS server backed by the same S3 server.

The agent replaces git-lfs's transfer with direct S3 access. The fair comparison is what
people run without it: git-lfs's built-in "basic" transfer against an LFS server that hands out
presigned S3 URLs, so the bytes still go straight to S3 and only the batch API is in between.
That server is giftless (https://github.com/datopian/giftless) 0.6.2, under waitress:

- `ensure_giftless()` installs it into a virtualenv of its own, `.venv/giftless` (git-ignored),
  as `bench/contenders.py` does for the AWS CLI: its pins must not touch the project's `.venv`.
- `Giftless(server, bucket)` runs it on 127.0.0.1 against a `devtools.s3servers` server, with
  anonymous read/write access and giftless's S3 storage ("basic_external" transfer adapter).
- `configure_repo(repo, url)` points a repository's git-lfs at it, with no custom agent.

`python -m bench.peer` is the self-test: push and fetch 10 objects through it against SeaweedFS.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from devtools.s3servers import LOOPBACK, S3Server, answers_http, free_port, seaweedfs

from .common import BUCKET, ROOT, KiB, World

# Inside .venv: git-ignored, skipped by ruff and mypy, removed by `make clean`.
GIFTLESS_VENV = ROOT / ".venv" / "giftless"
# giftless 0.6.2's wheel declares no dependencies, so they are listed here (typing-extensions:
# giftless.auth imports it, and nothing else pulls it in). With PyJWT 2.10+
# its pre-authorized "verify" callback is always refused (401): PyJWT 2.10 requires the "sub"
# claim to be a string, and giftless's tokens do not comply.
GIFTLESS_REQUIREMENTS = (
    "giftless==0.6.2",
    "flask",
    "flask-classful",
    "flask-marshmallow",
    "marshmallow-enum",
    "webargs",
    "pyyaml",
    "python-dotenv",
    "figcan",
    "cachetools",
    "boto3",
    "waitress",
    "pyjwt<2.10",
    "typing-extensions",
)
# Written once the install succeeded: a half-done install (pip interrupted) is redone.
_INSTALLED_MARKER = GIFTLESS_VENV / "installed-requirements.txt"
WAITRESS_THREADS = 16
START_TIMEOUT = 60.0
STOP_GRACE = 10.0
_PORT_ATTEMPTS = 3
_LOG_TAIL_CHARS = 3000
# The local-config keys that would make git-lfs use the agent instead of its own transfer.
_AGENT_KEYS = r"^lfs\.(standalonetransferagent|customtransfer\.lfs-s3\..*)$"


def ensure_giftless() -> Path:
    """The bin directory of giftless's virtualenv, creating and filling it on first use."""
    wanted = "\n".join(GIFTLESS_REQUIREMENTS) + "\n"
    bin_dir = GIFTLESS_VENV / "bin"
    if _INSTALLED_MARKER.is_file() and _INSTALLED_MARKER.read_text() == wanted:
        return bin_dir
    print(f"installing giftless into {GIFTLESS_VENV} (once)", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(GIFTLESS_VENV)], check=True)
    subprocess.run(
        [str(bin_dir / "python"), "-m", "pip", "install", "-q", *GIFTLESS_REQUIREMENTS],
        check=True,
    )
    _INSTALLED_MARKER.write_text(wanted)
    return bin_dir


def giftless_config(server: S3Server, bucket: str, prefix: str) -> dict[str, Any]:
    """giftless's configuration: anyone may read and write; objects go to s3://bucket/prefix/.

    Keys as giftless 0.6.2's `giftless/config.py` and `storage/amazon_s3.py` name them. The S3
    credentials and region are not in here: boto3 takes them from the server's environment.
    """
    return {
        # Only the `<org>/<repo>.git/info/lfs` routes (no deprecation warning at start-up).
        "LEGACY_ENDPOINTS": False,
        "AUTH_PROVIDERS": ["giftless.auth.allow_anon:read_write"],
        # Signs the tokens of the "verify" callback that follows each upload.
        "PRE_AUTHORIZED_ACTION_PROVIDER": {
            "factory": "giftless.auth.jwt:factory",
            "options": {"algorithm": "HS256", "private_key": secrets.token_hex(32)},
        },
        "TRANSFER_ADAPTERS": {
            "basic": {
                "factory": "giftless.transfer.basic_external:factory",
                "options": {
                    "storage_class": "giftless.storage.amazon_s3:AmazonS3Storage",
                    "storage_options": {
                        "bucket_name": bucket,
                        "endpoint": server.endpoint,
                        "path_prefix": prefix,
                    },
                    "action_lifetime": 3600,
                },
            }
        },
    }


class Giftless:
    """giftless under waitress on 127.0.0.1, storing in `bucket` of `server` under `prefix`.

    Objects land at s3://bucket/prefix/ORG/REPO/OID. Its log is `log` (in its temporary
    directory, removed on exit, unless given).
    """

    def __init__(
        self,
        server: S3Server,
        bucket: str,
        *,
        prefix: str = "giftless",
        log: Path | None = None,
    ) -> None:
        self.server = server
        self.bucket = bucket
        self.prefix = prefix
        self.port = 0
        self._given_log = log
        self._dir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    def lfs_url(self, org: str = "org", repo: str = "repo", *, via: str | None = None) -> str:
        """The LFS endpoint (lfs.url) of one repository; `via` another base URL in front of
        this server, e.g. a `bench.latency.LatencyProxy`'s (giftless builds the URLs it hands
        out from the request's Host, so its verify callbacks go through that proxy too)."""
        base = via or f"http://{LOOPBACK}:{self.port}"
        return f"{base}/{org}/{repo}.git/info/lfs"

    @property
    def log(self) -> Path:
        assert self._dir is not None, "not started"
        return self._given_log or self._dir / "giftless.log"

    def __enter__(self) -> Giftless:
        bin_dir = ensure_giftless()
        self._dir = Path(tempfile.mkdtemp(prefix="giftless-"))
        try:
            config = self._write_config()
            self._start(bin_dir, config)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._proc is not None:
            _stop(self._proc)
            self._proc = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def _write_config(self) -> Path:
        """The YAML config file; private to us, since it holds the JWT signing key."""
        assert self._dir is not None
        path = self._dir / "giftless.yaml"
        path.touch(mode=0o600)
        path.write_text(yaml.safe_dump(giftless_config(self.server, self.bucket, self.prefix)))
        return path

    def _env(self, config: Path) -> dict[str, str]:
        """A clean environment: nothing inherited (proxies, AWS profiles) can redirect boto3."""
        assert self._dir is not None
        env = self.server.env()
        env.update(
            PATH=os.environ.get("PATH", os.defpath),
            # giftless loads a `.env` from its working directory, and boto3 looks in ~/.aws.
            HOME=str(self._dir),
            GIFTLESS_CONFIG_FILE=str(config),
            PYTHONUNBUFFERED="1",
        )
        return env

    def _start(self, bin_dir: Path, config: Path) -> None:
        """Start waitress on a free port; again on another one if that was taken meanwhile."""
        assert self._dir is not None
        for _ in range(_PORT_ATTEMPTS):
            self.port = free_port()
            argv = [
                str(bin_dir / "waitress-serve"),
                f"--host={LOOPBACK}",
                f"--port={self.port}",
                f"--threads={WAITRESS_THREADS}",
                "giftless.wsgi_entrypoint:app",
            ]
            with self.log.open("ab") as log:
                self._proc = subprocess.Popen(
                    argv,
                    cwd=self._dir,
                    env=self._env(config),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            if self._wait_ready(self._proc):
                return
            self._proc = None
        raise RuntimeError(f"giftless found its port taken {_PORT_ATTEMPTS} times; see {self.log}")

    def _wait_ready(self, proc: subprocess.Popen[bytes]) -> bool:
        """True once it answers HTTP, False if it died for want of its port; raise otherwise."""
        deadline = time.monotonic() + START_TIMEOUT
        while not answers_http(self.port, timeout=2.0):
            if proc.poll() is not None:
                tail = self.log.read_text(errors="replace")[-_LOG_TAIL_CHARS:]
                if "Address already in use" in tail:
                    return False
                raise RuntimeError(f"giftless exited ({proc.returncode}) at start:\n{tail}")
            if time.monotonic() > deadline:
                _stop(proc)
                raise RuntimeError(f"giftless did not answer within {START_TIMEOUT:.0f} s")
            time.sleep(0.05)
        return True


def _stop(proc: subprocess.Popen[bytes], grace: float = STOP_GRACE) -> None:
    """SIGTERM, then SIGKILL if it is still there after `grace` seconds; reap it."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def configure_repo(repo: Path, lfs_url: str, env: dict[str, str] | None = None) -> None:
    """Point `repo`'s git-lfs at `lfs_url`, with its own HTTP transfer and no lock checks.

    The local lfs.url wins over a `.lfsconfig`. Local keys that select the lfs-s3 agent are
    removed; a global `lfs-s3-agent install --global` scopes the agent to its own placeholder
    URL, so it does not apply here either. giftless has no locks API: without
    `lfs.locksverify false` every push would first ask for it and warn.
    """

    def git(*args: str, check: bool = True) -> str:
        proc = subprocess.run(
            ["git", "config", "--local", *args], cwd=repo, env=env, capture_output=True, text=True
        )
        if check and proc.returncode != 0:
            raise RuntimeError(f"git config {' '.join(args)} in {repo}: {proc.stderr.strip()}")
        return proc.stdout

    git("lfs.url", lfs_url)
    git("lfs.locksverify", "false")
    # Exit status 1 when none is set: nothing to remove.
    found = git("--name-only", "--get-regexp", _AGENT_KEYS, check=False)
    for key in sorted(set(found.split())):
        git("--unset-all", key)


# --------------------------------------------------------------------------------------------
# Self-test: python -m bench.peer


def _make_objects(repo: Path, count: int, size: int) -> dict[str, str]:
    """`count` files of `size` random bytes in `repo`: their names by sha256 (LFS oid)."""
    oids = {}
    for i in range(count):
        data = os.urandom(size)
        (repo / f"object-{i:02d}.bin").write_bytes(data)
        oids[hashlib.sha256(data).hexdigest()] = f"object-{i:02d}.bin"
    return oids


def _check_fetched(clone: Path, oids: dict[str, str]) -> None:
    """Each object is in the clone's LFS store, with content that hashes to its oid."""
    store = clone / ".git" / "lfs" / "objects"
    for oid, name in oids.items():
        path = store / oid[:2] / oid[2:4] / oid
        if not path.is_file():
            raise SystemExit(f"{name} ({oid}) was not fetched")
        if hashlib.sha256(path.read_bytes()).hexdigest() != oid:
            raise SystemExit(f"{name} ({oid}) arrived corrupted")


def _count_in_bucket(server: S3Server, prefix: str) -> int:
    client = server.client()
    try:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
        return sum(len(page.get("Contents", [])) for page in pages)
    finally:
        client.close()


def _timed_git(world: World, *args: str, cwd: Path, env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    world.git(*args, cwd=cwd, env=env)
    return time.perf_counter() - start


def self_test(root: Path, count: int, size: int) -> None:
    """Push `count` objects through giftless to SeaweedFS, fetch them back in a fresh clone."""
    with seaweedfs(root / "s3") as server:
        server.create_bucket(BUCKET)
        with Giftless(server, BUCKET, prefix="peer-selftest") as giftless:
            url = giftless.lfs_url("bench", "peer")
            (root / "world").mkdir()
            world = World(root / "world", server)
            world.env["GIT_TERMINAL_PROMPT"] = "0"
            remote, repo, clone = (root / n for n in ("remote.git", "repo", "clone"))
            world.git("init", "-q", "--bare", str(remote))
            world.git("init", "-q", str(repo))
            world.git("lfs", "install", "--local", cwd=repo)
            world.git("lfs", "track", "*.bin", cwd=repo)
            configure_repo(repo, url, world.env)
            oids = _make_objects(repo, count, size)
            world.git("add", "-A", cwd=repo)
            world.git("commit", "-q", "-m", "objects", cwd=repo)
            world.git("remote", "add", "origin", str(remote), cwd=repo)
            push = _timed_git(world, "push", "-q", "origin", "main", cwd=repo)
            stored = _count_in_bucket(server, "peer-selftest/bench/peer/")
            world.git("clone", "-q", str(remote), str(clone), env={"GIT_LFS_SKIP_SMUDGE": "1"})
            configure_repo(clone, url, world.env)
            fetch = _timed_git(world, "lfs", "fetch", cwd=clone)
            _check_fetched(clone, oids)
    if stored != count:
        raise SystemExit(f"{stored} objects in the bucket after the push, not {count}")
    print(f"giftless peer OK: {count} x {size // KiB} KiB objects, {stored} in s3://{BUCKET}")
    print(f"  git push (LFS upload via giftless)  {push:6.2f} s")
    print(f"  git lfs fetch (via giftless)        {fetch:6.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description="Self-test of the giftless peer.")
    parser.add_argument("--objects", type=int, default=10)
    parser.add_argument("--size-kib", type=int, default=100)
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-peer-"))
    try:
        self_test(root, args.objects, args.size_kib * KiB)
    finally:
        if args.keep:
            print(f"scratch directory kept: {root}")
        else:
            with contextlib.suppress(OSError):
                shutil.rmtree(root)


if __name__ == "__main__":
    main()
