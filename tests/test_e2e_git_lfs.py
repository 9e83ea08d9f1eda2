"""End to end: the real git-lfs runs our agent against a real S3 server on 127.0.0.1.

Most cases run on moto's server; the main round trip also runs on SeaweedFS (with auth on).
Multipart thresholds are lowered through LFS_S3_* so that a 12 MiB file is multipart.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.s3servers import S3Bucket
from tests.gitlfs import GitWorld, agents_under, lfs_objects, oid_of

pytestmark = pytest.mark.e2e

SMALL_PARTS = {"LFS_S3_PART_SIZE": "5MiB", "LFS_S3_MULTIPART_THRESHOLD": "5MiB"}
NAMES = {
    "plain.bin": os.urandom(200_000),
    "with space é ü.bin": os.urandom(300_000),
    "models/YOLOX-l/base/1.2/checkpoint.bin": os.urandom(12 * 1024 * 1024 + 17),
    "models/YOLOX-l/base/1.2/config.bin": os.urandom(50_000),
    "empty.bin": b"",
}


def populate(world: GitWorld, repo: Path, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    world.git("add", "-A", cwd=repo)
    world.git("commit", "-q", "-m", "add models", cwd=repo)


def pushed_world(
    root: Path, bucket: S3Bucket, remote_name: str = "origin"
) -> tuple[GitWorld, Path, Path]:
    world = GitWorld(root, bucket, extra_env=dict(SMALL_PARTS))
    repo = world.new_registry()
    remote = world.bare_remote()
    populate(world, repo, NAMES)
    world.git("remote", "add", remote_name, str(remote), cwd=repo)
    world.git("push", "-q", remote_name, "main", cwd=repo)
    return world, repo, remote


def assert_same_files(a: Path, b: Path, names: dict[str, bytes]) -> None:
    for name, data in names.items():
        assert (b / name).read_bytes() == data, name
        assert (a / name).read_bytes() == data, name


@pytest.fixture
def moto_world(tmp_path: Path, moto_s3: S3Bucket) -> Iterator[tuple[GitWorld, Path, Path]]:
    world, repo, remote = pushed_world(tmp_path, moto_s3)
    yield world, repo, remote
    assert agents_under(tmp_path) == []


def test_push_stores_objects_at_documented_keys(moto_world: tuple[GitWorld, Path, Path]) -> None:
    world, _, _ = moto_world
    expected = {
        f"registry/objects/{o[0:2]}/{o[2:4]}/{o}": data
        for data in NAMES.values()
        if data
        for o in [oid_of(data)]
    }
    assert world.keys() == sorted(expected)
    for key, data in expected.items():
        assert world.stored(key.rsplit("/", 1)[1]) == data
    assert world.open_uploads() == []


def test_clone_skip_smudge_install_pull(moto_world: tuple[GitWorld, Path, Path]) -> None:
    world, repo, remote = moto_world
    clone = world.root / "clone"
    world.git("clone", "-q", str(remote), str(clone), env={"GIT_LFS_SKIP_SMUDGE": "1"})
    assert (clone / "plain.bin").read_bytes().startswith(b"version https://git-lfs")
    world.agent("install", cwd=clone)
    world.git("lfs", "pull", cwd=clone)
    assert_same_files(repo, clone, NAMES)
    assert "Git LFS fsck OK" in world.git("lfs", "fsck", cwd=clone).stdout


def test_global_install_plain_clone(moto_world: tuple[GitWorld, Path, Path]) -> None:
    world, repo, remote = moto_world
    world.agent("install", "--global")
    again = world.agent("install", "--global")
    assert "no change" in again.stdout
    clone = world.root / "plain-clone"
    world.git("clone", "-q", str(remote), str(clone))
    assert_same_files(repo, clone, NAMES)
    assert "Git LFS fsck OK" in world.git("lfs", "fsck", cwd=clone).stdout
    world.agent("uninstall", "--global")
    config = world.git("config", "--global", "--list").stdout
    assert "lfs-s3" not in config


def test_pull_include_fetches_only_the_subset(moto_world: tuple[GitWorld, Path, Path]) -> None:
    world, _, remote = moto_world
    clone = world.root / "subset"
    world.git("clone", "-q", str(remote), str(clone), env={"GIT_LFS_SKIP_SMUDGE": "1"})
    world.agent("install", cwd=clone)
    world.git("lfs", "pull", "--include", "models/YOLOX-l/base/1.2/*", cwd=clone)
    got = lfs_objects(clone / ".git")
    wanted = {oid_of(NAMES[n]) for n in NAMES if n.startswith("models/")}
    assert got == wanted
    assert (clone / "plain.bin").read_bytes().startswith(b"version https://git-lfs")


def test_pull_from_subdirectory_other_remote_and_worktree(
    tmp_path: Path, moto_s3: S3Bucket
) -> None:
    world, repo, remote = pushed_world(tmp_path, moto_s3, remote_name="registry")
    clone = world.root / "c"
    world.git(
        "clone", "-q", "-o", "upstream", str(remote), str(clone), env={"GIT_LFS_SKIP_SMUDGE": "1"}
    )
    world.agent("install", cwd=clone)
    world.git("lfs", "pull", "upstream", cwd=clone / "models" / "YOLOX-l")
    assert_same_files(repo, clone, NAMES)

    # A linked worktree of a fresh skip-smudge clone: objects land in the common dir.
    fresh = world.root / "fresh"
    world.git("clone", "-q", str(remote), str(fresh), env={"GIT_LFS_SKIP_SMUDGE": "1"})
    world.agent("install", cwd=fresh)
    linked = world.root / "linked"
    world.git(
        "worktree",
        "add",
        "-q",
        str(linked),
        "-b",
        "side",
        cwd=fresh,
        env={"GIT_LFS_SKIP_SMUDGE": "1"},
    )
    world.git("lfs", "pull", cwd=linked)
    assert_same_files(repo, linked, NAMES)
    assert lfs_objects(fresh / ".git") == {oid_of(d) for d in NAMES.values() if d}
    assert agents_under(tmp_path) == []


def test_push_all_twice_stores_nothing_new(moto_world: tuple[GitWorld, Path, Path]) -> None:
    world, repo, _ = moto_world
    client = world.bucket.server.client()
    before = {
        o["Key"]: o["LastModified"]
        for o in client.list_objects_v2(Bucket=world.bucket.name)["Contents"]
    }
    log = world.root / "agent.log"
    first = world.git(
        "lfs", "push", "--all", "origin", cwd=repo, env={"LFS_S3_AGENT_LOG": str(log)}
    )
    second = world.git(
        "lfs", "push", "--all", "origin", cwd=repo, env={"LFS_S3_AGENT_LOG": str(log)}
    )
    assert first.returncode == second.returncode == 0
    after = {
        o["Key"]: o["LastModified"]
        for o in client.list_objects_v2(Bucket=world.bucket.name)["Contents"]
    }
    assert after == before
    text = log.read_text()
    assert text.count("already stored") >= 2 * len([d for d in NAMES.values() if d])
    assert " uploaded " not in text


@pytest.mark.parametrize("transfers", ["1", "8"])
def test_concurrent_transfers(tmp_path: Path, moto_s3: S3Bucket, transfers: str) -> None:
    world = GitWorld(tmp_path, moto_s3, extra_env=dict(SMALL_PARTS))
    repo = world.new_registry()
    world.git("config", "lfs.concurrenttransfers", transfers, cwd=repo)
    files = {f"m/{i}.bin": os.urandom(30_000 + i) for i in range(12)}
    populate(world, repo, files)
    remote = world.bare_remote()
    world.git("remote", "add", "origin", str(remote), cwd=repo)
    world.git("push", "-q", "origin", "main", cwd=repo)
    clone = world.root / "clone"
    world.git(
        "clone",
        "-q",
        "-c",
        f"lfs.concurrenttransfers={transfers}",
        str(remote),
        str(clone),
        env={"GIT_LFS_SKIP_SMUDGE": "1"},
    )
    world.agent("install", cwd=clone)
    world.git("lfs", "pull", cwd=clone)
    assert_same_files(repo, clone, files)
    assert agents_under(tmp_path) == []


def test_missing_object_fails_naming_its_oid(moto_world: tuple[GitWorld, Path, Path]) -> None:
    world, _, remote = moto_world
    gone = oid_of(NAMES["plain.bin"])
    world.bucket.server.client().delete_object(
        Bucket=world.bucket.name, Key=f"registry/objects/{gone[:2]}/{gone[2:4]}/{gone}"
    )
    clone = world.root / "clone"
    world.git("clone", "-q", str(remote), str(clone), env={"GIT_LFS_SKIP_SMUDGE": "1"})
    world.agent("install", cwd=clone)
    pull = world.git("lfs", "pull", cwd=clone, check=False)
    assert pull.returncode != 0
    assert gone in pull.stderr
    assert "[404]" in pull.stderr and "not in the store" in pull.stderr
    others = {oid_of(d) for n, d in NAMES.items() if d and n != "plain.bin"}
    assert lfs_objects(clone / ".git") == others


def test_corrupt_object_never_reaches_lfs_objects(
    moto_world: tuple[GitWorld, Path, Path],
) -> None:
    world, _, remote = moto_world
    data = NAMES["with space é ü.bin"]
    oid = oid_of(data)
    bad = bytearray(data)
    bad[1000] ^= 0xFF
    world.bucket.server.client().put_object(
        Bucket=world.bucket.name,
        Key=f"registry/objects/{oid[:2]}/{oid[2:4]}/{oid}",
        Body=bytes(bad),
    )
    clone = world.root / "clone"
    world.git("clone", "-q", str(remote), str(clone), env={"GIT_LFS_SKIP_SMUDGE": "1"})
    world.agent("install", cwd=clone)
    pull = world.git("lfs", "pull", cwd=clone, check=False)
    assert pull.returncode != 0
    assert oid in pull.stderr
    assert oid not in lfs_objects(clone / ".git")
    assert "[422]" in pull.stderr and "in the store is corrupt" in pull.stderr
    assert list((clone / ".git" / "lfs" / "tmp").glob("lfs-s3-*")) == []


def test_fetch_all_gets_every_version(moto_world: tuple[GitWorld, Path, Path]) -> None:
    world, repo, remote = moto_world
    (repo / "plain.bin").write_bytes(b"second version" * 1000)
    world.git("commit", "-q", "-am", "v2", cwd=repo)
    world.git("push", "-q", "origin", "main", cwd=repo)
    clone = world.root / "clone"
    world.git("clone", "-q", str(remote), str(clone), env={"GIT_LFS_SKIP_SMUDGE": "1"})
    world.agent("install", cwd=clone)
    world.git("lfs", "fetch", "--all", cwd=clone)
    every = {oid_of(d) for d in NAMES.values() if d} | {oid_of(b"second version" * 1000)}
    assert lfs_objects(clone / ".git") == every


def test_missing_bucket_setting_fails_at_init_with_the_fix(
    tmp_path: Path, moto_s3: S3Bucket
) -> None:
    world = GitWorld(tmp_path, moto_s3)
    repo = world.new_registry()
    (repo / ".lfsconfig").unlink()
    world.git("config", "lfs.url", "https://lfs-s3.invalid/", cwd=repo)
    populate(world, repo, {"a.bin": b"payload" * 100})
    remote = world.bare_remote()
    world.git("remote", "add", "origin", str(remote), cwd=repo)
    push = world.git("push", "origin", "main", cwd=repo, check=False)
    assert push.returncode != 0
    assert "names no bucket" in push.stderr
    assert agents_under(tmp_path) == []


def test_seaweedfs_round_trip(tmp_path: Path, seaweed_s3: S3Bucket) -> None:
    world, repo, remote = pushed_world(tmp_path, seaweed_s3)
    for data in NAMES.values():
        if data:
            assert world.stored(oid_of(data)) == data
    assert world.open_uploads() == []
    clone = world.root / "clone"
    world.agent("install", "--global")
    world.git("clone", "-q", str(remote), str(clone))
    assert_same_files(repo, clone, NAMES)
    assert "Git LFS fsck OK" in world.git("lfs", "fsck", cwd=clone).stdout
    assert agents_under(tmp_path) == []
