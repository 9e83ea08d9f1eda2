"""The `model-registry` CLI through click's CliRunner, on real git repositories in tmp_path."""

from __future__ import annotations

import datetime
import hashlib
import json
import shutil
from pathlib import Path

import click
import pytest

from registry.cli import cli
from registry.repo.checks import check
from registry.repo.gitrepo import GitRepo
from registry.repo.layout import CheckoutSource
from tests.registry_repos import (
    MODEL,
    commit_all,
    git,
    invoke,
    make_registry,
    staged_names,
    staged_pointer,
    version_files,
    write,
)

pytestmark = [
    pytest.mark.skipif(shutil.which("git-lfs") is None, reason="git-lfs not installed"),
    pytest.mark.usefixtures("isolated_git"),
]


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    return make_registry(tmp_path / "registry")


def oid(data: str) -> str:
    return hashlib.sha256(data.encode()).hexdigest()


def tree(root: Path) -> dict[str, bytes]:
    """Every file under `root` (.git excluded), to show that a command changed nothing."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(root).parts
    }


# --- check ----------------------------------------------------------------------------------


def test_check_clean(registry: Path) -> None:
    result = invoke("check", registry)
    assert result.exit_code == 0
    assert result.stdout == ""
    assert result.stderr == f"0 problems in {registry}\n"


def test_check_defaults_to_the_current_directory(
    registry: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (registry / "YOLOX-l/base/README.md").unlink()
    monkeypatch.chdir(registry / MODEL / "projectA")
    result = invoke("check")
    assert result.exit_code == 1
    assert result.stdout.startswith("YOLOX-l/base/README.md: [readme] ")
    assert result.stderr == f"1 problem in {registry}\n"


def test_check_prints_one_line_per_problem(registry: Path) -> None:
    (registry / "YOLOX-l/base/1.2/log.txt").unlink()
    write(registry, "YOLOX-l/projectA/1.2.3/config.yaml", "lr: [\n")
    version_files(registry / "YOLOX-l/projectA/7.0.0")
    expected = check(CheckoutSource(registry), repo=GitRepo(registry))
    result = invoke("check", registry)
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [str(f) for f in expected]
    assert [line.split()[1] for line in result.stdout.splitlines()] == [
        "[missing-file]",
        "[config]",
        "[base-missing]",
    ]
    assert result.stderr == f"3 problems in {registry}\n"


def test_check_json(registry: Path) -> None:
    clean = invoke("check", registry, "--format", "json")
    assert clean.exit_code == 0
    assert json.loads(clean.stdout) == []

    (registry / "YOLOX-l/pretrained/README.md").unlink()
    (registry / "YOLOX-l/base/1.3").mkdir()
    result = invoke("check", registry, "--format", "json")
    assert result.exit_code == 1
    found = json.loads(result.stdout)
    assert [set(f) for f in found] == [{"path", "rule", "message"}] * 2
    assert [(f["path"], f["rule"]) for f in found] == [
        ("YOLOX-l/base/1.3", "empty"),
        ("YOLOX-l/pretrained/README.md", "readme"),
    ]
    assert all(f["message"] for f in found)


def test_check_against(registry: Path) -> None:
    write(registry, "YOLOX-l/base/1.2/config.yaml", "lr: 0.5\n")
    git(registry, "add", "-A")
    result = invoke("check", registry, "--against", "HEAD")
    assert result.exit_code == 1
    assert result.stdout.startswith(
        "YOLOX-l/base/1.2/config.yaml: [changed] config.yaml was modified in released version"
    )
    unknown = invoke("check", registry, "--against", "v9")
    assert unknown.exit_code == 1
    assert "Error: unknown revision 'v9'" in unknown.stderr


def test_check_outside_any_folder(tmp_path: Path) -> None:
    result = invoke("check", tmp_path / "missing")
    assert result.exit_code == 1
    assert "is not a folder" in result.stderr


def test_check_a_copy_without_git(registry: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(registry, copy, ignore=shutil.ignore_patterns(".git"))
    result = invoke("check", copy)
    assert result.exit_code == 0
    assert result.stderr == f"0 problems in {copy}\n"


def test_check_against_needs_git(registry: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(registry, copy, ignore=shutil.ignore_patterns(".git"))
    write(copy, "YOLOX-l/base/1.2/config.yaml", "lr: 0.5\n")  # would be a `changed` finding
    result = invoke("check", copy, "--against", "main")
    assert result.exit_code == 1
    assert "Error: " in result.stderr


# --- list -----------------------------------------------------------------------------------


@pytest.fixture
def bigger(registry: Path) -> Path:
    for version in ("base/1.9", "base/1.10", "projectA/1.10.0"):
        version_files(registry / MODEL / version)
    version_files(registry / "ResNet-50/base/0.1")
    write(registry, "ResNet-50/base/README.md", "# ResNet-50\n")
    commit_all(registry, "more models")
    return registry


def test_list(bigger: Path) -> None:
    result = invoke("list", "--root", bigger)
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert [line.split() for line in lines] == [
        ["MODEL", "SCOPE", "VERSIONS", "NEWEST"],
        ["ResNet-50", "base", "0.1", "0.1"],
        ["YOLOX-l", "base", "1.2,", "1.9,", "1.10", "1.10"],
        ["YOLOX-l", "pretrained", "2024-05-01", "2024-05-01"],
        ["YOLOX-l", "projectA", "1.2.3,", "1.10.0", "1.10.0"],
    ]
    for column in ("SCOPE", "VERSIONS", "NEWEST"):  # aligned columns
        start = lines[0].index(column)
        assert all(line[start - 2 : start] == "  " and line[start] != " " for line in lines)


def test_list_one_model(bigger: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(bigger)
    result = invoke("list", "ResNet-50")
    assert result.exit_code == 0
    assert [line.split() for line in result.stdout.splitlines()] == [
        ["MODEL", "SCOPE", "VERSIONS", "NEWEST"],
        ["ResNet-50", "base", "0.1", "0.1"],
    ]


def test_list_unknown_model(bigger: Path) -> None:
    result = invoke("list", "ResNet-18", "--root", bigger)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == "Error: no model 'ResNet-18'; available: ResNet-50, YOLOX-l\n"


def test_list_at_a_revision_and_in_a_bare_repository(bigger: Path, tmp_path: Path) -> None:
    (bigger / "ResNet-50").rename(tmp_path / "moved")  # not committed: --rev does not see it
    at_head = invoke("list", "--root", bigger, "--rev", "HEAD")
    assert at_head.exit_code == 0
    assert "ResNet-50" in at_head.stdout
    assert "ResNet-50" not in invoke("list", "--root", bigger).stdout

    bare = tmp_path / "bare.git"
    git(tmp_path, "clone", "-q", "--bare", str(bigger), str(bare))
    in_bare = invoke("list", "--root", bare)
    assert in_bare.exit_code == 0
    assert in_bare.stdout == at_head.stdout


# --- show -----------------------------------------------------------------------------------


def test_show(registry: Path) -> None:
    head = git(registry, "rev-parse", "HEAD")
    result = invoke("show", "YOLOX-l/base/1", "--root", registry)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[:2] == ["YOLOX-l/base/1.2", f"commit  {head}"]
    files = {line.split()[0]: line.split()[1:] for line in lines[2:6]}
    pth = "weights of base/1.2\n"
    onnx = "onnx of base/1.2\n"
    assert files["checkpoint.pth"] == [str(len(pth)), "bytes", "lfs", f"sha256:{oid(pth)}"]
    assert files["checkpoint.onnx"] == [str(len(onnx)), "bytes", "lfs", f"sha256:{oid(onnx)}"]
    config = (registry / "YOLOX-l/base/1.2/config.yaml").read_bytes()
    assert files["config.yaml"] == [str(len(config)), "bytes"]
    assert lines[6:] == ["  | # YOLOX-l base", "  | ", "  | What these are for."]


def test_show_at_a_revision(registry: Path) -> None:
    result = invoke("show", "YOLOX-l/projectA/latest", "--root", registry, "--rev", "HEAD")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == "YOLOX-l/projectA/1.2.3"
    assert f"lfs sha256:{oid('weights of projectA/1.2.3' + chr(10))}" in result.stdout


def test_show_a_version_not_committed_yet(registry: Path) -> None:
    version_files(registry / "YOLOX-l/base/1.3")
    result = invoke("show", "YOLOX-l/base/1.3", "--root", registry)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[1] == "commit  (not committed)"
    assert "lfs" not in result.stdout


def test_show_only_the_first_readme_lines(registry: Path) -> None:
    write(registry, "YOLOX-l/base/README.md", "".join(f"line {i}\n" for i in range(10)))
    result = invoke("show", "YOLOX-l/base/1.2", "--root", registry)
    assert [line for line in result.stdout.splitlines() if line.startswith("  | ")] == [
        f"  | line {i}" for i in range(5)
    ]


def test_show_missing_version(registry: Path) -> None:
    result = invoke("show", "YOLOX-l/base/2", "--root", registry)
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: no version of YOLOX-l/base matches 'YOLOX-l/base/2'")


# --- resolve --------------------------------------------------------------------------------


def test_resolve(registry: Path) -> None:
    result = invoke("resolve", "YOLOX-l/base/latest", "--root", registry)
    assert result.exit_code == 0, result.output
    folder = registry / "YOLOX-l/base/1.2"
    assert result.stdout.splitlines() == [
        f"YOLOX-l/base/1.2  {folder}",
        *(f"  {n}  {folder / n}" for n in sorted(p.name for p in folder.iterdir())),
    ]


def test_resolve_json(registry: Path) -> None:
    head = git(registry, "rev-parse", "HEAD")
    result = invoke("resolve", "YOLOX-l/projectA/1.2", "--root", registry, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) == {"ref", "path", "commit", "files", "objects"}
    folder = registry / "YOLOX-l/projectA/1.2.3"
    assert data["ref"] == "YOLOX-l/projectA/1.2.3"
    assert data["path"] == str(folder)
    assert data["commit"] == head
    assert data["files"] == {
        n: str(folder / n) for n in ("checkpoint.pth", "config.yaml", "log.txt")
    }
    pth = "weights of projectA/1.2.3\n"
    assert data["objects"] == {"checkpoint.pth": {"oid": oid(pth), "size": len(pth)}}


def test_resolve_from_a_model_folder(registry: Path) -> None:
    result = invoke("resolve", "YOLOX-l/pretrained/latest", "--root", registry / MODEL, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["ref"] == "YOLOX-l/pretrained/2024-05-01"
    other = invoke("resolve", "YOLOX-s/base/1", "--root", registry / MODEL)
    assert other.exit_code == 2
    assert "names model 'YOLOX-s' but the root is model 'YOLOX-l'" in other.stderr


def test_resolve_without_the_model_from_a_model_folder(registry: Path) -> None:
    result = invoke("resolve", "pretrained/latest", "--root", registry / MODEL, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["ref"] == "YOLOX-l/pretrained/2024-05-01"


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ("YOLOX-l/base/v1.2", "drop the 'v' (write '1.2')"),
        ("YOLOX-l/base/1.2.3", "Base versions are X.Y"),
        ("yolox/base/1.2", "invalid model name 'yolox'"),
        ("YOLOX-l/1.2", "expected {model}/{scope}/{version}"),
    ],
)
def test_resolve_a_reference_that_does_not_parse(registry: Path, spec: str, reason: str) -> None:
    result = invoke("resolve", spec, "--root", registry)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert reason in result.stderr
    assert "Usage: " in result.stderr


def test_resolve_a_missing_version(registry: Path) -> None:
    result = invoke("resolve", "YOLOX-l/base/1.3", "--root", registry)
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("Error: no version of YOLOX-l/base matches 'YOLOX-l/base/1.3'")
    assert "available: 1.2" in lines[0]


def test_resolve_a_missing_model(registry: Path) -> None:
    result = invoke("resolve", "YOLOX-s/base/1", "--root", registry)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"Error: no model 'YOLOX-s' in the registry at '{registry}'; available: YOLOX-l; "
        "did you mean 'YOLOX-l'?"
    ]


# --- add ------------------------------------------------------------------------------------


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A training run's output folder, outside the registry."""
    return version_files(tmp_path / "run", "run", onnx=True)


