"""registry.repo.location.locate (and resolve's `root`) on checkouts, bare clones and copies."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from registry import resolve
from registry.errors import InvalidReference, NotARegistry, NotFound, RegistryError, RepoError
from registry.repo.location import Location, locate
from tests.registry_fixtures import (
    GitEnv,
    Registry,
    build_registry,
    clone,
    copy_without_git,
)

# git runs in-process with an isolated HOME (the `isolated` fixture in conftest.py).
pytestmark = pytest.mark.usefixtures("isolated")


@pytest.fixture(scope="module")
def registry(git_env: GitEnv, tmp_path_factory: pytest.TempPathFactory) -> Registry:
    reg = build_registry(tmp_path_factory.mktemp("location") / "registry", git_env)
    reg.write("YOLOX-l/base/1.2/sub/x.txt", b"nested\n")
    reg.commit("nested")
    return reg


@pytest.fixture(scope="module")
def copy(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The registry copied without `.git`, as in a Docker image."""
    return copy_without_git(registry.root, tmp_path_factory.mktemp("location") / "copy")


@pytest.fixture(scope="module")
def bare(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("location") / "registry.git"
    return clone(registry.root, dest, registry.env, bare=True)


# --- in a checkout ------------------------------------------------------------------------


def test_locate_from_the_root(registry: Registry) -> None:
    where = locate(registry.root)
    assert where.root == registry.root
    assert where.repo is not None and not where.repo.bare
    assert where.repo.root == registry.root
    assert where.model is None


@pytest.mark.parametrize(
    "sub", ["YOLOX-l/base", "YOLOX-l/base/1.2", "YOLOX-l/base/1.2/sub", "ResNet-50/base"]
)
def test_locate_from_a_subfolder_finds_the_root_and_no_model(registry: Registry, sub: str) -> None:
    where = locate(registry.root / sub)
    assert (where.root, where.model) == (registry.root, None)
    assert where.repo is not None


@pytest.mark.parametrize("model", ["YOLOX-l", "ResNet-50"])
def test_locate_from_a_model_folder_names_the_model(registry: Registry, model: str) -> None:
    where = locate(registry.root / model)
    assert (where.root, where.model) == (registry.root, model)


def test_location_is_immutable(registry: Registry) -> None:
    where = locate(registry.root)
    with pytest.raises(dataclasses.FrozenInstanceError):
        where.model = "YOLOX-l"  # type: ignore[misc]


def test_locate_accepts_str_relative_paths_and_defaults_to_the_current_folder(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    from_str = locate(str(registry.root / "YOLOX-l"))
    assert (from_str.root, from_str.model) == (registry.root, "YOLOX-l")
    monkeypatch.chdir(registry.root.parent)
    assert locate(f"{registry.root.name}/YOLOX-l").model == "YOLOX-l"
    monkeypatch.chdir(registry.root / "YOLOX-l")
    here = locate()
    assert (here.root, here.model) == (registry.root, "YOLOX-l")
    assert str(resolve("base/1.2").ref) == "YOLOX-l/base/1.2"


def test_locate_expands_the_home_folder(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(registry.root.parent))
    where = locate(f"~/{registry.root.name}/YOLOX-l")
    assert (where.root, where.model) == (registry.root, "YOLOX-l")


def test_resolve_infers_the_model_from_a_model_folder(registry: Registry) -> None:
    model_dir = registry.root / "YOLOX-l"
    found = resolve("base/1.2", root=model_dir)
    assert str(found.ref) == "YOLOX-l/base/1.2"
    assert found.path == registry.root / "YOLOX-l/base/1.2"
    assert found.files["config.yaml"].read_bytes() == registry.files(found.ref.path)["config.yaml"]
    # Naming the same model is fine; naming another one is a mistake, not a silent switch.
    assert (
        resolve("YOLOX-l/base/latest", root=model_dir).ref == resolve("base/1", root=model_dir).ref
    )
    with pytest.raises(InvalidReference, match="root is model 'YOLOX-l'"):
        resolve("ResNet-50/base/2.0", root=model_dir)


def test_resolve_from_a_subfolder_needs_the_model_in_the_selector(registry: Registry) -> None:
    inside = registry.root / "YOLOX-l/base"
    assert str(resolve("YOLOX-l/base/1.9", root=inside).ref) == "YOLOX-l/base/1.9"
    with pytest.raises(RegistryError):
        resolve("base/1.9", root=inside)


# --- a bare repository --------------------------------------------------------------------


def test_locate_a_bare_repository(bare: Path) -> None:
    where = locate(bare)
    assert where.repo is not None and where.repo.bare
    assert where.root == bare
    assert where.model is None


# --- a copy without git -------------------------------------------------------------------


def test_locate_a_copy_without_git(copy: Path) -> None:
    assert locate(copy) == Location(copy, None, None)
    assert locate(copy / "YOLOX-l") == Location(copy, None, "YOLOX-l")


def test_resolve_in_a_copy_without_git(registry: Registry, copy: Path) -> None:
    for found in (
        resolve("YOLOX-l/base/1", root=copy),
        resolve("base/1", root=copy / "YOLOX-l"),
    ):
        assert str(found.ref) == "YOLOX-l/base/1.10"
        assert found.path == copy / "YOLOX-l/base/1.10"
        assert found.commit is None
        assert dict(found.objects) == {}
        for name, data in registry.files(found.ref.path).items():
            assert found.files[name] == copy / found.ref.path / name
            assert found.files[name].read_bytes() == data


# --- not a registry -----------------------------------------------------------------------


def test_a_path_that_does_not_exist_is_not_a_registry(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "registry"
    with pytest.raises(NotARegistry, match="is not a folder") as caught:
        locate(missing)
    assert str(missing) in str(caught.value)
    with pytest.raises(NotARegistry):
        resolve("YOLOX-l/base/1.2", root=missing)


def test_a_file_is_not_a_registry(registry: Registry) -> None:
    with pytest.raises(NotARegistry, match="is not a folder"):
        locate(registry.root / "YOLOX-l/base/README.md")


def test_a_url_root_is_refused_clearly_where_only_checkouts_work() -> None:
    url = "https://example.com/reg.git"
    with pytest.raises(RegistryError) as caught:
        locate(url)
    assert not isinstance(caught.value, NotARegistry | NotFound)
    message = str(caught.value)
    assert url in message
    assert "only a registry checkout (a local path) is supported" in message
    assert "clone the registry" in message
    with pytest.raises(RegistryError, match="clone the registry"):
        resolve("YOLOX-l/base/1.2", root=url)
    # `locate` is for checkouts; resolve reads s3:// roots itself (tests/test_remote.py).
    with pytest.raises(RegistryError, match="only a registry checkout"):
        locate("s3://my-bucket/model-registry")


# --- known bugs ---------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["symlink", "dotdot"])
def test_locate_through_a_symlink_or_dotdot(registry: Registry, tmp_path: Path, how: str) -> None:
    if how == "symlink":
        link = tmp_path / "models"
        link.symlink_to(registry.root, target_is_directory=True)
        start = link / "YOLOX-l"
    else:
        start = registry.root / "YOLOX-l" / "base" / ".."
    where = locate(start)
    assert where.root.resolve() == registry.root.resolve()
    assert where.model == "YOLOX-l"
    assert str(resolve("base/1.2", root=start).ref) == "YOLOX-l/base/1.2"


@pytest.mark.parametrize("name", ["models", "model-registry"])
def test_a_copy_inside_another_git_work_tree(
    registry: Registry, git_env: GitEnv, tmp_path: Path, name: str
) -> None:
    app = tmp_path / "app"
    git_env.git(tmp_path, "init", "-q", str(app))
    (app / "main.py").write_text("print('app')\n")
    git_env.git(app, "add", "main.py")
    git_env.git(app, "commit", "-q", "-m", "app")
    copy = copy_without_git(registry.root, app / name)
    found = resolve("YOLOX-l/base/1.2", root=copy)
    assert found.path == copy / "YOLOX-l/base/1.2"


@pytest.mark.parametrize(
    ("how", "says"),
    [
        ("format-version", "Expected git repo version"),
        ("dubious-ownership", "safe.directory"),
        ("git-dir", "not in a work tree"),
    ],
)
def test_an_unusable_git_checkout_is_an_error_not_a_copy(
    registry: Registry, git_env: GitEnv, tmp_path: Path, how: str, says: str
) -> None:
    """Git's own explanation must reach the user; today the checkout silently loses its git
    (no commit, no pull) and resolve succeeds or later says to run a pull that cannot work."""
    checkout = clone(registry.root, tmp_path / "checkout", git_env)
    start = checkout
    if how == "format-version":
        git_env.git(checkout, "config", "core.repositoryformatversion", "99")
    elif how == "dubious-ownership":
        if os.geteuid() != 0:
            pytest.skip("needs root to give the checkout to another user")
        for path in [checkout, *checkout.rglob("*")]:
            os.lchown(path, 54321, 54321)
    else:
        start = checkout / ".git"
    with pytest.raises(RepoError, match=says):
        locate(start)
