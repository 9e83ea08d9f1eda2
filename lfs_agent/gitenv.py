"""Everything the agent asks git: where the repository is, and its configuration.

The agent runs wherever the user ran git (a subdirectory, a linked worktree, a clone's smudge
with GIT_DIR set), so the repository is found with `git rev-parse`, never by assuming `./.git`.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

from .errors import ConfigError


class RepoPaths(NamedTuple):
    git_dir: Path
    common_dir: Path
    toplevel: Path | None  # None in a bare repository

    def lfs_dir(self, storage: str | None) -> Path:
        """The LFS storage directory: `lfs.storage` (relative to the common dir) or `lfs`."""
        if storage:
            return self.common_dir / Path(storage).expanduser()
        return self.common_dir / "lfs"


class ConfigEntry(NamedTuple):
    scope: str  # "system", "global", "local", "worktree", "command" or a committed file's name
    key: str
    value: str
    origin: str = ""  # git's `--show-origin`: "file:<path>", "command line:"...


def start_git(
    args: Sequence[str], *, cwd: Path | None = None, env: Mapping[str, str] | None = None
) -> Callable[[], subprocess.CompletedProcess[str]]:
    """Start git now and return what waits for it: the agent runs several git commands at
    once at start-up (`sources.load`), each costing a few ms.

    Raises:
        ConfigError: git cannot be run.
    """
    argv = ["git", *args]
    try:
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=None if env is None else dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="surrogateescape",
        )
    except OSError as exc:
        raise ConfigError(f"cannot run git: {exc}; is git installed and on PATH?") from exc

    done: list[subprocess.CompletedProcess[str]] = []

    def wait() -> subprocess.CompletedProcess[str]:
        if not done:  # idempotent: callers reap in `finally` what may already be read
            out, err = proc.communicate()
            done.append(subprocess.CompletedProcess(argv, proc.returncode, out, err))
        return done[0]

    return wait


def run_git(
    args: Sequence[str], *, cwd: Path | None = None, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run git and return the finished process (never raises on a git error)."""
    return start_git(args, cwd=cwd, env=env)()


REV_PARSE = (
    "rev-parse",
    "--path-format=absolute",
    "--git-dir",
    "--git-common-dir",
    "--is-bare-repository",
    "--show-toplevel",
)
CONFIG_LIST = ("config", "-z", "--show-scope", "--show-origin", "--list")


def repo_paths(
    cwd: Path | None = None,
    *,
    started: Callable[[], subprocess.CompletedProcess[str]] | None = None,
) -> RepoPaths:
    """Find the repository the agent works for.

    Raises:
        ConfigError: not inside a git repository.
    """
    # One git process: in a bare repository (or inside .git) `--show-toplevel` fails after the
    # other three lines are printed, and that is how "no work tree" is told apart.
    proc = (started or start_git(REV_PARSE, cwd=cwd))()
    lines = proc.stdout.splitlines()
    if len(lines) < 3 or lines[2] not in ("true", "false"):
        where = cwd or Path.cwd()
        raise ConfigError(
            f"'{where}' is not inside a git repository ({proc.stderr.strip()}); "
            "lfs-s3-agent must be run by git-lfs from a repository"
        )
    git_dir, common_dir, bare = lines[:3]
    toplevel: Path | None = None
    if bare != "true" and proc.returncode == 0 and len(lines) > 3 and lines[3].strip():
        toplevel = Path(lines[3].strip())
    return RepoPaths(Path(git_dir), Path(common_dir), toplevel)


def read_git_config(
    cwd: Path | None = None,
    *,
    started: Callable[[], subprocess.CompletedProcess[str]] | None = None,
) -> list[ConfigEntry]:
    """All of git's configuration (system, global, local, worktree, -c), lowest scope first."""
    proc = (started or start_git(CONFIG_LIST, cwd=cwd))()
    if proc.returncode != 0:
        raise ConfigError(f"cannot read git configuration: {proc.stderr.strip()}")
    return _parse_list(proc.stdout, scoped=True, origins=True)


