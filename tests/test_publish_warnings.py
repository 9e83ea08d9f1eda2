"""`publish` speaks where it used to be silent (issue 13, finding 4): a version added but not
committed is named, and a commit no remote has is refused unless --allow-unpushed. The real
git, git-lfs and agent, moto on 127.0.0.1."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from devtools.s3servers import S3Bucket
from tests.gitlfs import GitWorld

pytestmark = pytest.mark.e2e

VERSION = "YOLOX-l/base/1.2"


def write_version(repo: Path, path: str, tag: str) -> None:
    folder = repo / path
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(f"tag: {tag}\n")
    (folder / "log.txt").write_text(f"trained {tag}\n")
    (folder / "checkpoint.bin").write_bytes(f"weights {tag}".encode() * 100)


def publish(world: GitWorld, repo: Path, *args: str) -> tuple[int, str, str]:
    proc = world.run(
        sys.executable, "-m", "registry", "publish", "--quiet", *args, cwd=repo, check=False
    )
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture
def pushed(tmp_path: Path, moto_s3: S3Bucket) -> tuple[GitWorld, Path]:
    """A registry with one committed version, pushed to a bare `origin`."""
    world = GitWorld(tmp_path, moto_s3)
    repo = world.new_registry()
    (repo / "YOLOX-l" / "base").mkdir(parents=True)
    (repo / "YOLOX-l" / "base" / "README.md").write_text("# YOLOX-l base\n")
    write_version(repo, VERSION, "1.2")
    world.git("add", "-A", cwd=repo)
    world.git("commit", "-q", "-m", "1.2", cwd=repo)
    world.git("remote", "add", "origin", str(world.bare_remote()), cwd=repo)
    world.git("push", "-q", "origin", "main", cwd=repo)
    return world, repo


def test_an_uncommitted_version_is_named(pushed: tuple[GitWorld, Path]) -> None:
    world, repo = pushed
    write_version(repo, "YOLOX-l/base/1.3", "1.3")
    world.git("add", "-A", cwd=repo)  # staged, not committed
    code, stdout, stderr = publish(world, repo)
    assert code == 0, stderr
    assert stdout == f"published {VERSION}\n"
    assert (
        "warning: YOLOX-l/base/1.3 is in the work tree but not committed at HEAD, so it is not "
        "published: commit it ('git add YOLOX-l/base/1.3 && git commit'), push, and publish again"
    ) in stderr
    assert "1 published, 0 unchanged, " in stderr


def test_an_unpushed_commit_is_refused_then_allowed(pushed: tuple[GitWorld, Path]) -> None:
    world, repo = pushed
    write_version(repo, "YOLOX-l/base/1.3", "1.3")
    world.git("add", "-A", cwd=repo)
    world.git("commit", "-q", "-m", "1.3", cwd=repo)  # not pushed: git push runs the upload
    head = world.git("rev-parse", "HEAD", cwd=repo).stdout.strip()
    before = world.keys()

    code, stdout, stderr = publish(world, repo)
    assert code == 1
    assert (
        f"HEAD ({head[:12]}) is on no remote-tracking branch: its manifests would name a commit "
        "the team cannot check out. Push it first ('git push'), then publish; or pass "
        "--allow-unpushed"
    ) in stderr
    assert world.keys() == before  # nothing was written

    code, stdout, stderr = publish(world, repo, "--allow-unpushed")
    assert code == 0, stderr
    assert set(stdout.splitlines()) == {f"published {VERSION}", "published YOLOX-l/base/1.3"}


def test_a_repository_without_a_remote_is_refused(tmp_path: Path, moto_s3: S3Bucket) -> None:
    world = GitWorld(tmp_path, moto_s3)
    repo = world.new_registry()
    write_version(repo, VERSION, "1.2")
    world.git("add", "-A", cwd=repo)
    world.git("commit", "-q", "-m", "1.2", cwd=repo)
    code, _, stderr = publish(world, repo)
    assert code == 1
    assert "is on no remote-tracking branch" in stderr
    assert world.keys() == []
