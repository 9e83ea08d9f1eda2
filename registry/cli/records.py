"""`model-registry compare`, `gate`, `history`, `yank` and `unyank`, and `list --root-url`:
version records and release decisions, printed from the library's result objects."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import click

from registry.cli.common import registry_errors, rev_option, root_option
from registry.errors import NoGate, RegistryError
from registry.records.compare import compare as run_compare
from registry.records.compare import number
from registry.records.compare import render as render_comparison
from registry.records.gate import gate as run_gate
from registry.records.gate import render as render_gate
from registry.records.history import history as run_history
from registry.records.history import plot
from registry.records.history import render as render_history
from registry.refs import parse_ref
from registry.repo.location import Location, locate


@click.command()
@click.argument("a")
@click.argument("b")
@root_option
@rev_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "markdown"]),
    default="table",
    show_default=True,
    help="markdown fits a pull-request comment.",
)
def compare(a: str, b: str, root: Path | None, rev: str | None, fmt: str) -> None:
    """Compare versions A and B (selectors): metrics, config, dataset, source, file sizes."""
    with registry_errors():
        result = run_compare(a, b, root, rev=rev)
    click.echo(render_comparison(result, fmt))


@click.command()
@click.argument("spec")
@click.option(
    "--against",
    default=None,
    metavar="SPEC",
    help="Compare with this version (default: the newest one below SPEC that is not yanked).",
)
@root_option
@rev_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Output format.",
)
def gate(spec: str, against: str | None, root: Path | None, rev: str | None, fmt: str) -> None:
    """Check SPEC against its scope's thresholds in model-registry.toml.

    Exit 0 when every threshold holds, 1 with a table of what failed, 2 for usage errors.
    """
    try:
        with registry_errors():
            result = run_gate(spec, root, against=against, rev=rev)
    except click.ClickException as exc:
        if isinstance(exc.__cause__, NoGate):
            raise click.UsageError(str(exc.__cause__)) from exc
        raise
    click.echo(json.dumps(result.as_dict(), indent=2) if fmt == "json" else render_gate(result))
    if not result.passed:
        raise SystemExit(1)


@click.command()
@click.argument("target", metavar="MODEL/SCOPE")
@click.option("--metric", "metrics", multiple=True, metavar="NAME", help="Only this metric.")
@click.option(
    "--plot",
    "plot_to",
    default=None,
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE.png",
    help="Draw each metric across versions, thresholds as lines (needs the 'plot' extra).",
)
@root_option
@rev_option
def history(
    target: str,
    metrics: tuple[str, ...],
    plot_to: Path | None,
    root: Path | None,
    rev: str | None,
) -> None:
    """The versions of MODEL/SCOPE in order, with their metrics."""
    with registry_errors():
        result = run_history(target, root, rev=rev)
        text = render_history(result, metrics)
        if plot_to is not None:
            plot(result, plot_to, metrics)
    click.echo(text)
    if plot_to is not None:
        click.echo(f"plot written to {plot_to}", err=True)


@click.command()
@click.argument("ref")
@click.option("--reason", required=True, help="Why the version is withdrawn.")
@root_option
def yank(ref: str, reason: str, root: Path | None) -> None:
    """Withdraw REF from selectors (it still resolves when named exactly), and stage yanks.yaml."""
    from registry.records.yank import set_yank

    with registry_errors():
        where = _checkout(root)
        parsed = parse_ref(ref)
        set_yank(where.root, where.repo, parsed, reason, datetime.date.today())
    click.echo(
        f"yanked {parsed}: selectors skip it; commit yanks.yaml, then publish to yank it in S3"
    )


@click.command()
@click.argument("ref")
@root_option
def unyank(ref: str, root: Path | None) -> None:
    """Give REF back to selectors, and stage yanks.yaml."""
    from registry.records.yank import set_yank

    with registry_errors():
        where = _checkout(root)
        parsed = parse_ref(ref)
        set_yank(where.root, where.repo, parsed, None, datetime.date.today())
    click.echo(f"unyanked {parsed}; commit yanks.yaml, then publish")


def _checkout(root: Path | None) -> Location:
    where = locate(root)
    if where.repo is not None and where.repo.bare:
        raise RegistryError(
            f"'{where.root}' is a bare repository: yank in a clone of it, then commit "
            "yanks.yaml and push"
        )
    return where


def list_published(root_url: str, model: str | None) -> None:
    """`list --root-url`: the published versions, yanks and metrics, from S3 alone."""
    from registry.cache import Cache
    from registry.releases.formats import parse_root_url
    from registry.releases.published import published
    from registry.releases.remote import RemoteRegistry, is_offline

    with registry_errors():
        root = parse_root_url(root_url)
        if model is not None:
            root = root.model_copy(update={"model": model})
        remote = RemoteRegistry(root, Cache.at(None), offline=is_offline(None))
        versions = published(remote)
        if not versions:
            raise RegistryError(f"nothing is published at {root}: run 'model-registry publish'")
    from registry.records.compare import table

    rows = [
        [
            v.ref.model,
            v.ref.scope,
            str(v.ref.version),
            "  ".join(f"{k}={number(x)}" for k, x in sorted(v.metrics.items())) or "-",
            f"yanked: {v.yanked}" if v.yanked else "",
        ]
        for v in versions
    ]
    for line in table(["MODEL", "SCOPE", "VERSION", "METRICS", ""], rows):
        click.echo(line)
