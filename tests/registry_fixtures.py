"""Build small model registries in real git repositories, for tests (no S3 needed).

Everything runs the real `git` and `git-lfs` in an isolated configuration (`GitEnv`): a HOME
and a global config file of its own, no system config, no GIT_* variable inherited from the
caller, and GIT_CEILING_DIRECTORIES so that no repository above the test's folder is found.
Checkpoints are tiny random files tracked by Git LFS through `.gitattributes`; adding them runs
git-lfs's clean filter, so the committed blobs are pointers while the working tree keeps the
real bytes (a "pulled" checkout, with the objects in `.git/lfs/objects`).

    env = make_git_env(tmp_path / "home")
    env.apply(monkeypatch)                    # so that registry code runs git the same way
    reg = build_registry(tmp_path / "registry", env)
    reg.files("YOLOX-l/base/1.2")["checkpoint.pth"]   # the bytes that were written

Nothing here imports pytest fixtures: test modules declare their own fixtures and call these.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from registry.repo.pointer import LfsPointer

__all__ = [
    "FIRST_VERSIONS",
    "GITATTRIBUTES",
    "LFS_NAMES",
    "SECOND_VERSIONS",
    "GitEnv",
    "Registry",
    "build_registry",
    "clone",
    "copy_without_git",
    "init_registry",
    "make_git_env",
    "pointer_of",
    "sha256",
    "use_environment",
    "version_files",
]

LFS_PATTERNS = ("*.pth", "*.onnx")
GITATTRIBUTES = "".join(
    f"{pattern} filter=lfs diff=lfs merge=lfs -text\n" for pattern in LFS_PATTERNS
)
"""The registry's `.gitattributes`: checkpoints (*.pth, *.onnx) go to Git LFS."""

RULES = "# The registry's rules for 'model-registry check': the defaults.\n"
"""The registry's `model-registry.toml`: it makes the folder a registry (`registry.repo.detect`)
without an `.lfsconfig`, which would route clones to an S3 store these tests do not have."""

LFS_NAMES = frozenset({"checkpoint.pth", "checkpoint.onnx"})
"""The files of `version_files` that Git LFS stores."""

FIRST_VERSIONS = (
    "YOLOX-l/base/0.1",
    "YOLOX-l/base/1.2",
    "YOLOX-l/base/1.9",
    "YOLOX-l/pretrained/2023-12-31",
    "YOLOX-l/projectA/1.2.0",
)
"""The versions `build_registry` commits first."""

SECOND_VERSIONS = (
    "YOLOX-l/base/1.10",
    "YOLOX-l/pretrained/2024-05-01",
    "YOLOX-l/projectA/1.2.3",
    "YOLOX-l/projectA/1.3.0",
    "ResNet-50/base/2.0",
)
"""The versions `build_registry` adds in a second commit (absent at the first one)."""


def sha256(data: bytes) -> str:
    """The hex sha256 of `data`: the oid Git LFS gives a file with this content."""
    return hashlib.sha256(data).hexdigest()


def pointer_of(data: bytes) -> LfsPointer:
    """The pointer git-lfs writes for a file holding `data`."""
    return LfsPointer(sha256(data), len(data))


