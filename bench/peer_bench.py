"""`make bench`, section `peer`: the agent against git-lfs's own HTTP transfers.

What a team runs without us is an LFS server that hands git-lfs presigned S3 URLs (giftless here,
`bench/peer.py`), on the same SeaweedFS. Each workload runs both ways in the same rounds, the
order rotated each round, from fresh repositories and fresh key prefixes:

- 1, 10 and `--small-count` objects of `--small-kib`: `git push`, then `git lfs fetch` into a
  clone with an empty object store;
- `git archive HEAD` of 10 such objects not yet local: git smudges one object at a time, so
  git-lfs starts one transfer queue (one agent start) per object;
- the large object of `--size-mib` (the `large` section's data): push and fetch;
- with `--latency-ms` of round trip added to every request (`bench/latency.py`, in front of S3
  for the agent, and in front of S3 and giftless for the peer): `--small-count` objects, push
  and fetch, for the agent's default process model and for `install --concurrent`.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from .common import AGENT as AGENT_COMMAND
from .common import BUCKET, World, rotate, settle, timed
from .latency import LatencyProxy
from .peer import Giftless, configure_repo

if TYPE_CHECKING:
    from .run import Bench

AGENT = "lfs-s3-agent"
AGENT_MANY = "lfs-s3-agent --concurrent (8 processes)"
PEER = "git-lfs via giftless"
ARCHIVED = 10


@dataclasses.dataclass
class Side:
    """One way of moving LFS objects: how to make a repository and a clone that use it."""

    name: str
    world: World
    new_repo: Callable[[Path, str], Path]
    setup_clone: Callable[[Path, str], None]

    def git(self, *args: str, cwd: Path) -> str:
        return self.world.git(*args, cwd=cwd)


def agent_side(world: World, name: str = AGENT, *, concurrent: bool = False) -> Side:
    def new_repo(path: Path, tag: str) -> Path:
        repo = world.new_repo(path, f"peer/{tag}")
        if concurrent:
            world.git("config", "lfs.customtransfer.lfs-s3.concurrent", "true", cwd=repo)
        return repo

    def setup_clone(clone: Path, tag: str) -> None:
        world.run([AGENT_COMMAND, "install"], cwd=clone)
        if concurrent:
            world.git("config", "lfs.customtransfer.lfs-s3.concurrent", "true", cwd=clone)

    return Side(name, world, new_repo, setup_clone)


def peer_side(world: World, giftless: Giftless, via: str | None = None) -> Side:
    def new_repo(path: Path, tag: str) -> Path:
        world.git("init", "-q", str(path))
        world.git("lfs", "install", "--local", cwd=path)
        (path / ".gitattributes").write_text("*.bin filter=lfs diff=lfs merge=lfs -text\n")
        configure_repo(path, giftless.lfs_url("bench", tag, via=via), world.env)
        return path

    def setup_clone(clone: Path, tag: str) -> None:
        configure_repo(clone, giftless.lfs_url("bench", tag, via=via), world.env)

    return Side(PEER, world, new_repo, setup_clone)


class Workload:
    """Files to commit, linked from one generated set so every side moves the same bytes."""

    def __init__(self, root: Path, name: str, files: list[Path]) -> None:
        self.root = root
        self.name = name
        self.files = files

    def repo(self, side: Side, tag: str) -> Path:
        repo = side.new_repo(self.root / f"{tag}-repo", tag)
        for f in self.files:
            os.link(f, repo / f.name)
        side.git("add", "-A", cwd=repo)
        side.git("commit", "-q", "-m", self.name, cwd=repo)
        return repo

    def clone(self, side: Side, remote: Path, tag: str) -> Path:
        clone = self.root / f"{tag}-clone"
        side.world.git("clone", "-q", str(remote), str(clone), env={"GIT_LFS_SKIP_SMUDGE": "1"})
        side.setup_clone(clone, tag)
        return clone


def small_files(root: Path, count: int, kib: int) -> list[Path]:
    folder = root / f"data-{count}x{kib}"
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for i in range(count):
        path = folder / f"f{i:05d}.bin"
        path.write_bytes(os.urandom(kib * 1024))
        files.append(path)
    return files


def push_fetch(
    bench: Bench,
    sides: list[Side],
    work: Workload,
    key: str,
    title: str,
    *,
    rounds: int,
    archive: bool = False,
) -> None:
    """Push then fetch `work` through each side, `rounds` times; optionally `git archive` too."""
    res = bench.results
    baseline = next(s.name for s in sides if s.name == PEER)
    up = res.group(f"{key}-up", f"push {title}", baseline=baseline)
    down = res.group(f"{key}-down", f"fetch {title}", baseline=baseline)
    arch = (
        res.group(f"{key}-archive", f"git archive, {title} (one queue each)", baseline=baseline)
        if archive
        else None
    )
    for rnd in range(rounds):
        for n, side in enumerate(rotate(sides, rnd)):
            tag = f"{key}-{rnd}-{n}"
            repo = work.repo(side, tag)
            remote = work.root / f"{tag}.git"
            side.world.git("init", "-q", "--bare", str(remote))
            settle(1.0)
            up.add(side.name, timed(side.git, "push", "-q", str(remote), "main", cwd=repo))
            clone = work.clone(side, remote, tag)
            settle(1.0)
            down.add(side.name, timed(side.git, "lfs", "fetch", cwd=clone))
            if arch is not None:
                side.world.empty_lfs(clone)
                out = work.root / f"{tag}.tar"
                settle(1.0)
                arch.add(side.name, timed(side.git, "archive", "-o", str(out), "HEAD", cwd=clone))
            for path in (repo, clone, remote):
                shutil.rmtree(path, ignore_errors=True)


@contextmanager
def slow_world(bench: Bench, delay_ms: float) -> Iterator[tuple[World, Giftless, LatencyProxy]]:
    """The same server and HOME seen through a latency proxy: the agent's endpoint and the
    peer's S3 endpoint are the proxy; giftless itself is reached through a second one."""
    world = bench.world
    port = int(world.server.endpoint.rsplit(":", 1)[1])
    with LatencyProxy(port, delay_ms) as s3_proxy:
        slow_server = dataclasses.replace(world.server, endpoint=s3_proxy.url)
        slow = copy.copy(world)
        slow.env = {**world.env, "LFS_S3_ENDPOINT": s3_proxy.url}
        slow.server = slow_server
        with Giftless(slow_server, BUCKET, prefix="peer-slow") as giftless:
            with LatencyProxy(giftless.port, delay_ms) as api_proxy:
                yield slow, giftless, api_proxy