Wait = Callable[[], subprocess.CompletedProcess[str]]


def read_committed_configs(
    repo: RepoPaths,
    names: Sequence[str],
    *,
    started: Mapping[str, list[Wait]] | None = None,
) -> list[list[ConfigEntry]]:
    """Read committed git-config files the way git-lfs reads `.lfsconfig`: the work tree's copy
    first; in a bare repository, or during a clone's checkout before the file is written, the
    index's copy, then HEAD's. Every git command is started at once.

    `started`: `start_committed_reads` for this repository's work tree, begun earlier.
    """
    if started is None:
        started = start_committed_reads(repo.toplevel, names, cwd=repo.toplevel or repo.git_dir)
    found: list[list[ConfigEntry]] = []
    try:
        for name in names:
            procs = [wait() for wait in started[name]]
            if len(procs) == 1:  # the work tree's file
                if procs[0].returncode != 0:
                    where = f"{repo.toplevel}/{name}"
                    raise ConfigError(f"cannot parse '{where}': {procs[0].stderr.strip()}")
                found.append(_entries(name, procs[0].stdout))
                continue
            # The index's copy, else HEAD's; none is no file.
            read = next((p for p in procs if p.returncode == 0), None)
            found.append(_entries(name, read.stdout) if read else [])
    finally:
        for waits in started.values():
            for wait in waits:
                wait()  # reaped, whatever happened (a finished one returns at once)
    return found


def start_committed_reads(
    toplevel: Path | None, names: Sequence[str], cwd: Path
) -> dict[str, list[Wait]]:
    """Start reading each committed file: `<toplevel>/<name>` when the work tree has it, else
    the index's and HEAD's copies, both at once (a clone's checkout may not have written it
    yet; a bare repository has no work tree)."""
    started: dict[str, list[Wait]] = {}
    for name in names:
        if toplevel is not None and (toplevel / name).is_file():
            args = [["-f", str(toplevel / name)]]
        else:
            args = [["--blob", f":{name}"], ["--blob", f"HEAD:{name}"]]
        started[name] = [start_git(["config", "-z", *a, "--list"], cwd=cwd) for a in args]
    return started


def guess_toplevel(environ: Mapping[str, str], cwd: Path | None = None) -> Path | None:
    """The work tree git would find from `cwd`, guessed without git (the nearest folder up with
    a `.git`), so that reading its committed files can start alongside `git rev-parse`; None
    when the environment chooses the repository (GIT_DIR, GIT_WORK_TREE). Only a guess: the
    caller checks it against `repo_paths`."""
    if "GIT_DIR" in environ or "GIT_WORK_TREE" in environ:
        return None
    here = Path(os.path.abspath(cwd or os.getcwd()))
    return next((d for d in (here, *here.parents) if os.path.lexists(d / ".git")), None)


def _entries(name: str, out: str) -> list[ConfigEntry]:
    return [ConfigEntry(name, e.key, e.value) for e in _parse_list(out, scoped=False)]


def _parse_list(out: str, *, scoped: bool, origins: bool = False) -> list[ConfigEntry]:
    # `git config -z --list` prints `key\nvalue\0` per entry (`--show-scope` adds `scope\0`
    # before it, then `--show-origin` its `origin\0`); a key given without `= value` prints no
    # newline and means "true".
    fields = out.split("\0")
    entries: list[ConfigEntry] = []
    i = 0
    while i < len(fields):
        scope = origin = ""
        if scoped:
            scope, i = fields[i], i + 1
        if origins and i < len(fields):
            origin, i = fields[i], i + 1
        if i >= len(fields):
            break
        item, i = fields[i], i + 1
        if not item:
            continue
        key, sep, value = item.partition("\n")
        entries.append(ConfigEntry(scope, key, value if sep else "true", origin))
    return entries
