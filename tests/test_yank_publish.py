"""Yanks on checkouts, bare repositories and S3; records in manifests; `list --root-url`; and
conditional index writes: two publishers at the same moment both land (moto and SeaweedFS)."""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from devtools.s3servers import S3Bucket
from registry import YankedWarning, resolve
from registry.cache import Cache
from registry.cli import cli
from registry.errors import IndexConflict, NotFound
from registry.releases.formats import ModelIndex
from registry.releases.indexwrite import probe_conditional_writes, write_index
from registry.releases.publish import publish
from registry.releases.remote import RemoteRegistry
from registry.repo.gitrepo import GitRepo
from tests.registry_fixtures import GitEnv, Registry, init_registry
from tests.s3releases import S3, make_s3

pytestmark = pytest.mark.usefixtures("isolated")

MODEL = "YOLOX-l"
VERSIONS = ("YOLOX-l/base/1.2", "YOLOX-l/base/1.3", "YOLOX-l/base/1.4", "YOLOX-l/projectA/1.3.0")
META = b"schema: 1\nmetrics: {mAP: 0.41}\ndataset: {name: cars, schema_version: '1.0.0'}\n"


@pytest.fixture
def reg(git_env: GitEnv, tmp_path: Path) -> Registry:
    reg = init_registry(tmp_path / "registry", git_env)
    reg.write("model-registry.toml", b"[metrics.patterns]\nloss = 'loss=([0-9.]+)'\n")
    for version in VERSIONS:
        reg.add_version(version)
    reg.write("YOLOX-l/base/1.4/meta.yaml", META)
    reg.write("YOLOX-l/base/1.4/log.txt", b"epoch 1 loss=0.5\nepoch 2 loss=0.25\n")
    reg.commit("versions")
    return reg


@pytest.fixture
def s3(moto_s3: S3Bucket) -> Iterator[S3]:
    yield from make_s3(moto_s3)


def cli_run(*args: str | Path) -> Any:
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def do_publish(reg: Registry, s3: S3, rev: str = "HEAD") -> None:
    publish(GitRepo(reg.root), s3.remote, s3.client, lfs_dir=reg.root / ".git" / "lfs", rev=rev)


def remote(s3: S3, tmp_path: Path) -> RemoteRegistry:
    return RemoteRegistry(
        s3.remote.model_copy(update={"model": MODEL}),
        Cache.at(tmp_path / "cache"),
        client_factory=lambda: s3.bucket.server.client(),
    )


# --- checkouts and bare repositories --------------------------------------------------------


def test_a_yank_moves_selectors_and_leaves_the_version_folder_alone(reg: Registry) -> None:
    before = reg.git("rev-parse", "HEAD:YOLOX-l/base/1.4")
    result = cli_run("yank", "YOLOX-l/base/1.4", "--reason", "mAP drops at night",
                     "--root", reg.root)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert resolve("YOLOX-l/base/1", reg.root).ref.version.parts == (1, 3)
    assert str(resolve("YOLOX-l/base/latest", reg.root).ref) == "YOLOX-l/base/1.3"
    with pytest.warns(YankedWarning, match=r"YOLOX-l/base/1.4 is yanked \(mAP drops at night\)"):
        assert str(resolve("YOLOX-l/base/1.4", reg.root).ref) == "YOLOX-l/base/1.4"
    listed = cli_run("list", "--root", reg.root).stdout
    assert "1.2, 1.3, 1.4 (yanked)  1.3" in listed
    shown = cli_run("resolve", "YOLOX-l/base/1.4", "--root", reg.root)
    assert shown.exit_code == 0
    assert "warning: YOLOX-l/base/1.4 is yanked (mAP drops at night)" in shown.stderr
    # One staged registry-level file; released folders untouched, so check --against is green.
    assert reg.git("diff", "--cached", "--name-only") == "yanks.yaml"
    reg.git("commit", "-q", "-m", "yank 1.4")
    assert reg.git("rev-parse", "HEAD:YOLOX-l/base/1.4") == before
    checked = cli_run("check", reg.root, "--against", "HEAD~1", "--format", "json").stdout
    assert "yanks.yaml" not in checked and '"changed"' not in checked
    # Unyank gives it back.
    assert cli_run("unyank", "YOLOX-l/base/1.4", "--root", reg.root).exit_code == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert str(resolve("YOLOX-l/base/1", reg.root).ref) == "YOLOX-l/base/1.4"


