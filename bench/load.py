"""Load runs (not part of `make test`): many small objects, then one very large one, each pushed
by a real `git push` through git-lfs and the agent to a local SeaweedFS on 127.0.0.1.

1. `--objects` small files (1 byte to 64 KiB of random bytes, 5,000 by default) in one commit;
2. one `--size-gib` file (5 GiB by default), sparse-random: a random 1 MiB block at the start
   of every 64 MiB, holes elsewhere. It is written straight into `.git/lfs/objects` (sparse, so
   it costs almost no disk) with its pointer committed, so the push reads the full size while
   the disk holds only the random blocks.

For each: wall time of the push, what the bucket holds afterwards (object count, open multipart
uploads), and the peak RSS of every agent process (each logs it at exit to LFS_S3_AGENT_LOG).
"Flat" memory means the largest peak is about the same for both runs, whatever the count or
the size.

    python -m bench.load [--objects 5000] [--size-gib 5]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from devtools.s3servers import S3Server, seaweedfs

ROOT = Path(__file__).resolve().parent.parent
AGENT = [sys.executable, "-m", "lfs_agent"]
BUCKET = "load"
PREFIX = "registry"
MiB = 1024 * 1024
GiB = 1024 * MiB
BLOCK = MiB  # random bytes at the start of each window
WINDOW = 64 * MiB


@dataclass(frozen=True)
class Small:
    add: float
    push: float
    peaks: list[float]
    bytes: int


@dataclass(frozen=True)
class Large:
    generate: float
    push: float
    peaks: list[float]
    stored: int
    disk: int


class Repo:
    """A repository routed to the bucket through the agent, with a bare remote."""

    def __init__(self, root: Path, server: S3Server, name: str) -> None:
        self.root = root
        self.log = root / f"{name}-agent.log"
        home = root / "home"
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("AWS_", "GIT_", "LFS_S3_")) and k != "HOME"
        }
        self.env.update(server.env())
        self.env.update(HOME=str(home), GIT_CONFIG_NOSYSTEM="1", LFS_S3_AGENT_LOG=str(self.log))
        if not home.exists():
            home.mkdir()
            self.git("config", "--global", "user.name", "load")
            self.git("config", "--global", "user.email", "load@example.invalid")
            self.git("config", "--global", "init.defaultBranch", "main")
            self.git("lfs", "install", "--skip-repo")
        self.path = root / name
        self.git("init", "-q", str(self.path))
        self.run(*AGENT, "install", cwd=self.path)
        (self.path / ".lfsconfig").write_text(
            f'[lfs]\n\turl = "https://lfs-s3.invalid/{BUCKET}/{PREFIX}"\n'
        )
        (self.path / ".gitattributes").write_text("*.bin filter=lfs diff=lfs merge=lfs -text\n")
        remote = root / f"{name}.git"
        self.git("init", "-q", "--bare", str(remote))
        self.git("remote", "add", "origin", str(remote), cwd=self.path)

    def run(self, *args: str, cwd: Path | None = None) -> str:
        proc = subprocess.run(
            list(args), cwd=cwd or self.root, env=self.env, capture_output=True, text=True
        )
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(args)} failed:\n{proc.stderr}")
        return proc.stdout

    def git(self, *args: str, cwd: Path | None = None) -> str:
        return self.run("git", *args, cwd=cwd)

    def commit_all(self, message: str) -> float:
        start = time.perf_counter()
        self.git("add", "-A", cwd=self.path)
        self.git("commit", "-q", "-m", message, cwd=self.path)
        return time.perf_counter() - start

    def push(self) -> tuple[float, list[float]]:
        """Seconds for `git push origin main`, and each agent process's peak RSS in MiB."""
        self.log.unlink(missing_ok=True)
        start = time.perf_counter()
        self.git("push", "-q", "origin", "main", cwd=self.path)
        seconds = time.perf_counter() - start
        peaks = [float(m) for m in re.findall(r"peak RSS ([\d.]+) MiB", self.log.read_text())]
        return seconds, peaks