def test_add(registry: Path, run_dir: Path) -> None:
    result = invoke("add", "YOLOX-l/base/1.3", "--from", run_dir, "--root", registry)
    assert result.exit_code == 0, result.output
    dest = registry / "YOLOX-l/base/1.3"
    assert (
        result.stdout == f"added YOLOX-l/base/1.3 at {dest}; review and commit it ('git commit')\n"
    )
    assert tree(dest) == tree(run_dir)
    assert staged_names(registry) == [
        f"YOLOX-l/base/1.3/{n}"
        for n in ("checkpoint.onnx", "checkpoint.pth", "config.yaml", "log.txt")
    ]
    assert staged_pointer(registry, "YOLOX-l/base/1.3/checkpoint.pth")
    assert invoke("check", registry).exit_code == 0


def test_add_from_the_current_directory(
    registry: Path, run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(registry)
    result = invoke("add", "YOLOX-l/projectA/1.2.4", "--from", run_dir)
    assert result.exit_code == 0, result.output
    assert len(staged_names(registry)) == 4


def test_add_refuses_an_existing_version(registry: Path, run_dir: Path) -> None:
    before = tree(registry)
    result = invoke("add", "YOLOX-l/base/1.2", "--from", run_dir, "--root", registry)
    assert result.exit_code == 1
    assert "Error: YOLOX-l/base/1.2 already exists" in result.stderr
    assert "released versions are immutable" in result.stderr
    assert tree(registry) == before
    assert staged_names(registry) == []


def test_add_refuses_a_folder_missing_a_required_file(registry: Path, run_dir: Path) -> None:
    (run_dir / "log.txt").unlink()
    before = tree(registry)
    result = invoke("add", "YOLOX-l/base/1.3", "--from", run_dir, "--root", registry)
    assert result.exit_code == 1
    assert "lacks log.txt" in result.stderr
    assert tree(registry) == before
    assert not (registry / "YOLOX-l/base/1.3").exists()
    assert list((registry / "YOLOX-l/base").glob(".*adding*")) == []
    assert staged_names(registry) == []


def test_add_follows_required_in_model_registry_toml(registry: Path, tmp_path: Path) -> None:
    write(registry, "model-registry.toml", '[check]\nrequired = ["config.yaml"]\n')
    only_config = tmp_path / "only-config"
    write(only_config, "config.yaml", "lr: 0.1\n")
    result = invoke("add", "YOLOX-l/base/1.3", "--from", only_config, "--root", registry)
    assert result.exit_code == 0, result.output
    assert staged_names(registry) == ["YOLOX-l/base/1.3/config.yaml"]


def test_add_refuses_a_project_version_without_its_base(registry: Path, run_dir: Path) -> None:
    before = tree(registry)
    result = invoke("add", "YOLOX-l/projectA/2.0.0", "--from", run_dir, "--root", registry)
    assert result.exit_code == 1
    assert "base 2.0" in result.stderr and "register it first" in result.stderr
    assert tree(registry) == before
    assert not (registry / "YOLOX-l/projectA/2.0.0").exists()


def test_add_usage_errors(registry: Path, run_dir: Path, tmp_path: Path) -> None:
    bad_ref = invoke("add", "YOLOX-l/base/1", "--from", run_dir, "--root", registry)
    assert bad_ref.exit_code == 2
    assert "Base versions are X.Y" in bad_ref.stderr
    no_dir = invoke("add", "YOLOX-l/base/1.3", "--from", tmp_path / "nope", "--root", registry)
    assert no_dir.exit_code == 2
    no_from = invoke("add", "YOLOX-l/base/1.3", "--root", registry)
    assert no_from.exit_code == 2
    assert "--from" in no_from.stderr
    assert not (registry / "YOLOX-l/base/1.3").exists()


# --- next -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["YOLOX-l/base", "--minor"], "YOLOX-l/base/1.3"),
        (["YOLOX-l/base", "--major"], "YOLOX-l/base/2.0"),
        (["YOLOX-l/projectA", "--patch"], "YOLOX-l/projectA/1.2.4"),
        (["YOLOX-l/projectA"], "YOLOX-l/projectA/1.2.4"),
        (["YOLOX-l/projectB", "--patch"], "YOLOX-l/projectB/1.2.0"),
        (["ResNet-50/base", "--minor"], "ResNet-50/base/0.1"),
        (["ResNet-50/base", "--major"], "ResNet-50/base/1.0"),
    ],
)
def test_next(registry: Path, args: list[str], expected: str) -> None:
    result = invoke("next", *args, "--root", registry)
    assert result.exit_code == 0, result.output
    assert result.stdout == expected + "\n"


