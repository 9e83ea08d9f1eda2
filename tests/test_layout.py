"""registry.repo.layout against real git repositories: a checkout and a revision give one view.

The registries are built once per module with the real git and git-lfs (checkpoints are tiny
random files tracked by LFS) in an isolated git configuration; tests only read them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from registry.errors import RepoError
from registry.refs import ModelRef, parse_ref, parse_version
from registry.repo import layout
from registry.repo.gitrepo import GitRepo
from registry.repo.layout import CheckoutSource, FileInfo, Problem, TreeSource
from tests.registry_fixtures import (
    FIRST_VERSIONS,
    LFS_NAMES,
    SECOND_VERSIONS,
    GitEnv,
    Registry,
    build_registry,
    clone,
    init_registry,
    pointer_of,
    sha256,
    version_files,
)

ALL_VERSIONS = sorted(FIRST_VERSIONS + SECOND_VERSIONS)
NESTED = {"sub/x.txt": b"nested\n", "sub/deeper/y.txt": b"deeper\n"}
# Hidden folders anywhere: at the root, in a model, in a scope, inside a version folder.
HIDDEN = {
    ".cache/YOLOX-s/base/1.0/config.yaml": b"hidden model\n",
    "YOLOX-l/.trash/1.0/config.yaml": b"hidden scope\n",
    "YOLOX-l/base/.partial-1.11/config.yaml": b"hidden version\n",
    "YOLOX-l/base/1.2/.ipynb_checkpoints/config.yaml": b"hidden inside a version\n",
}

SourceFactory = Callable[[Path], layout.Source]

# git runs in-process with an isolated HOME (the `isolated` fixture in conftest.py).
pytestmark = pytest.mark.usefixtures("isolated")


def checkout_source(root: Path) -> layout.Source:
    return CheckoutSource(root)


def tree_source(root: Path) -> layout.Source:
    return TreeSource(GitRepo.discover(root))


BOTH = pytest.mark.parametrize(
    "make_source", [checkout_source, tree_source], ids=["checkout", "tree"]
)


@pytest.fixture(scope="module")
def registry(git_env: GitEnv, tmp_path_factory: pytest.TempPathFactory) -> Registry:
    """Two commits of versions, then a third adding nested files and hidden folders."""
    reg = build_registry(tmp_path_factory.mktemp("layout") / "registry", git_env)
    for name, data in NESTED.items():
        reg.write(f"YOLOX-l/base/1.2/{name}", data)
    for path, data in HIDDEN.items():
        reg.write(path, data)
    reg.commit("nested and hidden")
    return reg


@pytest.fixture(scope="module")
def pointer_clone(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clone made with GIT_LFS_SKIP_SMUDGE=1: its checkpoints are LFS pointer files."""
    return clone(
        registry.root,
        tmp_path_factory.mktemp("layout") / "pointers",
        registry.env,
        skip_smudge=True,
    )


