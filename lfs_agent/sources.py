"""Gather the agent's settings from the environment and from git, with where each came from."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from . import config as cfg
from . import logs
from .gitenv import (
    CONFIG_LIST,
    REV_PARSE,
    ConfigEntry,
    guess_toplevel,
    read_committed_configs,
    read_git_config,
    repo_paths,
    start_committed_reads,
    start_git,
)

# Defined where the warm server remembers it (`memo.py`); importable from here as before.
from .memo import Loaded as Loaded
from .memo import Memo, key_of, rememberable, watched_files

log = logs.get(__name__)


def url_keys(operation: str, remote: str) -> list[str]:
    """The git-lfs keys that name the LFS endpoint, in git-lfs's order (lfsapi endpoint finder)."""
    keys = ["lfs.pushurl"] if operation == "upload" else []
    keys.append("lfs.url")
    # `remote` is a remote's name, or a URL when git-lfs was given one on the command line;
    # git-lfs falls back to "origin" when there is none.
    remote = remote or "origin"
    if "/" not in remote and ":" not in remote:
        if operation == "upload":
            keys.append(f"remote.{remote}.lfspushurl")
        keys.append(f"remote.{remote}.lfsurl")
    return keys


def _safe_url_key(key: str) -> bool:
    return key in ("lfs.url", "lfs.pushurl") or (
        key.startswith("remote.") and key.endswith(".lfsurl")
    )


def layers(
    environ: Mapping[str, str],
    git: list[ConfigEntry],
    lfsconfig: list[ConfigEntry],
    committed: list[ConfigEntry],
    *,
    operation: str = "download",
    remote: str = "origin",
) -> list[cfg.Layer]:
    """Every source as a layer, highest precedence first."""
    git_values = {e.key: e for e in git}  # later entries are higher scopes: last one wins
    # git-lfs takes only its safe keys from a committed .lfsconfig (config/git_fetcher.go).
    lfs_values = {e.key: e for e in lfsconfig if _safe_url_key(e.key)}
    git_url: cfg.Layer = {}
    committed_url: cfg.Layer = {}
    for key in url_keys(operation, remote):
        if key in git_values:
            git_url = cfg.location_from_url(
                git_values[key].value, f"git config ({git_values[key].scope})"
            )
            break
        if key in lfs_values:
            committed_url = cfg.location_from_url(lfs_values[key].value, ".lfsconfig")
            break
    return [
        cfg.env_layer(environ),
        cfg.section_layer((e.key, e.value, f"git config ({e.scope})") for e in git),
        git_url,
        cfg.section_layer(
            ((e.key, e.value, cfg.COMMITTED_FILE) for e in committed), committed=True
        ),
        committed_url,
    ]


def trusted_endpoints(git: list[ConfigEntry]) -> list[str]:
    """The endpoints the user trusts (`lfs-s3.trusted-endpoint`, any scope of git config)."""
    return [e.value for e in git if e.key == f"{cfg.SECTION}.{cfg.TRUST_KEY}"]


def load(
    environ: Mapping[str, str],
    *,
    operation: str = "download",
    remote: str = "origin",
    cwd: Path | None = None,
    memo: Memo | None = None,
) -> Loaded:
    """Read every source for the repository at `cwd` and validate the result; `memo`: settings
    a warm server remembers, taken when no file they came from has changed (`memo.py`).

    Raises:
        ConfigError: not in a repository, or a setting is missing or invalid.
    """
    if memo is None:
        return _load(environ, operation, remote, cwd)[0]
    here = os.path.abspath(cwd or os.getcwd())
    key = key_of(environ, here, operation, remote)
    remembered = memo.lookup(key)
    if remembered is not None:
        log.info("settings as at the last start: no file they came from has changed")
        return remembered
    loaded, git = _load(environ, operation, remote, cwd)
    if rememberable(git):
        origins = {e.origin for e in git}
        memo.remember(key, watched_files(loaded.repo, environ, origins, here), loaded)
    return loaded


def _load(
    environ: Mapping[str, str], operation: str, remote: str, cwd: Path | None
) -> tuple[Loaded, list[ConfigEntry]]:
    # All at once: each git process costs a few ms, paid at every agent start. The committed
    # files are read where the work tree is guessed to be, and read again if that was wrong.
    names = [".lfsconfig", cfg.COMMITTED_FILE]
    rev_parse = start_git(REV_PARSE, cwd=cwd)
    config_list = start_git(CONFIG_LIST, cwd=cwd)
    guess = guess_toplevel(environ, cwd)
    early = start_committed_reads(guess, names, cwd=guess) if guess else {}
    try:
        repo = repo_paths(cwd, started=rev_parse)
        git = read_git_config(cwd, started=config_list)
        lfsconfig, committed = read_committed_configs(
            repo, names, started=early if guess and repo.toplevel == guess else None
        )
    finally:
        for wait in (config_list, *(w for waits in early.values() for w in waits)):
            wait()  # reap what an error or a wrong guess left running
    values = cfg.check_committed_endpoint(
        cfg.resolve(layers(environ, git, lfsconfig, committed, operation=operation, remote=remote)),
        trusted_endpoints(git),
        environ,
    )
    storage = next((e.value for e in reversed(git) if e.key == "lfs.storage"), None)
    return Loaded(cfg.build(values), values, repo, repo.lfs_dir(storage)), git
