"""The set-up commands of `lfs-s3-agent` (click): install, uninstall, config, doctor, serve."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import click

from . import config as cfg
from . import install as inst
from . import sources
from .errors import AgentError

if TYPE_CHECKING:
    from .findings import Check


def _scope(is_global: bool) -> str:
    return "global" if is_global else "local"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="lfs-s3-registry", prog_name="lfs-s3-agent")
def cli() -> None:
    """Git LFS custom transfer agent that stores LFS objects in S3.

    git-lfs runs 'lfs-s3-agent serve' itself; you run 'install' once.
    """


@cli.command()
def serve() -> None:
    """Speak the git-lfs custom transfer protocol on stdin/stdout (git-lfs runs this)."""
    from .agent import exit_now, run

    exit_now(run())


@cli.command()
@click.option(
    "--global",
    "is_global",
    is_flag=True,
    help="Install for every repository of this user whose lfs.url is "
    f"https://{cfg.PLACEHOLDER_HOST}/..., so a plain 'git clone' works.",
)
@click.option(
    "--concurrent",
    is_flag=True,
    help="One agent process per git-lfs worker (lfs.concurrenttransfers) instead of one per "
    "transfer: for thousands of small files over a high-latency link.",
)
@click.option(
    "--trust-endpoint",
    "trusted",
    multiple=True,
    metavar="URL",
    help="Also trust this plain-http endpoint when a repository's .lfs-s3config names it "
    "(see 'lfs-s3-agent trust'). Repeatable.",
)
def install(is_global: bool, concurrent: bool, trusted: tuple[str, ...]) -> None:
    """Register the agent with git-lfs in this repository (or --global). Idempotent."""
    try:
        changes = inst.install(_scope(is_global), concurrent=concurrent)
        for url in trusted:
            change = inst.trust(_scope(is_global), url)
            if change is not None:
                changes.append(change)
    except AgentError as exc:
        raise click.ClickException(str(exc)) from exc
    for change in changes:
        click.echo(change)
    where = "globally" if is_global else "in this repository"
    click.echo(f"lfs-s3-agent is installed {where}" + ("" if changes else " (no change)"))


@cli.command()
@click.argument("url", required=False)
@click.option(
    "--global", "is_global", is_flag=True, help="Trust it in ~/.gitconfig, for every clone."
)
def trust(url: str | None, is_global: bool) -> None:
    """Send requests to URL, a plain-http endpoint named by a repository's .lfs-s3config.

    A cloned repository chooses where its objects live, but the agent signs each request with
    your AWS credentials: an http:// endpoint from a committed file is used only once you
    trust it here. Without URL, the endpoint this repository's .lfs-s3config names.
    """
    try:
        if url is None:
            url = _committed_endpoint()
        change = inst.trust(_scope(is_global), url)
    except AgentError as exc:
        raise click.ClickException(str(exc)) from exc
    where = "for every clone" if is_global else "in this repository"
    if change is None:
        click.echo(f"{url} was already trusted {where}")
    else:
        click.echo(f"{change}\ntrusted {url} {where}")


def _committed_endpoint() -> str:
    from .gitenv import read_committed_configs, repo_paths

    repo = repo_paths(None)
    (committed,) = read_committed_configs(repo, [cfg.COMMITTED_FILE])
    for entry in reversed(committed):
        if entry.key == f"{cfg.SECTION}.endpoint":
            return entry.value
    raise click.ClickException(
        f"this repository's {cfg.COMMITTED_FILE} names no endpoint; give the URL to trust"
    )


@cli.command()
@click.option("--global", "is_global", is_flag=True, help="Remove the global installation.")
def uninstall(is_global: bool) -> None:
    """Remove what 'install' wrote (in this repository, or --global). Idempotent."""
    try:
        changes = inst.uninstall(_scope(is_global))
    except AgentError as exc:
        raise click.ClickException(str(exc)) from exc
    for change in changes:
        click.echo(change)
    click.echo("lfs-s3-agent is uninstalled" + ("" if changes else " (was not installed)"))


@cli.command("config")
@click.option(
    "--operation",
    type=click.Choice(["download", "upload"]),
    default="download",
    show_default=True,
    help="Which transfer's settings to show (lfs.pushurl counts for upload only).",
)
@click.option(
    "--remote",
    default="origin",
    show_default=True,
    help="Remote whose remote.<name>.lfsurl counts.",
)
def show_config(operation: str, remote: str) -> None:
    """Print the effective settings and where each one comes from."""
    try:
        loaded = sources.load(os.environ, operation=operation, remote=remote)
    except AgentError as exc:
        _show_agent(len("addressing-style"))
        raise click.ClickException(str(exc)) from exc
    rows: list[tuple[str, str, str]] = []
    defaults = cfg.defaults()
    for name in cfg.SETTINGS:
        if name in loaded.values:
            shown = getattr(loaded.config, cfg.SETTINGS[name][0])
            rows.append((name, str(shown), loaded.values[name].source))
        elif name == "endpoint" and _aws_endpoint():
            var, url = _aws_endpoint()
            rows.append((name, url, f"environment {var} (read by boto3)"))
        else:
            rows.append((name, defaults.get(name, "(boto3 default)"), "default"))
    width = max(len(r[0]) for r in rows)
    vwidth = max(len(r[1]) for r in rows)
    for name, value, source in rows:
        click.echo(f"{name:<{width}}  {value:<{vwidth}}  {source}")
    layout = f"{loaded.config.prefix}/objects" if loaded.config.prefix else "objects"
    click.echo(
        f"{'objects':<{width}}  s3://{loaded.config.bucket}/{layout}/<oid[0:2]>/<oid[2:4]>/<oid>"
    )
    click.echo(f"{'lfs dir':<{width}}  {loaded.lfs_dir}")
    _show_agent(width)


def _show_agent(width: int) -> None:
    """The agent command git config names, flagged when it is gone (git-lfs says only EOF)."""
    from .doctor import agent_path_problems
    from .gitenv import run_git

    path = run_git(["config", "--get", f"lfs.customtransfer.{inst.TRANSFER}.path"])
    args = run_git(["config", "--get", f"lfs.customtransfer.{inst.TRANSFER}.args"])
    if path.returncode != 0 or args.returncode != 0:
        click.echo(f"{'agent':<{width}}  (not installed: run 'lfs-s3-agent install --global')")
        return
    command = path.stdout.strip()
    problems = agent_path_problems(command, args.stdout.strip())
    launcher = inst.configured_command(args.stdout.strip())
    click.echo(f"{'agent':<{width}}  {command} -S {launcher}")
    if problems:
        click.echo(
            f"{'':<{width}}  MISSING: {'; '.join(problems)}. Install lfs-s3-registry again and "
            "run 'lfs-s3-agent install --global'; 'lfs-s3-agent doctor' checks the rest"
        )


@cli.command()
@click.option(
    "--write",
    is_flag=True,
    help="Also probe write permission: put a small object under the prefix and remove it.",
)
def doctor(write: bool) -> None:
    """Check git, git-lfs, the agent, this repository's settings, credentials and bucket."""
    run_doctor(write)


def run_doctor(write: bool, extra: Sequence[Check] = ()) -> None:
    """Shared with `model-registry doctor` (which adds `extra` checks of its own): print every
    result, exit 1 on any problem."""
    from pathlib import Path

    from . import doctor as doc
    from . import doctor_s3

    checks = [*doc.CHECKS, *doctor_s3.CHECKS, *extra]
    results = doc.run(doc.Context(cwd=Path.cwd(), environ=os.environ, write=write), checks)
    lines, status = doc.render(results)
    for line in lines:
        click.echo(line)
    raise SystemExit(status)


def _aws_endpoint() -> tuple[str, str]:
    for var in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"):
        if os.environ.get(var):
            return var, os.environ[var]
    return "", ""
