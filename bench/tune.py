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


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--small-count", type=int, default=200)
    parser.add_argument("--what", default="large,workers")
    parser.add_argument("--variants", default=",".join(LARGE_VARIANTS))
    opts = parser.parse_args()
    what = opts.what.split(",")
    out: dict[str, dict[str, list[float]]] = {}

    def add(table: str, variant: str, seconds: float) -> None:
        out.setdefault(table, {}).setdefault(variant, []).append(seconds)
        print(f"  {table:<34} {variant:<16} {seconds:7.2f} s", flush=True)

    SCRATCH.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tune-", dir=SCRATCH) as tmp:
        root = Path(tmp)
        with seaweedfs(root / "s3") as server:
            server.create_bucket(BUCKET)
            world = World(root, server)
            counter = iter(range(10**6))

            def push(repo: Path, env: dict[str, str]) -> tuple[Path, str, float]:
                n = next(counter)
                remote, prefix = root / f"r{n}.git", f"p{n}"
                world.git("init", "-q", "--bare", str(remote))
                settle(1)
                seconds = timed(
                    world.git, "push", "-q", str(remote), "main", cwd=repo,
                    env={**env, "LFS_S3_PREFIX": prefix},
                )  # fmt: skip
                return remote, prefix, seconds

            def fetch(clone: Path, prefix: str, env: dict[str, str], command: str) -> float:
                world.empty_lfs(clone, ["one.bin"] if command == "pull" else [])
                settle(1)
                return timed(
                    world.git, "lfs", command, cwd=clone, env={**env, "LFS_S3_PREFIX": prefix}
                )

            if "large" in what:
                repo = world.new_repo(root / "large", "x")
                write_data(repo / "one.bin", opts.size_mib * MiB)
                world.git("add", "-A", cwd=repo)
                world.git("commit", "-q", "-m", "one", cwd=repo)
                clone: Path | None = None
                variants = [v for v in opts.variants.split(",") if v]
                for rnd in range(opts.rounds):
                    for name in rotate(variants, rnd):
                        env = LARGE_VARIANTS[name]
                        remote, prefix, seconds = push(repo, env)
                        add(f"git push {opts.size_mib} MiB", name, seconds)
                        if clone is None:
                            clone = world.clone(remote, root / "large-clone")
                        seconds = fetch(clone, prefix, env, "fetch")
                        add(f"git lfs fetch {opts.size_mib} MiB", name, seconds)
                        world.peak_rss()
            if "workers" in what:
                small = world.new_repo(root / "small", "x")
                (small / "files").mkdir()
                for i in range(opts.small_count):
                    (small / "files" / f"f{i:05d}.bin").write_bytes(os.urandom(100 * 1024))
                world.git("add", "-A", cwd=small)
                world.git("commit", "-q", "-m", "small", cwd=small)
                tiny = world.new_repo(root / "tiny", "tiny")
                (tiny / "one.bin").write_bytes(os.urandom(1024))
                world.git("add", "-A", cwd=tiny)
                world.git("commit", "-q", "-m", "tiny", cwd=tiny)
                tiny_remote, tiny_prefix, _ = push(tiny, {})
                tiny_clone = world.clone(tiny_remote, root / "tiny-clone")
                small_clone: Path | None = None
                for rnd in range(opts.rounds):
                    for n in rotate(list(WORKERS), rnd):
                        env = workers_env(n)
                        name = f"{n} workers"
                        remote, prefix, seconds = push(small, env)
                        add(f"git push {opts.small_count} x 100 KiB", name, seconds)
                        if small_clone is None:
                            small_clone = world.clone(remote, root / "small-clone")
                        add(
                            f"git lfs fetch {opts.small_count} x 100 KiB",
                            name,
                            fetch(small_clone, prefix, env, "fetch"),
                        )
                        add("git lfs pull, one small object", name,
                            fetch(tiny_clone, tiny_prefix, env, "pull"))  # fmt: skip
                        world.peak_rss()
    lines = [
        "# Tuning sweeps (bench/tune.py), SeaweedFS on 127.0.0.1",
        "",
        f"`python -m bench.tune {' '.join(sys.argv[1:])}`; took "
        f"{(time.perf_counter() - started) / 60:.1f} min; seconds, median (min-max), "
        "ratio to the first variant",
        "",
    ]
    for table, rows in out.items():
        first = statistics.median(next(iter(rows.values())))
        lines += [f"## {table}", "", "| variant | s | ratio |", "|---|---|---|"]
        for name, values in rows.items():
            ratio = statistics.median(values) / first
            lines.append(f"| {name} | {summary(values)} | {ratio:.2f}x |")
        lines.append("")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "tune.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
