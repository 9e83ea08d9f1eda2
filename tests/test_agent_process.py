"""The agent as git-lfs runs it: a real process, its pipes, signals, against moto's S3 server."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.s3servers import S3Bucket

MiB = 1024 * 1024
INIT = {
    "event": "init",
    "operation": "upload",
    "remote": "origin",
    "concurrent": True,
    "concurrenttransfers": 8,
}


class Agent:
    def __init__(self, repo: Path, bucket: S3Bucket, **env: str) -> None:
        full = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LFS_S3_"))}
        full.update(bucket.server.env())
        full.update(LFS_S3_BUCKET=bucket.name, LFS_S3_PREFIX="p", **env)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lfs_agent", "serve"],
            cwd=repo,
            env=full,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._err = ""
        AGENTS.append(self)

    def send(self, msg: dict[str, object]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(msg) + "\n")
        self.proc.stdin.flush()

    def reply(self) -> dict[str, object]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line, f"agent closed stdout; stderr:\n{self.stderr()}"
        msg = json.loads(line)
        assert isinstance(msg, dict)
        return msg

    def stderr(self) -> str:
        if self.proc.poll() is None:
            self.proc.kill()
        assert self.proc.stderr is not None
        self._err += self.proc.stderr.read()
        return self._err

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                try:
                    stream.close()
                except BrokenPipeError:
                    pass


AGENTS: list[Agent] = []


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[Path]:
    subprocess.run(["git", "init", "-q", str(tmp_path / "repo")], check=True)
    yield tmp_path / "repo"
    while AGENTS:
        AGENTS.pop().close()


def big_object(repo: Path, size: int) -> tuple[str, Path]:
    data = os.urandom(size)
    oid = hashlib.sha256(data).hexdigest()
    path = repo / ".git" / "lfs" / "objects" / oid[:2] / oid[2:4] / oid
    path.parent.mkdir(parents=True)
    path.write_bytes(data)
    return oid, path


def test_terminate_exits_at_once_with_only_protocol_on_stdout(
    repo: Path, moto_s3: S3Bucket
) -> None:
    oid, path = big_object(repo, 3 * MiB)
    log = repo.parent / "agent.log"
    agent = Agent(repo, moto_s3, LFS_S3_AGENT_LOG=str(log), LFS_S3_AGENT_LOG_LEVEL="DEBUG")
    agent.send(INIT)
    assert agent.reply() == {}
    agent.send({"event": "upload", "oid": oid, "size": 3 * MiB, "path": str(path), "action": None})
    while (msg := agent.reply())["event"] == "progress":
        assert msg["oid"] == oid
    assert msg == {"event": "complete", "oid": oid}
    start = time.monotonic()
    agent.send({"event": "terminate"})
    assert agent.proc.wait(timeout=10) == 0
    assert time.monotonic() - start < 5
    assert agent.proc.stdout is not None and agent.proc.stdout.read() == ""
    secret = moto_s3.server.secret_key
    logged = log.read_text() + agent.stderr()
    assert f"uploaded {oid}" in logged
    assert secret not in logged


@pytest.mark.parametrize("how", ["SIGTERM", "SIGINT", "EOF"])
def test_interrupted_multipart_upload_is_kept_for_the_next_process(
    repo: Path, moto_s3: S3Bucket, how: str
) -> None:
    # The contract since resumable uploads: an interruption keeps the multipart upload and
    # records it in .git/lfs/lfs-s3/uploads; the next agent resumes it, sending only the parts
    # the store does not have, and leaves nothing open.
    size = 80 * MiB
    oid, path = big_object(repo, size)
    env = {
        "LFS_S3_PART_SIZE": "5MiB",
        "LFS_S3_MULTIPART_THRESHOLD": "5MiB",
        "LFS_S3_CONCURRENCY": "1",
    }
    agent = Agent(repo, moto_s3, **env)
    agent.send(INIT)
    assert agent.reply() == {}
    agent.send({"event": "upload", "oid": oid, "size": size, "path": str(path), "action": None})
    first = agent.reply()
    assert first["event"] == "progress"
    assert isinstance(first["bytesSoFar"], int) and 0 < first["bytesSoFar"] < size
    if how == "EOF":
        assert agent.proc.stdin is not None
        agent.proc.stdin.close()
    else:
        agent.proc.send_signal(getattr(signal, how))
    assert agent.proc.wait(timeout=20) == 130, agent.stderr()
    client = moto_s3.server.client()
    key = f"p/objects/{oid[:2]}/{oid[2:4]}/{oid}"
    uploads = client.list_multipart_uploads(Bucket=moto_s3.name).get("Uploads", [])
    assert [u["Key"] for u in uploads] == [key]
    assert client.list_objects_v2(Bucket=moto_s3.name).get("KeyCount") == 0
    assert "kept multipart upload" in agent.stderr()
    records = repo / ".git" / "lfs" / "lfs-s3" / "uploads"
    assert [p.name for p in records.glob("*.json")] == [f"{oid}.json"]
    if how != "SIGTERM":
        return

    stored = client.list_parts(Bucket=moto_s3.name, Key=key, UploadId=uploads[0]["UploadId"])
    kept = len(stored.get("Parts", []))
    again = Agent(repo, moto_s3, **env, LFS_S3_AGENT_LOG_LEVEL="DEBUG")
    again.send(INIT)
    assert again.reply() == {}
    again.send({"event": "upload", "oid": oid, "size": size, "path": str(path), "action": None})
    while (msg := again.reply())["event"] == "progress":
        pass
    assert msg == {"event": "complete", "oid": oid}
    again.send({"event": "terminate"})
    assert again.proc.wait(timeout=10) == 0
    assert f"the store has {kept} parts" in again.stderr()
    assert client.list_multipart_uploads(Bucket=moto_s3.name).get("Uploads", []) == []
    body = client.get_object(Bucket=moto_s3.name, Key=key)["Body"].read()
    assert hashlib.sha256(body).hexdigest() == oid
    assert list(records.glob("*.json")) == []


def test_config_error_is_the_init_reply_and_the_process_ends(repo: Path, moto_s3: S3Bucket) -> None:
    agent = Agent(repo, moto_s3, LFS_S3_PART_SIZE="1KiB")
    agent.send(INIT)
    reply = agent.reply()
    error = reply["error"]
    assert isinstance(error, dict) and error["code"] == 32
    assert "part-size '1KiB'" in str(error["message"])
    assert "environment LFS_S3_PART_SIZE" in str(error["message"])
    assert agent.proc.wait(timeout=10) == 1