def test_when_every_match_is_yanked_the_error_says_so(reg: Registry) -> None:
    cli_run("yank", "YOLOX-l/projectA/1.3.0", "--reason", "wrong camera", "--root", reg.root)
    with pytest.raises(NotFound, match=r"yanked, so skipped by selectors: 1.3.0 \(wrong camera\)"):
        resolve("YOLOX-l/projectA/latest", reg.root)


def test_yanks_in_a_bare_repository_by_revision(reg: Registry, tmp_path: Path) -> None:
    cli_run("yank", "YOLOX-l/base/1.4", "--reason", "bad", "--root", reg.root)
    reg.commit("yank")
    bare = tmp_path / "bare.git"
    reg.env.git(tmp_path, "clone", "-q", "--bare", str(reg.root), str(bare))
    listed = cli_run("list", "--root", bare).stdout
    assert "1.2, 1.3, 1.4 (yanked)  1.3" in listed
    assert "yanked  bad" in cli_run("show", "YOLOX-l/base/1.4", "--root", bare).stdout
    assert cli_run("show", "YOLOX-l/base/1", "--root", bare).stdout.startswith("YOLOX-l/base/1.3")
    # At the revision before the yank, base/1 is 1.4 again.
    old = cli_run("show", "YOLOX-l/base/1", "--root", bare, "--rev", "HEAD~1")
    assert old.stdout.startswith("YOLOX-l/base/1.4")
    refused = cli_run("yank", "YOLOX-l/base/1.3", "--reason", "x", "--root", bare)
    assert refused.exit_code == 1 and "is a bare repository: yank in a clone" in refused.stderr


def test_bad_yanks(reg: Registry) -> None:
    missing = cli_run("yank", "YOLOX-l/base/1.9", "--reason", "x", "--root", reg.root)
    assert missing.exit_code == 1 and "is not a version of the registry" in missing.stderr
    assert cli_run("yank", "YOLOX-l/base/1.x", "--reason", "x", "--root", reg.root).exit_code == 2
    assert cli_run("unyank", "YOLOX-l/base/1.2", "--root", reg.root).exit_code == 1
    reg.write("yanks.yaml", b"YOLOX-l/base/1.9: {reason: gone, date: 2026-01-01}\n")
    found = cli_run("check", reg.root).stdout
    assert "yanks.yaml: [yank] YOLOX-l/base/1.9 is yanked but is not a version" in found
    reg.write("yanks.yaml", b"YOLOX-l/base/1.2: {reason: '', date: 2026-01-01}\n")
    assert "the reason is empty" in cli_run("check", reg.root).stdout


# --- S3 -------------------------------------------------------------------------------------


