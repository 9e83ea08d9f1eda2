"""`add_version` and `init_registry` as a library: all or nothing, idempotent, staged."""

from __future__ import annotations

import fnmatch
import shutil
from pathlib import Path

import pytest

from registry import NotFound, RegistryError, VersionExists, parse_ref
from registry.repo import add as registry_add
from registry.repo.add import add_version
from registry.repo.gitrepo import GitRepo
from registry.repo.init import GITATTRIBUTES, init_registry
from registry.repo.settings import CheckSettings, Settings
from tests.registry_repos import (
    commit_all,
    git,
    make_registry,
    run_check,
    staged_names,
    staged_pointer,
    version_files,
    write,
)

pytestmark = [
    pytest.mark.skipif(shutil.which("git-lfs") is None, reason="git-lfs not installed"),
    pytest.mark.usefixtures("isolated_git"),
]

DEFAULTS = Settings()


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    return make_registry(tmp_path / "registry")


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    folder = version_files(tmp_path / "run", "run")
    write(folder, "extras/labels.txt", "person\ncar\n")
    return folder


def contents(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(root).parts
    }


def leftovers(scope: Path) -> list[Path]:
    """Temporary folders `add_version` may have left next to the version folder."""
    return sorted(scope.glob(".*.adding-*")) if scope.exists() else []


# --- add_version ----------------------------------------------------------------------------


def test_add_copies_and_stages(registry: Path, run_dir: Path) -> None:
    ref = parse_ref("YOLOX-l/base/1.3")
    dest = add_version(registry, ref, run_dir, settings=DEFAULTS, repo=GitRepo(registry))
    assert dest == registry / "YOLOX-l/base/1.3"
    assert contents(dest) == contents(run_dir)
    assert staged_names(registry) == [
        "YOLOX-l/base/1.3/checkpoint.pth",
        "YOLOX-l/base/1.3/config.yaml",
        "YOLOX-l/base/1.3/extras/labels.txt",
        "YOLOX-l/base/1.3/log.txt",
    ]
    assert staged_pointer(registry, "YOLOX-l/base/1.3/checkpoint.pth")
    assert leftovers(dest.parent) == []
    assert run_check(registry) == []


def test_add_to_a_new_model_and_scope(registry: Path, run_dir: Path) -> None:
    ref = parse_ref("ResNet-50/pretrained/2024-01-31")
    dest = add_version(registry, ref, run_dir, settings=DEFAULTS, repo=GitRepo(registry))
    assert dest.is_dir()
    assert len(staged_names(registry)) == 4


def test_add_without_a_repository_only_copies(tmp_path: Path, run_dir: Path) -> None:
    root = tmp_path / "plain-copy"
    root.mkdir()
    dest = add_version(root, parse_ref("YOLOX-l/base/0.1"), run_dir, settings=DEFAULTS, repo=None)
    assert contents(dest) == contents(run_dir)


def test_add_without_staging(registry: Path, run_dir: Path) -> None:
    add_version(registry, parse_ref("YOLOX-l/base/1.3"), run_dir, settings=DEFAULTS, repo=None)
    assert (registry / "YOLOX-l/base/1.3/config.yaml").is_file()
    assert staged_names(registry) == []


def test_add_refuses_an_existing_version(registry: Path, run_dir: Path) -> None:
    before = contents(registry)
    ref = parse_ref("YOLOX-l/projectA/1.2.3")
    with pytest.raises(VersionExists) as error:
        add_version(registry, ref, run_dir, settings=DEFAULTS, repo=GitRepo(registry))
    assert isinstance(error.value, FileExistsError)
    assert "released versions are immutable" in str(error.value)
    assert "model-registry next YOLOX-l/projectA" in str(error.value)
    assert contents(registry) == before
    assert staged_names(registry) == []


def test_add_refuses_an_existing_but_empty_folder(registry: Path, run_dir: Path) -> None:
    (registry / "YOLOX-l/base/1.3").mkdir()
    with pytest.raises(VersionExists):
        add_version(registry, parse_ref("YOLOX-l/base/1.3"), run_dir, settings=DEFAULTS, repo=None)


@pytest.mark.parametrize("missing", [("log.txt",), ("checkpoint.pth", "log.txt")])
def test_add_refuses_missing_required_files(
    registry: Path, run_dir: Path, missing: tuple[str, ...]
) -> None:
    for name in missing:
        (run_dir / name).unlink()
    before = contents(registry)
    ref = parse_ref("YOLOX-l/base/1.3")
    with pytest.raises(RegistryError, match=f"lacks {', '.join(missing)}; every version needs"):
        add_version(registry, ref, run_dir, settings=DEFAULTS, repo=GitRepo(registry))
    assert contents(registry) == before
    assert not (registry / ref.path).exists()
    assert leftovers(registry / "YOLOX-l/base") == []
    assert staged_names(registry) == []


