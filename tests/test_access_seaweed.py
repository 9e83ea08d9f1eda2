"""Access control, end to end: the real git-lfs and agent against SeaweedFS with S3 identities.

SeaweedFS here knows an admin key (the fixtures' own), a read-write key and a read-only key
(`tests.gitlfs.READ_WRITE`, `READ_ONLY`). Each fault is checked for what the user sees, what is
left in the bucket (no object under a final key, no open multipart upload), in `.git/lfs`, and
that a retry with the right credentials heals everything.

Expired tokens and a bucket in another region are not reproducible on SeaweedFS (it answers an
unknown session token with InvalidAccessKeyId, and has no regions) nor on moto:
tests/test_access_messages.py checks their messages on AWS's own responses. A missing bucket
runs on moto (SeaweedFS refuses a non-admin's write into one as AccessDenied).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from devtools.s3servers import S3Bucket, S3Identity
from tests.gitlfs import READ_ONLY, READ_WRITE, GitWorld, agents_under, lfs_objects, oid_of

pytestmark = pytest.mark.e2e

SMALL_PARTS = {"LFS_S3_PART_SIZE": "5MiB", "LFS_S3_MULTIPART_THRESHOLD": "5MiB"}
VERSION = "YOLOX-l/base/1.2"
FILES = {
    "YOLOX-l/README.md": b"# YOLOX-l\n",
    f"{VERSION}/config.yaml": b"depth: 1.0\n",
    f"{VERSION}/log.txt": b"epoch 1\n",
    f"{VERSION}/checkpoint.bin": os.urandom(300_000),
    f"{VERSION}/big.bin": os.urandom(6 * 1024 * 1024 + 5),  # multipart with 5 MiB parts
}
LFS_FILES = {n: d for n, d in FILES.items() if n.endswith(".bin")}


def key_env(bucket: S3Bucket, identity: S3Identity, **changes: str) -> dict[str, str]:
    """The AWS_* variables that make the agent use `identity` (with `changes` on top)."""
    return {**bucket.server.as_identity(identity).env(), **changes}


def store_state(bucket: S3Bucket) -> tuple[list[str], list[str]]:
    """(keys, keys of open multipart uploads), seen with the admin key."""
    client = bucket.server.client()
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket.name)
    keys = sorted(o["Key"] for page in pages for o in page.get("Contents", []))
    uploads = client.list_multipart_uploads(Bucket=bucket.name).get("Uploads", [])
    return keys, sorted(u["Key"] for u in uploads)


def object_key(oid: str) -> str:
    return f"registry/objects/{oid[:2]}/{oid[2:4]}/{oid}"


def write(repo: Path, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def tmp_leftovers(repo: Path) -> list[Path]:
    """The agent's temp files left in .git/lfs/tmp (git-lfs keeps files of its own there)."""
    return sorted((repo / ".git" / "lfs" / "tmp").glob("lfs-s3-*"))


def registry(tmp_path: Path, bucket: S3Bucket, **env: str) -> tuple[GitWorld, Path, Path]:
    """A registry repository with FILES committed, its agent using the read-write key, and an
    empty bare remote `origin` (nothing pushed)."""
    world = GitWorld(tmp_path, bucket, extra_env={**SMALL_PARTS, **key_env(bucket, READ_WRITE)})
    repo = world.new_registry()
    write(repo, FILES)
    world.git("add", "-A", cwd=repo)
    world.git("commit", "-q", "-m", "YOLOX-l base 1.2", cwd=repo)
    remote = world.bare_remote()
    world.git("remote", "add", "origin", str(remote), cwd=repo)
    return world, repo, remote


def test_read_only_key_pulls_and_resolves_but_cannot_push(
    tmp_path: Path, seaweed_acl_s3: S3Bucket
) -> None:
    bucket = seaweed_acl_s3
    world, repo, remote = registry(tmp_path, bucket)
    world.git("push", "-q", "origin", "main", cwd=repo)
    pushed, _ = store_state(bucket)
    assert pushed == sorted(object_key(oid_of(d)) for d in LFS_FILES.values())
    read_only = key_env(bucket, READ_ONLY)

    # Reading works: resolve (which pulls the version's files), then pull the rest.
    clone = world.root / "clone"
    world.git("clone", "-q", str(remote), str(clone), env={"GIT_LFS_SKIP_SMUDGE": "1"})
    world.agent("install", cwd=clone)
    resolved = world.run(
        sys.executable, "-m", "registry", "resolve", VERSION, "--json",
        cwd=clone, env=world.env(**read_only),
    )  # fmt: skip
    assert str(clone / VERSION / "big.bin") in resolved.stdout
    world.git("lfs", "pull", cwd=clone, env=read_only)
    for name, data in FILES.items():
        assert (clone / name).read_bytes() == data, name

    # Writing is refused, naming the location and the credentials to check; nothing is left.
    new = {f"{VERSION}/extra.bin": os.urandom(100_000), f"{VERSION}/big2.bin": os.urandom(6 << 20)}
    write(clone, new)
    world.git("add", "-A", cwd=clone)
    world.git("commit", "-q", "-m", "more", cwd=clone)
    before_ref = world.git("rev-parse", "main", cwd=remote).stdout
    push = world.git("push", "origin", "main", cwd=clone, env=read_only, check=False)
    assert push.returncode != 0
    for data in new.values():
        assert f'error transferring "{oid_of(data)}"' in push.stderr
    assert (
        f"access denied: this key cannot write to s3://{bucket.name}/registry (AccessDenied)"
        in push.stderr
    )
    assert "AWS_PROFILE" in push.stderr and "AWS_ACCESS_KEY_ID" in push.stderr
    assert store_state(bucket) == (pushed, [])
    assert world.git("rev-parse", "main", cwd=remote).stdout == before_ref
    assert {oid_of(d) for d in new.values()} <= lfs_objects(clone / ".git")
    assert "Git LFS fsck OK" in world.git("lfs", "fsck", cwd=clone).stdout
    assert tmp_leftovers(clone) == []

    # The same push with the read-write key heals it.
    world.git("push", "-q", "origin", "main", cwd=clone, env=key_env(bucket, READ_WRITE))
    keys, uploads = store_state(bucket)
    assert keys == sorted(pushed + [object_key(oid_of(d)) for d in new.values()])
    assert uploads == []
    for data in new.values():
        assert world.stored(oid_of(data)) == data
    assert agents_under(tmp_path) == []


