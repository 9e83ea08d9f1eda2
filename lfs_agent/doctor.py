"""`lfs-s3-agent doctor` (also `model-registry doctor`): check what breaks in practice, and say
how to fix each problem.

Imported by the CLI command only, never on the agent's serve path. A check is a function from
the shared `Context` to its results; `CHECKS` runs in order, and adding a check is adding a
function to it. A result is fine, a problem (exit 1, one line each), a warning or a note.

    results = run(Context(cwd=Path.cwd(), environ=os.environ, write=False))
    for line in render(results): print(line)
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterable

from . import config as cfg
from . import sources
from .config import PLACEHOLDER_HOST
from .errors import AgentError

# What a check is, shared with the S3 checks (`doctor_s3`); importable from here as before.
from .findings import Check as Check
from .findings import Context as Context
from .findings import Result as Result
from .findings import Status as Status
from .gitenv import run_git
from .install import TRANSFER, agent_command, configured_command


def _version(text: str) -> str:
    found = re.search(r"(\d+\.\d+(?:\.\d+)?)", text)
    return found.group(1) if found else text.strip()


def check_git(ctx: Context) -> Iterable[Result]:
    try:
        proc = subprocess.run(["git", "--version"], capture_output=True, text=True, check=False)
    except OSError:
        yield Result(
            "git",
            "problem",
            "git is not installed or not on PATH",
            "install git (Debian/Ubuntu: 'sudo apt-get install git')",
        )
        return
    yield Result("git", "ok", f"git {_version(proc.stdout)}")


def check_git_lfs(ctx: Context) -> Iterable[Result]:
    proc = run_git(["lfs", "env"], cwd=ctx.cwd, env=ctx.environ)
    if proc.returncode != 0 or not proc.stdout.startswith("git-lfs/"):
        yield Result(
            "git-lfs",
            "problem",
            "git-lfs is not installed ('git lfs' does not run)",
            "install git-lfs (Debian/Ubuntu: 'sudo apt-get install git-lfs'), then "
            "'lfs-s3-agent install --global'",
        )
        return
    lines = proc.stdout.splitlines()
    for line in lines[1:]:
        key, sep, value = line.partition("=")
        if sep and " " not in key:
            ctx.lfs_env[key] = value
        elif line.startswith("git config filter.lfs.process"):
            ctx.lfs_env["filter.lfs.process"] = line.partition("=")[2].strip().strip('"')
    yield Result("git-lfs", "ok", f"git-lfs {_version(lines[0])}")
    if not ctx.lfs_env.get("filter.lfs.process"):
        yield Result(
            "git-lfs",
            "problem",
            "git-lfs's filters are not installed, so checkouts keep LFS pointers",
            "run 'lfs-s3-agent install --global' (it runs 'git lfs install' too)",
        )


def _config(ctx: Context, key: str) -> tuple[str, str] | None:
    """(value, scope) of a git config key as git-lfs would read it, or None."""
    proc = run_git(["config", "--show-scope", "--get", key], cwd=ctx.cwd, env=ctx.environ)
    if proc.returncode != 0:
        return None
    scope, _, value = proc.stdout.rstrip("\n").partition("\t")
    return value, scope


def agent_path_problems(path: str, args: str) -> list[str]:
    """What is wrong with the agent command git config names (empty when it is runnable)."""
    launcher = configured_command(args)
    problems = []
    if not os.path.isfile(path) or not os.access(path, os.X_OK):
        problems.append(f"{path} does not exist or cannot be run")
    if launcher is None:
        problems.append(f"the args '{args[:80]}' do not name the agent's launcher")
    elif not os.path.isfile(launcher):
        problems.append(f"{launcher} does not exist")
    return problems


def check_agent(ctx: Context) -> Iterable[Result]:
    reinstall = (
        "install lfs-s3-registry again if its virtualenv is gone, then run "
        "'lfs-s3-agent install --global' (or 'lfs-s3-agent install' in the repository)"
    )
    path = _config(ctx, f"lfs.customtransfer.{TRANSFER}.path")
    args = _config(ctx, f"lfs.customtransfer.{TRANSFER}.args")
    if path is None or args is None:
        yield Result("agent", "problem", "lfs-s3-agent is not installed in git config", reinstall)
        return
    problems = agent_path_problems(path[0], args[0])
    if problems:
        detail = f"git config ({path[1]}) runs a missing agent: " + "; ".join(problems)
        yield Result("agent", "problem", detail, reinstall)
        return
    launcher = configured_command(args[0]) or ""
    probe = (
        f"import sys; sys.path.insert(0, {os.path.dirname(os.path.dirname(launcher))!r}); "
        "import lfs_agent.agent"
    )
    try:
        proc = subprocess.run(
            [path[0], "-S", "-c", probe], capture_output=True, text=True, timeout=30, check=False
        )
        ran, said = proc.returncode == 0, proc.stderr.strip().splitlines()[-1:] or [""]
    except (OSError, subprocess.TimeoutExpired) as exc:
        ran, said = False, [str(exc)]
    if not ran:
        yield Result("agent", "problem", f"{path[0]} cannot load the agent: {said[0]}", reinstall)
        return
    yield Result("agent", "ok", f"{path[0]} -S {launcher} (git config, {path[1]})")
    mine = configured_command(agent_command()[1]) or ""
    if os.path.realpath(launcher) != os.path.realpath(mine):
        yield Result(
            "agent",
            "note",
            f"git config runs another installation than this one ({mine}); run "
            "'lfs-s3-agent install' from the installation you mean to use",
        )


def check_repository(ctx: Context) -> Iterable[Result]:
    """lfs.url's form and the standalone-agent setting for it (local or global install)."""
    if run_git(["rev-parse", "--git-dir"], cwd=ctx.cwd, env=ctx.environ).returncode != 0:
        yield Result(
            "repository",
            "note",
            f"'{ctx.cwd}' is not in a git repository: run 'lfs-s3-agent doctor' in a "
            "registry's clone to check its lfs.url, settings and bucket",
        )
        return
    endpoint = ctx.lfs_env.get("Endpoint", "").split(" (", 1)[0]
    if not endpoint.startswith(f"https://{PLACEHOLDER_HOST}/"):
        yield Result(
            "lfs.url",
            "problem",
            f"git-lfs's endpoint here is '{endpoint or '(none)'}', not "
            f"https://{PLACEHOLDER_HOST}/BUCKET/PREFIX, so git-lfs does not use lfs-s3-agent",
            f"commit .lfsconfig with '[lfs] url = https://{PLACEHOLDER_HOST}/BUCKET/PREFIX' "
            "('model-registry init --bucket BUCKET' writes it)",
        )
        return
    yield Result("lfs.url", "ok", endpoint)
    proc = run_git(
        ["config", "--get-urlmatch", "lfs.standalonetransferagent", endpoint],
        cwd=ctx.cwd,
        env=ctx.environ,
    )
    agent = proc.stdout.strip()
    if agent != TRANSFER:
        yield Result(
            "transfer",
            "problem",
            f"lfs.standalonetransferagent for {endpoint} is '{agent or '(unset)'}', not "
            f"'{TRANSFER}': git-lfs would try HTTP and fail with 'no such host'",
            "run 'lfs-s3-agent install --global' (or 'lfs-s3-agent install' here)",
        )
        return
    where = "local" if _config(ctx, "lfs.standalonetransferagent") else "global"
    yield Result("transfer", "ok", f"git-lfs uses {TRANSFER} for {endpoint} ({where} install)")


