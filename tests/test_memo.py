"""Settings remembered by a warm server (lfs_agent/memo.py through sources.load): taken only
while no file git read has changed, never from a config with includes, never when just written."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from lfs_agent import gitenv, memo, sources
from lfs_agent.errors import ConfigError
from tests.gitrepos import git


class Table:
    """The server's side: what children reported, as `warm.py` keeps it."""

    def __init__(self) -> None:
        self.entries: dict[str, memo.Entry] = {}

    def memo(self) -> memo.Memo:
        return memo.Memo(self.entries, lambda entry: memo.store(self.entries, entry))


def age(*trees: Path, seconds: float = 60) -> None:
    """Set every file's mtime back, as if the repository had been left alone a while."""
    then = time.time() - seconds
    for tree in trees:
        for path in [tree, *tree.rglob("*")]:
            os.utime(path, (then, then), follow_symlinks=False)


def no_git(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("git was run")

    monkeypatch.setattr(sources, "start_git", refuse)
    monkeypatch.setattr(gitenv, "start_git", refuse)


def test_a_second_start_takes_the_remembered_settings_without_git(
    repo: Path,
    home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    age(repo, home)
    table = Table()
    first = sources.load(os.environ, cwd=repo, memo=table.memo())
    assert len(table.entries) == 1
    no_git(monkeypatch)
    assert sources.load(os.environ, cwd=repo, memo=table.memo()) == first
    # Another operation, folder or environment is another entry.
    with pytest.raises(AssertionError, match="git was run"):
        sources.load(os.environ, cwd=repo, operation="upload", memo=table.memo())
    with pytest.raises(AssertionError, match="git was run"):
        sources.load({**os.environ, "LFS_S3_RETRIES": "2"}, cwd=repo, memo=table.memo())


@pytest.mark.parametrize(
    "change",
    [
        lambda r: git(r, "config", "lfs-s3.part-size", "lots"),
        lambda r: git(r, "config", "--global", "lfs-s3.part-size", "lots"),
        lambda r: (r / ".lfs-s3config").write_text("[lfs-s3]\n\tpart-size = lots\n"),
    ],
    ids=["local config", "global config", "a committed file appears"],
)
def test_any_change_to_what_git_read_is_seen(
    repo: Path,
    home: Path,
    change: object,
) -> None:
    age(repo, home)
    table = Table()
    sources.load(os.environ, cwd=repo, memo=table.memo())
    assert table.entries
    change(repo)  # type: ignore[operator]
    with pytest.raises(ConfigError, match="part-size"):
        sources.load(os.environ, cwd=repo, memo=table.memo())


def test_a_new_commit_is_seen_when_the_committed_file_is_read_from_head(
    repo: Path,
    home: Path,
) -> None:
    (repo / ".lfsconfig").unlink()  # read from the index and HEAD, as during a clone's checkout
    age(repo, home)
    table = Table()
    before = sources.load(os.environ, cwd=repo, memo=table.memo())
    assert before.config.bucket == "committed-bucket" and table.entries
    other = repo.parent / "elsewhere.lfsconfig"
    other.write_text("[lfs]\n\turl = https://lfs-s3.invalid/moved/reg\n")
    blob = git(repo, "hash-object", "-w", str(other)).strip()
    git(repo, "update-index", "--cacheinfo", f"100644,{blob},.lfsconfig")
    git(repo, "commit", "-q", "-m", "move")
    assert sources.load(os.environ, cwd=repo, memo=table.memo()).config.bucket == "moved"


def test_settings_just_written_are_not_remembered(
    repo: Path,
    home: Path,
) -> None:
    age(repo, home)
    git(repo, "config", "lfs-s3.retries", "3")  # .git/config is seconds old
    table = Table()
    assert sources.load(os.environ, cwd=repo, memo=table.memo()).config.retries == 3
    assert table.entries == {}


def test_a_config_with_includes_is_never_remembered(
    repo: Path,
    home: Path,
) -> None:
    extra = home / "extra.gitconfig"
    extra.write_text("[lfs-s3]\n\tretries = 2\n")
    git(repo, "config", "include.path", str(extra))
    age(repo, home)
    table = Table()
    assert sources.load(os.environ, cwd=repo, memo=table.memo()).config.retries == 2
    assert table.entries == {}


def test_the_table_keeps_the_newest_entries(
    repo: Path,
    home: Path,
) -> None:
    age(repo, home)
    table = Table()
    loaded = sources.load(os.environ, cwd=repo, memo=table.memo())
    entry = next(iter(table.entries.values()))
    for i in range(memo.MAX_ENTRIES + 5):
        memo.store(table.entries, entry._replace(key=f"k{i}", loaded=loaded))
    assert len(table.entries) == memo.MAX_ENTRIES
    assert f"k{memo.MAX_ENTRIES + 4}" in table.entries and "k0" not in table.entries
