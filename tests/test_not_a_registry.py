"""Commands run where there is no registry refuse, naming the folder and `model-registry init`
(issue 13, finding 1): an empty folder, a plain git repository, a registry's parent folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from registry import NotARegistry, resolve
from registry.repo.detect import is_registry, registries_below
from tests.registry_repos import (
    git,
    invoke,
    make_registry,
    staged_names,
    version_files,
    write,
)

pytestmark = [
    pytest.mark.skipif(shutil.which("git-lfs") is None, reason="git-lfs not installed"),
    pytest.mark.usefixtures("isolated_git"),
]


def tree(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return version_files(tmp_path / "run", "run")


@pytest.mark.parametrize(
    "args",
    [("check",), ("list",), ("show", "YOLOX-l/base/1.2"), ("next", "YOLOX-l/base", "--minor")],
)
def test_reading_commands_refuse_an_empty_folder(tmp_path: Path, args: tuple[str, ...]) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    # `check` takes the folder as an argument, the others as --root.
    where = [str(empty)] if args[0] == "check" else ["--root", str(empty)]
    result = invoke(*args, *where)
    assert result.exit_code == 1
    assert f"'{empty}' is not a model registry" in result.stderr
    assert "model-registry init --bucket BUCKET" in result.stderr
    assert "0 problems" not in result.output


def test_add_refuses_an_empty_folder_and_writes_nothing(tmp_path: Path, run_dir: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = invoke("add", "YOLOX-l/base/1.0", "--from", run_dir, "--root", empty)
    assert result.exit_code == 1
    assert f"'{empty}' is not a model registry" in result.stderr
    assert tree(empty) == []


def test_add_refuses_a_plain_git_repository_and_stages_nothing(
    tmp_path: Path, run_dir: Path
) -> None:
    plain = tmp_path / "app"
    git(tmp_path, "init", "-q", str(plain))
    write(plain, "main.py", "print('hi')\n")
    result = invoke("add", "YOLOX-l/base/1.0", "--from", run_dir, "--root", plain)
    assert result.exit_code == 1
    assert f"'{plain}' is not a model registry" in result.stderr
    assert staged_names(plain) == []
    assert not (plain / "YOLOX-l").exists()


def test_check_from_a_registrys_parent_names_the_registries_below(tmp_path: Path) -> None:
    parent = tmp_path / "work"
    parent.mkdir()
    first = make_registry(parent / "model-registry")
    second = make_registry(parent / "other-registry")
    (parent / "notes").mkdir()
    result = invoke("check", parent)
    assert result.exit_code == 1
    assert result.stdout == ""  # no finding per sibling folder
    assert (
        f"'{parent}' is not a model registry, but it holds the registries model-registry/, "
        "other-registry/: run the command inside one (cd model-registry) or pass it as --root"
    ) in result.stderr
    assert registries_below(parent) == [first, second]


def test_library_resolve_refuses_a_plain_folder(tmp_path: Path) -> None:
    folder = tmp_path / "models"
    version_files(folder / "YOLOX-l" / "base" / "1.2")
    with pytest.raises(NotARegistry, match="is not a model registry"):
        resolve("YOLOX-l/base/1.2", root=folder)


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        (".lfsconfig", '[lfs]\n\turl = "https://lfs-s3.invalid/bucket/registry"\n', True),
        (".lfsconfig", "[lfs]\n\turl = https://git.example.com/team/repo.git/info/lfs\n", False),
        ("model-registry.toml", "", True),
        (".lfs-s3config", "[lfs-s3]\n\tregion = eu-west-1\n", True),
        (".gitattributes", "*.pth filter=lfs diff=lfs merge=lfs -text\n", False),
    ],
)
def test_what_makes_a_registry(tmp_path: Path, name: str, text: str, expected: bool) -> None:
    write(tmp_path, name, text)
    assert is_registry(tmp_path) is expected


def test_a_registry_made_by_init_is_one(tmp_path: Path) -> None:
    result = invoke("init", tmp_path / "reg", "--bucket", "models")
    assert result.exit_code == 0, result.output
    assert is_registry(tmp_path / "reg")
    assert invoke("check", tmp_path / "reg").exit_code == 0