def check_settings(ctx: Context) -> Iterable[Result]:
    if "lfs.url" not in {r.check for r in _seen(ctx) if r.status == "ok"}:
        return
    try:
        ctx.loaded = sources.load(ctx.environ, operation="upload", cwd=ctx.cwd)
    except cfg.UntrustedEndpoint as exc:
        ctx.settings_error = str(exc)
        yield Result(
            "endpoint",
            "problem",
            f"this repository's {cfg.COMMITTED_FILE} names the plain-http endpoint {exc.url}, "
            "which you have not trusted: the agent sends it nothing",
            f"if it is your team's store, 'lfs-s3-agent trust {exc.url}' (or --global)",
        )
        return
    except AgentError as exc:
        ctx.settings_error = str(exc)
        yield Result("settings", "problem", str(exc))
        return
    endpoint = ctx.loaded.values.get("endpoint")
    if endpoint is not None and endpoint.source.startswith(cfg.COMMITTED_FILE):
        how = "https" if endpoint.raw.startswith("https://") else "trusted in your git config"
        yield Result("endpoint", "ok", f"{endpoint.raw} from {cfg.COMMITTED_FILE} ({how})")
    shown = ", ".join(
        f"{name}={value.raw} ({value.source})" for name, value in sorted(ctx.loaded.values.items())
    )
    yield Result("settings", "ok", shown)


def _seen(ctx: Context) -> list[Result]:
    seen = ctx.shared.setdefault("results", [])
    assert isinstance(seen, list)
    return seen


def _s3_checks() -> list[Check]:
    from . import doctor_s3

    return doctor_s3.CHECKS


CHECKS: list[Check] = [check_git, check_git_lfs, check_agent, check_repository, check_settings]
"""The local checks, in order; the S3 ones (`doctor_s3.CHECKS`) follow them."""


def run(ctx: Context, checks: Iterable[Check] | None = None) -> list[Result]:
    """Every check's results, in order; a check sees the results before it (`_seen`)."""
    results = _seen(ctx)
    for check in checks if checks is not None else [*CHECKS, *_s3_checks()]:
        results.extend(check(ctx))
    return list(results)


def render(results: Iterable[Result]) -> tuple[list[str], int]:
    """The lines to print and the exit status (1 when there is a problem)."""
    results = list(results)
    lines = [r.line() for r in results]
    problems = sum(r.status == "problem" for r in results)
    lines.append(f"{problems} problem{'' if problems == 1 else 's'}")
    return lines, 1 if problems else 0