def bucket_state(server: S3Server) -> tuple[int, int, int]:
    """(objects, their total bytes, open multipart uploads) in the bucket."""
    client = server.client()
    count = total = 0
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for obj in page.get("Contents", []):
            count += 1
            total += obj["Size"]
    uploads = len(client.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []))
    return count, total, uploads


def small_objects(root: Path, server: S3Server, count: int) -> Small:
    repo = Repo(root, server, "small")
    rng = random.Random(5000)
    folder = repo.path / "objects"
    folder.mkdir()
    total = 0
    for i in range(count):
        size = rng.randint(1, 64 * 1024)
        (folder / f"{i:05d}.bin").write_bytes(os.urandom(size))
        total += size
    add = repo.commit_all(f"{count} small objects")
    seconds, peaks = repo.push()
    return Small(add, seconds, peaks, total)


def sparse_random_object(lfs_dir: Path, size: int) -> tuple[str, Path]:
    """Write the sparse-random file into the LFS object store; return (oid, path)."""
    tmp = lfs_dir / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    staging = tmp / "sparse-random.partial"
    hasher = hashlib.sha256()
    zeros = bytes(WINDOW)
    with staging.open("wb") as out:
        for offset in range(0, size, WINDOW):
            length = min(WINDOW, size - offset)
            block = os.urandom(min(BLOCK, length))
            out.write(block)
            hasher.update(block)
            hasher.update(memoryview(zeros)[: length - len(block)])
            out.seek(offset + length)
        out.truncate(size)
    oid = hasher.hexdigest()
    final = lfs_dir / "objects" / oid[0:2] / oid[2:4] / oid
    final.parent.mkdir(parents=True, exist_ok=True)
    staging.rename(final)
    return oid, final


def large_object(root: Path, server: S3Server, size: int) -> Large:
    repo = Repo(root, server, "large")
    start = time.perf_counter()
    oid, path = sparse_random_object(repo.path / ".git" / "lfs", size)
    generate = time.perf_counter() - start
    pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {size}\n"
    (repo.path / "checkpoint.bin").write_text(pointer)
    repo.commit_all("one large object")
    seconds, peaks = repo.push()
    head = server.client().head_object(
        Bucket=BUCKET, Key=f"{PREFIX}/objects/{oid[0:2]}/{oid[2:4]}/{oid}"
    )
    return Large(generate, seconds, peaks, head["ContentLength"], path.stat().st_blocks * 512)


def describe(peaks: list[float]) -> str:
    listed = ", ".join(f"{p:.0f}" for p in sorted(peaks, reverse=True))
    return f"{len(peaks)} processes, max {max(peaks, default=0):.1f} MiB ({listed})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=5000)
    parser.add_argument("--size-gib", type=float, default=5.0)
    opts = parser.parse_args()
    size = int(opts.size_gib * GiB)
    with tempfile.TemporaryDirectory(prefix="lfs-s3-load-", dir=ROOT / "bench") as tmp:
        root = Path(tmp)
        with seaweedfs(root / "s3") as server:
            server.create_bucket(BUCKET)
            print(f"SeaweedFS at {server.endpoint}; work dir {root}", flush=True)

            small = small_objects(root, server, opts.objects)
            count, total, uploads = bucket_state(server)
            print(
                f"\n{opts.objects} small objects ({small.bytes / MiB:.0f} MiB): git add+commit "
                f"{small.add:.1f} s, git push {small.push:.1f} s "
                f"({opts.objects / small.push:.0f} objects/s)\n"
                f"  bucket: {count} objects, {total} bytes, {uploads} open multipart uploads\n"
                f"  agent peak RSS: {describe(small.peaks)}",
                flush=True,
            )
            shutil.rmtree(root / "small")

            large = large_object(root, server, size)
            count, total, uploads = bucket_state(server)
            print(
                f"\none {size / GiB:.1f} GiB sparse-random object (generated in "
                f"{large.generate:.1f} s, {large.disk / MiB:.0f} MiB on disk): git push "
                f"{large.push:.1f} s ({size / MiB / large.push:.0f} MiB/s)\n"
                f"  bucket: {count} objects, {total} bytes, {uploads} open multipart uploads; "
                f"the large one is {large.stored} bytes\n"
                f"  agent peak RSS: {describe(large.peaks)}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