def test_next_project_on_a_chosen_base(registry: Path) -> None:
    version_files(registry / "YOLOX-l/base/1.3")
    newest = invoke("next", "YOLOX-l/projectA", "--patch", "--root", registry)
    assert newest.stdout == "YOLOX-l/projectA/1.3.0\n"
    chosen = invoke("next", "YOLOX-l/projectA", "--patch", "--base", "1.2", "--root", registry)
    assert chosen.exit_code == 0
    assert chosen.stdout == "YOLOX-l/projectA/1.2.4\n"


def test_next_pretrained_is_today(registry: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(registry)
    before = datetime.date.today().isoformat()
    result = invoke("next", "YOLOX-l/pretrained")
    after = datetime.date.today().isoformat()
    assert result.exit_code == 0
    assert result.stdout in {f"YOLOX-l/pretrained/{d}\n" for d in (before, after)}


def test_next_pretrained_already_registered_today(registry: Path) -> None:
    today = datetime.date.today().isoformat()
    version_files(registry / f"YOLOX-l/pretrained/{today}")
    result = invoke("next", "YOLOX-l/pretrained", "--root", registry)
    if datetime.date.today().isoformat() != today:  # midnight passed meanwhile
        pytest.skip("the date changed during the test")
    assert result.exit_code == 1
    assert f"pretrained/{today} already exists" in result.stderr


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["YOLOX-l/base", "--patch"], "base versions are X.Y: use --major"),
        (["YOLOX-l/base"], "base versions are X.Y: use --major"),
        (["YOLOX-l/projectA", "--major"], "project versions X.Y.Z follow the base X.Y"),
        (["YOLOX-l/projectA", "--minor"], "project versions X.Y.Z follow the base X.Y"),
        (["YOLOX-l/projectA", "--base", "1.7"], "base 1.7 does not exist; available: 1.2"),
        (["ResNet-50/projectA", "--patch"], "no base version to fine-tune from"),
    ],
)
def test_next_refuses(registry: Path, args: list[str], reason: str) -> None:
    result = invoke("next", *args, "--root", registry)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("Error: ")
    assert reason in result.stderr


