"""Register the agent with git-lfs: in one repository, or once per machine (`--global`).

Local: `lfs.customtransfer.lfs-s3.*` plus `lfs.standalonetransferagent = lfs-s3` in .git/config.
Global: the same transfer in ~/.gitconfig, and `standalonetransferagent` scoped to the URL
`https://lfs-s3.invalid/`. A repository that commits `lfs.url = https://lfs-s3.invalid/...` in
`.lfsconfig` (a key git-lfs accepts from a clone) is then cloned, pulled and pushed through the
agent with no step per clone; other repositories are untouched (PROTOCOL.md).
"""

from __future__ import annotations

import json
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from .config import PLACEHOLDER_HOST, SECTION, TRUST_KEY, parse_endpoint, same_endpoint
from .errors import ConfigError
from .gitenv import run_git

TRANSFER = "lfs-s3"


@dataclass(frozen=True)
class Change:
    key: str
    old: str | None
    new: str | None

    def __str__(self) -> str:
        if self.new is None:
            return f"unset {self.key} (was {self.old!r})"
        return f"set {self.key} = {self.new!r}" + (f" (was {self.old!r})" if self.old else "")


def agent_command() -> tuple[str, str]:
    """What git-lfs should run, as (path, args): this interpreter, without `site`, on the
    agent's launcher (`_launch.py`), by absolute paths.

    git-lfs runs `sh -c '<path>' <args>` with the path single-quoted, so a path with spaces
    is fine; the args are expanded by the shell, so they are quoted here.
    """
    launcher = Path(__file__).resolve().parent / "_launch.py"
    return str(Path(sys.executable).absolute()), f"-S {shlex.quote(str(launcher))}"


def git_args(path: str, args: str) -> str:
    """`args` for git config: the agent's, then what answers git-lfs when the agent is gone.

    git-lfs reads the agent's first reply and, when the command is not there (a virtualenv
    moved or removed since `install`), says only "EOF". A shell fallback (git-lfs runs the
    command with `sh -c`) then answers the init message itself with an error that git-lfs
    prints, naming the fix. It runs only after a failure whose command is missing, so an
    agent's start costs nothing more; an agent that ran keeps its own exit status.
    """
    launcher = shlex.split(args)[-1]
    message = (
        f"lfs-s3-agent is gone: git config runs {path} on {launcher}, which no longer exists "
        "(was its virtualenv moved or removed?). Install lfs-s3-registry again and run "
        '"lfs-s3-agent install --global" (or "lfs-s3-agent install" in the repository); '
        '"lfs-s3-agent doctor" checks the set-up'
    )
    reply = json.dumps({"error": {"code": 127, "message": message}})
    return (
        f"{args} || {{ s=$?; [ -x {shlex.quote(path)} ] && [ -f {shlex.quote(launcher)} ] "
        f"&& exit $s; read -r _; printf '%s\\n' {shlex.quote(reply)}; exit $s; }}"
    )


def configured_command(args: str) -> str | None:
    """The launcher that git config's `args` (as `git_args` wrote them, or older) runs."""
    try:
        words = shlex.split(args)
    except ValueError:
        return None
    return words[1] if len(words) > 1 and words[0] == "-S" else None


def wanted_keys(scope: str, *, concurrent: bool = False) -> dict[str, str]:
    """The git config keys `install` writes for `scope` ("local" or "global").

    By default one agent process serves a whole transfer queue, one object at a time, each
    in parallel parts or ranges: git-lfs starts `lfs.concurrenttransfers` processes one after
    another otherwise, for every queue. `concurrent` is for many small objects over a slow
    link (README, Performance).
    """
    path, args = agent_command()
    keys = {
        f"lfs.customtransfer.{TRANSFER}.path": path,
        f"lfs.customtransfer.{TRANSFER}.args": git_args(path, args),
        f"lfs.customtransfer.{TRANSFER}.concurrent": "true" if concurrent else "false",
    }
    if scope == "global":
        keys[f"lfs.https://{PLACEHOLDER_HOST}/.standalonetransferagent"] = TRANSFER
    else:
        keys["lfs.standalonetransferagent"] = TRANSFER
    return keys


