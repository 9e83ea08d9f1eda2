"""Tuning sweeps for the agent's settings, same server, variants alternating in each round.

    python -m bench.tune [--size-mib 256] [--rounds 3] [--small-count 200] [--what large,workers]

- large: `git push` and `git lfs fetch` of one object under each variant of part size,
  concurrency and checksum (agent settings, through LFS_S3_* variables).
- workers: `git push` / `git lfs fetch` of many small files and `git lfs pull` of one small
  object with git-lfs's `lfs.concurrenttransfers` = 1, 2, 4, 8 (how many agent processes).

Writes bench/results/tune.md. Meant for a quiet machine; every figure is a median.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from devtools.s3servers import seaweedfs

from .common import BUCKET, RESULTS, SCRATCH, MiB, World, rotate, settle, summary, timed, write_data

LARGE_VARIANTS: dict[str, dict[str, str]] = {
    "defaults": {},
    "part 8 MiB": {"LFS_S3_PART_SIZE": "8MiB", "LFS_S3_MULTIPART_THRESHOLD": "8MiB"},
    "part 32 MiB": {"LFS_S3_PART_SIZE": "32MiB", "LFS_S3_MULTIPART_THRESHOLD": "32MiB"},
    "part 64 MiB": {"LFS_S3_PART_SIZE": "64MiB", "LFS_S3_MULTIPART_THRESHOLD": "64MiB"},
    "concurrency 2": {"LFS_S3_CONCURRENCY": "2"},
    "concurrency 8": {"LFS_S3_CONCURRENCY": "8"},
    "checksum off": {"LFS_S3_CHECKSUM": "off"},
}
WORKERS = (1, 2, 4, 8)


def workers_env(n: int) -> dict[str, str]:
    # As `git -c lfs.concurrenttransfers=N`: git passes it on to git-lfs in this variable.
    return {"GIT_CONFIG_PARAMETERS": f"'lfs.concurrenttransfers'='{n}'"}


class Sweep:
    """One run's server, world and results: push and fetch timed, each result recorded."""

    def __init__(self, root: Path, world: World) -> None:
        self.root = root
        self.world = world
        self.out: dict[str, dict[str, list[float]]] = {}
        self._counter = iter(range(10**6))

    def add(self, table: str, variant: str, seconds: float) -> None:
        self.out.setdefault(table, {}).setdefault(variant, []).append(seconds)
        print(f"  {table:<34} {variant:<16} {seconds:7.2f} s", flush=True)

    def push(self, repo: Path, env: dict[str, str]) -> tuple[Path, str, float]:
        """Push `repo` to a new remote and a new key prefix: (remote, prefix, seconds)."""
        n = next(self._counter)
        remote, prefix = self.root / f"r{n}.git", f"p{n}"
        self.world.git("init", "-q", "--bare", str(remote))
        settle(1)
        seconds = timed(
            self.world.git, "push", "-q", str(remote), "main", cwd=repo,
            env={**env, "LFS_S3_PREFIX": prefix},
        )  # fmt: skip
        return remote, prefix, seconds

    def fetch(self, clone: Path, prefix: str, env: dict[str, str], command: str) -> float:
        self.world.empty_lfs(clone, ["one.bin"] if command == "pull" else [])
        settle(1)
        return timed(
            self.world.git, "lfs", command, cwd=clone, env={**env, "LFS_S3_PREFIX": prefix}
        )

    def commit(self, name: str, files: dict[str, int]) -> Path:
        """A new repository holding `files` (name -> random bytes), committed."""
        repo = self.world.new_repo(self.root / name, "x")
        for path, size in files.items():
            (repo / path).parent.mkdir(parents=True, exist_ok=True)
            (repo / path).write_bytes(os.urandom(size))
        self.world.git("add", "-A", cwd=repo)
        self.world.git("commit", "-q", "-m", name, cwd=repo)
        return repo


def _large(sweep: Sweep, opts: argparse.Namespace) -> None:
    """Part size and concurrency variants for one large object, push then fetch."""
    repo = sweep.world.new_repo(sweep.root / "large", "x")
    write_data(repo / "one.bin", opts.size_mib * MiB)
    sweep.world.git("add", "-A", cwd=repo)
    sweep.world.git("commit", "-q", "-m", "one", cwd=repo)
    clone: Path | None = None
    variants = [v for v in opts.variants.split(",") if v]
    for rnd in range(opts.rounds):
        for name in rotate(variants, rnd):
            env = LARGE_VARIANTS[name]
            remote, prefix, seconds = sweep.push(repo, env)
            sweep.add(f"git push {opts.size_mib} MiB", name, seconds)
            if clone is None:
                clone = sweep.world.clone(remote, sweep.root / "large-clone")
            sweep.add(
                f"git lfs fetch {opts.size_mib} MiB", name, sweep.fetch(clone, prefix, env, "fetch")
            )
            sweep.world.peak_rss()


def _workers(sweep: Sweep, opts: argparse.Namespace) -> None:
    """git-lfs worker counts for many small objects, and for one tiny object's pull."""
    small = sweep.commit(
        "small", {f"files/f{i:05d}.bin": 100 * 1024 for i in range(opts.small_count)}
    )
    tiny = sweep.commit("tiny", {"one.bin": 1024})
    tiny_remote, tiny_prefix, _ = sweep.push(tiny, {})
    tiny_clone = sweep.world.clone(tiny_remote, sweep.root / "tiny-clone")
    small_clone: Path | None = None
    for rnd in range(opts.rounds):
        for n in rotate(list(WORKERS), rnd):
            env = workers_env(n)
            name = f"{n} workers"
            remote, prefix, seconds = sweep.push(small, env)
            sweep.add(f"git push {opts.small_count} x 100 KiB", name, seconds)
            if small_clone is None:
                small_clone = sweep.world.clone(remote, sweep.root / "small-clone")
            fetched = sweep.fetch(small_clone, prefix, env, "fetch")
            sweep.add(f"git lfs fetch {opts.small_count} x 100 KiB", name, fetched)
            pulled = sweep.fetch(tiny_clone, tiny_prefix, env, "pull")
            sweep.add("git lfs pull, one small object", name, pulled)
            sweep.world.peak_rss()


def _report(out: dict[str, dict[str, list[float]]], minutes: float) -> list[str]:
    lines = [
        "# Tuning sweeps (bench/tune.py), SeaweedFS on 127.0.0.1",
        "",
        f"`python -m bench.tune {' '.join(sys.argv[1:])}`; took {minutes:.1f} min; seconds, "
        "median (min-max), ratio to the first variant",
        "",
    ]
    for table, rows in out.items():
        first = statistics.median(next(iter(rows.values())))
        lines += [f"## {table}", "", "| variant | s | ratio |", "|---|---|---|"]
        for name, values in rows.items():
            ratio = statistics.median(values) / first
            lines.append(f"| {name} | {summary(values)} | {ratio:.2f}x |")
        lines.append("")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--small-count", type=int, default=200)
    parser.add_argument("--what", default="large,workers")
    parser.add_argument("--variants", default=",".join(LARGE_VARIANTS))
    opts = parser.parse_args()
    what = opts.what.split(",")
    SCRATCH.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tune-", dir=SCRATCH) as tmp:
        root = Path(tmp)
        with seaweedfs(root / "s3") as server:
            server.create_bucket(BUCKET)
            sweep = Sweep(root, World(root, server))
            if "large" in what:
                _large(sweep, opts)
            if "workers" in what:
                _workers(sweep, opts)
    lines = _report(sweep.out, (time.perf_counter() - started) / 60)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "tune.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
