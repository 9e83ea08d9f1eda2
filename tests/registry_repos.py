"""Fixtures and helpers for the registry's tests on real git repositories: an isolated git HOME
with git-lfs's filters (`git_home`, `isolated_git`, which a module turns on with
`pytestmark = pytest.mark.usefixtures("isolated_git")`), a small registry, and the CLI.

Registered for every test module by tests/conftest.py (`pytest_plugins`).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from registry import Finding, check
from registry.cli import cli
from registry.repo.gitrepo import GitRepo
from registry.repo.layout import CheckoutSource
from registry.repo.pointer import parse_pointer
from tests.registry_fixtures import RULES

GITCONFIG = (
    "[user]\n\tname = Test User\n\temail = test@example.invalid\n"
    "[init]\n\tdefaultBranch = main\n"
    '[protocol "file"]\n\tallow = always\n'
)
LFS_ATTRIBUTES = (
    "*.pth filter=lfs diff=lfs merge=lfs -text\n*.onnx filter=lfs diff=lfs merge=lfs -text\n"
)
VERSIONS = ("base/1.2", "pretrained/2024-05-01", "projectA/1.2.3")
MODEL = "YOLOX-l"


def git_env(home: Path, ceiling: Path) -> dict[str, str]:
    """The environment of a git that sees only `home`'s configuration and no outer repository."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        HOME=str(home),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=str(home / ".gitconfig"),
        GIT_CEILING_DIRECTORIES=str(ceiling),
        GIT_TERMINAL_PROMPT="0",
    )
    return env


@pytest.fixture(scope="session")
def git_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A HOME with a user identity and git-lfs's filters (`git lfs install --skip-repo`)."""
    home = tmp_path_factory.mktemp("git-home")
    (home / ".gitconfig").write_text(GITCONFIG, encoding="utf-8")
    subprocess.run(
        ["git", "lfs", "install", "--skip-repo"],
        cwd=home,
        env=git_env(home, home),
        capture_output=True,
        check=True,
    )
    return home


@pytest.fixture
def isolated_git(git_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every git the test runs (itself or through the registry) uses `git_home` only."""
    for key in list(os.environ):
        if key.startswith("GIT_"):
            monkeypatch.delenv(key)
    for key, value in git_env(git_home, tmp_path).items():
        monkeypatch.setenv(key, value)
    return git_home


def git(cwd: Path, *args: str) -> str:
    """Run git to build or inspect a fixture; its stdout, stripped."""
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {proc.stderr}")
    return proc.stdout.strip()


def write(root: Path, rel: str, data: str | bytes) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data, encoding="utf-8")
    return path


def version_files(folder: Path, tag: str = "v", *, onnx: bool = False) -> Path:
    """Tiny stand-ins for a version's files (config.yaml, checkpoint.pth, log.txt)."""
    write(folder, "config.yaml", f"model: yolox\nlr: 0.01\ntag: {tag}\n")
    write(folder, "checkpoint.pth", f"weights of {tag}\n")
    write(folder, "log.txt", f"epoch 1 loss 0.5 ({tag})\n")
    if onnx:
        write(folder, "checkpoint.onnx", f"onnx of {tag}\n")
    return folder


def make_registry(root: Path, *, attributes: str = LFS_ATTRIBUTES, commit: bool = True) -> Path:
    """A clean registry: YOLOX-l with base/1.2, pretrained/2024-05-01 and projectA/1.2.3."""
    git(root.parent, "init", "-q", str(root))
    write(root, ".gitattributes", attributes)
    write(root, "README.md", "# model-registry\n")
    write(root, "model-registry.toml", RULES)
    for version in VERSIONS:
        scope = version.split("/")[0]
        write(root, f"{MODEL}/{scope}/README.md", f"# {MODEL} {scope}\n\nWhat these are for.\n")
        version_files(root / MODEL / version, version, onnx=version.startswith("base"))
    if commit:
        commit_all(root, "initial registry")
    return root


def commit_all(root: Path, message: str) -> str:
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)
    return git(root, "rev-parse", "HEAD")


def staged_names(root: Path) -> list[str]:
    return git(root, "diff", "--cached", "--name-only").splitlines()


def staged_pointer(root: Path, path: str) -> bool:
    """Whether the index holds `path` as a Git LFS pointer."""
    object_id = git(root, "ls-files", "-s", "--", path).split()[1]
    blob = subprocess.run(
        ["git", "cat-file", "blob", object_id], cwd=root, capture_output=True, check=True
    ).stdout
    return parse_pointer(blob) is not None


def invoke(*args: str | Path) -> Result:
    """Run the `model-registry` CLI in-process; exceptions other than exits propagate."""
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def run_check(root: Path, *, against: str | None = None) -> list[Finding]:
    return check(CheckoutSource(root), repo=GitRepo(root), against=against)
