"""`publish`: a real registry (git + git-lfs, objects in `.git/lfs`) published to a real S3
server (moto; one round trip on SeaweedFS): objects, manifests, indexes, immutability, no-ops.

Nothing is ever pushed: the LFS objects publish uploads come from the repository's own LFS
store, and the non-LFS files from their git blobs.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from devtools.s3servers import S3Bucket
from lfs_agent import sources
from lfs_agent.config import AgentConfig, MiB
from lfs_agent.store import S3Store
from registry.errors import NotFound, ObjectsUnavailable, PublishedVersionChanged, RegistryError
from registry.refs import parse_ref
from registry.releases.formats import Manifest, ModelIndex, RemoteRoot
from registry.releases.publish import PublishReport, build_manifests, publish
from registry.repo.gitrepo import GitRepo
from registry.repo.layout import TreeSource
from tests.registry_fixtures import GitEnv, Registry, init_registry, sha256, version_files
from tests.s3releases import PUBLISH_PREFIX as PREFIX
from tests.s3releases import S3, make_s3

if TYPE_CHECKING:
    pass

# git runs in-process with an isolated HOME (the `isolated` fixture in conftest.py).
pytestmark = pytest.mark.usefixtures("isolated")

FIRST = (
    "YOLOX-l/base/1.2",
    "YOLOX-l/base/1.9",
    "YOLOX-l/pretrained/2024-05-01",
    "YOLOX-l/projectA/1.2.0",
)
SECOND = ("YOLOX-l/base/1.10", "ResNet-50/base/2.0")
ALL = FIRST + SECOND


# --------------------------------------------------------------------------- fixtures & helpers


def build(root: Path, env: GitEnv) -> Registry:
    """FIRST in one commit (with a README and a misnamed folder beside them), SECOND in another."""
    reg = init_registry(root, env)
    reg.write("YOLOX-l/base/README.md", b"# YOLOX-l base\n")
    reg.write("YOLOX-l/base/v1.3/config.yaml", b"not a version: misnamed\n")
    for version in FIRST:
        reg.add_version(version)
    reg.write("YOLOX-l/base/1.2/.ipynb_checkpoints/scratch.txt", b"hidden\n")
    reg.commit("first versions")
    for version in SECOND:
        reg.add_version(version)
    reg.commit("second versions")
    return reg


@pytest.fixture
def reg(git_env: GitEnv, tmp_path: Path) -> Registry:
    return build(tmp_path / "registry", git_env)


@pytest.fixture
def s3(moto_s3: S3Bucket) -> Iterator[S3]:
    yield from make_s3(moto_s3)


def lfs_dir(reg: Registry) -> Path:
    return reg.root / ".git" / "lfs"


def run(reg: Registry, s3: S3, **kwargs: Any) -> PublishReport:
    """Publish `reg` to `s3`, forgetting the calls made before."""
    s3.clear()
    return publish(GitRepo(reg.root), s3.remote, s3.client, lfs_dir=lfs_dir(reg), **kwargs)


def expected_files(reg: Registry, version: str) -> dict[str, tuple[str, int]]:
    return {name: (sha256(data), len(data)) for name, data in reg.files(version).items()}


def manifest_files(manifest: Manifest) -> dict[str, tuple[str, int]]:
    return {f.name: (f.oid, f.size) for f in manifest.files}


def local_object(reg: Registry, oid: str) -> Path:
    return lfs_dir(reg) / "objects" / oid[0:2] / oid[2:4] / oid


# --------------------------------------------------------------------------- build_manifests


def test_build_manifests_lists_every_version_with_oids_sizes_and_commit(reg: Registry) -> None:
    manifests = build_manifests(TreeSource(GitRepo(reg.root)))

    # Every valid version, in version order; the misnamed folder and the README are not versions.
    assert [str(ref) for ref in manifests] == [
        "ResNet-50/base/2.0",
        "YOLOX-l/base/1.2",
        "YOLOX-l/base/1.9",
        "YOLOX-l/base/1.10",
        "YOLOX-l/pretrained/2024-05-01",
        "YOLOX-l/projectA/1.2.0",
    ]
    for ref, manifest in manifests.items():
        assert manifest.ref == str(ref)
        # LFS files by their pointer's oid, small files by the SHA-256 of their content;
        # hidden files (.ipynb_checkpoints) are left out.
        assert manifest_files(manifest) == expected_files(reg, str(ref))
        assert manifest.commit == reg.last_commit(str(ref))
    first, second = reg.commits
    assert manifests[parse_ref("YOLOX-l/base/1.2")].commit == first
    assert manifests[parse_ref("YOLOX-l/base/1.10")].commit == second


# --------------------------------------------------------------------------- publish


def test_publish_uploads_every_object_then_writes_manifests_and_indexes(
    reg: Registry, s3: S3
) -> None:
    progress: list[int] = []

    report = run(reg, s3, progress=progress.append)

    assert set(report.published) == set(ALL)
    assert report.unchanged == ()
    # Manifests at the documented keys, with the right files and commit.
    manifests = build_manifests(TreeSource(GitRepo(reg.root)))
    for version in ALL:
        ref = parse_ref(version)
        key = f"{PREFIX}/releases/{ref.model}/{ref.scope}/{ref.version}/manifest.json"
        assert key == s3.remote.manifest_key(ref)
        stored = Manifest.model_validate_json(s3.get(key))
        assert stored == manifests[ref]
        assert manifest_files(stored) == expected_files(reg, version)
        assert stored.commit == reg.last_commit(version)
    # An index per model, scopes sorted, versions in version order (1.10 after 1.9).
    assert s3.json(f"{PREFIX}/releases/YOLOX-l/index.json") == {
        "schema_version": 1,
        "model": "YOLOX-l",
        "versions": {
            "base": ["1.2", "1.9", "1.10"],
            "pretrained": ["2024-05-01"],
            "projectA": ["1.2.0"],
        },
    }
    assert ModelIndex.model_validate_json(s3.get(s3.remote.index_key("ResNet-50"))).versions == {
        "base": ["2.0"]
    }
    # Every file, LFS or not (config.yaml, log.txt), is an object keyed by its SHA-256.
    contents = {sha256(data): data for v in ALL for data in reg.files(v).values()}
    assert s3.objects() == {oid: len(data) for oid, data in contents.items()}
    for oid, data in contents.items():
        body = s3.get(f"{PREFIX}/objects/{oid[0:2]}/{oid[2:4]}/{oid}")
        assert hashlib.sha256(body).hexdigest() == oid and body == data
    config = reg.files("YOLOX-l/base/1.2")["config.yaml"]
    assert s3.get(s3.remote.object_key(sha256(config))) == config
    assert report.uploaded_objects == len(contents)
    assert report.uploaded_bytes == sum(map(len, contents.values())) == sum(progress)
    # Every object first, then the manifests, then the indexes: one PUT each.
    kinds = [key.rsplit("/", 1)[1] if "/releases/" in key else "object" for key in s3.written]
    assert kinds == ["object"] * len(contents) + ["manifest.json"] * len(ALL) + ["index.json"] * 2
    assert s3.writes() == ["PutObject"] * len(kinds)


def test_publishing_again_is_a_no_op(reg: Registry, s3: S3) -> None:
    run(reg, s3)
    before = s3.snapshot()

    report = run(reg, s3)

    assert report == PublishReport(
        published=(), unchanged=report.unchanged, uploaded_objects=0, uploaded_bytes=0
    )
    assert set(report.unchanged) == set(ALL)
    assert s3.writes() == []
    assert s3.snapshot() == before


def test_a_new_version_is_published_alone_and_added_to_the_index(reg: Registry, s3: S3) -> None:
    run(reg, s3)
    before = s3.snapshot()
    # 1.11 reuses 1.10's checkpoint: that object is in the store already.
    files = version_files("YOLOX-l/base/1.11")
    files["checkpoint.pth"] = reg.files("YOLOX-l/base/1.10")["checkpoint.pth"]
    reg.add_version("YOLOX-l/base/1.11", files)
    reg.commit("1.11")

    report = run(reg, s3)

    assert report.published == ("YOLOX-l/base/1.11",)
    assert set(report.unchanged) == set(ALL)
    new_objects = {sha256(data): len(data) for n, data in files.items() if n != "checkpoint.pth"}
    assert report.uploaded_objects == 3
    assert report.uploaded_bytes == sum(new_objects.values())
    old_objects = {k.rsplit("/", 1)[1]: size for k, (_, size) in before.items() if "/objects/" in k}
    assert s3.objects() == {**old_objects, **new_objects}
    manifest = s3.manifest("YOLOX-l/base/1.11")
    assert manifest_files(manifest) == expected_files(reg, "YOLOX-l/base/1.11")
    assert manifest.commit == reg.commits[-1]
    assert s3.json(s3.remote.index_key("YOLOX-l"))["versions"]["base"] == [
        "1.2",
        "1.9",
        "1.10",
        "1.11",
    ]
    # Three objects, one manifest, one index; ResNet-50's index and the old manifests untouched.
    assert s3.writes() == ["PutObject"] * 5
    after = s3.snapshot()
    assert {k: after[k] for k in before if "/objects/" not in k and "YOLOX-l/index" not in k} == {
        k: v for k, v in before.items() if "/objects/" not in k and "YOLOX-l/index" not in k
    }


def test_a_changed_published_version_is_refused_and_nothing_is_written(
    reg: Registry, s3: S3
) -> None:
    run(reg, s3)
    before = s3.snapshot()
    reg.write("YOLOX-l/base/1.2/checkpoint.pth", os.urandom(3000))  # changed
    reg.write("YOLOX-l/base/1.9/notes.txt", b"added later\n")  # added
    reg.add_version("YOLOX-l/base/1.12")  # new: not published either, since the rest is refused
    reg.commit("rewrite history")

    with pytest.raises(PublishedVersionChanged) as caught:
        run(reg, s3)

    message = str(caught.value)
    assert caught.value.refs == ("YOLOX-l/base/1.2", "YOLOX-l/base/1.9")
    assert "YOLOX-l/base/1.2" in message and "checkpoint.pth changed" in message
    assert "YOLOX-l/base/1.9" in message and "notes.txt added" in message
    assert "immutable" in message and "new version" in message
    assert reg.commits[0][:12] in message  # where the published content came from
    assert isinstance(caught.value, RegistryError)
    assert s3.writes() == []
    assert s3.snapshot() == before


def test_an_object_neither_local_nor_in_the_store_is_refused_naming_the_fix(
    reg: Registry, s3: S3
) -> None:
    lost = sha256(reg.files("YOLOX-l/base/1.9")["checkpoint.pth"])
    local_object(reg, lost).unlink()

    with pytest.raises(ObjectsUnavailable) as caught:
        run(reg, s3)

    message = str(caught.value)
    assert caught.value.oids == (lost,)
    assert lost in message and "YOLOX-l/base/1.9/checkpoint.pth" in message
    assert "git lfs fetch --all" in message and "git lfs push --all" in message
    assert s3.writes() == []
    assert s3.snapshot() == {}


def test_objects_the_store_already_has_are_not_needed_locally(reg: Registry, s3: S3) -> None:
    # The agent pushed 1.9's checkpoint (`git push`), then this clone lost its local copy.
    data = reg.files("YOLOX-l/base/1.9")["checkpoint.pth"]
    oid = sha256(data)
    store = S3Store(
        AgentConfig(bucket=s3.bucket.name, prefix=PREFIX),
        lfs_dir(reg),
        client_factory=lambda cfg, pool: s3.client,
    )
    assert store.upload(oid, len(data), local_object(reg, oid), lambda n: None, threading.Event())
    local_object(reg, oid).unlink()

    report = run(reg, s3)

    assert set(report.published) == set(ALL)
    contents = {sha256(d) for v in ALL for d in reg.files(v).values()}
    assert report.uploaded_objects == len(contents) - 1
    assert s3.get(s3.remote.object_key(oid)) == data


def test_publishing_an_older_revision(reg: Registry, s3: S3) -> None:
    first, second = reg.commits

    report = run(reg, s3, rev=first)

    assert set(report.published) == set(FIRST)
    for version in FIRST:
        stored = s3.manifest(version)
        assert stored.commit == first
        assert manifest_files(stored) == expected_files(reg, version)
    assert s3.json(s3.remote.index_key("YOLOX-l"))["versions"]["base"] == ["1.2", "1.9"]
    assert "ResNet-50/index.json" not in " ".join(s3.snapshot())

    assert set(run(reg, s3).published) == set(SECOND)
    assert s3.json(s3.remote.index_key("YOLOX-l"))["versions"]["base"] == ["1.2", "1.9", "1.10"]

    # The old revision again: nothing to do, and the index keeps what it does not know of.
    report = run(reg, s3, rev=first)
    assert report.published == () and set(report.unchanged) == set(FIRST)
    assert s3.writes() == []
    assert s3.json(s3.remote.index_key("YOLOX-l"))["versions"]["base"] == ["1.2", "1.9", "1.10"]


def test_a_model_root_publishes_that_model_only(reg: Registry, s3: S3) -> None:
    report = publish(
        GitRepo(reg.root),
        RemoteRoot(bucket=s3.bucket.name, prefix=PREFIX, model="ResNet-50"),
        s3.client,
        lfs_dir=lfs_dir(reg),
    )

    assert report.published == ("ResNet-50/base/2.0",)
    assert {k for k in s3.snapshot() if "/releases/" in k} == {
        f"{PREFIX}/releases/ResNet-50/index.json",
        f"{PREFIX}/releases/ResNet-50/base/2.0/manifest.json",
    }
    with pytest.raises(NotFound, match="'YOLOX-s' has no versions at HEAD"):
        publish(
            GitRepo(reg.root),
            RemoteRoot(bucket=s3.bucket.name, prefix=PREFIX, model="YOLOX-s"),
            s3.client,
            lfs_dir=lfs_dir(reg),
        )


def test_a_lost_index_is_rebuilt_without_rewriting_anything_else(reg: Registry, s3: S3) -> None:
    # As after a publish interrupted between the manifests and the indexes.
    run(reg, s3)
    s3.client.delete_object(Bucket=s3.bucket.name, Key=s3.remote.index_key("YOLOX-l"))

    report = run(reg, s3)

    assert report.published == ()
    assert s3.writes() == ["PutObject"]
    assert s3.json(s3.remote.index_key("YOLOX-l"))["versions"]["base"] == ["1.2", "1.9", "1.10"]


def test_a_damaged_published_manifest_stops_publishing(reg: Registry, s3: S3) -> None:
    key = s3.remote.manifest_key(parse_ref("YOLOX-l/base/1.9"))
    s3.client.put_object(Bucket=s3.bucket.name, Key=key, Body=b'{"not": "a manifest"}')

    with pytest.raises(RegistryError, match="is not a valid manifest") as caught:
        run(reg, s3)

    assert key in str(caught.value) and "by hand" in str(caught.value)
    assert s3.writes() == []


def test_big_checkpoints_go_multipart_with_the_given_settings(
    git_env: GitEnv, tmp_path: Path, s3: S3
) -> None:
    reg = init_registry(tmp_path / "registry", git_env)
    big = os.urandom(6 * MiB)
    reg.add_version("YOLOX-x/base/1.0", {"checkpoint.pth": big, "config.yaml": b"epochs: 1\n"})
    reg.commit()
    # Bucket and prefix come from the remote root; the rest from the settings.
    settings = AgentConfig(
        bucket="elsewhere", prefix="x", part_size=5 * MiB, multipart_threshold=5 * MiB
    )
    progress: list[int] = []

    report = run(reg, s3, settings=settings, progress=progress.append)

    assert report.uploaded_bytes == len(big) + 10 == sum(progress)
    assert s3.calls.count("UploadPart") == 2 and "CompleteMultipartUpload" in s3.calls
    assert s3.get(s3.remote.object_key(sha256(big))) == big


def test_round_trip_on_seaweedfs_with_the_repository_s_own_settings(
    git_env: GitEnv, tmp_path: Path, seaweed_s3: S3Bucket
) -> None:
    # Wiring as `model-registry publish` does it: bucket, prefix and LFS store from the repo.
    reg = init_registry(tmp_path / "registry", git_env)
    url = f"https://lfs-s3.invalid/{seaweed_s3.name}/{PREFIX}"
    reg.write(".lfsconfig", f"[lfs]\n\turl = {url}\n".encode())
    files = reg.add_version("YOLOX-l/base/1.0")
    reg.commit()
    loaded = sources.load(os.environ, operation="upload", cwd=reg.root)
    remote = RemoteRoot(bucket=loaded.config.bucket, prefix=loaded.config.prefix)
    assert (remote.bucket, remote.prefix) == (seaweed_s3.name, PREFIX)
    assert loaded.lfs_dir.resolve() == lfs_dir(reg).resolve()

    for s3 in make_s3(seaweed_s3):
        repo = GitRepo.discover(reg.root)
        first = publish(repo, remote, s3.client, lfs_dir=loaded.lfs_dir, settings=loaded.config)
        s3.clear()
        again = publish(repo, remote, s3.client, lfs_dir=loaded.lfs_dir, settings=loaded.config)

        assert first.published == ("YOLOX-l/base/1.0",) and first.uploaded_objects == 4
        assert again.unchanged == ("YOLOX-l/base/1.0",) and s3.writes() == []
        manifest = s3.manifest("YOLOX-l/base/1.0")
        assert manifest_files(manifest) == expected_files(reg, "YOLOX-l/base/1.0")
        for data in files.values():
            assert s3.get(remote.object_key(sha256(data))) == data
        assert s3.json(remote.index_key("YOLOX-l"))["versions"] == {"base": ["1.0"]}
