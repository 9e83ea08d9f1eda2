"""Start-up of the agent as git-lfs runs it (`lfs-s3-agent install`'s command), in milliseconds.

- init: from starting the process to its reply to init (warm server running, or switched off);
- queue: the start of one transfer queue with `--concurrent`: git-lfs starts
  `lfs.concurrenttransfers` (8) processes one after another, each waiting for its init reply;
- first request: from sending the first download of a 1 KiB object to its `complete`, in a fresh
  process: the set-up before bytes move (client, credentials) plus one GET; with credentials
  from the environment, or from a profile in a credentials file (botocore's chain).
"""

from __future__ import annotations

import json
import shlex
import subprocess
import time
from pathlib import Path

from lfs_agent.install import agent_command

from .common import World

INIT = {"event": "init", "operation": "download", "remote": "origin", "concurrent": True}


def launcher() -> list[str]:
    path, args = agent_command()
    return [path, *shlex.split(args)]


def _start(world: World, repo: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    """A fresh agent that has answered init."""
    proc = subprocess.Popen(
        launcher(),
        cwd=repo,
        env={**world.env, **env},
        text=True,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert proc.stdin and proc.stdout
    proc.stdin.write(json.dumps(INIT) + "\n")
    proc.stdin.flush()
    reply = proc.stdout.readline()
    assert reply.strip() == "{}", reply
    return proc


def _stop(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin and proc.stdout
    proc.stdin.write('{"event":"terminate"}\n')
    proc.stdin.close()
    proc.wait(timeout=30)
    proc.stdout.close()


def session(
    world: World, repo: Path, env: dict[str, str], request: dict[str, object] | None
) -> tuple[float, float]:
    """(ms to the init reply, ms from the request to its `complete`) of one fresh agent."""
    start = time.perf_counter()
    proc = _start(world, repo, env)
    init_ms = (time.perf_counter() - start) * 1000
    first_ms = 0.0
    if request is not None:
        assert proc.stdin and proc.stdout
        sent = time.perf_counter()
        proc.stdin.write(json.dumps(request) + "\n")
        proc.stdin.flush()
        while '"complete"' not in (line := proc.stdout.readline()):
            assert line, "the agent stopped before completing"
        first_ms = (time.perf_counter() - sent) * 1000
        assert '"error"' not in line, line
    _stop(proc)
    return init_ms, first_ms


def first(world: World, repo: Path, env: dict[str, str], request: dict[str, object]) -> float:
    """ms from sending `request` to its `complete`, in a fresh agent."""
    return session(world, repo, env, request)[1]


def queue_start(world: World, repo: Path, env: dict[str, str], workers: int = 8) -> float:
    """ms until `workers` processes, started one after another, have all answered init."""
    start = time.perf_counter()
    procs = [_start(world, repo, env) for _ in range(workers)]
    elapsed = (time.perf_counter() - start) * 1000
    for proc in procs:
        _stop(proc)
    return elapsed


def profile_env(root: Path, world: World) -> dict[str, str]:
    """The same key as a named profile in a credentials file instead of the environment."""
    access, secret = world.env["AWS_ACCESS_KEY_ID"], world.env["AWS_SECRET_ACCESS_KEY"]
    creds = root / "aws-credentials"
    creds.write_text(f"[bench]\naws_access_key_id = {access}\naws_secret_access_key = {secret}\n")
    return {
        "AWS_ACCESS_KEY_ID": "",
        "AWS_SECRET_ACCESS_KEY": "",
        "AWS_SHARED_CREDENTIALS_FILE": str(creds),
        "AWS_CONFIG_FILE": str(root / "aws-config-none"),
        "AWS_PROFILE": "bench",
    }
