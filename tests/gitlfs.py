"""Helpers for end-to-end tests: isolated git + git-lfs environments that use the real agent."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from devtools.s3servers import S3Bucket, S3Identity

AGENT = [sys.executable, "-m", "lfs_agent"]
# The extra keys of the `seaweed_acl_server` fixture, besides its admin key.
READ_WRITE = S3Identity("writer", "lfs-s3-writer", "lfs-s3-writer-secret")
READ_ONLY = S3Identity("reader", "lfs-s3-reader", "lfs-s3-reader-secret", ("Read", "List"))


def oid_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class GitWorld:
    """A HOME of its own, git-lfs's filters installed there, and an S3 bucket to push to."""

    root: Path
    bucket: S3Bucket
    prefix: str = "registry"
    extra_env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.home = self.root / "home"
        self.home.mkdir(parents=True, exist_ok=True)
        self.git("config", "--global", "user.name", "Test User")
        self.git("config", "--global", "user.email", "test@example.invalid")
        self.git("config", "--global", "init.defaultBranch", "main")
        self.git("config", "--global", "protocol.file.allow", "always")
        self.git("lfs", "install", "--skip-repo")

    @property
    def lfs_url(self) -> str:
        return f"https://lfs-s3.invalid/{self.bucket.name}/{self.prefix}"

    def env(self, **extra: str) -> dict[str, str]:
        base = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("AWS_", "LFS_S3_", "GIT_")) and k != "HOME"
        }
        base.update(self.bucket.server.env())
        base.update(
            HOME=str(self.home),
            GIT_CONFIG_NOSYSTEM="1",
            GIT_TERMINAL_PROMPT="0",
            LFS_S3_RETRIES="1",
        )
        base.update(self.extra_env)
        base.update(extra)
        return base

    def run(
        self,
        *args: str,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        check: bool = True,
        timeout: float = 300,
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            list(args),
            cwd=cwd or self.root,
            env=dict(env) if env is not None else self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"{args} failed with {proc.returncode}\nstdout:\n{proc.stdout}\n"
                f"stderr:\n{proc.stderr}"
            )
        return proc

    def git(
        self,
        *args: str,
        cwd: Path | None = None,
        check: bool = True,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        return self.run("git", *args, cwd=cwd, env=self.env(**(env or {})), check=check)

    def agent(self, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return self.run(*AGENT, *args, cwd=cwd)

    def new_registry(self, name: str = "work") -> Path:
        """A repository routed to the bucket, with the agent installed, tracking *.bin."""
        repo = self.root / name
        self.git("init", "-q", str(repo))
        self.agent("install", cwd=repo)
        (repo / ".lfsconfig").write_text(f'[lfs]\n\turl = "{self.lfs_url}"\n')
        (repo / ".gitattributes").write_text("*.bin filter=lfs diff=lfs merge=lfs -text\n")
        return repo

    def bare_remote(self, name: str = "remote.git") -> Path:
        path = self.root / name
        self.git("init", "-q", "--bare", str(path))
        return path

    def stored(self, oid: str) -> bytes:
        key = f"{self.prefix}/objects/{oid[0:2]}/{oid[2:4]}/{oid}"
        body = self.bucket.server.client().get_object(Bucket=self.bucket.name, Key=key)["Body"]
        return body.read()

    def keys(self) -> list[str]:
        client = self.bucket.server.client()
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket.name)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))

    def open_uploads(self) -> list[str]:
        client = self.bucket.server.client()
        return [
            u["Key"]
            for u in client.list_multipart_uploads(Bucket=self.bucket.name).get("Uploads", [])
        ]


def agents_under(root: Path) -> list[psutil.Process]:
    """Agent processes still running with a working directory inside `root`."""
    found = []
    for proc in psutil.process_iter(["cmdline", "cwd"]):
        try:
            cmdline = " ".join(proc.info["cmdline"] or [])
            cwd = proc.info["cwd"] or ""
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if "lfs_agent" in cmdline or "lfs-s3-agent" in cmdline:
            if cwd.startswith(str(root)) and proc.pid != os.getpid():
                found.append(proc)
    return found


def lfs_objects(repo_git_dir: Path) -> set[str]:
    """The oids present in a repository's `.git/lfs/objects`."""
    base = repo_git_dir / "lfs" / "objects"
    return {p.name for p in base.rglob("*") if p.is_file() and len(p.name) == 64}


def tree_snapshot(root: Path) -> dict[str, str]:
    """Every path under `root` (relative) -> what it is: a file's size and SHA-256, a link's
    target, or "dir". Two snapshots differ exactly where something was written or removed."""
    found: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_symlink():
            found[rel] = f"link {os.readlink(path)}"
        elif path.is_dir():
            found[rel] = "dir"
        elif path.is_file():
            data = path.read_bytes()
            found[rel] = f"{len(data)} {hashlib.sha256(data).hexdigest()}"
    return found
