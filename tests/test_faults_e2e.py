"""Faults between the agent and S3, through the real git-lfs and a real S3 server on 127.0.0.1.

The agent reaches SeaweedFS through the fault proxy (tests/faultproxy.py), set as its endpoint
with LFS_S3_ENDPOINT. Each test injects one fault, then checks the end state: the command's exit
status and the message the user sees, what is in the bucket (no object under its final key
unless it is whole, no multipart upload left once a retry is done), that `.git/lfs/objects`
holds only objects that hash to their oid, and that a plain retry heals everything.

Objects are 3 parts of 5 MiB and a short fourth with one part or range in flight at a time, so
that which parts were sent is deterministic.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from devtools.s3servers import S3Bucket
from tests.faultproxy import Fault, FaultProxy
from tests.gitlfs import GitWorld, agents_under, lfs_objects, oid_of

pytestmark = pytest.mark.e2e

MiB = 1024 * 1024
PART = 5 * MiB
SIZE = 3 * PART + 1234  # four parts: 3 x 5 MiB + 1234 bytes
PARTS = 4
UPLOAD_PART = r"[?&]partNumber="
SETTINGS = {
    "LFS_S3_PART_SIZE": "5MiB",
    "LFS_S3_MULTIPART_THRESHOLD": "5MiB",
    "LFS_S3_CONCURRENCY": "1",
    "LFS_S3_RETRIES": "1",
}


@dataclasses.dataclass
class Scene:
    world: GitWorld
    proxy: FaultProxy
    repo: Path
    data: bytes

    @property
    def oid(self) -> str:
        return oid_of(self.data)

    @property
    def key(self) -> str:
        o = self.oid
        return f"{self.world.prefix}/objects/{o[:2]}/{o[2:4]}/{o}"

    def push(self, check: bool = False) -> subprocess.CompletedProcess[str]:
        return self.world.git("push", "origin", "main", cwd=self.repo, check=check)

    def assert_lfs_dir_sound(self, repo: Path) -> None:
        """Every object in .git/lfs/objects hashes to its name; no temp file of ours left."""
        for path in (repo / ".git" / "lfs" / "objects").rglob("*"):
            if path.is_file():
                assert hashlib.sha256(path.read_bytes()).hexdigest() == path.name, path
        assert list((repo / ".git" / "lfs" / "tmp").glob("lfs-s3-*")) == []


@pytest.fixture
def scene(tmp_path: Path, seaweed_s3: S3Bucket) -> Iterator[Scene]:
    with FaultProxy(seaweed_s3.server.endpoint) as proxy:
        world = GitWorld(
            tmp_path, seaweed_s3, extra_env={**SETTINGS, "LFS_S3_ENDPOINT": proxy.endpoint}
        )
        repo = world.new_registry()
        data = os.urandom(SIZE)
        (repo / "model.bin").write_bytes(data)
        (repo / "config.bin").write_bytes(b"small" * 100)
        world.git("add", "-A", cwd=repo)
        world.git("commit", "-q", "-m", "model", cwd=repo)
        world.git("remote", "add", "origin", str(world.bare_remote()), cwd=repo)
        yield Scene(world, proxy, repo, data)
    assert agents_under(tmp_path) == []


def pushed(scene: Scene) -> Scene:
    scene.push(check=True)
    return scene


def clone(scene: Scene) -> Path:
    path = scene.world.root / "clone"
    scene.world.git(
        "clone",
        "-q",
        str(scene.world.root / "remote.git"),
        str(path),
        env={"GIT_LFS_SKIP_SMUDGE": "1"},
    )
    scene.world.agent("install", cwd=path)
    return path


def assert_push_healed(scene: Scene, sent_before: int, most_parts: int) -> None:
    """A plain retry: pushes, sends at most `most_parts` parts, leaves the store clean."""
    retry = scene.push()
    assert retry.returncode == 0, retry.stderr
    assert scene.proxy.count("PUT", UPLOAD_PART) - sent_before <= most_parts
    assert scene.world.stored(scene.oid) == scene.data
    assert scene.world.open_uploads() == []
    assert upload_records(scene.repo) == []


def upload_records(repo: Path) -> list[str]:
    d = repo / ".git" / "lfs" / "lfs-s3" / "uploads"
    return sorted(p.name for p in d.glob("*.json")) if d.exists() else []


def partials(repo: Path) -> list[str]:
    d = repo / ".git" / "lfs" / "lfs-s3" / "downloads"
    return sorted(p.name for p in d.glob("*.part")) if d.exists() else []


# ------------------------------------------------------------------------------------ uploads


def test_connection_reset_past_retries_keeps_upload_and_retry_resumes(scene: Scene) -> None:
    scene.proxy.add(Fault("reset", method="PUT", path=r"partNumber=3\b", times=None))
    push = scene.push()
    assert push.returncode != 0
    assert scene.oid in push.stderr
    assert "[503]" in push.stderr and "push again to resume" in push.stderr
    assert scene.key not in scene.world.keys()
    assert scene.world.open_uploads() == [scene.key]
    assert upload_records(scene.repo) == [f"{scene.oid}.json"]
    scene.assert_lfs_dir_sound(scene.repo)

    scene.proxy.clear()
    sent = scene.proxy.count("PUT", UPLOAD_PART)
    assert_push_healed(scene, sent, most_parts=PARTS - 2)  # parts 1 and 2 are kept


def test_slowdown_past_retries_then_retry_heals(scene: Scene) -> None:
    scene.proxy.add(Fault("status", method="PUT", path=r"partNumber=2\b", times=None))
    push = scene.push()
    assert push.returncode != 0
    assert "[503]" in push.stderr and "SlowDown" in push.stderr
    assert "push again to resume" in push.stderr
    assert scene.key not in scene.world.keys()
    assert scene.world.open_uploads() == [scene.key]

    scene.proxy.clear()
    sent = scene.proxy.count("PUT", UPLOAD_PART)
    assert_push_healed(scene, sent, most_parts=PARTS - 1)


def test_transient_500_is_retried_within_the_push(scene: Scene) -> None:
    scene.proxy.add(
        Fault("status", method="PUT", path=r"partNumber=2\b", status=500, code="InternalError")
    )
    push = scene.push()
    assert push.returncode == 0, push.stderr
    assert scene.proxy.count("PUT", r"partNumber=2\b", fault="status") == 1
    assert scene.world.stored(scene.oid) == scene.data
    assert scene.world.open_uploads() == []


def test_access_denied_aborts_the_upload_and_says_what_to_check(scene: Scene) -> None:
    scene.proxy.add(
        Fault("status", method="PUT", path=r"partNumber=2\b", status=403, code="AccessDenied")
    )
    push = scene.push()
    assert push.returncode != 0
    assert "[403]" in push.stderr and "access denied" in push.stderr.lower()
    assert scene.key not in scene.world.keys()
    assert scene.world.open_uploads() == []
    assert upload_records(scene.repo) == []
    scene.assert_lfs_dir_sound(scene.repo)

    scene.proxy.clear()
    sent = scene.proxy.count("PUT", UPLOAD_PART)
    assert_push_healed(scene, sent, most_parts=PARTS)


def test_agent_killed_while_stalled_then_next_push_resumes(scene: Scene) -> None:
    scene.proxy.add(Fault("stall", method="PUT", path=r"partNumber=4\b", seconds=30))
    push = subprocess.Popen(
        ["git", "push", "origin", "main"],
        cwd=scene.repo,
        env=scene.world.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while scene.proxy.count("PUT", r"partNumber=4\b") == 0:
            assert time.monotonic() < deadline and push.poll() is None, "part 4 never came"
            time.sleep(0.05)
        killed = kill_agents(scene.world.root)
        assert killed
        _, stderr = push.communicate(timeout=60)
    finally:
        if push.poll() is None:
            push.kill()
            push.wait()
    assert push.returncode != 0
    assert "EOF" in stderr  # git-lfs's word for an agent that died
    assert scene.world.open_uploads() == [scene.key]
    assert upload_records(scene.repo) == [f"{scene.oid}.json"]
    assert scene.key not in scene.world.keys()
    scene.assert_lfs_dir_sound(scene.repo)

    scene.proxy.clear()
    sent = scene.proxy.count("PUT", UPLOAD_PART)
    assert_push_healed(scene, sent, most_parts=PARTS - 3)  # parts 1 to 3 are kept


def recorded(record: Path) -> int:
    """How many ranges a partial download's record says are written and hashed."""
    try:
        return len(json.loads(record.read_text())["ranges"])
    except (OSError, ValueError, KeyError):
        return 0


