"""`lfs-s3-agent doctor` and `model-registry doctor` (issue 13), and a stale agent path
(finding 6), against SeaweedFS with S3 identities (an admin, a read-write and a read-only key),
with the real git, git-lfs and agent."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from devtools.s3servers import S3Bucket
from lfs_agent.doctor import Context, Result, render, run
from lfs_agent.install import TRANSFER, git_args
from tests.gitlfs import AGENT, READ_ONLY, READ_WRITE, GitWorld
from tests.test_access_seaweed import key_env, store_state

pytestmark = pytest.mark.e2e

AWS_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


def registry(tmp_path: Path, bucket: S3Bucket) -> tuple[GitWorld, Path]:
    """A registry routed to the bucket with the agent installed, using the read-write key."""
    world = GitWorld(tmp_path, bucket, extra_env=key_env(bucket, READ_WRITE))
    return world, world.new_registry()


def doctor(
    world: GitWorld, repo: Path, *args: str, env: dict[str, str] | None = None
) -> tuple[int, list[str]]:
    proc = world.run(*AGENT, "doctor", *args, cwd=repo, env=env or world.env(), check=False)
    assert proc.stderr == "", proc.stderr
    return proc.returncode, proc.stdout.splitlines()


def lines_of(lines: list[str], status: str) -> list[str]:
    return [line for line in lines if line.startswith(f"{status} ")]


def test_a_healthy_registry(tmp_path: Path, seaweed_acl_s3: S3Bucket) -> None:
    world, repo = registry(tmp_path, seaweed_acl_s3)
    code, lines = doctor(world, repo, "--write")
    assert code == 0, "\n".join(lines)
    assert lines[-1] == "0 problems"
    ok = {line.split(":")[0].split()[-1] for line in lines_of(lines, "ok")}
    assert {"git", "git-lfs", "agent", "lfs.url", "transfer", "settings", "credentials"} <= ok
    assert {"bucket", "read", "write"} <= ok
    assert any("found by botocore's 'env' provider, access key id ...iter" in x for x in lines)
    assert not any(READ_WRITE.secret_key in line for line in lines)  # never a secret
    assert any("put, read back and removed a probe object" in x for x in lines)
    assert store_state(seaweed_acl_s3) == ([], [])  # the probe is gone
    # The test's bucket was created a moment ago: reported, but not a problem.
    assert any(f"'{seaweed_acl_s3.name}' was created" in x for x in lines_of(lines, "warning"))
    # The same checks under the registry's own command.
    again = world.run(sys.executable, "-m", "registry", "doctor", cwd=repo, check=False)
    assert again.returncode == 0 and again.stdout.splitlines()[-1] == "0 problems"


def test_a_missing_bucket(tmp_path: Path, seaweed_acl_s3: S3Bucket) -> None:
    world, repo = registry(tmp_path, seaweed_acl_s3)
    (repo / ".lfsconfig").write_text("[lfs]\n\turl = https://lfs-s3.invalid/no-such-bucket/reg\n")
    code, lines = doctor(world, repo)
    assert code == 1
    problems = lines_of(lines, "problem")
    assert len(problems) == 1, lines
    assert "bucket: " in problems[0] and "'no-such-bucket'" in problems[0]
    assert "Fix: " in problems[0]
    assert lines[-1] == "1 problem"


def test_a_read_only_key(tmp_path: Path, seaweed_acl_s3: S3Bucket) -> None:
    world, repo = registry(tmp_path, seaweed_acl_s3)
    env = world.env(**key_env(seaweed_acl_s3, READ_ONLY))
    code, lines = doctor(world, repo, env=env)
    assert code == 0, "\n".join(lines)  # reading is all that was asked
    assert any(line.startswith("ok       read:") for line in lines)
    code, lines = doctor(world, repo, "--write", env=env)
    assert code == 1
    [problem] = lines_of(lines, "problem")
    assert problem.startswith(
        f"problem  write: these credentials cannot write under s3://{seaweed_acl_s3.name}/"
        "registry (AccessDenied), so pushes will fail. Fix: use a key whose policy allows "
        "s3:PutObject"
    )
    assert store_state(seaweed_acl_s3) == ([], [])


def test_missing_credentials(tmp_path: Path, seaweed_acl_s3: S3Bucket) -> None:
    world, repo = registry(tmp_path, seaweed_acl_s3)
    env = {k: v for k, v in world.env().items() if k not in AWS_KEYS}
    code, lines = doctor(world, repo, env=env)
    assert code == 1
    [problem] = lines_of(lines, "problem")
    assert problem.startswith("problem  credentials: no AWS credentials found")
    assert "AWS_PROFILE" in problem
    assert not any(line.split()[1].startswith(("bucket", "read")) for line in lines[:-1])


def stale_install(world: GitWorld) -> str:
    """`install --global` from a virtualenv that was removed since: its python, as written."""
    world.agent("install", "--global")
    gone = world.root / "old-venv"
    path, args = str(gone / "bin" / "python"), f"-S {gone / 'lfs_agent' / '_launch.py'}"
    world.git("config", "--global", f"lfs.customtransfer.{TRANSFER}.path", path)
    world.git("config", "--global", f"lfs.customtransfer.{TRANSFER}.args", git_args(path, args))
    return path


def test_a_stale_agent_path(tmp_path: Path, seaweed_acl_s3: S3Bucket) -> None:
    world, repo = registry(tmp_path, seaweed_acl_s3)
    (repo / "a.bin").write_bytes(os.urandom(1000))
    world.git("add", "-A", cwd=repo)
    world.git("commit", "-q", "-m", "a", cwd=repo)
    remote = world.bare_remote()
    world.git("remote", "add", "origin", str(remote), cwd=repo)
    world.git("push", "-q", "origin", "main", cwd=repo)
    clone = world.root / "clone"
    world.git("clone", "-q", str(remote), str(clone), env={"GIT_LFS_SKIP_SMUDGE": "1"})
    path = stale_install(world)

    pull = world.git("lfs", "pull", cwd=clone, check=False)
    assert pull.returncode != 0
    assert "lfs-s3-agent is gone" in pull.stderr and "lfs-s3-agent doctor" in pull.stderr
    assert "EOF" not in pull.stderr

    shown = world.run(*AGENT, "config", cwd=clone)
    assert f"MISSING: {path} does not exist or cannot be run" in shown.stdout

    code, lines = doctor(world, clone)
    assert code == 1
    [problem] = lines_of(lines, "problem")
    assert problem.startswith(f"problem  agent: git config (global) runs a missing agent: {path}")


def test_an_agent_that_runs_keeps_its_exit_status(tmp_path: Path, seaweed_acl_s3: S3Bucket) -> None:
    """The fallback answers only for a missing agent: a real one's failure is its own."""
    world, repo = registry(tmp_path, seaweed_acl_s3)
    (repo / "a.bin").write_bytes(os.urandom(1000))
    world.git("add", "-A", cwd=repo)
    world.git("commit", "-q", "-m", "a", cwd=repo)
    world.git("config", "lfs-s3.part-size", "1KiB", cwd=repo)  # invalid: the agent refuses
    push = world.git("push", str(world.bare_remote()), "main", cwd=repo, check=False)
    assert push.returncode != 0
    assert "part-size" in push.stderr and "lfs-s3-agent is gone" not in push.stderr