def test_next_refuses_a_bump_for_pretrained(registry: Path) -> None:
    result = invoke("next", "YOLOX-l/pretrained", "--major", "--root", registry)
    assert result.exit_code == 1


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["YOLOX-l"], "invalid reference 'YOLOX-l/latest'"),
        (["YOLOX-l/base/1.2", "--minor"], "invalid reference"),
        (["YOLOX-l/projectA", "--base", "1.x"], "'x' is not a number"),
        (["YOLOX-l/Base", "--minor"], "write 'base'"),
    ],
)
def test_next_usage_errors(registry: Path, args: list[str], reason: str) -> None:
    result = invoke("next", *args, "--root", registry)
    assert result.exit_code == 2
    assert reason in result.stderr


# --- init -----------------------------------------------------------------------------------


def test_init_with_every_option(tmp_path: Path) -> None:
    path = tmp_path / "new-registry"
    result = invoke(
        "init", path, "--bucket", "my-bucket", "--prefix", "team/models",
        "--endpoint", "http://127.0.0.1:9000", "--region", "eu-west-1",
        "--addressing-style", "path",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (path / ".git").is_dir()
    assert "*.pth filter=lfs diff=lfs merge=lfs -text" in (path / ".gitattributes").read_text()
    assert "*.onnx filter=lfs" in (path / ".gitattributes").read_text()
    lfsconfig = (path / ".lfsconfig").read_text()
    assert git(path, "config", "-f", ".lfsconfig", "lfs.url") == (
        "https://lfs-s3.invalid/my-bucket/team/models"
    )
    assert "[lfs]" in lfsconfig
    assert git(path, "config", "-f", ".lfs-s3config", "lfs-s3.endpoint") == "http://127.0.0.1:9000"
    assert git(path, "config", "-f", ".lfs-s3config", "lfs-s3.region") == "eu-west-1"
    assert git(path, "config", "-f", ".lfs-s3config", "lfs-s3.addressing-style") == "path"
    assert (path / "README.md").read_text().startswith("# model-registry")
    assert git(path, "config", "--local", "lfs.standalonetransferagent") == "lfs-s3"
    assert git(path, "config", "--local", "lfs.customtransfer.lfs-s3.path")
    assert "s3://my-bucket/team/models/objects/" in result.stdout
    assert sorted(staged_names(path)) == [
        ".gitattributes",
        ".lfs-s3config",
        ".lfsconfig",
        "README.md",
    ]


def test_init_without_store_settings_writes_no_lfs_s3config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke("init", "--bucket", "my-bucket")
    assert result.exit_code == 0, result.output
    assert not (tmp_path / ".lfs-s3config").exists()
    assert git(tmp_path, "config", "-f", ".lfsconfig", "lfs.url") == (
        "https://lfs-s3.invalid/my-bucket/model-registry"
    )
    assert "created a git repository" in result.stdout
    assert invoke("check").exit_code == 0


def test_init_twice_keeps_existing_files(tmp_path: Path) -> None:
    path = tmp_path / "reg"
    first = invoke("init", path, "--bucket", "first-bucket", "--region", "eu-west-1")
    assert first.exit_code == 0, first.output
    write(path, "README.md", "# our own README\n")
    before = tree(path)
    second = invoke("init", path, "--bucket", "second-bucket", "--region", "us-east-1")
    assert second.exit_code == 0, second.output
    for name in (".gitattributes", ".lfsconfig", ".lfs-s3config", "README.md"):
        assert f"kept the existing {name}" in second.stdout
    assert "created a git repository" not in second.stdout
    assert "already installed" in second.stdout
    assert tree(path) == before
    assert git(path, "config", "--local", "lfs.standalonetransferagent") == "lfs-s3"


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["--bucket", "x"], "a bucket name is 2 to 255 letters"),
        (["--bucket", "bad bucket"], "a bucket name is 2 to 255 letters"),
        (["--bucket", "ok-bucket", "--endpoint", "ftp://host"], "expected an http:// or https://"),
        (["--bucket", "ok-bucket", "--prefix", "a/../b"], "'.' or '..'"),
    ],
)
def test_init_refuses_invalid_settings(tmp_path: Path, args: list[str], reason: str) -> None:
    path = tmp_path / "reg"
    result = invoke("init", path, *args)
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ")
    assert reason in result.stderr
    assert not path.exists()


