"""`model-registry init`, `list`, `show`, `resolve`, `check`, `add`, `next` and `doctor`: the
git-backed registry."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import cast

import click

from registry.cli.common import RefType, registry_errors, registry_source, rev_option, root_option
from registry.errors import InvalidReference, RecordError, RegistryError
from registry.records.record import record_of
from registry.records.yank import load_yanks
from registry.refs import BaseVersion, ModelRef, parse_version
from registry.repo import detect, layout
from registry.repo.add import add_version
from registry.repo.checks import check as run_check
from registry.repo.checks import load_settings
from registry.repo.init import init_registry
from registry.repo.location import locate
from registry.repo.plan import Bump, next_version
from registry.resolve import resolve as resolve_spec
from registry.resolve import select
from registry.selector import parse_selector


@click.command()
@click.argument("path", type=click.Path(file_okay=False, path_type=Path), default=".")
@click.option("--bucket", required=True, help="S3 bucket for the LFS objects.")
@click.option(
    "--prefix", default="model-registry", show_default=True, help="Key prefix inside the bucket."
)
@click.option("--endpoint", default=None, help="S3 endpoint URL, for a non-AWS store.")
@click.option("--region", default=None, help="AWS region of the bucket.")
@click.option(
    "--addressing-style",
    type=click.Choice(["auto", "path", "virtual"]),
    default=None,
    help="Bucket addressing for the S3 store.",
)
def init(
    path: Path,
    bucket: str,
    prefix: str,
    endpoint: str | None,
    region: str | None,
    addressing_style: str | None,
) -> None:
    """Create a registry repository at PATH (default: here), or complete one."""
    with registry_errors():
        report = init_registry(
            path,
            bucket=bucket,
            prefix=prefix,
            endpoint=endpoint,
            region=region,
            addressing_style=addressing_style,
        )
    for line in report:
        click.echo(line)


@click.command("list")
@click.argument("model", required=False)
@root_option
@rev_option
@click.option(
    "--root-url",
    default=None,
    metavar="URL",
    help="List what is published at s3://BUCKET/PREFIX[/MODEL] instead, from S3 alone.",
)
def list_models(
    model: str | None, root: Path | None, rev: str | None, root_url: str | None
) -> None:
    """List models, scopes and versions (of MODEL only, if given); yanked ones are marked."""
    if root_url is not None:
        from registry.cli.records import list_published

        list_published(root_url, model)
        return
    with registry_errors():
        source, _ = registry_source(root, rev)
        scan = layout.scan(source)
        yanks = load_yanks(source)
        rows = []
        for name, scopes in sorted(scan.versions.items()):
            if model and name != model:
                continue
            for scope, versions in sorted(scopes.items()):
                yanked = yanks.for_scope(name, scope)
                ordered = [f"{v} (yanked)" if v in yanked else str(v) for v in sorted(versions)]
                usable = [str(v) for v in sorted(versions) if v not in yanked]
                rows.append((name, scope, ", ".join(ordered) or "-", (usable or ["-"])[-1]))
        if model and not rows:
            raise RegistryError(
                f"no model '{model}'; available: " + (", ".join(sorted(scan.versions)) or "none")
            )
    header = ("MODEL", "SCOPE", "VERSIONS", "NEWEST")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(3)]
    for row in [header, *rows]:
        click.echo(
            "  ".join(c.ljust(w) for c, w in zip(row[:3], widths, strict=True)) + "  " + row[3]
        )


@click.command()
@click.argument("spec")
@root_option
@rev_option
def show(spec: str, root: Path | None, rev: str | None) -> None:
    """Show one version: its files, sizes, LFS oids, commit and README."""
    with registry_errors():
        source, where = registry_source(root, rev)
        ref = select(source, parse_selector(spec, model=where.model), where.root)
        files = layout.regular_files(source, ref)
        repo = where.repo
        committed = repo is not None and repo.head() is not None
        commit = repo.last_commit(ref.path, rev or "HEAD") if repo and committed else None
        pointers = layout.committed_pointers(repo, rev or "HEAD", ref.path) if repo else {}
        yanked = load_yanks(source).reason(ref)
        try:
            record = record_of(source, ref, load_settings(source).metrics)
            record_text = record.to_yaml() if record else ""
        except RecordError as exc:
            record_text = f"invalid: {exc}\n"
        readme = f"{ref.model}/{ref.scope}/README.md"
        text = (
            source.read(readme, load_settings(source).check.max_text_size).decode(
                "utf-8", "replace"
            )
            if "README.md" in source.files(f"{ref.model}/{ref.scope}")
            else ""
        )
    click.echo(f"{ref}")
    click.echo(f"commit  {commit or '(not committed)'}")
    if yanked:
        click.echo(f"yanked  {yanked} (selectors skip it)")
    for name, info in sorted(files.items()):
        lfs = info.lfs or pointers.get(name)
        if lfs:
            click.echo(f"  {name:<24} {lfs.size:>14,} bytes  lfs sha256:{lfs.oid}")
        else:
            click.echo(f"  {name:<24} {info.size:>14,} bytes")
    if record_text:
        click.echo("record (meta.yaml, log metrics):")
        for line in record_text.splitlines():
            click.echo(f"  {line}")
    for line in text.splitlines()[:5]:
        click.echo(f"  | {line}")


@click.command()
@click.argument("spec")
@root_option
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--no-fetch", is_flag=True, help="Do not pull LFS files that are not pulled yet.")
def resolve(spec: str, root: Path | None, as_json: bool, no_fetch: bool) -> None:
    """Resolve SPEC, such as YOLOX-l/base/1, to a version folder and its files."""
    with registry_errors():
        result = resolve_spec(spec, root, fetch=not no_fetch)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "ref": str(result.ref),
                    "path": str(result.path),
                    "commit": result.commit,
                    "files": {n: str(p) for n, p in result.files.items()},
                    "objects": {
                        n: {"oid": o.oid, "size": o.size} for n, o in result.objects.items()
                    },
                },
                indent=2,
            )
        )
        return
    click.echo(f"{result.ref}  {result.path}")
    for name, path in result.files.items():
        click.echo(f"  {name}  {path}")


@click.command()
@click.argument("path", type=click.Path(file_okay=False, path_type=Path), required=False)
@click.option(
    "--against",
    metavar="REV",
    default=None,
    help="Fail if a version that existed at REV was changed or removed.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Output format.",
)
def check(path: Path | None, against: str | None, fmt: str) -> None:
    """Check the registry's layout and rules; exit 1 when there is any problem."""
    with registry_errors():
        source, where = registry_source(path, None)
        findings = run_check(source, repo=where.repo, against=against)
    if fmt == "json":
        click.echo(json.dumps([f.as_dict() for f in findings], indent=2))
    else:
        for finding in findings:
            click.echo(str(finding))
        click.echo(
            f"{len(findings)} problem{'s' if len(findings) != 1 else ''} in {where.root}", err=True
        )
    if findings:
        raise SystemExit(1)