def kill_agents(root: Path) -> list[int]:
    """SIGKILL the agent processes working under `root`; their pids."""
    pids = []
    for proc in agents_under(root):
        try:
            proc.send_signal(signal.SIGKILL)
            pids.append(proc.pid)
        except psutil.NoSuchProcess:
            continue
    return pids


# ---------------------------------------------------------------------------------- downloads


def test_truncated_range_is_resumed_within_the_pull(scene: Scene) -> None:
    pushed(scene)
    c = clone(scene)
    scene.proxy.add(Fault("truncate", method="GET", path=scene.oid, skip=1, response_bytes=1000))
    pull = scene.world.git("lfs", "pull", cwd=c, check=False)
    assert pull.returncode == 0, pull.stderr
    assert scene.proxy.count("GET", scene.oid, fault="truncate") == 1
    assert (c / "model.bin").read_bytes() == scene.data
    scene.assert_lfs_dir_sound(c)
    assert partials(c) == []


def test_range_failing_past_retries_keeps_what_came_and_retry_resumes(scene: Scene) -> None:
    pushed(scene)
    c = clone(scene)
    # The third range (bytes 10 MiB on) fails every time: reset after 1000 bytes of its body.
    scene.proxy.add(
        Fault("reset", method="GET", path=scene.oid, skip=2, times=None, response_bytes=1000)
    )
    pull = scene.world.git("lfs", "pull", cwd=c, check=False)
    assert pull.returncode != 0
    assert scene.oid in pull.stderr and "[503]" in pull.stderr
    assert "run the command again to resume" in pull.stderr
    assert scene.oid not in lfs_objects(c / ".git")
    assert (c / "config.bin").read_bytes() == b"small" * 100
    assert (c / "model.bin").read_bytes().startswith(b"version https://git-lfs")
    assert partials(c) == [f"{scene.oid}.part"]
    scene.assert_lfs_dir_sound(c)

    scene.proxy.clear()
    gets = scene.proxy.count("GET", scene.oid)
    retry = scene.world.git("lfs", "pull", cwd=c, check=False)
    assert retry.returncode == 0, retry.stderr
    assert scene.proxy.count("GET", scene.oid) - gets == PARTS - 2  # ranges 1 and 2 are kept
    assert (c / "model.bin").read_bytes() == scene.data
    assert partials(c) == []
    scene.assert_lfs_dir_sound(c)


