"""GitRepo against real git repositories made in tmp_path, with git's configuration isolated."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from registry.errors import InvalidReference, NotARegistry, RepoError
from registry.repo.gitrepo import GitRepo, TreeEntry
from registry.repo.pointer import LfsPointer

needs_lfs = pytest.mark.skipif(shutil.which("git-lfs") is None, reason="git-lfs not installed")

ODD_NAMES = ["with space.yaml", "é/ü.txt", "new\nline", "tab\there", 'quote"d', "-dash"]


@pytest.fixture(autouse=True)
def isolated_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No system or user git configuration, no inherited repository, no discovery above tmp."""
    home = tmp_path / "home"
    home.mkdir()
    config = home / "gitconfig"
    config.write_text(
        "[user]\n\tname = Test User\n\temail = test@example.invalid\n"
        "[init]\n\tdefaultBranch = main\n"
    )
    for key in list(os.environ):
        if key.startswith("GIT_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    # tmp_path may sit inside someone's repository; "outside any repo" must stay outside.
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    return home


def git(cwd: Path, *args: str, input: bytes | None = None) -> str:
    """Run git directly (not through GitRepo) to build fixtures."""
    proc = subprocess.run(["git", *args], cwd=cwd, input=input, capture_output=True, check=True)
    return proc.stdout.decode().strip()


def commit_all(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def write(root: Path, name: str, data: bytes) -> None:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


@pytest.fixture
def repo_dir(tmp_path: Path) -> Path:
    path = tmp_path / "registry"
    git(tmp_path, "init", "-q", str(path))
    return path


@pytest.fixture
def repo(repo_dir: Path) -> GitRepo:
    return GitRepo(repo_dir)


# --- discover -----------------------------------------------------------------------------


def test_discover_from_a_subdirectory_and_a_file(repo_dir: Path) -> None:
    write(repo_dir, "YOLOX-l/base/1.2/config.yaml", b"a: 1\n")
    for start in [repo_dir / "YOLOX-l/base", repo_dir / "YOLOX-l/base/1.2/config.yaml"]:
        found = GitRepo.discover(start)
        assert found.root.resolve() == repo_dir.resolve()
        assert not found.bare


def test_discover_in_a_bare_repository(tmp_path: Path) -> None:
    bare = tmp_path / "registry.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    for start in [bare, bare / "refs"]:
        found = GitRepo.discover(start)
        assert found.bare
        assert found.root.resolve() == bare.resolve()
    assert GitRepo.discover(bare).head() is None


def test_discover_outside_any_repository(tmp_path: Path) -> None:
    outside = tmp_path / "plain"
    outside.mkdir()
    with pytest.raises(NotARegistry, match="not inside a git repository") as info:
        GitRepo.discover(outside)
    assert str(outside) in str(info.value)


def test_discover_of_a_missing_path(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "dir"
    with pytest.raises(NotARegistry, match="does not exist") as info:
        GitRepo.discover(missing)
    assert str(missing) in str(info.value)


def test_discover_inside_the_git_directory(repo_dir: Path) -> None:
    # git can be used there, but not as a registry checkout: an error, not "no repository".
    with pytest.raises(RepoError, match="not in a work tree"):
        GitRepo.discover(repo_dir / ".git" / "objects")


def test_inherited_git_dir_is_ignored_but_a_given_env_is_used(
    tmp_path: Path, repo_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(repo_dir, "mine.txt", b"mine")
    mine = commit_all(repo_dir, "mine")
    other = tmp_path / "other"
    git(tmp_path, "init", "-q", str(other))
    write(other, "theirs.txt", b"theirs")
    theirs = commit_all(other, "theirs")

    # As in a git hook run from `other`: GIT_DIR names the repository that invoked us.
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))
    found = GitRepo.discover(repo_dir)
    assert found.root.resolve() == repo_dir.resolve()
    assert found.head() == mine
    assert [e.path for e in found.ls_tree("HEAD")] == ["mine.txt"]

    explicit = GitRepo(repo_dir, env=dict(os.environ))
    assert explicit.head() == theirs


# --- run, rev_parse, head ------------------------------------------------------------------


def test_run_failure_quotes_the_command_and_git_message(repo: GitRepo) -> None:
    with pytest.raises(RepoError) as info:
        repo.run("cat-file", "-t", "no-such-object")
    message = str(info.value)
    assert "`git cat-file -t no-such-object`" in message
    assert "fatal:" in message
    assert str(repo.root) in message
    assert repo.run("cat-file", "-t", "no-such-object", check=False).returncode != 0


def test_run_in_a_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(RepoError, match="does not exist"):
        GitRepo(tmp_path / "gone").run("status")


def test_head_and_rev_parse(repo_dir: Path, repo: GitRepo) -> None:
    assert repo.head() is None
    write(repo_dir, "a.txt", b"a")
    first = commit_all(repo_dir, "first")
    git(repo_dir, "tag", "v1")
    write(repo_dir, "a.txt", b"b")
    second = commit_all(repo_dir, "second")

    assert repo.head() == second
    assert repo.rev_parse("HEAD") == second
    assert repo.rev_parse("main") == second
    assert repo.rev_parse("v1") == first
    assert repo.rev_parse(first[:8]) == first
    assert repo.rev_parse("HEAD~1") == first


@pytest.mark.parametrize("rev", ["no-such-branch", "-v", "HEAD:a.txt", "HEAD^{tree}", ""])
def test_rev_parse_of_an_unknown_rev_names_it(repo_dir: Path, repo: GitRepo, rev: str) -> None:
    write(repo_dir, "a.txt", b"a")
    commit_all(repo_dir, "first")
    with pytest.raises(RepoError) as info:
        repo.rev_parse(rev)
    assert repr(rev)[1:-1] in str(info.value)


def test_rev_parse_in_an_empty_repository(repo: GitRepo) -> None:
    with pytest.raises(RepoError, match="unknown revision 'HEAD'"):
        repo.rev_parse("HEAD")


# --- ls_tree -------------------------------------------------------------------------------


def _make_odd_tree(repo_dir: Path) -> tuple[str, str]:
    """Two commits: the first with odd names, the second changing and adding files."""
    write(repo_dir, "YOLOX-l/base/1.2/config.yaml", b"depth: 1.0\n")
    for name in ODD_NAMES:
        write(repo_dir, name, name.encode())
    # A name that is not UTF-8 at all: git keeps the bytes.
    with open(os.fsencode(repo_dir) + b"/latin-\xe9.bin", "wb") as f:
        f.write(b"\xe9")
    first = commit_all(repo_dir, "first")

    write(repo_dir, "with space.yaml", b"changed, and longer")
    write(repo_dir, "run.sh", b"#!/bin/sh\n")
    (repo_dir / "run.sh").chmod(0o755)
    (repo_dir / "link").symlink_to("YOLOX-l/base/1.2/config.yaml")
    git(repo_dir, "add", "-A")
    # A submodule entry (a gitlink) without cloning anything.
    git(repo_dir, "update-index", "--add", "--cacheinfo", f"160000,{first},vendor/sub")
    git(repo_dir, "commit", "-q", "-m", "second")
    return first, git(repo_dir, "rev-parse", "HEAD")


def test_ls_tree_with_odd_names_at_head_and_at_an_older_commit(
    repo_dir: Path, repo: GitRepo
) -> None:
    first, second = _make_odd_tree(repo_dir)
    latin = "latin-\udce9.bin"  # undecodable byte, kept as a surrogate escape

    old = {e.path: e for e in repo.ls_tree(first)}
    assert set(old) == {"YOLOX-l/base/1.2/config.yaml", latin, *ODD_NAMES}
    assert old["with space.yaml"].size == len(b"with space.yaml")
    assert old["é/ü.txt"] == TreeEntry(
        path="é/ü.txt",
        mode="100644",
        kind="blob",
        object_id=git(repo_dir, "rev-parse", f"{first}:é/ü.txt"),
        size=len("é/ü.txt".encode()),
    )
    assert (repo_dir / latin).read_bytes() == b"\xe9"  # the escaped name is the file's

    new = {e.path: e for e in repo.ls_tree("HEAD")}
    assert set(new) == set(old) | {"run.sh", "link", "vendor/sub"}
    assert new["with space.yaml"].size == len(b"changed, and longer")
    assert new["with space.yaml"].object_id != old["with space.yaml"].object_id
    assert new["new\nline"] == old["new\nline"]
    assert (new["run.sh"].mode, new["run.sh"].kind) == ("100755", "blob")
    assert (new["link"].mode, new["link"].size) == ("120000", len("YOLOX-l/base/1.2/config.yaml"))
    assert new["vendor/sub"] == TreeEntry("vendor/sub", "160000", "commit", first, -1)
    assert repo.ls_tree(second) == repo.ls_tree("HEAD")


def test_ls_tree_of_a_path_matches_whole_components_literally(
    repo_dir: Path, repo: GitRepo
) -> None:
    write(repo_dir, "YOLOX-l/base/1.2/config.yaml", b"a")
    write(repo_dir, "YOLOX-l/base/1.2/checkpoint.pth", b"b")
    write(repo_dir, "YOLOX-l/bar/1.0/config.yaml", b"c")
    write(repo_dir, "YOLOX-s/base/1.0/config.yaml", b"d")
    commit_all(repo_dir, "models")

    def paths(path: str) -> list[str]:
        return [e.path for e in repo.ls_tree("HEAD", path)]

    assert paths("YOLOX-l/base") == [
        "YOLOX-l/base/1.2/checkpoint.pth",
        "YOLOX-l/base/1.2/config.yaml",
    ]
    assert paths("YOLOX-l/base/1.2/config.yaml") == ["YOLOX-l/base/1.2/config.yaml"]
    assert paths("YOLOX-l/ba") == []
    assert paths("YOLOX-*") == []  # no globbing
    assert paths("nowhere") == []
    assert len(paths("YOLOX-l")) == 3


def test_ls_tree_of_an_unknown_rev(repo_dir: Path, repo: GitRepo) -> None:
    write(repo_dir, "a.txt", b"a")
    commit_all(repo_dir, "first")
    with pytest.raises(RepoError, match="nope"):
        repo.ls_tree("nope")
    with pytest.raises(RepoError, match="--full-tree"):
        repo.ls_tree("nope", "a.txt")


# --- read_blobs ----------------------------------------------------------------------------


def _hash_object(repo_dir: Path, data: bytes) -> str:
    return git(repo_dir, "hash-object", "-w", "--stdin", input=data)


def test_read_blobs_returns_exact_bytes(repo_dir: Path, repo: GitRepo) -> None:
    contents = [
        b"",
        b"no newline at the end",
        b"\n",
        b"\n\n\n",
        bytes(range(256)) * 3,
        b"line\n" + b"0" * 40 + b" blob 5\n" + b"\x00\xff\n",  # looks like a batch header
        LfsPointer(hashlib.sha256(b"weights").hexdigest(), 7).text().encode(),
    ]
    ids = [_hash_object(repo_dir, data) for data in contents]
    blobs = repo.read_blobs([*ids, ids[0]])  # duplicates are read once
    assert blobs == dict(zip(ids, contents, strict=True))
    assert repo.read_blobs([]) == {}


def test_read_blobs_of_tree_entries(repo_dir: Path, repo: GitRepo) -> None:
    _make_odd_tree(repo_dir)
    entries = [e for e in repo.ls_tree("HEAD") if e.kind == "blob"]
    blobs = repo.read_blobs([e.object_id for e in entries])
    for entry in entries:
        assert len(blobs[entry.object_id]) == entry.size
    assert blobs[next(e.object_id for e in entries if e.path == "new\nline")] == b"new\nline"


def test_read_blobs_with_missing_objects(repo_dir: Path, repo: GitRepo) -> None:
    present = _hash_object(repo_dir, b"here")
    absent = "0123456789abcdef0123456789abcdef01234567"
    with pytest.raises(RepoError, match=f"{absent} \\(missing\\)") as info:
        repo.read_blobs([present, absent])
    assert "try `git fetch`" in str(info.value)


def test_read_blobs_refuses_non_blobs_and_bad_ids(repo_dir: Path, repo: GitRepo) -> None:
    write(repo_dir, "a.txt", b"a")
    commit = commit_all(repo_dir, "first")
    with pytest.raises(RepoError, match="a commit, not a blob"):
        repo.read_blobs([commit])
    with pytest.raises(RepoError, match="invalid object id"):
        repo.read_blobs([f"{commit}\n{commit}"])


# --- last_commit ---------------------------------------------------------------------------


def test_last_commit(repo_dir: Path, repo: GitRepo) -> None:
    assert repo.last_commit("a.txt") is None  # no commits at all
    write(repo_dir, "dir/a.txt", b"1")
    write(repo_dir, "dir/b.txt", b"1")
    first = commit_all(repo_dir, "first")
    write(repo_dir, "dir/b.txt", b"2")
    second = commit_all(repo_dir, "second")
    write(repo_dir, "dir/a.txt", b"3")
    third = commit_all(repo_dir, "third")

    assert repo.last_commit("dir/b.txt") == second
    assert repo.last_commit("dir/a.txt") == third
    assert repo.last_commit("dir") == third
    assert repo.last_commit("dir/a.txt", rev=second) == first
    assert repo.last_commit("dir/a.txt", rev=first) == first
    assert repo.last_commit("never/committed") is None
    assert repo.last_commit("dir/*.txt") is None  # literal, not a glob
    with pytest.raises(RepoError, match="nope"):
        repo.last_commit("dir/a.txt", rev="nope")


# --- add -----------------------------------------------------------------------------------


def test_add_stages_exactly_the_given_paths(repo_dir: Path, repo: GitRepo) -> None:
    for name in ["a*b", "aXb", "with space/é.yaml", "other.txt"]:
        write(repo_dir, name, name.encode())
    repo.add([Path("a*b"), repo_dir / "with space"])
    repo.add([])
    staged = git(repo_dir, "diff", "--cached", "--name-only", "-z").split("\0")
    assert sorted(filter(None, staged)) == ["a*b", "with space/é.yaml"]


def test_add_outside_the_work_tree(tmp_path: Path, repo: GitRepo) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("x")
    with pytest.raises(RepoError, match="git --literal-pathspecs add") as info:
        repo.add([outside])
    assert "outside repository" in str(info.value)


# --- lfs_pull ------------------------------------------------------------------------------


@needs_lfs
def test_lfs_pull_without_the_objects_fails_without_raising(
    isolated_git: Path, repo_dir: Path, repo: GitRepo
) -> None:
    git(isolated_git, "lfs", "install", "--skip-repo")
    git(repo_dir, "lfs", "track", "*.pth")
    # Commit a pointer whose object exists nowhere; no remote and no lfs.url to fetch from.
    pointer = LfsPointer(hashlib.sha256(b"weights").hexdigest(), 7)
    write(repo_dir, "YOLOX-l/base/1.2/checkpoint.pth", pointer.text().encode())
    commit_all(repo_dir, "pointer only")
    assert git(repo_dir, "cat-file", "-p", "HEAD:YOLOX-l/base/1.2/checkpoint.pth") + "\n" == (
        pointer.text()
    )

    proc = repo.lfs_pull(["YOLOX-l/base/1.2/*", "other/*"])
    assert proc.returncode != 0
    assert proc.stderr
    assert proc.args[-1] == "--include=YOLOX-l/base/1.2/*,other/*"


@pytest.mark.parametrize("include", [[], ["a,b"], [""]])
def test_lfs_pull_refuses_patterns_it_cannot_pass(repo: GitRepo, include: list[str]) -> None:
    with pytest.raises(InvalidReference):
        repo.lfs_pull(include)