def test_required_file_must_be_at_the_top_of_the_folder(registry: Path, tmp_path: Path) -> None:
    nested = tmp_path / "nested"
    version_files(nested / "output")
    with pytest.raises(RegistryError, match="lacks config.yaml, checkpoint.pth, log.txt"):
        add_version(registry, parse_ref("YOLOX-l/base/1.3"), nested, settings=DEFAULTS, repo=None)


def test_add_follows_the_required_setting(registry: Path, tmp_path: Path) -> None:
    only = tmp_path / "only"
    write(only, "model.onnx", "onnx\n")
    settings = Settings(check=CheckSettings(required=("model.onnx",)))
    dest = add_version(registry, parse_ref("YOLOX-l/base/1.3"), only, settings=settings, repo=None)
    assert sorted(p.name for p in dest.iterdir()) == ["model.onnx"]


@pytest.mark.parametrize(
    "config", [b"lr: [0.1\n", b"\xff\xfe not utf-8", b"a: b: c\n"], ids=["yaml", "bytes", "map"]
)
def test_add_refuses_a_config_that_does_not_parse(
    registry: Path, run_dir: Path, config: bytes
) -> None:
    write(run_dir, "config.yaml", config)
    with pytest.raises(RegistryError, match="config.yaml' does not parse"):
        add_version(registry, parse_ref("YOLOX-l/base/1.3"), run_dir, settings=DEFAULTS, repo=None)
    assert not (registry / "YOLOX-l/base/1.3").exists()


def test_add_refuses_a_project_version_without_its_base(registry: Path, run_dir: Path) -> None:
    ref = parse_ref("YOLOX-l/projectB/2.0.0")
    with pytest.raises(NotFound, match="fine-tuned from base 2.0, but YOLOX-l/base/2.0 does not"):
        add_version(registry, ref, run_dir, settings=DEFAULTS, repo=GitRepo(registry))
    assert not (registry / "YOLOX-l/projectB").exists()
    assert staged_names(registry) == []


def test_add_a_project_version_on_an_existing_base(registry: Path, run_dir: Path) -> None:
    ref = parse_ref("YOLOX-l/projectB/1.2.0")
    dest = add_version(registry, ref, run_dir, settings=DEFAULTS, repo=None)
    assert dest.is_dir()


def test_add_refuses_a_source_that_is_not_a_folder(registry: Path, tmp_path: Path) -> None:
    ref = parse_ref("YOLOX-l/base/1.3")
    for source in (tmp_path / "missing", write(tmp_path, "file.txt", "x")):
        with pytest.raises(NotFound, match="is not a folder"):
            add_version(registry, ref, source, settings=DEFAULTS, repo=None)
    assert not (registry / ref.path).exists()