BAD_KEYS = {
    "wrong-secret": (
        {"AWS_SECRET_ACCESS_KEY": "not-the-secret"},
        ["wrong secret key (SignatureDoesNotMatch)", "AWS_SECRET_ACCESS_KEY"],
    ),
    "unknown-key": (
        {"AWS_ACCESS_KEY_ID": "no-such-key"},
        ["unknown access key (InvalidAccessKeyId)", "AWS_ACCESS_KEY_ID"],
    ),
    # SeaweedFS answers a session token it did not issue as an unknown key.
    "invalid-token": (
        {"AWS_SESSION_TOKEN": "expired-or-forged-token"},
        ["unknown access key (InvalidAccessKeyId)", "AWS_SESSION_TOKEN", "aws sso login"],
    ),
}


@pytest.mark.parametrize("fault", sorted(BAD_KEYS))
def test_bad_credentials_fail_push_and_pull_with_their_own_message(
    tmp_path: Path, seaweed_acl_s3: S3Bucket, fault: str
) -> None:
    bucket = seaweed_acl_s3
    changes, texts = BAD_KEYS[fault]
    bad = key_env(bucket, READ_WRITE, **changes)
    world, repo, remote = registry(tmp_path, bucket)

    push = world.git("push", "origin", "main", cwd=repo, env=bad, check=False)
    assert push.returncode != 0
    for text in [*texts, f"s3://{bucket.name}/registry/objects/"]:
        assert text in push.stderr, (text, push.stderr)
    assert store_state(bucket) == ([], [])
    assert world.git("for-each-ref", cwd=remote).stdout == ""

    world.git("push", "-q", "origin", "main", cwd=repo)  # the right key heals it
    assert store_state(bucket)[1] == []
    assert len(store_state(bucket)[0]) == len(LFS_FILES)

    clone = world.root / "clone"
    world.git("clone", "-q", str(remote), str(clone), env={"GIT_LFS_SKIP_SMUDGE": "1"})
    world.agent("install", cwd=clone)
    pull = world.git("lfs", "pull", cwd=clone, env=bad, check=False)
    assert pull.returncode != 0
    for text in texts:
        assert text in pull.stderr, (text, pull.stderr)
    assert lfs_objects(clone / ".git") == set()
    assert tmp_leftovers(clone) == []

    world.git("lfs", "pull", cwd=clone)
    for name, data in FILES.items():
        assert (clone / name).read_bytes() == data, name
    assert agents_under(tmp_path) == []


def test_missing_bucket_fails_naming_the_bucket_and_the_fix(
    tmp_path: Path, moto_s3: S3Bucket
) -> None:
    # On moto: SeaweedFS answers a write into a missing bucket with AccessDenied for any key
    # but an admin's (and creates the bucket for an admin), where AWS says NoSuchBucket.
    real = moto_s3
    missing = S3Bucket(real.server, f"{real.name}-gone")
    world, repo, remote = registry(tmp_path, missing)

    push = world.git("push", "origin", "main", cwd=repo, check=False)
    assert push.returncode != 0
    assert f"bucket '{missing.name}' does not exist at {real.server.endpoint}" in push.stderr
    assert "git config lfs-s3.bucket NAME" in push.stderr
    buckets = [b["Name"] for b in real.server.client().list_buckets()["Buckets"]]
    assert missing.name not in buckets
    assert world.git("for-each-ref", cwd=remote).stdout == ""

    # The fix the message names: the right bucket for this clone.
    world.git("config", "lfs-s3.bucket", real.name, cwd=repo)
    world.git("push", "-q", "origin", "main", cwd=repo)
    assert store_state(real) == (sorted(object_key(oid_of(d)) for d in LFS_FILES.values()), [])

    clone = world.root / "clone"
    world.git("clone", "-q", str(remote), str(clone), env={"GIT_LFS_SKIP_SMUDGE": "1"})
    world.agent("install", cwd=clone)
    pull = world.git("lfs", "pull", cwd=clone, check=False)
    assert pull.returncode != 0
    assert f"bucket '{missing.name}' does not exist" in pull.stderr
    assert lfs_objects(clone / ".git") == set()
    assert tmp_leftovers(clone) == []
    world.git("config", "lfs-s3.bucket", real.name, cwd=clone)
    world.git("lfs", "pull", cwd=clone)
    for name, data in FILES.items():
        assert (clone / name).read_bytes() == data, name
    assert agents_under(tmp_path) == []