def test_manifests_carry_the_record_and_the_index_carries_yanks(
    reg: Registry, s3: S3, tmp_path: Path
) -> None:
    do_publish(reg, s3)
    record = s3.manifest("YOLOX-l/base/1.4").record
    assert record is not None
    assert record.metrics == {"mAP": 0.41, "loss": 0.25}  # meta.yaml, and the log's pattern
    assert record.dataset is not None and record.dataset.schema_version == "1.0.0"
    index_key = s3.remote.index_key(MODEL)
    assert "yanked" not in s3.json(index_key)  # an index with no yanks reads as before
    assert str(remote(s3, tmp_path / "a").resolve("base/1").ref) == "YOLOX-l/base/1.4"

    cli_run("yank", "YOLOX-l/base/1.4", "--reason", "mAP drops at night", "--root", reg.root)
    reg.commit("yank 1.4")
    do_publish(reg, s3)

    assert s3.json(index_key)["yanked"] == {"base/1.4": "mAP drops at night"}
    app = remote(s3, tmp_path / "b")
    assert str(app.resolve("base/1").ref) == "YOLOX-l/base/1.3"
    with pytest.warns(YankedWarning, match="mAP drops at night"):
        assert str(app.resolve("base/1.4").ref) == "YOLOX-l/base/1.4"
    # Unyank and publish: selectors see it again.
    cli_run("unyank", "YOLOX-l/base/1.4", "--root", reg.root)
    reg.commit("unyank 1.4")
    do_publish(reg, s3)
    assert str(remote(s3, tmp_path / "c").resolve("base/1").ref) == "YOLOX-l/base/1.4"