@click.command()
@click.argument("ref", type=RefType())
@click.option(
    "--from",
    "source",
    required=True,
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="Folder holding the version's files (config.yaml, checkpoint.pth, ...).",
)
@click.option(
    "--source",
    "code",
    default=None,
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="The training code's git checkout: its commit (and whether it was dirty) go into "
    "meta.yaml.",
)
@click.option(
    "--detect-gpu/--no-detect-gpu",
    default=True,
    show_default=True,
    help="Record the GPU model and count from nvidia-smi, when it is present.",
)
@root_option
def add(
    ref: ModelRef, source: Path, code: Path | None, detect_gpu: bool, root: Path | None
) -> None:
    """Register REF, such as YOLOX-l/base/1.3, from a folder of files, and stage it.

    A meta.yaml in the folder is kept (and validated); --source and nvidia-smi fill the
    provenance it does not record.
    """
    from registry.records.provenance import gather

    with registry_errors():
        where = locate(root)
        detect.require(layout.CheckoutSource(where.root), where.root)
        settings = load_settings(layout.CheckoutSource(where.root))
        record = gather(source, code=code, detect_gpu=detect_gpu)
        dest = add_version(
            where.root, ref, source, settings=settings, repo=where.repo, record=record
        )
    click.echo(f"added {ref} at {dest}; review and commit it ('git commit')")


@click.command("next")
@click.argument("target", metavar="MODEL/SCOPE")
@click.option("--major", "bump", flag_value="major", help="Base: a change the app must follow.")
@click.option("--minor", "bump", flag_value="minor", help="Base: new training settings or data.")
@click.option("--patch", "bump", flag_value="patch", help="Project: another update on a base.")
@click.option(
    "--base",
    "base",
    default=None,
    metavar="X.Y",
    help="Project: the base version it is fine-tuned from (default: the newest).",
)
@root_option
def next_command(target: str, bump: str | None, base: str | None, root: Path | None) -> None:
    """Print the next free version of MODEL/SCOPE, such as: YOLOX-l/base --minor."""
    try:
        selector = parse_selector(f"{target}/latest")
        base_version = parse_version("base", base) if base else None
    except InvalidReference as exc:
        raise click.UsageError(str(exc)) from exc
    assert selector.model is not None
    assert base_version is None or isinstance(base_version, BaseVersion)
    with registry_errors():
        source, _ = registry_source(root, None)
        existing = layout.versions(source, selector.model, selector.scope)
        bases = [
            v for v in layout.versions(source, selector.model, "base") if isinstance(v, BaseVersion)
        ]
        version = next_version(
            selector.scope,
            list(existing),
            cast("Bump | None", bump),
            bases=bases,
            base=base_version,
            today=datetime.date.today(),
        )
    click.echo(f"{selector.model}/{selector.scope}/{version}")


@click.command()
@click.option(
    "--write",
    is_flag=True,
    help="Also probe write permission: put a small object under the prefix and remove it.",
)
def doctor(write: bool) -> None:
    """Check the set-up: the same checks as 'lfs-s3-agent doctor'."""
    from lfs_agent.commands import run_doctor
    from registry.releases.indexwrite import check_conditional_writes

    run_doctor(write, [check_conditional_writes])
