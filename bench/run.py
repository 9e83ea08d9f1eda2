"""`make bench`: the agent against boto3 on a local SeaweedFS server, side by side, same run.

For one large file (1 GiB by default): `git push` through the real git-lfs and our agent, next
to boto3 `upload_file` with default settings; `git lfs fetch` and `git lfs pull` into an empty
object store, next to boto3 `download_file`. Contenders alternate within each round, so the
machine's drift hits all of them alike; medians and min-max are reported with ratios against
boto3. Also: the init round trip of one agent process, and the agent's peak RSS (it logs it at
exit). Results go to bench/results/latest.md.

    python -m bench.run [--size-mib 1024] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from devtools.s3servers import S3Server, seaweedfs

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
AGENT = str(Path(sys.executable).parent / "lfs-s3-agent")
BUCKET = "bench"
MiB = 1024 * 1024


class World:
    """An isolated HOME and a registry repo pushed to a bare remote through the agent."""

    def __init__(self, root: Path, server: S3Server) -> None:
        self.root = root
        self.server = server
        self.home = root / "home"
        self.home.mkdir()
        self.log = root / "agent.log"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "LFS_S3"))}
        self.env.update(server.env())
        self.env.update(
            HOME=str(self.home), GIT_CONFIG_NOSYSTEM="1", LFS_S3_AGENT_LOG=str(self.log)
        )
        self.git("config", "--global", "user.name", "bench")
        self.git("config", "--global", "user.email", "bench@example.invalid")
        self.git("config", "--global", "init.defaultBranch", "main")
        self.git("lfs", "install", "--skip-repo")

    def git(self, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
        proc = subprocess.run(
            ["git", *args],
            cwd=cwd or self.root,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise SystemExit(f"git {' '.join(args)} failed:\n{proc.stderr}")
        return proc.stdout

    def peak_rss(self) -> float:
        """Largest peak RSS (MiB) any agent process logged since the last call."""
        text = self.log.read_text() if self.log.exists() else ""
        self.log.write_text("")
        peaks = [float(m) for m in re.findall(r"peak RSS ([\d.]+) MiB", text)]
        return max(peaks, default=0.0)


def timed(fn: Callable[..., object], *args: Any, **kwargs: Any) -> float:
    start = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - start


def settle() -> None:
    subprocess.run(["sync"], check=False)
    time.sleep(2)


def init_round_trip(world: World, repo: Path, n: int = 15) -> list[float]:
    """Milliseconds from starting `lfs-s3-agent serve` to its reply to init."""
    line = (
        json.dumps(
            {
                "event": "init",
                "operation": "download",
                "remote": "origin",
                "concurrent": True,
                "concurrenttransfers": 8,
            }
        )
        + "\n"
    )
    times = []
    for _ in range(n):
        start = time.perf_counter()
        proc = subprocess.Popen(
            [AGENT, "serve"],
            cwd=repo,
            env=world.env,
            text=True,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert proc.stdin and proc.stdout
        proc.stdin.write(line)
        proc.stdin.flush()
        reply = proc.stdout.readline()
        times.append((time.perf_counter() - start) * 1000)
        assert reply.strip() == "{}", reply
        proc.stdin.write('{"event":"terminate"}\n')
        proc.stdin.close()
        proc.wait(timeout=10)
    return times


def summary(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    opts = parser.parse_args()
    size = opts.size_mib * MiB
    results: dict[str, list[float]] = {}
    rss: dict[str, list[float]] = {"push": [], "fetch": [], "pull": []}

    def record(name: str, seconds: float) -> None:
        results.setdefault(name, []).append(seconds)
        print(f"  {name:<28} {seconds:7.2f} s", flush=True)

    with tempfile.TemporaryDirectory(prefix="lfs-s3-bench-", dir=ROOT / "bench") as tmp:
        root = Path(tmp)
        with seaweedfs(root / "s3") as server:
            server.create_bucket(BUCKET)
            world = World(root, server)
            client = server.client()
            data = root / "checkpoint.bin"
            with open(data, "wb") as f:
                for _ in range(opts.size_mib):
                    f.write(os.urandom(MiB))
            repo = root / "registry"
            world.git("init", "-q", str(repo))
            subprocess.run(
                [AGENT, "install"], cwd=repo, env=world.env, check=True, capture_output=True
            )
            (repo / ".gitattributes").write_text("*.bin filter=lfs diff=lfs merge=lfs -text\n")
            (repo / ".lfsconfig").write_text(f"[lfs]\n\turl = https://lfs-s3.invalid/{BUCKET}/p\n")
            os.link(data, repo / "checkpoint.bin")
            world.git("add", "-A", cwd=repo)
            world.git("commit", "-q", "-m", "checkpoint", cwd=repo)
            clone = root / "clone"
            down = root / "boto3-download.bin"

            print(f"init round trip of one agent process ({AGENT} serve)")
            init_ms = init_round_trip(world, repo)
            print(f"  median {statistics.median(init_ms):.1f} ms")

            for rnd in range(opts.rounds):
                print(f"round {rnd + 1}/{opts.rounds}", flush=True)
                # A new prefix and a new remote each round: every push moves the whole object.
                prefix = f"r{rnd}"
                remote = root / f"remote{rnd}.git"
                world.git("init", "-q", "--bare", str(remote))
                settle()
                pushed = timed(
                    world.git,
                    "push",
                    "-q",
                    str(remote),
                    "main",
                    cwd=repo,
                    env={"LFS_S3_PREFIX": prefix},
                )
                record("git push (agent)", pushed)
                rss["push"].append(world.peak_rss())
                settle()
                record(
                    "boto3 upload_file",
                    timed(client.upload_file, str(data), BUCKET, f"boto3/{prefix}"),
                )
                if rnd == 0:
                    world.git(
                        "clone", "-q", str(remote), str(clone), env={"GIT_LFS_SKIP_SMUDGE": "1"}
                    )
                    subprocess.run(
                        [AGENT, "install"],
                        cwd=clone,
                        env=world.env,
                        check=True,
                        capture_output=True,
                    )
                shutil.rmtree(clone / ".git" / "lfs" / "objects", ignore_errors=True)
                settle()
                record(
                    "git lfs fetch (agent)",
                    timed(world.git, "lfs", "fetch", cwd=clone, env={"LFS_S3_PREFIX": prefix}),
                )
                rss["fetch"].append(world.peak_rss())
                down.unlink(missing_ok=True)
                settle()
                record(
                    "boto3 download_file",
                    timed(client.download_file, BUCKET, f"boto3/{prefix}", str(down)),
                )
                shutil.rmtree(clone / ".git" / "lfs" / "objects", ignore_errors=True)
                (clone / "checkpoint.bin").unlink(missing_ok=True)
                world.git("checkout", "-q", "--", ".", cwd=clone, env={"GIT_LFS_SKIP_SMUDGE": "1"})
                settle()
                record(
                    "git lfs pull (agent)",
                    timed(world.git, "lfs", "pull", cwd=clone, env={"LFS_S3_PREFIX": prefix}),
                )
                rss["pull"].append(world.peak_rss())
                assert (clone / "checkpoint.bin").stat().st_size == size

    lines = [
        "# lfs-s3-agent against boto3 on SeaweedFS (loopback)",
        "",
        f"- object: {opts.size_mib} MiB of random bytes; {opts.rounds} rounds, contenders "
        "alternating; seconds, median (min-max)",
        f"- machine: {platform.platform()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; SeaweedFS `weed mini` on 127.0.0.1 with auth",
        "- agent settings: defaults (`lfs-s3-agent config`)",
        "",
        "| operation | seconds | vs boto3 |",
        "|---|---|---|",
    ]
    base = {
        "git push (agent)": "boto3 upload_file",
        "git lfs fetch (agent)": "boto3 download_file",
        "git lfs pull (agent)": "boto3 download_file",
    }
    for name, values in results.items():
        ref = base.get(name)
        ratio = (
            f"{statistics.median(values) / statistics.median(results[ref]):.2f}x"
            if ref
            else "1.00x"
        )
        lines.append(f"| {name} | {summary(values)} | {ratio} |")
    lines += [
        "",
        f"- init round trip, one agent process: {summary(init_ms)} ms",
        "- agent peak RSS (MiB, largest of the worker processes): "
        + ", ".join(f"{k} {summary(v)}" for k, v in rss.items()),
        "",
    ]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "latest.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
