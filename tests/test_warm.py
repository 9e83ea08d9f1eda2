"""The warm server (lfs_agent/warm.py): the launcher git-lfs runs hands its pipes to a forked,
ready agent, which then works with the launcher's environment, folder and umask; without a
usable server the launcher serves git-lfs itself.

Each test runs the real launcher (`python -S lfs_agent/_launch.py`) as git-lfs does, with its
own XDG_RUNTIME_DIR, so its server is its own; a server leaves once its socket file is gone.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from lfs_agent import warm
from lfs_agent.install import agent_command

INIT = json.dumps({"event": "init", "operation": "download", "remote": "origin"}) + "\n"


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict[str, str]]:
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path / "home"),
        "GIT_CONFIG_NOSYSTEM": "1",
        "XDG_RUNTIME_DIR": str(runtime),
    }
    yield env
    # Removing the socket makes the server leave (it checks every second).
    for sock in (runtime / "lfs-s3-agent").glob("*.sock"):
        sock.unlink()
    deadline = time.monotonic() + 5
    while servers(runtime) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert servers(runtime) == []


def servers(runtime: Path) -> list[int]:
    """The warm servers whose socket is under `runtime`."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if "--warm-server" in cmdline and str(runtime) in " ".join(cmdline):
            found.append(proc.pid)
    return found


@pytest.fixture
def repo(tmp_path: Path, env: dict[str, str]) -> Path:
    path = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(path)], check=True, env=env)
    subprocess.run(["git", "config", "lfs-s3.bucket", "models"], cwd=path, check=True, env=env)
    (path / "sub").mkdir()
    return path


def launcher() -> list[str]:
    path, args = agent_command()
    return [path, *args.split()]