def test_server_error_on_download_then_retry_heals(scene: Scene) -> None:
    pushed(scene)
    c = clone(scene)
    scene.proxy.add(
        Fault("status", method="GET", path=scene.oid, times=None, status=500, code="InternalError")
    )
    pull = scene.world.git("lfs", "pull", cwd=c, check=False)
    assert pull.returncode != 0
    assert "[503]" in pull.stderr and "InternalError" in pull.stderr
    assert scene.oid not in lfs_objects(c / ".git")
    scene.assert_lfs_dir_sound(c)

    scene.proxy.clear()
    retry = scene.world.git("lfs", "pull", cwd=c, check=False)
    assert retry.returncode == 0, retry.stderr
    assert (c / "model.bin").read_bytes() == scene.data
    assert partials(c) == []


def test_download_stall_then_agent_killed_then_retry_resumes(scene: Scene) -> None:
    pushed(scene)
    c = clone(scene)
    scene.proxy.add(Fault("stall", method="GET", path=scene.oid, skip=3, seconds=30))
    pull = subprocess.Popen(
        ["git", "lfs", "pull"],
        cwd=c,
        env=scene.world.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        record = c / ".git" / "lfs" / "lfs-s3" / "downloads" / f"{scene.oid}.json"
        # Range 4 is stalled, and ranges 1 to 3 are hashed and recorded.
        while scene.proxy.count("GET", scene.oid, fault="stall") == 0 or recorded(record) < 3:
            assert time.monotonic() < deadline and pull.poll() is None, "range 4 never came"
            time.sleep(0.05)
        assert kill_agents(scene.world.root)
        _, stderr = pull.communicate(timeout=60)
    finally:
        if pull.poll() is None:
            pull.kill()
            pull.wait()
    assert pull.returncode != 0
    assert "EOF" in stderr
    assert scene.oid not in lfs_objects(c / ".git")
    assert partials(c) == [f"{scene.oid}.part"]
    scene.assert_lfs_dir_sound(c)

    scene.proxy.clear()
    gets = scene.proxy.count("GET", scene.oid)
    retry = scene.world.git("lfs", "pull", cwd=c, check=False)
    assert retry.returncode == 0, retry.stderr
    assert scene.proxy.count("GET", scene.oid) - gets == PARTS - 3
    assert (c / "model.bin").read_bytes() == scene.data
    assert partials(c) == []
    scene.assert_lfs_dir_sound(c)