@pytest.fixture(scope="module")
def bare_clone(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return clone(
        registry.root, tmp_path_factory.mktemp("layout") / "bare.git", registry.env, bare=True
    )


@pytest.fixture(scope="module")
def misnamed(git_env: GitEnv, tmp_path_factory: pytest.TempPathFactory) -> Registry:
    """Valid versions beside folders whose names break the grammar (all committed)."""
    reg = init_registry(tmp_path_factory.mktemp("layout") / "misnamed", git_env)
    for version in ("YOLOX-l/base/1.2", "YOLOX-l/pretrained/2024-05-01", "YOLOX-l/projectA/1.2.3"):
        reg.add_version(version, {"config.yaml": b"ok\n"})
    for path in BAD_FOLDERS:
        reg.write(f"{path}/config.yaml", b"misnamed\n")
    reg.write("README.md", b"# registry\n")
    reg.write("YOLOX-l/base/README.md", b"# base\n")
    reg.write(".cache/Bad/x.txt", b"hidden, never reported\n")
    reg.commit("misnamed folders")
    return reg


# Each badly named folder, and words its Problem's message must contain.
BAD_FOLDERS: dict[str, tuple[str, ...]] = {
    "YOLOX": ("invalid model name 'YOLOX'", "{algorithm}-{option}"),
    "YOLOX-l/Base": ("invalid scope 'Base'", "write 'base'"),
    "YOLOX-l/2nd-project": ("invalid scope '2nd-project'", "starts with a letter"),
    "YOLOX-l/base/v1.2": ("invalid version 'v1.2'", "drop the 'v'"),
    "YOLOX-l/base/1.2.3": ("invalid version '1.2.3'", "X.Y.Z is for project versions"),
    "YOLOX-l/pretrained/2024-02-30": ("invalid version '2024-02-30'", "not a date"),
    "YOLOX-l/projectA/1.2": ("invalid version '1.2'", "projectA/1.2.0"),
}


def describe(source: layout.Source) -> dict[str, object]:
    """Everything the layout functions say about a source, for comparing two sources."""
    view: dict[str, object] = {"models": layout.models(source)}
    for model in layout.models(source):
        view[model] = layout.scopes(source, model)
        for scope in layout.scopes(source, model):
            found = layout.versions(source, model, scope)
            view[f"{model}/{scope}"] = {str(v): name for v, name in sorted(found.items())}
            for version in found:
                ref = ModelRef(model=model, scope=scope, version=version)
                view[ref.path] = sorted(layout.files(source, ref))
    return view


# --- the two sources agree ----------------------------------------------------------------


def test_checkout_and_tree_give_the_same_view(registry: Registry) -> None:
    checkout = describe(CheckoutSource(registry.root))
    tree = describe(TreeSource(GitRepo(registry.root)))
    assert checkout == tree
    assert checkout["models"] == ["ResNet-50", "YOLOX-l"]
    assert checkout["YOLOX-l"] == ["base", "pretrained", "projectA"]
    assert checkout["YOLOX-l/base"] == {"0.1": "0.1", "1.2": "1.2", "1.9": "1.9", "1.10": "1.10"}
    assert checkout["YOLOX-l/projectA"] == {"1.2.0": "1.2.0", "1.2.3": "1.2.3", "1.3.0": "1.3.0"}
    assert checkout["YOLOX-l/base/1.2"] == sorted([*version_files("x"), *NESTED])


def test_scan_lists_every_version_from_both_sources(registry: Registry) -> None:
    for source in (CheckoutSource(registry.root), TreeSource(GitRepo(registry.root))):
        found = layout.scan(source)
        assert found.problems == []
        assert [str(r) for r in found.refs()] == [str(r) for r in sorted_refs(ALL_VERSIONS)]


def sorted_refs(versions: list[str]) -> list[ModelRef]:
    refs = [parse_ref(v) for v in versions]
    return sorted(refs, key=lambda r: (r.model, r.scope, r.version.parts))


def test_versions_maps_each_version_to_its_folder(registry: Registry) -> None:
    found = layout.versions(CheckoutSource(registry.root), "YOLOX-l", "pretrained")
    assert found == {
        parse_version("pretrained", "2023-12-31"): "2023-12-31",
        parse_version("pretrained", "2024-05-01"): "2024-05-01",
    }
    # Numeric order, not text order.
    assert [
        str(v)
        for v in sorted(layout.versions(TreeSource(GitRepo(registry.root)), "YOLOX-l", "base"))
    ] == [
        "0.1",
        "1.2",
        "1.9",
        "1.10",
    ]


@BOTH
def test_hidden_folders_are_ignored_everywhere(
    registry: Registry, make_source: SourceFactory
) -> None:
    source = make_source(registry.root)
    assert ".cache" not in source.subdirs("")
    assert layout.models(source) == ["ResNet-50", "YOLOX-l"]
    assert ".trash" not in source.subdirs("YOLOX-l")
    assert ".partial-1.11" not in source.subdirs("YOLOX-l/base")
    assert layout.scan(source).problems == []
    names = layout.files(source, parse_ref("YOLOX-l/base/1.2"))
    assert not [n for n in names if n.startswith(".") or "/." in n]


@BOTH
def test_files_lists_plain_files_of_a_folder(
    registry: Registry, make_source: SourceFactory
) -> None:
    source = make_source(registry.root)
    assert source.files("YOLOX-l/base") == ["README.md"]
    assert source.files("YOLOX-l/base/1.2") == sorted(version_files("x"))
    assert source.subdirs("YOLOX-l/base/1.2") == ["sub"]


@BOTH
def test_nested_files_appear_with_their_relative_name(
    registry: Registry, make_source: SourceFactory
) -> None:
    found = layout.files(make_source(registry.root), parse_ref("YOLOX-l/base/1.2"))
    for name, data in NESTED.items():
        info = found[name]
        assert info.name == name
        assert info.path == f"YOLOX-l/base/1.2/{name}"
        assert info.size == len(data)
        assert info.lfs is None


@BOTH
def test_missing_paths_are_empty_not_errors(registry: Registry, make_source: SourceFactory) -> None:
    source = make_source(registry.root)
    assert source.subdirs("No-such/base") == []
    assert source.files("No-such/base") == []
    assert source.subdirs("YOLOX-l/base/README.md") == []
    assert layout.files(source, parse_ref("YOLOX-l/base/7.7")) == {}
    assert layout.scopes(source, "No-such") == []
    assert layout.versions(source, "YOLOX-l", "projectZ") == {}


# --- naming problems ----------------------------------------------------------------------


@BOTH
def test_scan_reports_each_misnamed_folder_and_keeps_the_valid_versions(
    misnamed: Registry, make_source: SourceFactory
) -> None:
    source = make_source(misnamed.root)
    found = layout.scan(source)
    by_path = {p.path: p.message for p in found.problems}
    assert sorted(by_path) == sorted(BAD_FOLDERS)
    assert len(found.problems) == len(BAD_FOLDERS)
    for path, words in BAD_FOLDERS.items():
        for word in words:
            assert word in by_path[path], (path, by_path[path])
    assert all(isinstance(p, Problem) for p in found.problems)
    assert [str(r) for r in found.refs()] == [
        "YOLOX-l/base/1.2",
        "YOLOX-l/pretrained/2024-05-01",
        "YOLOX-l/projectA/1.2.3",
    ]
    # The listing functions skip what scan reports.
    assert layout.models(source) == ["YOLOX-l"]
    assert layout.scopes(source, "YOLOX-l") == ["base", "pretrained", "projectA"]
    assert [str(v) for v in layout.versions(source, "YOLOX-l", "base")] == ["1.2"]


def test_scan_does_not_look_inside_a_misnamed_model_or_scope(misnamed: Registry) -> None:
    found = layout.scan(CheckoutSource(misnamed.root))
    paths = [p.path for p in found.problems]
    # YOLOX/base/1.0 and YOLOX-l/Base/1.0 are not reported on their own: their parent is.
    assert not [p for p in paths if p.startswith(("YOLOX/", "YOLOX-l/Base/"))]


# --- LFS pointers -------------------------------------------------------------------------


def test_pulled_checkout_has_real_files_and_the_tree_has_pointers(registry: Registry) -> None:
    ref = parse_ref("YOLOX-l/base/1.2")
    written = registry.files(ref.path)
    on_disk = layout.files(CheckoutSource(registry.root), ref)
    committed = layout.files(TreeSource(GitRepo(registry.root)), ref)
    for name in LFS_NAMES:
        data = written[name]
        pointer = pointer_of(data)
        assert on_disk[name] == FileInfo(name, f"{ref.path}/{name}", len(data), None)
        assert committed[name] == FileInfo(name, f"{ref.path}/{name}", len(pointer.text()), pointer)
        # git-lfs's clean filter committed exactly the pointer we expect.
        assert registry.blob("HEAD", f"{ref.path}/{name}") == pointer.text().encode()
    assert committed["config.yaml"].lfs is None
    assert committed["config.yaml"].size == len(written["config.yaml"])


def test_skip_smudge_checkout_holds_pointers_with_the_right_oid_and_size(
    registry: Registry, pointer_clone: Path
) -> None:
    source = CheckoutSource(pointer_clone)
    for version in ALL_VERSIONS:
        ref = parse_ref(version)
        found = layout.files(source, ref)
        for name, data in registry.files(version).items():
            info = found[name]
            if name in LFS_NAMES:
                assert info.lfs == pointer_of(data)
                assert info.lfs.oid == sha256(data)
                assert info.size == len(pointer_of(data).text())
                assert source.read(info.path) == pointer_of(data).text().encode()
            else:
                assert info.lfs is None
                assert source.read(info.path) == data


def test_skip_smudge_checkout_and_tree_give_identical_file_infos(pointer_clone: Path) -> None:
    checkout = CheckoutSource(pointer_clone)
    tree = TreeSource(GitRepo(pointer_clone))
    assert describe(checkout) == describe(tree)
    for ref in layout.scan(tree).refs():
        assert layout.files(checkout, ref) == layout.files(tree, ref)


def test_committed_pointers_reads_one_folder(registry: Registry) -> None:
    repo = GitRepo(registry.root)
    written = registry.files("YOLOX-l/base/1.2")
    assert layout.committed_pointers(repo, "HEAD", "YOLOX-l/base/1.2") == {
        name: pointer_of(written[name]) for name in LFS_NAMES
    }
    first = registry.commits[0]
    assert layout.committed_pointers(repo, first, "YOLOX-l/base/1.10") == {}
    assert layout.committed_pointers(repo, "HEAD", "YOLOX-l/base/7.7") == {}


def test_committed_pointers_in_a_repository_without_commits(
    git_env: GitEnv, tmp_path: Path
) -> None:
    reg = init_registry(tmp_path / "fresh", git_env)
    reg.add_version("YOLOX-l/base/1.2")
    reg.stage()
    assert layout.committed_pointers(GitRepo(reg.root), "HEAD", "YOLOX-l/base/1.2") == {}


# --- revisions and bare repositories ------------------------------------------------------


def test_tree_source_works_in_a_bare_clone(registry: Registry, bare_clone: Path) -> None:
    repo = GitRepo.discover(bare_clone)
    assert repo.bare
    tree = TreeSource(repo)
    assert describe(tree) == describe(CheckoutSource(registry.root))
    assert tree.commit == registry.commits[-1]
    ref = parse_ref("YOLOX-l/base/1.10")
    assert layout.files(tree, ref) == layout.files(TreeSource(GitRepo(registry.root)), ref)
    assert tree.read("YOLOX-l/base/1.10/config.yaml") == registry.files(ref.path)["config.yaml"]


@pytest.mark.parametrize("where", ["checkout", "bare"])
def test_tree_source_at_an_older_revision(registry: Registry, bare_clone: Path, where: str) -> None:
    repo = GitRepo.discover(registry.root if where == "checkout" else bare_clone)
    first = registry.commits[0]
    for rev in (first, "main~2"):
        old = TreeSource(repo, rev)
        assert old.commit == first
        found = layout.scan(old)
        assert found.problems == []
        assert [str(r) for r in found.refs()] == [
            str(r) for r in sorted_refs(sorted(FIRST_VERSIONS))
        ]
        assert layout.models(old) == ["YOLOX-l"]
        assert layout.files(old, parse_ref("YOLOX-l/base/1.10")) == {}
        # The nested files came in the third commit.
        assert sorted(layout.files(old, parse_ref("YOLOX-l/base/1.2"))) == sorted(
            version_files("x")
        )
    newer = TreeSource(repo, registry.commits[1])
    assert "1.10" in newer.subdirs("YOLOX-l/base")


def test_tree_source_read_and_unknown_revision(registry: Registry) -> None:
    repo = GitRepo(registry.root)
    tree = TreeSource(repo)
    with pytest.raises(FileNotFoundError, match="not in HEAD"):
        tree.read("YOLOX-l/base/1.2/missing.txt")
    with pytest.raises(RepoError, match="unknown revision 'no-such-branch'"):
        TreeSource(repo, "no-such-branch")


def test_files_of_a_ref_built_from_scan(registry: Registry) -> None:
    tree = TreeSource(GitRepo(registry.root))
    refs = list(layout.scan(tree).refs())
    assert len(refs) == len(ALL_VERSIONS)
    for ref in refs:
        assert sorted(layout.files(tree, ref)) == sorted(registry.files(ref.path))


# --- known bug ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make_source",
    [
        checkout_source,
        tree_source,
    ],
    ids=["checkout", "tree"],
)
def test_hidden_files_in_a_version_folder_are_ignored(
    git_env: GitEnv, tmp_path: Path, make_source: SourceFactory
) -> None:
    reg = init_registry(tmp_path / "registry", git_env)
    reg.add_version("YOLOX-l/base/1.2", {"config.yaml": b"a: 1\n", ".DS_Store": b"\0\0"})
    reg.commit()
    names = layout.files(make_source(reg.root), parse_ref("YOLOX-l/base/1.2"))
    assert sorted(names) == ["config.yaml"]