def test_init_refuses_an_unknown_addressing_style(tmp_path: Path) -> None:
    result = invoke("init", tmp_path / "reg", "--bucket", "b1", "--addressing-style", "dns")
    assert result.exit_code == 2
    assert "'dns' is not one of" in result.stderr


def test_init_needs_a_bucket(tmp_path: Path) -> None:
    result = invoke("init", tmp_path / "reg")
    assert result.exit_code == 2
    assert "Missing option '--bucket'" in result.stderr


def test_init_add_commit_check(tmp_path: Path) -> None:
    path = tmp_path / "reg"
    assert invoke("init", path, "--bucket", "team-models").exit_code == 0
    run = version_files(tmp_path / "run", "run")
    assert invoke("add", "YOLOX-l/base/0.1", "--from", run, "--root", path).exit_code == 0
    assert staged_pointer(path, "YOLOX-l/base/0.1/checkpoint.pth")
    readme_missing = invoke("check", path)
    assert readme_missing.stdout.startswith("YOLOX-l/base/README.md: [readme]")
    write(path, "YOLOX-l/base/README.md", "# base\n")
    commit_all(path, "first model")
    assert invoke("check", path, "--against", "HEAD").exit_code == 0


# --- help -----------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [[], *([name] for name in sorted(cli.commands))])
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help(command: list[str], flag: str) -> None:
    result = invoke(*command, flag)
    assert result.exit_code == 0
    assert result.stdout.startswith("Usage: ")
    assert result.stderr == ""