def test_a_bucket_a_server_created_on_push_is_reported(
    tmp_path: Path, seaweed_acl_s3: S3Bucket
) -> None:
    """Finding 7: SeaweedFS creates a missing bucket for an admin's upload; doctor says so."""
    world = GitWorld(tmp_path, seaweed_acl_s3)  # the admin key
    repo = world.new_registry()
    typo = f"{seaweed_acl_s3.name}-typo"
    (repo / ".lfsconfig").write_text(f"[lfs]\n\turl = https://lfs-s3.invalid/{typo}/registry\n")
    (repo / "a.bin").write_bytes(os.urandom(1000))
    world.git("add", "-A", cwd=repo)
    world.git("commit", "-q", "-m", "a", cwd=repo)
    world.git("push", "-q", str(world.bare_remote()), "main", cwd=repo)  # "succeeds"
    code, lines = doctor(world, repo)
    assert code == 0
    assert any(f"'{typo}' was created" in x for x in lines_of(lines, "warning"))


def test_adding_a_check_is_adding_a_function(tmp_path: Path) -> None:
    def always_wrong(ctx: Context) -> list[Result]:
        return [Result("custom", "problem", f"looked in {ctx.cwd}", "do something")]

    results = run(Context(cwd=tmp_path, environ=dict(os.environ)), [always_wrong])
    lines, status = render(results)
    assert lines == [f"problem  custom: looked in {tmp_path}. Fix: do something", "1 problem"]
    assert status == 1


def test_an_untrusted_committed_endpoint(tmp_path: Path, seaweed_acl_s3: S3Bucket) -> None:
    world, repo = registry(tmp_path, seaweed_acl_s3)
    (repo / ".lfs-s3config").write_text("[lfs-s3]\n\tendpoint = http://127.0.0.1:9\n")
    env = world.env(AWS_ENDPOINT_URL="", AWS_ENDPOINT_URL_S3="")
    code, lines = doctor(world, repo, env=env)
    assert code == 1
    (problem,) = [x for x in lines_of(lines, "problem") if "endpoint:" in x]
    assert "http://127.0.0.1:9" in problem and "'lfs-s3-agent trust http://127.0.0.1:9'" in problem
    world.run(*AGENT, "trust", cwd=repo, env=env)
    _, lines = doctor(world, repo, env=env)
    assert any(
        x.startswith("ok       endpoint: http://127.0.0.1:9 from .lfs-s3config (trusted")
        for x in lines
    ), lines


def test_the_registry_doctor_probes_conditional_writes(
    tmp_path: Path, seaweed_acl_s3: S3Bucket
) -> None:
    world, repo = registry(tmp_path, seaweed_acl_s3)
    proc = world.run(sys.executable, "-m", "registry", "doctor", "--write", cwd=repo, check=False)
    assert proc.returncode == 0, proc.stdout
    assert any(
        line.startswith("ok       conditional writes: the store honours If-Match")
        for line in proc.stdout.splitlines()
    ), proc.stdout
    assert store_state(seaweed_acl_s3) == ([], [])  # the scratch key is gone
