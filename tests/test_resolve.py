"""registry.resolve on real registries: selection, the resolved model, errors, and pulling.

Most tests read a pulled registry built once per module (no S3 needed: the working tree keeps
the real bytes git-lfs's clean filter saw). The e2e tests push a registry to a real S3 server
(moto) through our agent, clone it without LFS content, and let `resolve` pull one version
through the real git-lfs and the agent, in-process.
"""

from __future__ import annotations

import dataclasses
import importlib
from pathlib import Path

import pytest

from devtools.s3servers import S3Bucket
from registry import ResolvedModel, resolve
from registry.errors import InvalidReference, NotFound, NotPulled, RegistryError
from registry.repo.pointer import LfsPointer, read_pointer
from tests.gitlfs import GitWorld, agents_under, lfs_objects
from tests.registry_fixtures import (
    GITATTRIBUTES,
    LFS_NAMES,
    GitEnv,
    Registry,
    build_registry,
    clone,
    copy_without_git,
    init_registry,
    pointer_of,
    sha256,
    use_environment,
    version_files,
)

# git runs in-process with an isolated HOME (the `isolated` fixture in conftest.py).
pytestmark = pytest.mark.usefixtures("isolated")


@pytest.fixture(scope="module")
def registry(git_env: GitEnv, tmp_path_factory: pytest.TempPathFactory) -> Registry:
    """FIRST_VERSIONS in one commit, SECOND_VERSIONS in the next (see registry_fixtures)."""
    return build_registry(tmp_path_factory.mktemp("resolve") / "registry", git_env)


