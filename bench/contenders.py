"""The contenders that are not ours: the AWS CLI, and raw presigned HTTP with no SDK.

- The AWS CLI v1 pins exact botocore versions, so it lives in a virtualenv of its own,
  `.venv/awscli` (git-ignored), created on first use with the ordinary pip; it never
  touches the project's `.venv`. `LFS_S3_BENCH_AWS=/path/to/aws` uses another one.
- Raw presigned PUT/GET: boto3 only signs the URL (SigV4); the bytes go through curl when it is
  installed, else through `http.client`, with nothing of an SDK in the data path. On this box
  that is the limit of the server: what any client can hope for.
"""

from __future__ import annotations

import http.client
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from .common import ROOT, MiB

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

# Inside .venv: git-ignored, skipped by ruff and mypy, removed by `make clean`.
AWSCLI_VENV = ROOT / ".venv" / "awscli"
AWSCLI_REQUIREMENT = "awscli>=1.32,<2"
PRESIGN_SECONDS = 3600
BUFFER = MiB


def ensure_awscli() -> Path:
    """The `aws` executable to use, installing the CLI into its own virtualenv when needed."""
    chosen = os.environ.get("LFS_S3_BENCH_AWS")
    if chosen:
        return Path(chosen)
    aws = AWSCLI_VENV / "bin" / "aws"
    if not aws.exists():
        print(f"installing the AWS CLI into {AWSCLI_VENV} (once)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(AWSCLI_VENV)], check=True)
        subprocess.run(
            [str(AWSCLI_VENV / "bin" / "python"), "-m", "pip", "install", "-q", AWSCLI_REQUIREMENT],
            check=True,
        )
    return aws


def aws_version(aws: Path, env: dict[str, str]) -> str:
    proc = subprocess.run([str(aws), "--version"], capture_output=True, text=True, env=env)
    return (proc.stdout or proc.stderr).strip().split(" Linux")[0]


class AwsCli:
    """`aws s3 cp`, default settings, against the world's server (environment only)."""

    def __init__(self, aws: Path, env: dict[str, str]) -> None:
        self.aws = str(aws)
        self.env = env

    def cp(self, source: str, dest: str, *, recursive: bool = False) -> None:
        argv = [self.aws, "s3", "cp", "--only-show-errors", "--no-progress", source, dest]
        if recursive:
            argv.append("--recursive")
        proc = subprocess.run(argv, env=self.env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr}")


class RawHttp:
    """Presigned SigV4 URLs from boto3; the bytes through curl, or http.client without it."""

    def __init__(self, signer: S3Client, bucket: str, *, tool: str = "auto") -> None:
        self.signer = signer
        self.bucket = bucket
        self.curl = shutil.which("curl") if tool in ("auto", "curl") else None
        if tool == "curl" and self.curl is None:
            raise SystemExit("--raw curl: curl is not installed")

    @property
    def name(self) -> str:
        return "curl" if self.curl else "http.client"

    def _url(self, method: str, key: str) -> str:
        return self.signer.generate_presigned_url(
            method, Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=PRESIGN_SECONDS
        )

    def put(self, path: Path, key: str) -> None:
        url = self._url("put_object", key)
        if self.curl:
            # No "Expect: 100-continue" round trip before the body.
            self._curl(["-X", "PUT", "-H", "Expect:", "-T", str(path), "-o", os.devnull, url])
            return
        size = path.stat().st_size
        conn, target = _connect(url)
        try:
            with open(path, "rb") as f:
                conn.request("PUT", target, body=f, headers={"Content-Length": str(size)})
                _check(conn.getresponse(), "PUT", key)
        finally:
            conn.close()

    def get(self, key: str, path: Path) -> None:
        url = self._url("get_object", key)
        if self.curl:
            self._curl(["-o", str(path), url])
            return
        conn, target = _connect(url)
        try:
            conn.request("GET", target)
            response = conn.getresponse()
            if response.status != 200:
                _check(response, "GET", key)
            buffer = bytearray(BUFFER)
            view = memoryview(buffer)
            with open(path, "wb") as f:
                while n := response.readinto(buffer):
                    f.write(view[:n])
        finally:
            conn.close()

    def _curl(self, args: list[str]) -> None:
        assert self.curl
        proc = subprocess.run(
            [self.curl, "-sS", "--fail", "--noproxy", "*", *args], capture_output=True, text=True
        )
        if proc.returncode != 0:
            raise SystemExit(f"curl failed ({proc.returncode}): {proc.stderr}")


def _connect(url: str) -> tuple[http.client.HTTPConnection, str]:
    parts = urlsplit(url)
    assert parts.scheme == "http" and parts.hostname == "127.0.0.1", url
    conn = http.client.HTTPConnection(parts.hostname, parts.port, blocksize=BUFFER)
    return conn, f"{parts.path}?{parts.query}"


def _check(response: http.client.HTTPResponse, method: str, key: str) -> None:
    body = response.read()
    if response.status != 200:
        raise SystemExit(f"raw {method} {key}: HTTP {response.status}: {body[:300]!r}")