def start(cwd: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        launcher(),
        cwd=cwd,
        env=env,
        text=True,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def agent_pid(stderr: str) -> int:
    found = re.search(r"lfs-s3-agent\[(\d+)\]", stderr)
    assert found, stderr
    return int(found.group(1))


def converse(cwd: Path, env: dict[str, str], lines: str) -> tuple[int, str, str, int]:
    """Run one launcher through `lines`: (exit status, stdout, stderr, its own pid)."""
    proc = start(cwd, env)
    out, err = proc.communicate(lines, timeout=30)
    return proc.returncode, out, err, proc.pid


def wait_for_server(env: dict[str, str]) -> None:
    directory = Path(env["XDG_RUNTIME_DIR"]) / "lfs-s3-agent"
    deadline = time.monotonic() + 10
    while not list(directory.glob("*.sock")):
        assert time.monotonic() < deadline, "no warm server came up"
        time.sleep(0.05)


def test_the_first_start_serves_itself_and_leaves_a_server_for_the_next(
    repo: Path, env: dict[str, str]
) -> None:
    status, out, err, pid = converse(repo, env, INIT + '{"event":"terminate"}\n')
    assert (status, out) == (0, "{}\n")
    assert agent_pid(err) == pid  # served in the launcher's own process
    wait_for_server(env)
    status, out, err, pid = converse(repo, env, INIT + '{"event":"terminate"}\n')
    assert (status, out) == (0, "{}\n")
    assert agent_pid(err) != pid  # a forked child of the server answered


def test_the_child_works_with_the_launchers_folder_environment_and_status(
    repo: Path, env: dict[str, str]
) -> None:
    converse(repo, env, INIT + '{"event":"terminate"}\n')
    wait_for_server(env)
    # The launcher's environment: a bad setting there is what the child reports at init.
    status, out, err, pid = converse(
        repo / "sub", {**env, "LFS_S3_PART_SIZE": "lots"}, INIT + '{"event":"terminate"}\n'
    )
    assert agent_pid(err) != pid
    assert status == 1
    assert "invalid part-size 'lots' (from environment LFS_S3_PART_SIZE)" in out
    # The launcher's folder: outside any repository, the child says so.
    outside = repo.parent / "elsewhere"
    outside.mkdir()
    status, out, err, _ = converse(outside, env, INIT)
    assert status == 1 and "is not inside a git repository" in out and str(outside) in out
    # Its exit status comes back through the launcher: a protocol error is 2.
    status, out, err, _ = converse(repo, env, INIT + "not json\n")
    assert (status, out) == (2, "{}\n")


def test_signals_to_the_launcher_reach_the_child(repo: Path, env: dict[str, str]) -> None:
    converse(repo, env, INIT + '{"event":"terminate"}\n')
    wait_for_server(env)
    proc = start(repo, env)
    assert proc.stdin and proc.stdout
    proc.stdin.write(INIT)
    proc.stdin.flush()
    assert proc.stdout.readline() == "{}\n"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 130  # the child was interrupted, and said so
    proc.stdin.close()
    proc.stdout.close()
    assert proc.stderr
    err = proc.stderr.read()
    proc.stderr.close()
    assert "interrupted: received SIGTERM" in err
    assert agent_pid(err) != proc.pid  # it went through the server


def test_switched_off_it_serves_in_process_and_starts_no_server(
    repo: Path, env: dict[str, str]
) -> None:
    off = {**env, warm.ENV_SWITCH: "0"}
    for _ in range(2):
        status, out, err, pid = converse(repo, off, INIT + '{"event":"terminate"}\n')
        assert (status, out, agent_pid(err)) == (0, "{}\n", pid)
    time.sleep(0.5)
    assert servers(Path(env["XDG_RUNTIME_DIR"])) == []


def test_a_folder_open_to_others_is_not_used(repo: Path, env: dict[str, str]) -> None:
    directory = Path(env["XDG_RUNTIME_DIR"]) / "lfs-s3-agent"
    directory.mkdir(mode=0o700)
    directory.chmod(0o777)
    for _ in range(2):
        status, out, err, pid = converse(repo, env, INIT + '{"event":"terminate"}\n')
        assert (status, out, agent_pid(err)) == (0, "{}\n", pid)
    assert list(directory.iterdir()) == []


def test_a_stale_socket_is_replaced(repo: Path, env: dict[str, str]) -> None:
    directory = Path(env["XDG_RUNTIME_DIR"]) / "lfs-s3-agent"
    directory.mkdir(mode=0o700)
    code = "import os, sys; sys.path.insert(0, sys.argv[1]); from lfs_agent import warm; "
    code += "print(warm.socket_path())"
    root = str(Path(warm.__file__).parent.parent)
    path = subprocess.run(
        [sys.executable, "-c", code, root], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    Path(path).write_text("")  # a file where the socket should be: nothing listens there
    status, out, err, pid = converse(repo, env, INIT + '{"event":"terminate"}\n')
    assert (status, out, agent_pid(err)) == (0, "{}\n", pid)
    wait_for_server(env)
    deadline = time.monotonic() + 10
    while True:
        status, out, err, pid = converse(repo, env, INIT + '{"event":"terminate"}\n')
        if agent_pid(err) != pid or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert agent_pid(err) != pid


def test_a_wedged_server_is_left_and_its_socket_taken_away(tmp_path: Path) -> None:
    # A server that accepts and never starts an agent: the launcher gives up on it, removes
    # its socket (so it leaves, and no other launcher waits on it) and serves git-lfs itself.
    ours, server_end = socket.socketpair()
    path = tmp_path / "wedged.sock"
    path.write_text("")
    started = time.monotonic()
    warm._wait_for_child(ours, str(path), wait=0.2)  # returns: serve in-process
    assert 0.2 <= time.monotonic() - started < 5
    assert not path.exists()
    server_end.close()


def test_a_server_that_hangs_up_before_an_agent_is_left_at_once(tmp_path: Path) -> None:
    ours, server_end = socket.socketpair()
    server_end.close()
    path = tmp_path / "refusing.sock"
    path.write_text("")
    warm._wait_for_child(ours, str(path), wait=5)
    assert path.exists()  # a server that says no is not a wedged one


def test_children_take_the_settings_an_earlier_child_loaded_until_a_file_changes(
    repo: Path, env: dict[str, str], tmp_path: Path
) -> None:
    then = time.time() - 60  # files just written are not remembered (memo.SETTLE_NS)
    for path in [repo, *repo.rglob("*"), *(tmp_path / "home").rglob("*")]:
        os.utime(path, (then, then), follow_symlinks=False)
    converse(repo, env, INIT + '{"event":"terminate"}\n')
    wait_for_server(env)
    remembered = "settings as at the last start"
    status, out, err, _ = converse(repo, env, INIT + '{"event":"terminate"}\n')
    assert (status, out) == (0, "{}\n") and remembered not in err  # loaded, and reported
    status, out, err, _ = converse(repo, env, INIT + '{"event":"terminate"}\n')
    assert (status, out) == (0, "{}\n") and remembered in err
    subprocess.run(["git", "config", "lfs-s3.part-size", "lots"], cwd=repo, check=True, env=env)
    status, out, err, _ = converse(repo, env, INIT)
    assert status == 1 and "invalid part-size 'lots'" in out and remembered not in err