@pytest.fixture(scope="module")
def pointer_clone(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clone whose LFS files are pointers (GIT_LFS_SKIP_SMUDGE=1), never pulled."""
    dest = tmp_path_factory.mktemp("resolve") / "pointers"
    return clone(registry.root, dest, registry.env, skip_smudge=True)


@pytest.fixture
def small(git_env: GitEnv, tmp_path: Path) -> Registry:
    """A registry of its own, for tests that change it: base/1.2 committed."""
    reg = init_registry(tmp_path / "registry", git_env)
    reg.add_version("YOLOX-l/base/1.2")
    reg.commit("base 1.2")
    return reg


# --- selection ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("YOLOX-l/base/1.2", "YOLOX-l/base/1.2"),
        ("YOLOX-l/base/1.9", "YOLOX-l/base/1.9"),
        ("YOLOX-l/base/1", "YOLOX-l/base/1.10"),  # 1.10 beats 1.9: numeric, not text, order
        ("YOLOX-l/base/0", "YOLOX-l/base/0.1"),
        ("YOLOX-l/base/latest", "YOLOX-l/base/1.10"),
        ("YOLOX-l/pretrained/latest", "YOLOX-l/pretrained/2024-05-01"),
        ("YOLOX-l/pretrained/2023-12-31", "YOLOX-l/pretrained/2023-12-31"),
        ("YOLOX-l/projectA/1.2", "YOLOX-l/projectA/1.2.3"),  # newest patch on base 1.2
        ("YOLOX-l/projectA/1.2.0", "YOLOX-l/projectA/1.2.0"),
        ("YOLOX-l/projectA/1", "YOLOX-l/projectA/1.3.0"),
        ("YOLOX-l/projectA/latest", "YOLOX-l/projectA/1.3.0"),
        ("ResNet-50/base/latest", "ResNet-50/base/2.0"),
    ],
)
def test_selectors_pick_the_right_version(registry: Registry, spec: str, expected: str) -> None:
    found = resolve(spec, root=registry.root)
    assert str(found.ref) == expected
    assert found.path == registry.root / expected


@pytest.mark.parametrize(
    ("spec", "expected"),
    [("base/1", "YOLOX-l/base/1.10"), ("projectA/latest", "YOLOX-l/projectA/1.3.0")],
)
def test_selectors_without_the_model_from_a_model_folder(
    registry: Registry, spec: str, expected: str
) -> None:
    assert str(resolve(spec, root=registry.root / "YOLOX-l").ref) == expected


def test_root_defaults_to_the_current_folder(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(registry.root / "YOLOX-l" / "base")
    assert str(resolve("YOLOX-l/base/1").ref) == "YOLOX-l/base/1.10"
    monkeypatch.chdir(registry.root / "YOLOX-l")
    assert str(resolve("pretrained/latest").ref) == "YOLOX-l/pretrained/2024-05-01"


# --- the resolved model -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "version", "commit_index"),
    [
        ("YOLOX-l/base/1.2", "YOLOX-l/base/1.2", 0),
        ("YOLOX-l/base/1", "YOLOX-l/base/1.10", 1),
        ("YOLOX-l/pretrained/2023-12-31", "YOLOX-l/pretrained/2023-12-31", 0),
        ("YOLOX-l/projectA/1.2", "YOLOX-l/projectA/1.2.3", 1),
    ],
)
def test_resolved_model_has_paths_commit_and_objects(
    registry: Registry, spec: str, version: str, commit_index: int
) -> None:
    found = resolve(spec, root=registry.root)
    assert isinstance(found, ResolvedModel)
    assert str(found.ref) == version
    assert found.path == registry.root / version
    assert found.path.is_absolute() and found.path.is_dir()
    written = registry.files(version)
    assert sorted(found.files) == sorted(written)
    for name, data in written.items():
        path = found.files[name]
        assert path.is_absolute() and path.is_file()
        assert path == found.path / name
        assert path.read_bytes() == data
    # The commit that last touched the folder: the first commit for a version made then, even
    # though HEAD is the second.
    assert found.commit == registry.last_commit(version)
    assert found.commit == registry.commits[commit_index]
    assert dict(found.objects) == {name: pointer_of(written[name]) for name in LFS_NAMES}
    for name, pointer in found.objects.items():
        content = found.files[name].read_bytes()
        assert (pointer.oid, pointer.size) == (sha256(content), len(content))


def test_resolved_model_is_immutable(registry: Registry) -> None:
    found = resolve("YOLOX-l/base/1.2", root=registry.root)
    with pytest.raises(dataclasses.FrozenInstanceError):
        found.commit = None  # type: ignore[misc]
    with pytest.raises(TypeError):
        found.files["checkpoint.pth"] = Path("/elsewhere")  # type: ignore[index]
    with pytest.raises(TypeError):
        del found.files["config.yaml"]  # type: ignore[attr-defined]
    with pytest.raises(TypeError):
        found.objects["checkpoint.pth"] = LfsPointer("0" * 64, 1)  # type: ignore[index]
    assert "checkpoint.pth" in found.files


def test_uncommitted_versions_have_no_commit(small: Registry) -> None:
    small.add_version("YOLOX-l/base/1.3")
    small.stage("YOLOX-l/base/1.3")
    small.add_version("YOLOX-l/base/1.4")  # not even staged
    for version in ("YOLOX-l/base/1.3", "YOLOX-l/base/1.4"):
        found = resolve(version, root=small.root)
        assert found.commit is None
        assert found.files["checkpoint.pth"].read_bytes() == small.files(version)["checkpoint.pth"]
    assert resolve("YOLOX-l/base/1.2", root=small.root).commit == small.commits[0]


def test_commit_is_the_last_one_that_touched_the_folder(small: Registry) -> None:
    small.write("YOLOX-l/base/1.2/log.txt", b"retrained notes\n")
    touched = small.commit("edit the log of 1.2")
    small.add_version("YOLOX-l/base/1.3")
    later = small.commit("add 1.3")
    assert resolve("YOLOX-l/base/1.2", root=small.root).commit == touched
    assert resolve("YOLOX-l/base/1.2", root=small.root).commit == small.last_commit(
        "YOLOX-l/base/1.2"
    )
    assert resolve("YOLOX-l/base/latest", root=small.root).commit == later


def test_a_repository_without_commits(git_env: GitEnv, tmp_path: Path) -> None:
    reg = init_registry(tmp_path / "fresh", git_env)
    written = reg.add_version("YOLOX-l/base/1.2")
    reg.stage()
    found = resolve("YOLOX-l/base/latest", root=reg.root)
    assert (found.commit, dict(found.objects)) == (None, {})
    assert found.files["log.txt"].read_bytes() == written["log.txt"]


def test_a_copy_without_git_has_no_commit_and_no_objects(
    registry: Registry, tmp_path: Path
) -> None:
    copy = copy_without_git(registry.root, tmp_path / "copy")
    found = resolve("YOLOX-l/projectA/latest", root=copy)
    assert str(found.ref) == "YOLOX-l/projectA/1.3.0"
    assert (found.commit, dict(found.objects)) == (None, {})
    for name, data in registry.files("YOLOX-l/projectA/1.3.0").items():
        assert found.files[name].read_bytes() == data


# --- nothing matches ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "message", "available", "closest"),
    [
        (
            "YOLOX-L/base/1.2",
            "no model 'YOLOX-L' in the registry at '{root}'; available: ResNet-50, YOLOX-l; "
            "did you mean 'YOLOX-l'?",
            ("ResNet-50", "YOLOX-l"),
            "YOLOX-l",
        ),
        (
            "YOLOX-l/projectB/1.2.3",
            "model YOLOX-l has no scope 'projectB'; available: base, pretrained, projectA; "
            "did you mean 'projectA'?",
            ("base", "pretrained", "projectA"),
            "projectA",
        ),
        (
            "ResNet-50/pretrained/latest",
            "model ResNet-50 has no scope 'pretrained'; available: base",
            ("base",),
            None,
        ),
        (
            "YOLOX-l/base/3",
            "no version of YOLOX-l/base matches 'YOLOX-l/base/3'; available: 0.1, 1.2, 1.9, "
            "1.10; did you mean '1.10'?",
            ("0.1", "1.2", "1.9", "1.10"),
            "1.10",
        ),
        (
            "YOLOX-l/base/1.11",
            "no version of YOLOX-l/base matches 'YOLOX-l/base/1.11'; available: 0.1, 1.2, 1.9, "
            "1.10; did you mean '1.10'?",
            ("0.1", "1.2", "1.9", "1.10"),
            "1.10",
        ),
        (
            "YOLOX-l/base/1.5",
            "no version of YOLOX-l/base matches 'YOLOX-l/base/1.5'",
            ("0.1", "1.2", "1.9", "1.10"),
            "1.2",
        ),
        (
            "YOLOX-l/base/0.0",
            "no version of YOLOX-l/base matches 'YOLOX-l/base/0.0'",
            ("0.1", "1.2", "1.9", "1.10"),
            "0.1",
        ),
        (
            "YOLOX-l/pretrained/2024-06-01",
            "available: 2023-12-31, 2024-05-01; did you mean '2024-05-01'?",
            ("2023-12-31", "2024-05-01"),
            "2024-05-01",
        ),
        (
            "YOLOX-l/projectA/1.4",
            "available: 1.2.0, 1.2.3, 1.3.0; did you mean '1.3.0'?",
            ("1.2.0", "1.2.3", "1.3.0"),
            "1.3.0",
        ),
        (
            "YOLOX-l/projectA/2.0.0",
            "no version of YOLOX-l/projectA matches 'YOLOX-l/projectA/2.0.0'",
            ("1.2.0", "1.2.3", "1.3.0"),
            "1.3.0",
        ),
    ],
)
def test_not_found_says_what_exists(
    registry: Registry, spec: str, message: str, available: tuple[str, ...], closest: str | None
) -> None:
    with pytest.raises(NotFound) as caught:
        resolve(spec, root=registry.root)
    error = caught.value
    assert message.format(root=registry.root) in str(error)
    assert error.available == available
    assert error.closest == closest
    if closest is None:
        assert "did you mean" not in str(error)
    assert isinstance(error, LookupError) and isinstance(error, RegistryError)


def test_an_empty_scope_has_no_versions(small: Registry) -> None:
    (small.root / "YOLOX-l" / "projectC").mkdir()
    with pytest.raises(NotFound, match="available: none") as caught:
        resolve("YOLOX-l/projectC/latest", root=small.root)
    assert (caught.value.available, caught.value.closest) == ((), None)


def test_an_empty_version_folder_is_not_found(small: Registry) -> None:
    (small.root / "YOLOX-l" / "base" / "3.0").mkdir()
    with pytest.raises(NotFound, match="version folder YOLOX-l/base/3.0 in .* is empty") as caught:
        resolve("YOLOX-l/base/3.0", root=small.root)
    assert caught.value.wanted == "YOLOX-l/base/3.0"


@pytest.mark.parametrize("spec", ["YOLOX-l/base/v1.2", "YOLOX-l/base/1.2.3", "", "YOLOX-l"])
def test_a_selector_that_does_not_parse(registry: Registry, spec: str) -> None:
    with pytest.raises(InvalidReference):
        resolve(spec, root=registry.root)


@pytest.mark.parametrize("where", ["", "YOLOX-l/base"])
def test_a_selector_without_a_model_outside_a_model_folder(registry: Registry, where: str) -> None:
    with pytest.raises(InvalidReference, match="expected.*pass a model's folder as root"):
        resolve("base/1.2", root=registry.root / where)


@pytest.mark.parametrize("only_hidden", [False, True], ids=["beside-files", "only-hidden"])
def test_hidden_files_are_not_part_of_a_version(small: Registry, only_hidden: bool) -> None:
    if only_hidden:
        small.write("YOLOX-l/base/3.0/.gitkeep", b"")
        with pytest.raises(NotFound, match="is empty"):
            resolve("YOLOX-l/base/3.0", root=small.root)
    else:
        small.write("YOLOX-l/base/1.2/.DS_Store", b"\0\0\0\1Bud1")  # never committed
        found = resolve("YOLOX-l/base/1.2", root=small.root)
        assert sorted(found.files) == sorted(version_files("x"))


# --- repositories without files -----------------------------------------------------------


def test_a_bare_repository_says_to_clone(registry: Registry, tmp_path: Path) -> None:
    bare = clone(registry.root, tmp_path / "registry.git", registry.env, bare=True)
    with pytest.raises(RegistryError) as caught:
        resolve("YOLOX-l/base/1.2", root=bare)
    message = str(caught.value)
    assert "is a bare repository" in message
    assert f"git clone {bare}" in message
    assert not isinstance(caught.value, NotFound | NotPulled)


def test_pointers_with_fetch_false_raise_not_pulled(pointer_clone: Path) -> None:
    command = 'git lfs pull --include "YOLOX-l/base/1.2/**"'
    for root, spec in (
        (pointer_clone, "YOLOX-l/base/1.2"),
        (pointer_clone / "YOLOX-l", "base/1.2"),
    ):
        with pytest.raises(NotPulled) as caught:
            resolve(spec, root=root, fetch=False)
        assert caught.value.command == command
        message = str(caught.value)
        assert (
            "YOLOX-l/base/1.2 is not pulled: checkpoint.onnx, checkpoint.pth are LFS pointers"
            in (message)
        )
        assert f"Run '{command}' in '{pointer_clone}'" in message
    assert read_pointer(pointer_clone / "YOLOX-l/base/1.2/checkpoint.pth") is not None


def test_pointers_in_a_copy_without_git_raise_not_pulled(
    pointer_clone: Path, tmp_path: Path
) -> None:
    copy = copy_without_git(pointer_clone, tmp_path / "copy")
    with pytest.raises(NotPulled) as caught:
        resolve("YOLOX-l/projectA/1.2", root=copy)
    assert caught.value.command == 'git lfs pull --include "YOLOX-l/projectA/1.2.3/**"'


# --- end to end: pulling through git-lfs, the agent and S3 --------------------------------

E2E_VERSIONS = ("YOLOX-l/base/1.2", "YOLOX-l/base/1.10", "YOLOX-l/projectA/1.2.3")
NESTED_LFS = "sub/extra.onnx"  # an LFS file below the version folder: `/**` must reach it


@dataclasses.dataclass
class Pushed:
    world: GitWorld
    clone: Path
    written: dict[str, dict[str, bytes]]  # by version, then by name

    def lfs_oids(self, version: str) -> set[str]:
        return {
            sha256(data)
            for name, data in self.written[version].items()
            if name.endswith((".pth", ".onnx"))
        }

    def delete_objects(self, version: str) -> None:
        client = self.world.bucket.server.client()
        for oid in self.lfs_oids(version):
            key = f"{self.world.prefix}/objects/{oid[:2]}/{oid[2:4]}/{oid}"
            client.delete_object(Bucket=self.world.bucket.name, Key=key)


@pytest.fixture
def pushed(tmp_path: Path, moto_s3: S3Bucket, monkeypatch: pytest.MonkeyPatch) -> Pushed:
    """A registry pushed to moto through the agent, cloned without LFS content (agent installed
    in the clone), and this process's environment made the world's, as resolve's git-lfs
    subprocess needs it (HOME with git-lfs's filters, AWS_* aimed at moto)."""
    world = GitWorld(tmp_path, moto_s3)
    repo = world.new_registry()
    (repo / ".gitattributes").write_text(GITATTRIBUTES)
    written: dict[str, dict[str, bytes]] = {}
    for version in E2E_VERSIONS:
        files = version_files(version, size=2048)
        files[NESTED_LFS] = b"nested " + version.encode() + b"\0" * 100
        written[version] = files
        for name, data in files.items():
            path = repo / version / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    world.git("add", "-A", cwd=repo)
    world.git("commit", "-q", "-m", "versions", cwd=repo)
    remote = world.bare_remote()
    world.git("remote", "add", "origin", str(remote), cwd=repo)
    world.git("push", "-q", "origin", "main", cwd=repo)
    dest = world.root / "clone"
    world.git("clone", "-q", str(remote), str(dest), env={"GIT_LFS_SKIP_SMUDGE": "1"})
    world.agent("install", cwd=dest)
    use_environment(monkeypatch, world.env())
    return Pushed(world, dest, written)


def assert_pointers(pushed: Pushed, version: str) -> None:
    for name, data in pushed.written[version].items():
        if name.endswith((".pth", ".onnx")):
            assert read_pointer(pushed.clone / version / name) == pointer_of(data), name


@pytest.mark.e2e
def test_resolve_pulls_only_that_version(pushed: Pushed, tmp_path: Path) -> None:
    assert lfs_objects(pushed.clone / ".git") == set()
    found = resolve("YOLOX-l/base/1.2", root=pushed.clone)
    written = pushed.written["YOLOX-l/base/1.2"]
    assert sorted(found.files) == sorted(written)
    for name, data in written.items():
        assert found.files[name].read_bytes() == data, name
    assert lfs_objects(pushed.clone / ".git") == pushed.lfs_oids("YOLOX-l/base/1.2")
    assert_pointers(pushed, "YOLOX-l/base/1.10")
    assert_pointers(pushed, "YOLOX-l/projectA/1.2.3")
    assert dict(found.objects) == {
        n: pointer_of(d) for n, d in written.items() if n.endswith((".pth", ".onnx"))
    }
    assert found.commit == pushed.world.git("rev-parse", "HEAD", cwd=pushed.clone).stdout.strip()
    # Pulled now: nothing left to fetch.
    assert resolve("YOLOX-l/base/1.2", root=pushed.clone, fetch=False).files == found.files
    # From the model folder, another version: fetched on its own.
    latest = resolve("base/latest", root=pushed.clone / "YOLOX-l")
    assert str(latest.ref) == "YOLOX-l/base/1.10"
    assert (
        latest.files["checkpoint.pth"].read_bytes()
        == (pushed.written["YOLOX-l/base/1.10"]["checkpoint.pth"])
    )
    assert lfs_objects(pushed.clone / ".git") == pushed.lfs_oids(
        "YOLOX-l/base/1.2"
    ) | pushed.lfs_oids("YOLOX-l/base/1.10")
    assert_pointers(pushed, "YOLOX-l/projectA/1.2.3")
    assert agents_under(tmp_path) == []


@pytest.mark.e2e
def test_fetch_false_raises_not_pulled_and_fetches_nothing(pushed: Pushed) -> None:
    with pytest.raises(NotPulled) as caught:
        resolve("YOLOX-l/base/1.2", root=pushed.clone, fetch=False)
    assert caught.value.command == 'git lfs pull --include "YOLOX-l/base/1.2/**"'
    assert "checkpoint.onnx, checkpoint.pth, sub/extra.onnx are LFS pointers" in str(caught.value)
    assert lfs_objects(pushed.clone / ".git") == set()
    assert_pointers(pushed, "YOLOX-l/base/1.2")


@pytest.mark.e2e
def test_objects_missing_from_s3_raise_not_pulled_naming_the_command(pushed: Pushed) -> None:
    pushed.delete_objects("YOLOX-l/base/1.2")
    with pytest.raises(NotPulled) as caught:
        resolve("YOLOX-l/base/1.2", root=pushed.clone)
    command = 'git lfs pull --include "YOLOX-l/base/1.2/**"'
    assert caught.value.command == command
    message = str(caught.value)
    assert "YOLOX-l/base/1.2 is not pulled" in message
    assert "'git lfs pull' said:" in message
    assert f"Run '{command}' in '{pushed.clone}'" in message
    assert_pointers(pushed, "YOLOX-l/base/1.2")
    assert lfs_objects(pushed.clone / ".git") == set()


@pytest.mark.e2e
def test_not_pulled_says_why_the_pull_failed(pushed: Pushed) -> None:
    pushed.delete_objects("YOLOX-l/base/1.2")
    with pytest.raises(NotPulled) as caught:
        resolve("YOLOX-l/base/1.2", root=pushed.clone)
    assert "is not in the store" in str(caught.value)


@pytest.mark.parametrize(
    "spec", ["../../etc/passwd", "/etc/passwd", "base/../../x", "YOLOX-l/base/1.2\0", "base\\1.2"]
)
def test_hostile_references_are_refused_before_any_io(
    spec: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    resolve_module = importlib.import_module("registry.resolve")  # the package shadows it

    def no_io(*_: object, **__: object) -> None:
        raise AssertionError("the registry was located before the reference was checked")

    monkeypatch.setattr(resolve_module, "locate", no_io)
    with pytest.raises(InvalidReference):
        resolve(spec, root=tmp_path / "no-such-registry")