def test_failed_copy_leaves_nothing_behind(
    registry: Path, run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_copy = registry_add._copy_file
    copied: list[str] = []

    def copy_then_fail(src: Path, dest: Path) -> None:
        if copied:  # the second file: the disk is full
            raise OSError(28, "No space left on device")
        real_copy(src, dest)
        copied.append(src.name)

    monkeypatch.setattr(registry_add, "_copy_file", copy_then_fail)
    ref = parse_ref("YOLOX-l/base/1.3")
    with pytest.raises(RegistryError, match="No space left on device.*Nothing was added"):
        add_version(registry, ref, run_dir, settings=DEFAULTS, repo=GitRepo(registry))
    assert copied
    assert not (registry / ref.path).exists()
    assert leftovers(registry / "YOLOX-l/base") == []
    assert staged_names(registry) == []


# --- init_registry --------------------------------------------------------------------------


def test_init_creates_a_registry(tmp_path: Path) -> None:
    path = tmp_path / "registry"
    report = init_registry(path, bucket="team-models")
    assert report[0] == f"created a git repository in {path}"
    assert "wrote and staged .gitattributes, .lfsconfig, README.md; commit them" in report
    assert "installed lfs-s3-agent in this repository" in report
    assert report[-1] == "LFS objects go to s3://team-models/model-registry/objects/"
    assert (path / ".gitattributes").read_text() == GITATTRIBUTES
    assert git(path, "config", "-f", ".lfsconfig", "lfs.url") == (
        "https://lfs-s3.invalid/team-models/model-registry"
    )
    assert not (path / ".lfs-s3config").exists()
    assert sorted(staged_names(path)) == [".gitattributes", ".lfsconfig", "README.md"]
    assert git(path, "config", "--local", "lfs.standalonetransferagent") == "lfs-s3"
    assert git(path, "config", "--local", "lfs.customtransfer.lfs-s3.concurrent") == "false"
    assert run_check(path) == []


def test_init_store_settings(tmp_path: Path) -> None:
    path = tmp_path / "registry"
    init_registry(
        path,
        bucket="team-models",
        prefix="/team//models/",
        endpoint="https://s3.example.com/",
        region="eu-central-1",
        addressing_style="virtual",
    )
    assert git(path, "config", "-f", ".lfsconfig", "lfs.url") == (
        "https://lfs-s3.invalid/team-models/team/models"
    )
    settings = {
        key: git(path, "config", "-f", ".lfs-s3config", f"lfs-s3.{key}")
        for key in ("endpoint", "region", "addressing-style")
    }
    assert settings == {
        "endpoint": "https://s3.example.com",
        "region": "eu-central-1",
        "addressing-style": "virtual",
    }
    assert ".lfs-s3config" in staged_names(path)


def test_init_with_no_prefix(tmp_path: Path) -> None:
    report = init_registry(tmp_path / "r", bucket="team-models", prefix="")
    assert git(tmp_path / "r", "config", "-f", ".lfsconfig", "lfs.url") == (
        "https://lfs-s3.invalid/team-models"
    )
    assert report[-1] == "LFS objects go to s3://team-models/objects/"


def test_init_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "registry"
    init_registry(path, bucket="team-models", region="eu-west-1")
    before = contents(path)
    report = init_registry(path, bucket="other-bucket", region="us-east-1")
    assert report[:4] == [
        "kept the existing .gitattributes",
        "kept the existing .lfsconfig",
        "kept the existing README.md",
        "kept the existing .lfs-s3config",
    ]
    assert "installed lfs-s3-agent in this repository (already installed)" in report
    assert not any(line.startswith(("created", "wrote")) for line in report)
    assert contents(path) == before


def test_init_completes_an_existing_registry(registry: Path) -> None:
    head = git(registry, "rev-parse", "HEAD")
    report = init_registry(registry, bucket="team-models")
    assert set(report[:3]) == {
        "kept the existing .gitattributes",
        "kept the existing README.md",
        "wrote and staged .lfsconfig; commit them",
    }
    assert git(registry, "rev-parse", "HEAD") == head
    assert staged_names(registry) == [".lfsconfig"]
    commit_all(registry, "lfs config")
    assert run_check(registry, against=head) == []


@pytest.mark.parametrize(
    ("settings", "reason"),
    [
        ({"bucket": "b"}, "a bucket name is 2 to 255"),
        ({"bucket": "-starts-with-dash"}, "a bucket name is 2 to 255"),
        ({"bucket": "ok-bucket", "endpoint": "s3.example.com"}, "expected an http:// or https://"),
        ({"bucket": "ok-bucket", "prefix": "../up"}, "'.' or '..'"),
        ({"bucket": "ok-bucket", "region": " "}, "expected a non-empty value"),
        ({"bucket": "ok-bucket", "addressing_style": "dns"}, "expected one of auto, path"),
    ],
)
def test_init_refuses_invalid_settings(
    tmp_path: Path, settings: dict[str, str], reason: str
) -> None:
    path = tmp_path / "registry"
    with pytest.raises(RegistryError, match=reason):
        init_registry(path, **settings)
    assert not path.exists()


def test_gitattributes_track_every_default_lfs_pattern() -> None:
    tracked = [
        line.split()[0]
        for line in GITATTRIBUTES.splitlines()
        if line and not line.startswith("#") and "filter=lfs" in line
    ]
    assert sorted(tracked) == sorted(CheckSettings().lfs)
    for pattern in CheckSettings().lfs:
        assert any(fnmatch.fnmatch("checkpoint" + pattern[1:], t) for t in tracked)


def test_init_inside_another_repository(tmp_path: Path) -> None:
    outer = tmp_path / "monorepo"
    git(tmp_path, "init", "-q", str(outer))
    path = outer / "models"
    try:
        init_registry(path, bucket="team-models")
    except RegistryError:
        return  # refusing, with a reason, is fine too
    top = Path(git(path, "rev-parse", "--show-toplevel"))
    assert top.resolve() == path.resolve()
