"""What every benchmark here shares: an isolated git world, data, timing and the results table.

Everything runs against a SeaweedFS server on 127.0.0.1 (`devtools.s3servers.seaweedfs`), with
git and git-lfs under a HOME of their own, so nothing of the developer's set-up takes part.
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devtools.s3servers import S3Server

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
# Scratch space for the data and the server (git-ignored; on disk, not a tmpfs).
SCRATCH = ROOT / "bench" / "data"
BIN = Path(sys.executable).parent
AGENT = str(BIN / "lfs-s3-agent")
BUCKET = "bench"
KiB = 1024
MiB = 1024 * KiB
BLOCK = 64 * MiB


class World:
    """An isolated HOME for git and the agent, pointed at one S3 server."""

    def __init__(self, root: Path, server: S3Server) -> None:
        self.root = root
        self.server = server
        self.home = root / "home"
        self.home.mkdir()
        self.log = root / "agent.log"
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("GIT_", "LFS_S3", "AWS_", "MODEL_REGISTRY"))
        }
        self.env.update(server.env())
        self.env.update(
            HOME=str(self.home),
            GIT_CONFIG_NOSYSTEM="1",
            LFS_S3_AGENT_LOG=str(self.log),
            PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', os.defpath)}",
        )
        self.git("config", "--global", "user.name", "bench")
        self.git("config", "--global", "user.email", "bench@example.invalid")
        self.git("config", "--global", "init.defaultBranch", "main")
        self.git("lfs", "install", "--skip-repo")

    def run(
        self, argv: list[str], cwd: Path | None = None, env: dict[str, str] | None = None
    ) -> str:
        proc = subprocess.run(
            argv,
            cwd=cwd or self.root,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise SystemExit(
                f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr}{proc.stdout}"
            )
        return proc.stdout

    def git(self, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
        return self.run(["git", *args], cwd=cwd, env=env)

    def new_repo(self, path: Path, prefix: str, patterns: Iterable[str] = ("*.bin",)) -> Path:
        """A repository whose LFS objects go to s3://BUCKET/prefix through the agent."""
        self.git("init", "-q", str(path))
        self.run([AGENT, "install"], cwd=path)
        (path / ".gitattributes").write_text(
            "".join(f"{p} filter=lfs diff=lfs merge=lfs -text\n" for p in patterns)
        )
        (path / ".lfsconfig").write_text(
            f"[lfs]\n\turl = https://lfs-s3.invalid/{BUCKET}/{prefix}\n"
        )
        return path

    def clone(self, remote: Path, dest: Path) -> Path:
        """A clone with pointers only, the agent installed, ready for `git lfs fetch/pull`."""
        self.git("clone", "-q", str(remote), str(dest), env={"GIT_LFS_SKIP_SMUDGE": "1"})
        self.run([AGENT, "install"], cwd=dest)
        return dest

    def empty_lfs(self, clone: Path, files: Iterable[str] = ()) -> None:
        """Back to an empty object store (and pointer files in the work tree for `files`)."""
        shutil.rmtree(clone / ".git" / "lfs" / "objects", ignore_errors=True)
        removed = False
        for name in files:
            (clone / name).unlink(missing_ok=True)
            removed = True
        if removed:
            self.git("checkout", "-q", "--", ".", cwd=clone, env={"GIT_LFS_SKIP_SMUDGE": "1"})

    def peak_rss(self) -> float:
        """Largest peak RSS (MiB) any agent process logged since the last call."""
        text = self.log.read_text() if self.log.exists() else ""
        self.log.write_text("")
        peaks = [float(m) for m in re.findall(r"peak RSS ([\d.]+) MiB", text)]
        return max(peaks, default=0.0)


def write_data(path: Path, size: int) -> None:
    """`size` bytes, random but cheap: one random 64 MiB block, each copy stamped with its
    index (the first 8 bytes), so no two 64 MiB blocks of the file are equal."""
    block = bytearray(os.urandom(min(size, BLOCK)))
    with open(path, "wb") as f:
        written = 0
        index = 0
        while written < size:
            block[:8] = index.to_bytes(8, "little")
            chunk = memoryview(block)[: min(len(block), size - written)]
            f.write(chunk)
            written += len(chunk)
            index += 1


def timed(fn: Callable[..., object], *args: Any, **kwargs: Any) -> float:
    start = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - start


def settle(seconds: float = 2.0) -> None:
    """Let the previous contender's writes and the server's background work finish."""
    subprocess.run(["sync"], check=False)
    time.sleep(seconds)


def rotate(items: list[Any], n: int) -> list[Any]:
    """`items` starting at position n (mod len): each round, another contender goes first."""
    k = n % len(items)
    return items[k:] + items[:k]


@dataclass
class Group:
    """One operation (e.g. "upload 1 GiB"): contenders measured in the same rounds."""

    title: str
    unit: str
    baseline: str
    values: dict[str, list[float]] = field(default_factory=dict)

    def add(self, contender: str, value: float) -> None:
        self.values.setdefault(contender, []).append(value)
        print(f"  {self.title:<26} {contender:<32} {value:9.2f} {self.unit}", flush=True)

    def median(self, contender: str) -> float:
        return statistics.median(self.values[contender])

    def ratio(self, contender: str, against: str | None = None) -> float:
        return self.median(contender) / self.median(against or self.baseline)


@dataclass
class Results:
    groups: dict[str, Group] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    rss: dict[str, list[float]] = field(default_factory=dict)
    facts: dict[str, float] = field(default_factory=dict)

    def group(self, key: str, title: str, baseline: str, unit: str = "s") -> Group:
        if key not in self.groups:
            self.groups[key] = Group(title, unit, baseline)
        return self.groups[key]

    def add_rss(self, key: str, mib: float) -> None:
        if mib:
            self.rss.setdefault(key, []).append(mib)


def summary(values: list[float], digits: int = 2) -> str:
    med = statistics.median(values)
    if len(values) == 1:
        return f"{med:.{digits}f}"
    return f"{med:.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f})"