def run(bench: Bench) -> None:
    opts, world = bench.opts, bench.world
    root = bench.root / "peer"
    root.mkdir()
    print("== peer: the agent against git-lfs's own HTTP path through giftless", flush=True)
    with Giftless(world.server, BUCKET, prefix="peer") as giftless:
        sides = [agent_side(world), peer_side(world, giftless)]
        for count in (1, ARCHIVED):
            files = small_files(root, count, opts.small_kib)
            work = Workload(root, f"{count} small", files)
            title = f"{count} x {opts.small_kib} KiB"
            push_fetch(
                bench, sides, work, f"peer{count}", title,
                rounds=opts.rounds, archive=count == ARCHIVED,
            )  # fmt: skip
        many = small_files(root, opts.small_count, opts.small_kib)
        title = f"{opts.small_count} x {opts.small_kib} KiB"
        push_fetch(
            bench, sides, Workload(root, "many", many), "peer-many", title, rounds=opts.rounds
        )
        if opts.size_mib:
            big = Workload(root, "large", [bench.checkpoint()])
            label = (
                f"{opts.size_mib} MiB" if opts.size_mib < 1024 else f"{opts.size_mib // 1024} GiB"
            )
            push_fetch(
                bench, sides, big, "peer-large", f"one object of {label}", rounds=opts.rounds
            )
    if opts.latency_ms:
        delay = opts.latency_ms
        print(f"== peer: {title} with {delay:g} ms added per request", flush=True)
        with slow_world(bench, delay) as (slow, giftless, api_proxy):
            sides = [
                agent_side(slow),
                agent_side(slow, AGENT_MANY, concurrent=True),
                peer_side(slow, giftless, via=api_proxy.url),
            ]
            work = Workload(root, "many, slow", many)
            push_fetch(bench, sides, work, "peer-slow", f"{title}, {delay:g} ms RTT", rounds=1)
    bench.results.notes.append(
        f"peer: {PEER} = git-lfs's basic transfer with presigned URLs from giftless 0.6.2 "
        "(waitress, 16 threads) on the same SeaweedFS"
    )


def verification_pass(world: World, path: Path) -> float:
    """Seconds git-lfs takes to hash a file of this size with its own code (`git lfs pointer`
    reads and SHA-256s it once, as git-lfs verifies every download before keeping it)."""
    return timed(
        subprocess.run,
        ["git", "lfs", "pointer", f"--file={path}"],
        env=world.env,
        capture_output=True,
        check=True,
    )