def test_group_help_lists_every_command() -> None:
    result = invoke("--help")
    for name in ("init", "list", "show", "resolve", "check", "add", "next"):
        assert f"  {name} " in result.stdout


def test_every_command_and_option_has_help() -> None:
    assert isinstance(cli, click.Group)
    assert cli.help
    assert set(cli.commands) == {
        "init", "list", "show", "resolve", "check", "add", "next", "publish", "fetch", "cache",
        "doctor",
        "compare", "gate", "history", "yank", "unyank",
    }  # fmt: skip
    missing = []
    pending: list[tuple[str, click.Command]] = [("model-registry", cli)]
    while pending:
        name, command = pending.pop()
        if isinstance(command, click.Group):
            pending += [(f"{name} {sub}", c) for sub, c in sorted(command.commands.items())]
        if not (command.help or "").strip():
            missing.append(name)
        # click cuts the one-line summary at the first period: "e.g." would cut it short.
        if "e.g." in (command.help or "").split("\n")[0]:
            missing.append(f"{name} (summary cut at 'e.g.')")
        with click.Context(command, info_name=name) as ctx:
            for param in command.get_params(ctx):
                if isinstance(param, click.Argument):
                    continue
                assert isinstance(param, click.Option)
                if not (param.help or "").strip():
                    missing.append(f"{name} {param.opts[0]}")
    assert missing == []


def test_version() -> None:
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.stdout.startswith("model-registry, version ")
