"""Hostile input: the agent, the registry and a cloned repository's files can be lied to, and
each lie is refused with an error reply or a clean exit, with nothing written where it should
not be.

- requests to the real agent process (bad oids, sizes, upload paths, lines, events): the whole
  test directory (repository, HOME, TMPDIR) is snapshotted before and compared after;
- a cloned repository's `.lfsconfig` and `.lfs-s3config`, through the real git-lfs;
- registry references and a published manifest that point outside where they may.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

import registry
from devtools.s3servers import LOOPBACK, S3Bucket
from registry.errors import InvalidReference, RegistryError
from tests.faultproxy import FaultProxy
from tests.gitlfs import AGENT, GitWorld, agents_under, lfs_objects, oid_of, tree_snapshot

pytestmark = pytest.mark.e2e

GOOD_OID = "a" * 64


def line(**msg: Any) -> str:
    return json.dumps(msg) + "\n"


def push_to_new_remote(world: GitWorld, repo: Path, message: str) -> Path:
    """Commit everything in `repo`, push it to a new bare remote `origin`; that remote."""
    world.git("add", "-A", cwd=repo)
    world.git("commit", "-q", "-m", message, cwd=repo)
    remote = world.bare_remote()
    world.git("remote", "add", "origin", str(remote), cwd=repo)
    world.git("push", "-q", "origin", "main", cwd=repo)
    return remote


INIT_UPLOAD = line(event="init", operation="upload", remote="origin", concurrent=True)
TERMINATE = line(event="terminate")


class Run:
    """One agent process fed `stdin` to the end: its exit status, replies and log."""

    def __init__(self, world: GitWorld, repo: Path, stdin: str, tmpdir: Path) -> None:
        start = time.monotonic()
        proc = subprocess.run(
            [*AGENT, "serve"],
            cwd=repo,
            env=world.env(TMPDIR=str(tmpdir)),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        self.seconds = time.monotonic() - start
        self.status = proc.returncode
        self.replies = [json.loads(text) for text in proc.stdout.splitlines()]
        self.stderr = proc.stderr


@pytest.fixture
def world(tmp_path: Path, moto_s3: S3Bucket) -> GitWorld:
    return GitWorld(tmp_path, moto_s3)


def test_bad_requests_get_error_replies_and_nothing_is_read_sent_or_written(
    world: GitWorld,
) -> None:
    repo = world.new_registry()
    tmpdir = world.root / "tmpdir"
    tmpdir.mkdir()
    objects = repo / ".git" / "lfs" / "objects"
    secret = b"aws_secret_access_key = not-for-the-bucket\n"
    oid = oid_of(secret)
    (world.root / "secret.txt").write_bytes(secret)
    (repo / ".git" / oid).write_bytes(secret)  # a file named like an object, outside the store
    before = tree_snapshot(world.root)

    requests = [
        (line(event="download", oid="../../etc/passwd", size=3), 2, "invalid oid"),
        (line(event="download", oid=GOOD_OID.upper(), size=3), 2, "64 lowercase hex"),
        (line(event="download", oid="abc", size=3), 2, "invalid oid 'abc'"),
        (line(event="download", oid=GOOD_OID, size=-1), 2, "invalid size -1"),
        (line(event="download", oid=GOOD_OID, size=10**30), 2, "invalid size 1000"),
        (line(event="download", oid=GOOD_OID, size=2**63), 2, "invalid size"),
        (line(event="download", oid=GOOD_OID, size="3"), 2, "invalid size '3'"),
        (line(event="download", oid=GOOD_OID, size=1.5), 2, "invalid size 1.5"),
        (line(event="upload", oid=oid, size=len(secret), path=str(world.root / "secret.txt")),
         500, "refusing to upload"),
        (line(event="upload", oid=oid, size=len(secret),
              path=f"{objects}/{oid[:2]}/{oid[2:4]}/../../../../{oid}"),
         500, "refusing to upload"),
        (line(event="upload", oid=oid, size=len(secret), path=f"{oid[:2]}/{oid[2:4]}/{oid}"),
         500, "refusing to upload"),
        (line(event="upload", oid="../" + oid, size=1, path="/etc/passwd"), 2, "invalid oid"),
    ]  # fmt: skip
    run = Run(world, repo, INIT_UPLOAD + "".join(r for r, _, _ in requests) + TERMINATE, tmpdir)

    assert run.status == 0, run.stderr
    assert run.replies[0] == {}
    assert len(run.replies) == 1 + len(requests)
    for reply, (request, code, text) in zip(run.replies[1:], requests, strict=True):
        assert reply["event"] == "complete"
        assert reply["oid"] == json.loads(request)["oid"]
        assert reply["error"]["code"] == code, reply
        assert text in reply["error"]["message"], (text, reply)
    assert "Traceback" not in run.stderr
    assert world.keys() == [] and world.open_uploads() == []
    assert tree_snapshot(world.root) == before
    assert not objects.exists() or lfs_objects(repo / ".git") == set()


FATAL = {
    "not-json": ("this is not json\n", "not a JSON line"),
    "not-an-object": ("[1, 2, 3]\n", "expected a JSON object"),
    "unknown-event": (line(event="delete", oid=GOOD_OID, path="/etc/passwd"), "unknown event"),
    "oversized-line": ('{"event":"download","oid":"' + "a" * (8 << 20), "longer than 65536"),
    "oversized-with-newline": (
        line(event="upload", oid=GOOD_OID, size=1, path="/" + "p" * 100_000),
        "longer than 65536",
    ),
    "deep-nesting": ("[" * 30_000 + "]" * 30_000 + "\n", "not a JSON line"),
}


@pytest.mark.parametrize("case", sorted(FATAL))
def test_malformed_lines_end_the_agent_cleanly(world: GitWorld, case: str) -> None:
    repo = world.new_registry()
    tmpdir = world.root / "tmpdir"
    tmpdir.mkdir()
    before = tree_snapshot(world.root)
    bad, text = FATAL[case]

    run = Run(world, repo, INIT_UPLOAD + bad + TERMINATE, tmpdir)

    assert run.status == 2, run.stderr
    assert run.replies == [{}]  # init only: nothing answers the bad line
    assert f"protocol error: {text}" in run.stderr or text in run.stderr, run.stderr
    assert "Traceback" not in run.stderr
    assert run.seconds < 30
    assert tree_snapshot(world.root) == before
    assert world.keys() == []


HOSTILE_LFSCONFIG = """\
[lfs]
\turl = "{url}"
\tstandalonetransferagent = evil
[lfs "customtransfer.evil"]
\tpath = touch {marker}-evil
[lfs "customtransfer.lfs-s3"]
\tpath = touch {marker}-override
[lfs "https://lfs-s3.invalid/"]
\tstandalonetransferagent = evil
[lfs-s3]
\tendpoint = http://127.0.0.1:9
\tbucket = someone-elses-bucket
[core]
\tsshCommand = touch {marker}-ssh
[include]
\tpath = {include}
"""


def test_cloned_lfsconfig_cannot_run_programs_redirect_or_pick_credentials(
    world: GitWorld,
) -> None:
    marker = world.root / "pwned"
    include = world.root / "evil.gitconfig"
    # Followed, this include would name a profile, and the agent would refuse to start.
    include.write_text("[lfs-s3]\n\tprofile = attacker\n\tbucket = attackers-bucket\n")
    upstream = world.new_registry("upstream")
    (upstream / ".lfsconfig").write_text(
        HOSTILE_LFSCONFIG.format(url=world.lfs_url, marker=marker, include=include)
    )
    (upstream / ".lfs-s3config").write_text(
        f"[lfs-s3]\n\tregion = us-east-1\n[include]\n\tpath = {include}\n"
    )
    data = os.urandom(70_000)
    (upstream / "model.bin").write_bytes(data)
    remote = push_to_new_remote(world, upstream, "hostile config")

    world.agent("install", "--global")
    clone = world.root / "clone"
    cloned = world.git("clone", "-q", str(remote), str(clone))

    assert (clone / "model.bin").read_bytes() == data
    assert sorted(world.root.glob("pwned*")) == []
    assert "unsafe '.lfsconfig' keys were ignored" in cloned.stderr
    assert world.keys() == [
        f"registry/objects/{oid_of(data)[:2]}/{oid_of(data)[2:4]}/{oid_of(data)}"
    ]
    assert agents_under(world.root) == []


def test_committed_settings_cannot_choose_a_profile(world: GitWorld) -> None:
    upstream = world.new_registry("upstream")
    data = os.urandom(50_000)
    (upstream / "model.bin").write_bytes(data)
    remote = push_to_new_remote(world, upstream, "model")
    (upstream / ".lfs-s3config").write_text("[lfs-s3]\n\tprofile = attacker\n")
    world.git("add", "-A", cwd=upstream)
    world.git("commit", "-q", "-m", "choose a profile", cwd=upstream)
    world.git("push", "-q", "origin", "main", cwd=upstream, env={"GIT_LFS_SKIP_PUSH": "1"})

    clone = world.root / "clone"
    world.git("clone", "-q", str(remote), str(clone), env={"GIT_LFS_SKIP_SMUDGE": "1"})
    world.agent("install", cwd=clone)
    pull = world.git("lfs", "pull", cwd=clone, check=False)

    assert pull.returncode != 0
    assert "unknown setting 'lfs-s3.profile' in .lfs-s3config" in pull.stderr
    assert "Credentials are not settings" in pull.stderr
    assert lfs_objects(clone / ".git") == set()
    assert list((clone / ".git" / "lfs" / "tmp").glob("lfs-s3-*")) == []

    # Without the key (the work tree's copy is read first), the same pull works.
    (clone / ".lfs-s3config").write_text("[lfs-s3]\n\tregion = us-east-1\n")
    world.git("lfs", "pull", cwd=clone)
    assert (clone / "model.bin").read_bytes() == data


BAD_REFS = [
    "YOLOX-l/base/../../../secret",
    "YOLOX-l/../../secret",
    "../../etc/passwd",
    "/etc/passwd",
    "YOLOX-l/base//etc/passwd",
    "YOLOX-l/base/1.2\0",
    "YOLOX-l\0/base/1.2",
    "YOLOX-l/proj\0ect/1.2.3",
    "YOLOX-l/pretrained/2024-05-01\0../x",
    "YOLOX-l/base/1.2/../../../../secret",
    "YOLOX-l\\..\\..\\secret/base/1.2",
]


@pytest.mark.parametrize("spec", BAD_REFS)
def test_references_with_path_tricks_are_refused_before_any_read(
    tmp_path: Path, moto_s3: S3Bucket, monkeypatch: pytest.MonkeyPatch, spec: str
) -> None:
    (tmp_path / "secret").write_text("not a model")
    for key, value in moto_s3.server.env().items():
        monkeypatch.setenv(key, value)
    cache = tmp_path / "cache"

    with pytest.raises(InvalidReference):
        registry.parse_selector(spec)
    with pytest.raises(InvalidReference):
        # An empty bucket: had anything been read, this would be "not published".
        registry.resolve(spec, root=f"s3://{moto_s3.name}/registry", cache_dir=cache)

    assert not cache.exists() or [p for p in cache.rglob("*") if p.is_file()] == []


MANIFEST_NAMES = [
    "../../../outside.txt",
    "a/../../outside.txt",
    "/tmp/outside.txt",
    "..",
    "a\\..\\..\\outside.txt",
    "outside\0.txt",
    "",
]


@pytest.mark.parametrize("name", MANIFEST_NAMES)
def test_published_manifest_naming_a_file_outside_its_version_is_refused(
    tmp_path: Path, moto_s3: S3Bucket, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    for key, value in moto_s3.server.env().items():
        monkeypatch.setenv(key, value)
    client = moto_s3.server.client()
    data = b"payload that must not land outside the cache\n"
    oid = hashlib.sha256(data).hexdigest()
    client.put_object(
        Bucket=moto_s3.name, Key=f"registry/objects/{oid[:2]}/{oid[2:4]}/{oid}", Body=data
    )
    index = {"schema_version": 1, "model": "YOLOX-l", "versions": {"base": ["1.2"]}}
    client.put_object(
        Bucket=moto_s3.name,
        Key="registry/releases/YOLOX-l/index.json",
        Body=json.dumps(index).encode(),
    )

    def publish(files: list[dict[str, Any]]) -> None:
        manifest = {"schema_version": 1, "ref": "YOLOX-l/base/1.2", "commit": None, "files": files}
        client.put_object(
            Bucket=moto_s3.name,
            Key="registry/releases/YOLOX-l/base/1.2/manifest.json",
            Body=json.dumps(manifest).encode(),
        )

    publish([{"name": "config.yaml", "oid": oid, "size": len(data)},
             {"name": name, "oid": oid, "size": len(data)}])  # fmt: skip
    cache = tmp_path / "cache"
    root = f"s3://{moto_s3.name}/registry/YOLOX-l"
    before = {p for p in tmp_path.rglob("*") if p.is_file()}

    with pytest.raises(RegistryError, match="not a plain path inside the version folder"):
        registry.resolve("base/1.2", root=root, cache_dir=cache)

    written = {p for p in tmp_path.rglob("*") if p.is_file()} - before
    assert all(p.is_relative_to(cache) for p in written), written
    assert not any(p.read_bytes() == data for p in written)  # not even in the cache
    assert not (Path("/tmp") / "outside.txt").exists()

    publish([{"name": "config.yaml", "oid": oid, "size": len(data)}])  # fixed upstream: heals
    model = registry.resolve("base/1.2", root=root, cache_dir=cache)
    assert model.files["config.yaml"].read_bytes() == data


def test_a_committed_plain_http_endpoint_needs_consent(world: GitWorld) -> None:
    """A clone's `.lfs-s3config` may not send the user's signed requests to a host of its
    choosing over plain http: nothing is sent until the user trusts the endpoint."""
    with FaultProxy(world.bucket.server.endpoint) as store:
        upstream = world.new_registry("upstream")
        world.git("config", "lfs-s3.endpoint", store.endpoint, cwd=upstream)  # their own
        (upstream / ".lfs-s3config").write_text(f"[lfs-s3]\n\tendpoint = {store.endpoint}\n")
        data = os.urandom(40_000)
        (upstream / "model.bin").write_bytes(data)
        remote = push_to_new_remote(world, upstream, "model")
        pushed = store.count()
        assert pushed > 0

        # The cloning user has credentials but no endpoint of their own.
        world.extra_env.update(AWS_ENDPOINT_URL="", AWS_ENDPOINT_URL_S3="")
        world.agent("install", "--global")
        clone = world.root / "clone"
        cloned = world.git("clone", "-q", str(remote), str(clone), check=False)
        assert store.count() == pushed  # not one request
        assert f"lfs-s3-agent trust {store.endpoint}" in cloned.stderr
        assert lfs_objects(clone / ".git") == set()

        trusted = world.agent("trust", cwd=clone)
        assert f"trusted {store.endpoint} in this repository" in trusted.stdout
        world.git("lfs", "pull", cwd=clone)
        assert (clone / "model.bin").read_bytes() == data
        assert store.count() > pushed


def test_the_users_own_endpoint_beats_a_committed_one(world: GitWorld, tmp_path: Path) -> None:
    with FaultProxy(world.bucket.server.endpoint) as elsewhere:
        upstream = world.new_registry("upstream")
        data = os.urandom(30_000)
        (upstream / "model.bin").write_bytes(data)
        world.git("add", "-A", cwd=upstream)
        world.git("commit", "-q", "-m", "model", cwd=upstream)
        # Committed after the push of the object: an https endpoint needs no consent, but the
        # user's AWS_ENDPOINT_URL (the world's S3 server) wins over it.
        (upstream / ".lfs-s3config").write_text(
            f"[lfs-s3]\n\tendpoint = https://{LOOPBACK}:{elsewhere.port}\n"
        )
        remote = push_to_new_remote(world, upstream, "endpoint")

        world.agent("install", "--global")
        clone = tmp_path / "clone"
        world.git("clone", "-q", str(remote), str(clone))
        assert (clone / "model.bin").read_bytes() == data
        assert elsewhere.count() == 0
