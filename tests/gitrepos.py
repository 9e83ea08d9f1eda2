"""Fixtures: a git repository in tmp_path, isolated from the user's git config (shared by the
settings tests)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

URL = "https://lfs-s3.invalid"


def git(cwd: Path, *args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"git {' '.join(args)}: {proc.stderr}"
    return proc.stdout


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """tmp_path without symlinks, as git reports paths (macOS: /var is /private/var)."""
    return tmp_path.resolve()


@pytest.fixture
def home(root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A HOME and global config of our own; no system config; no GIT_* from the caller."""
    for key in list(os.environ):
        if key.startswith("GIT_"):
            monkeypatch.delenv(key)
    home = root / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / ".gitconfig"))
    # Never find a repository above root (the tests' "not a repository" relies on it).
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(root))
    git(root, "config", "--global", "user.name", "Test User")
    git(root, "config", "--global", "user.email", "test@example.invalid")
    git(root, "config", "--global", "init.defaultBranch", "main")
    return home


@pytest.fixture
def repo(root: Path, home: Path) -> Path:
    """A work tree whose committed .lfsconfig names bucket `committed-bucket`, prefix `reg`."""
    path = root / "repo"
    path.mkdir()
    git(path, "init", "-q")
    (path / ".lfsconfig").write_text(f"[lfs]\n\turl = {URL}/committed-bucket/reg\n")
    (path / "README.md").write_text("registry\n")
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "init")
    return path