def test_list_root_url_lists_what_is_published_from_s3_alone(
    reg: Registry, s3: S3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli_run("yank", "YOLOX-l/base/1.3", "--reason", "bad data", "--root", reg.root)
    reg.commit("yank")
    do_publish(reg, s3)
    for key, value in s3.bucket.server.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("MODEL_REGISTRY_CACHE", str(tmp_path / "cache"))
    result = cli_run("list", "--root-url", f"s3://{s3.bucket.name}/{s3.remote.prefix}")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["MODEL", "SCOPE", "VERSION", "METRICS"]
    rows = [line.split(None, 3) for line in lines[1:]]
    assert [r[:3] for r in rows] == [
        ["YOLOX-l", "base", "1.2"],
        ["YOLOX-l", "base", "1.3"],
        ["YOLOX-l", "base", "1.4"],
        ["YOLOX-l", "projectA", "1.3.0"],
    ]
    assert rows[1][3].split() == ["-", "yanked:", "bad", "data"]
    assert rows[2][3] == "loss=0.25  mAP=0.41"


# --- conditional index writes ---------------------------------------------------------------


def two_publishers_at_once(reg: Registry, s3: S3) -> list[str]:
    """Publish two revisions, each adding its own version, with both index writes held until
    both publishers have read the index: their writes collide. The errors of index PUTs."""
    base = reg.git("rev-parse", "HEAD")
    revs = []
    for version in ("YOLOX-l/base/1.5", "YOLOX-l/base/1.6"):
        reg.git("checkout", "-q", base)
        reg.add_version(version)
        revs.append(reg.commit(version))
    barrier = threading.Barrier(2, timeout=60)
    held: set[str] = set()
    index_key = s3.remote.index_key(MODEL)

    def hold(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        name = threading.current_thread().name
        context["index"] = params.get("Key") == index_key
        if context["index"] and name not in held:
            held.add(name)
            barrier.wait()

    errors: list[BaseException] = []
    codes: list[str] = []

    def answered(parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        code = parsed.get("Error", {}).get("Code")
        if code and context.get("index"):
            codes.append(str(code))

    def publisher(rev: str) -> None:
        client = s3.bucket.server.client()
        client.meta.events.register("before-parameter-build.s3.PutObject", hold)
        client.meta.events.register("after-call.s3.PutObject", answered)
        try:
            publish(GitRepo(reg.root), s3.remote, client, lfs_dir=reg.root / ".git/lfs", rev=rev)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=publisher, args=(rev,), name=rev) for rev in revs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    assert held == set(revs)  # both really wrote at the same moment
    return codes


def test_two_publishers_at_once_keep_both_versions_on_moto(reg: Registry, s3: S3) -> None:
    do_publish(reg, s3)  # an index exists: the writes are If-Match
    # One write lands, the other is refused (412) and merges again.
    assert two_publishers_at_once(reg, s3) == ["PreconditionFailed"]
    assert s3.json(s3.remote.index_key(MODEL))["versions"]["base"] == [
        "1.2", "1.3", "1.4", "1.5", "1.6",
    ]  # fmt: skip


@pytest.mark.e2e
def test_two_publishers_at_once_keep_both_versions_on_seaweedfs(
    reg: Registry, seaweed_s3: S3Bucket
) -> None:
    for s3 in make_s3(seaweed_s3):
        # No index yet: both writes are If-None-Match: *, and one of them is refused.
        assert two_publishers_at_once(reg, s3) == ["PreconditionFailed"]
        assert s3.json(s3.remote.index_key(MODEL))["versions"]["base"] == [
            "1.2", "1.3", "1.4", "1.5", "1.6",
        ]  # fmt: skip


def test_write_index_merges_again_after_a_conflict() -> None:
    stored = [ModelIndex(model=MODEL, versions={"base": ["1.0"]})]
    etags = ["e1"]
    puts: list[tuple[list[str], str | None]] = []

    def read() -> tuple[ModelIndex | None, str | None]:
        return stored[-1], etags[-1]

    def put(index: ModelIndex, etag: str | None) -> None:
        puts.append((index.versions["base"], etag))
        if len(puts) == 1:  # someone else published 1.1 in between
            stored.append(ModelIndex(model=MODEL, versions={"base": ["1.0", "1.1"]}))
            etags.append("e2")
            raise IndexConflict("changed")
        assert etag == etags[-1]
        stored.append(index)
        etags.append("e3")

    def update(current: ModelIndex | None) -> ModelIndex:
        assert current is not None
        return ModelIndex(model=MODEL, versions={"base": [*current.versions["base"], "1.2"]})

    wrote = write_index("k", read, put, update, lambda i: "1.2" in i.versions["base"],
                        sleep=lambda s: None)  # fmt: skip
    assert wrote
    assert puts == [(["1.0", "1.2"], "e1"), (["1.0", "1.1", "1.2"], "e2")]
    assert stored[-1].versions["base"] == ["1.0", "1.1", "1.2"]


def test_write_index_gives_up_naming_the_fix_when_the_store_loses_every_write() -> None:
    def read() -> tuple[ModelIndex | None, str | None]:
        return ModelIndex(model=MODEL, versions={"base": ["1.0"]}), "e"

    def put(index: ModelIndex, etag: str | None) -> None:
        del index, etag  # a store that accepts, then someone overwrites: read never shows it

    def update(current: ModelIndex | None) -> ModelIndex:
        return ModelIndex(model=MODEL, versions={"base": ["1.0", "1.1"]})

    with pytest.raises(Exception, match="publish again to add the versions to the index"):
        write_index(
            "s3://b/k", read, put, update, lambda i: "1.1" in i.versions["base"], attempts=3,
            sleep=lambda s: None,
        )  # fmt: skip


# --- does the store honour conditional writes? (for doctor) ---------------------------------


def drop_conditions(params: dict[str, Any], **_: Any) -> None:
    """Make the request as a store that ignores the conditions would take it."""
    params.pop("IfMatch", None)
    params.pop("IfNoneMatch", None)


@pytest.mark.parametrize("server", ["moto_s3", "seaweed_s3"])
def test_the_probe_finds_that_the_store_honours_conditional_writes(
    server: str, request: pytest.FixtureRequest
) -> None:
    bucket: S3Bucket = request.getfixturevalue(server)
    client = bucket.server.client()
    assert probe_conditional_writes(client, bucket.name, "team/reg") is None
    # The scratch key is gone.
    assert client.list_objects_v2(Bucket=bucket.name, Prefix="team/reg/").get("KeyCount") == 0
    client.meta.events.register("before-parameter-build.s3.PutObject", drop_conditions)
    said = probe_conditional_writes(client, bucket.name, "team/reg")
    assert said is not None
    assert "ignores conditional writes (If-None-Match: *, If-Match accepted" in said
    assert client.list_objects_v2(Bucket=bucket.name, Prefix="team/reg/").get("KeyCount") == 0