def _get(scope: str, key: str, cwd: Path | None) -> str | None:
    proc = run_git(["config", f"--{scope}", "--get", key], cwd=cwd)
    return proc.stdout.rstrip("\n") if proc.returncode == 0 else None


def _check_scope(scope: str, cwd: Path | None) -> None:
    if scope == "local":
        proc = run_git(["rev-parse", "--git-dir"], cwd=cwd)
        if proc.returncode != 0:
            raise ConfigError(
                f"'{cwd or Path.cwd()}' is not inside a git repository; run 'lfs-s3-agent "
                "install' in your registry repository, or 'lfs-s3-agent install --global'"
            )


def install(scope: str, cwd: Path | None = None, *, concurrent: bool = False) -> list[Change]:
    """Write the keys for `scope`; idempotent. Returns what changed."""
    _check_scope(scope, cwd)
    changes = []
    for key, value in wanted_keys(scope, concurrent=concurrent).items():
        old = _get(scope, key, cwd)
        if old == value:
            continue
        proc = run_git(["config", f"--{scope}", key, value], cwd=cwd)
        if proc.returncode != 0:
            raise ConfigError(f"cannot set {key} in {scope} git config: {proc.stderr.strip()}")
        changes.append(Change(key, old, value))
    _ensure_lfs_filters(scope, cwd)
    return changes


def uninstall(scope: str, cwd: Path | None = None) -> list[Change]:
    """Remove what `install` wrote for `scope`; idempotent."""
    _check_scope(scope, cwd)
    changes = []
    for key in wanted_keys(scope):
        old = _get(scope, key, cwd)
        if old is None:
            continue
        proc = run_git(["config", f"--{scope}", "--unset-all", key], cwd=cwd)
        if proc.returncode not in (0, 5):
            raise ConfigError(f"cannot unset {key} in {scope} git config: {proc.stderr.strip()}")
        changes.append(Change(key, old, None))
    run_git(["config", f"--{scope}", "--remove-section", f"lfs.customtransfer.{TRANSFER}"], cwd=cwd)
    return changes


def _ensure_lfs_filters(scope: str, cwd: Path | None) -> None:
    """git-lfs's own filters and hooks must be installed too, or nothing reaches the agent."""
    if run_git(["config", "--get", "filter.lfs.process"], cwd=cwd).returncode == 0:
        if scope == "local":
            # The pre-push hook is per repository; `git lfs update` adds it if it is missing.
            run_git(["lfs", "update"], cwd=cwd)
        return
    args = ["lfs", "install", "--local"] if scope == "local" else ["lfs", "install", "--skip-repo"]
    proc = run_git(args, cwd=cwd)
    if proc.returncode != 0:
        raise ConfigError(
            f"'git {' '.join(args)}' failed: {proc.stderr.strip() or proc.stdout.strip()}. "
            "Is git-lfs installed? (Debian/Ubuntu: 'sudo apt-get install git-lfs')"
        )


def trust(scope: str, url: str, cwd: Path | None = None) -> Change | None:
    """Add `url` to the endpoints the user accepts from committed `.lfs-s3config` files, in
    `scope`'s git config; None when it was there already.

    Raises:
        ConfigError: `url` is not an http(s) URL, or git config cannot be written.
    """
    _check_scope(scope, cwd)
    try:
        url = parse_endpoint(url)
    except ValueError as exc:
        raise ConfigError(f"cannot trust '{url}': {exc}") from None
    key = f"{SECTION}.{TRUST_KEY}"
    proc = run_git(["config", f"--{scope}", "--get-all", key], cwd=cwd)
    known = proc.stdout.split("\n") if proc.returncode == 0 else []
    if any(same_endpoint(url, k) for k in known if k):
        return None
    proc = run_git(["config", f"--{scope}", "--add", key, url], cwd=cwd)
    if proc.returncode != 0:
        raise ConfigError(f"cannot add {key} in {scope} git config: {proc.stderr.strip()}")
    return Change(key, None, url)