def version_files(version_path: str, size: int = 3000) -> dict[str, bytes]:
    """The four files of a version folder: a config, a log, and two random "checkpoints".

    `size` is the size of checkpoint.pth (checkpoint.onnx gets half): a few KB, never more.
    """
    return {
        "config.yaml": f"version: {version_path}\nepochs: 3\n".encode(),
        "log.txt": f"trained {version_path}\n".encode(),
        "checkpoint.pth": os.urandom(size),
        "checkpoint.onnx": os.urandom(size // 2),
    }


@dataclass(frozen=True)
class GitEnv:
    """An isolated git configuration: a HOME, a global config file, no system config."""

    home: Path
    ceiling: Path
    """GIT_CEILING_DIRECTORIES: git never looks for a repository at or above this folder."""

    @property
    def config(self) -> Path:
        """The global config file (GIT_CONFIG_GLOBAL)."""
        return self.home / "gitconfig"

    def variables(self) -> dict[str, str]:
        """The variables that select this configuration."""
        return {
            "HOME": str(self.home),
            "XDG_CONFIG_HOME": str(self.home / ".config"),
            "GIT_CONFIG_GLOBAL": str(self.config),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CEILING_DIRECTORIES": str(self.ceiling),
            "GIT_TERMINAL_PROMPT": "0",
        }

    def environ(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """A complete environment for a git process: ours, minus the caller's GIT_* and HOME."""
        base = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("GIT_") and k not in ("HOME", "XDG_CONFIG_HOME")
        }
        base.update(self.variables())
        base.update(extra or {})
        return base

    def apply(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Make this configuration the current process's (undone with `monkeypatch`).

        The registry runs git with the current environment, so tests call this before calling
        the code under test.
        """
        for key in list(os.environ):
            if key.startswith("GIT_"):
                monkeypatch.delenv(key)
        for key, value in self.variables().items():
            monkeypatch.setenv(key, value)

    def git(
        self,
        cwd: Path,
        *args: str,
        extra_env: Mapping[str, str] | None = None,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        """Run `git *args` in `cwd` in this configuration.

        Raises:
            AssertionError: (with `check`) git failed; the message carries its output.
        """
        proc = subprocess.run(
            ["git", *args],
            cwd=cwd,
            env=self.environ(extra_env),
            capture_output=True,
            text=True,
            check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"git {' '.join(args)} failed in {cwd} ({proc.returncode}):\n"
                f"{proc.stdout}{proc.stderr}"
            )
        return proc


def make_git_env(home: Path, ceiling: Path | None = None) -> GitEnv:
    """Create `home` with a global git config and git-lfs's filters installed in it.

    `ceiling` defaults to the parent of `home`: create repositories next to `home`, never
    above it.
    """
    home.mkdir(parents=True, exist_ok=True)
    env = GitEnv(home=home, ceiling=ceiling if ceiling is not None else home.parent)
    env.config.write_text(
        "[user]\n\tname = Test User\n\temail = test@example.invalid\n"
        "[init]\n\tdefaultBranch = main\n"
        "[advice]\n\tdetachedHead = false\n"
    )
    env.git(home, "lfs", "install", "--skip-repo")
    return env


def use_environment(monkeypatch: pytest.MonkeyPatch, environ: Mapping[str, str]) -> None:
    """Make `environ` the whole environment of the current process (undone with `monkeypatch`).

    For an environment built for subprocesses (e.g. `GitWorld.env()`), so that code under test
    that runs git in-process sees exactly what those subprocesses would.
    """
    for key in list(os.environ):
        if key not in environ:
            monkeypatch.delenv(key)
    for key, value in environ.items():
        monkeypatch.setenv(key, value)


@dataclass
class Registry:
    """A registry repository being built, and every file written to it."""

    root: Path
    env: GitEnv
    written: dict[str, bytes] = field(default_factory=dict)
    """Every file written through `write`, by `/`-separated path relative to `root`."""
    commits: list[str] = field(default_factory=list)
    """The commits made through `commit`, oldest first."""

    def git(self, *args: str, extra_env: Mapping[str, str] | None = None) -> str:
        """Run git in the registry; its stdout, stripped."""
        return self.env.git(self.root, *args, extra_env=extra_env).stdout.strip()

    def write(self, path: str, data: bytes) -> Path:
        """Write one file (creating its folders); `path` is relative to the root."""
        full = self.root / path
        full.parent.mkdir(parents=True, exist_ok=True)
        full.write_bytes(data)
        self.written[path] = data
        return full

    def add_version(
        self, version_path: str, files: Mapping[str, bytes] | None = None
    ) -> dict[str, bytes]:
        """Write a version folder (`version_files` by default); the files written, by name."""
        content = dict(files) if files is not None else version_files(version_path)
        for name, data in content.items():
            self.write(f"{version_path}/{name}", data)
        return content

    def files(self, folder: str, *, hidden: bool = False) -> dict[str, bytes]:
        """What was written below `folder`, by name relative to it.

        Names with a hidden component (`.ipynb_checkpoints/x`) are left out unless `hidden`:
        by default this is what the registry should show of the folder.
        """
        prefix = f"{folder}/"
        found = {p.removeprefix(prefix): d for p, d in self.written.items() if p.startswith(prefix)}
        if hidden:
            return found
        return {n: d for n, d in found.items() if not any(c.startswith(".") for c in n.split("/"))}

    def stage(self, *paths: str) -> None:
        """`git add` the paths (everything when none): runs git-lfs's clean filter."""
        if paths:
            self.git("add", "--", *paths)
        else:
            self.git("add", "-A")

    def commit(self, message: str = "update") -> str:
        """Stage everything and commit; the new commit's id."""
        self.stage()
        self.git("commit", "-q", "-m", message)
        head = self.git("rev-parse", "HEAD")
        self.commits.append(head)
        return head

    def last_commit(self, path: str) -> str:
        """`git log -1 --format=%H -- path`: the last commit that touched `path`."""
        return self.git("log", "-1", "--format=%H", "--", path)

    def blob(self, rev: str, path: str) -> bytes:
        """The blob committed at `rev:path`, as stored (a pointer for an LFS file)."""
        proc = subprocess.run(
            ["git", "cat-file", "blob", f"{rev}:{path}"],
            cwd=self.root,
            env=self.env.environ(),
            capture_output=True,
            check=True,
        )
        return proc.stdout


def init_registry(root: Path, env: GitEnv) -> Registry:
    """`git init` a registry at `root` with the LFS `.gitattributes` (nothing committed)."""
    env.git(root.parent, "init", "-q", str(root))
    registry = Registry(root=root, env=env)
    registry.write(".gitattributes", GITATTRIBUTES.encode())
    registry.write("model-registry.toml", RULES.encode())
    return registry


def build_registry(
    root: Path,
    env: GitEnv,
    *,
    first: Iterable[str] = FIRST_VERSIONS,
    second: Iterable[str] = SECOND_VERSIONS,
) -> Registry:
    """A registry with the `first` versions in one commit and the `second` ones in another.

    Every version holds `version_files`; `YOLOX-l/base/README.md` sits beside the versions.
    `registry.commits` is `[first commit, second commit]`.
    """
    registry = init_registry(root, env)
    registry.write("YOLOX-l/base/README.md", b"# YOLOX-l base\n")
    for version in first:
        registry.add_version(version)
    registry.commit("first versions")
    for version in second:
        registry.add_version(version)
    registry.commit("second versions")
    return registry


def clone(
    source: Path, dest: Path, env: GitEnv, *, bare: bool = False, skip_smudge: bool = False
) -> Path:
    """`git clone` `source` to `dest`; `skip_smudge` leaves LFS files as pointers."""
    extra = {"GIT_LFS_SKIP_SMUDGE": "1"} if skip_smudge else None
    args = ["clone", "-q", *(["--bare"] if bare else []), str(source), str(dest)]
    env.git(dest.parent, *args, extra_env=extra)
    return dest


def copy_without_git(source: Path, dest: Path) -> Path:
    """A plain copy of a checkout without its `.git` (as in a Docker image or an archive)."""
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns(".git"))
    return dest
