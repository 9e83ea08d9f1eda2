"""`model-registry publish`, `fetch` and `cache`: published releases in S3 and the local cache."""

from __future__ import annotations

import datetime
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

import click

from registry import hints
from registry.cache import Cache
from registry.cli.common import registry_errors, root_option
from registry.cli.progress import ByteProgress
from registry.errors import RegistryError
from registry.releases import prepublish
from registry.releases.formats import RemoteRoot, parse_root_url
from registry.releases.remote import RemoteRegistry
from registry.repo import detect, layout
from registry.repo.gitrepo import GitRepo
from registry.repo.location import locate
from registry.safeio import file_mode

cache_dir_option = click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The local cache (default: MODEL_REGISTRY_CACHE, else ~/.cache/model-registry).",
)
quiet_option = click.option("--quiet", "-q", is_flag=True, help="No progress display.")


@click.command()
@root_option
@click.option(
    "--rev",
    default="HEAD",
    show_default=True,
    metavar="REV",
    help="Publish the versions as committed at this revision.",
)
@click.option(
    "--allow-unpushed",
    is_flag=True,
    help="Publish a commit that no remote-tracking branch contains (its manifests would name "
    "a commit the team cannot check out).",
)
@quiet_option
def publish(root: Path | None, rev: str, allow_unpushed: bool, quiet: bool) -> None:
    """Publish every committed version to S3 (manifests, index, missing objects).

    Bucket and prefix are the registry's own (lfs.url in .lfsconfig). Published versions are
    immutable: a version whose files changed since it was published is refused. A commit that
    was not pushed is refused (unless --allow-unpushed); versions not committed are named.
    """
    from lfs_agent import sources
    from lfs_agent.errors import AgentError
    from lfs_agent.s3client import make_data_client
    from lfs_agent.s3errors import Where
    from registry.releases.publish import publish as run_publish
    from registry.releases.storeerrors import store_error

    with registry_errors():
        where = locate(root)
        if where.repo is None:
            raise RegistryError(f"'{where.root}' is not a git repository: publish from a clone")
        detect.require(_tree_or_checkout(where.repo, where.root, rev), where.root)
        refusal = None if allow_unpushed else prepublish.unpushed_refusal(where.repo, rev)
        if refusal:
            raise RegistryError(refusal)
        for left_out in prepublish.uncommitted_versions(where.root, where.repo, rev):
            click.echo(prepublish.uncommitted_warning(left_out, rev), err=True)
        try:
            loaded = sources.load(os.environ, operation="upload", cwd=where.root)
        except AgentError as exc:
            raise RegistryError(str(exc)) from None
        config = loaded.config
        remote = RemoteRoot(bucket=config.bucket, prefix=config.prefix)
        try:
            client = make_data_client(config, config.max_connections, os.environ)
        except Exception as exc:
            endpoint = config.endpoint or "AWS S3"
            raise store_error(exc, Where("write", "", config.bucket, "", endpoint)) from exc
        bar = ByteProgress("publishing", enabled=None if not quiet else False)
        try:
            report = run_publish(
                where.repo,
                remote,
                client,
                lfs_dir=loaded.lfs_dir,
                rev=rev,
                progress=bar.update,
                settings=config,
            )
        finally:
            client.close()
        bar.close()
    for ref in report.published:
        click.echo(f"published {ref}")
    click.echo(
        f"{len(report.published)} published, {len(report.unchanged)} unchanged, "
        f"{_count(report.uploaded_objects, 'object')} ({report.uploaded_bytes:,} bytes) "
        f"uploaded to {remote}",
        err=True,
    )


@click.command()
@click.argument("spec")
@click.option(
    "--root-url",
    required=True,
    metavar="URL",
    help="Where the model is published: s3://BUCKET/PREFIX[/MODEL].",
)
@click.option(
    "--dest",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Copy the version's files into this folder (e.g. in a Docker build).",
)
@click.option(
    "--offline",
    is_flag=True,
    default=None,
    help="Use the local cache only (also: MODEL_REGISTRY_OFFLINE=1).",
)
@cache_dir_option
@quiet_option
def fetch(
    spec: str,
    root_url: str,
    dest: Path | None,
    offline: bool | None,
    cache_dir: Path | None,
    quiet: bool,
) -> None:
    """Fetch SPEC, such as base/1.2, from S3 alone into the cache, verified; print its files."""
    with registry_errors():
        bar = ByteProgress("downloading", enabled=None if not quiet else False)
        why = hints.offline_source(offline, given_as="the --offline flag")
        with RemoteRegistry(
            parse_root_url(root_url),
            Cache.at(cache_dir),
            offline=why is not None,
            offline_source=why or "",
            progress=bar.update,
        ) as remote:
            result = remote.resolve(spec)
        bar.close()
        if dest is not None:
            _copy_into(dest, result.files)
    click.echo(f"{result.ref}  {dest or result.path}")
    for name in result.files:
        click.echo(f"  {(dest / name) if dest else result.files[name]}")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _tree_or_checkout(repo: GitRepo, root: Path, rev: str) -> layout.Source:
    return layout.TreeSource(repo, rev) if repo.bare else layout.CheckoutSource(root)


def _copy_into(dest: Path, files: Mapping[str, Path]) -> None:
    """Copy each file into `dest` (temp + rename each, so no half-written file is left).

    The copies get the mode `cp` gives a new file (0644 under umask 022), not mkstemp's 0600:
    a Docker build that fetches as root and runs as another user must be able to read them.
    """
    for name, path in files.items():
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        os.close(fd)
        try:
            shutil.copyfile(path, tmp)
            os.chmod(tmp, file_mode())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


@click.group()
def cache() -> None:
    """Inspect, verify and prune the local cache of published models."""


@cache.command("ls")
@cache_dir_option
def cache_ls(cache_dir: Path | None) -> None:
    """List the cached objects: oid, size, last use, the versions using them."""
    with registry_errors():
        store = Cache.at(cache_dir)
        entries = store.entries()
    total = 0
    click.echo(f"{'OID':<16}  {'SIZE':>14}  {'LAST USE':<16}  VERSIONS")
    for entry in entries:
        total += entry.size
        used = datetime.datetime.fromtimestamp(entry.last_used).strftime("%Y-%m-%d %H:%M")
        click.echo(
            f"{entry.oid[:16]}  {entry.size:>14,}  {used:<16}  "
            + (", ".join(entry.versions) or "-")
        )
    click.echo(f"{_count(len(entries), 'object')}, {total:,} bytes in {store.root}", err=True)


@cache.command("verify")
@cache_dir_option
def cache_verify(cache_dir: Path | None) -> None:
    """Re-hash every cached object and check cached metadata; remove what fails (exit 1 if
    any)."""
    with registry_errors():
        store = Cache.at(cache_dir)
        bad = store.verify()
        bad_meta = store.verify_meta()
    for oid in bad:
        click.echo(f"corrupt, removed: {oid}")
    for key in bad_meta:
        click.echo(f"invalid metadata, removed: {key}")
    click.echo(
        f"{_count(len(bad), 'corrupt object')}, {_count(len(bad_meta), 'invalid metadata file')}"
        f" in {store.root}",
        err=True,
    )
    if bad or bad_meta:
        raise SystemExit(1)


@cache.command("prune")
@cache_dir_option
@click.option(
    "--older-than",
    type=float,
    default=None,
    metavar="DAYS",
    help="Only remove what was not used for DAYS days.",
)
@click.option(
    "--keep",
    "keep",
    multiple=True,
    metavar="SPEC",
    help="Keep the files of this version (with --root-url); repeatable.",
)
@click.option("--root-url", default=None, metavar="URL", help="Where --keep versions live.")
def cache_prune(
    cache_dir: Path | None, older_than: float | None, keep: tuple[str, ...], root_url: str | None
) -> None:
    """Remove cached objects, except those named by --keep or used recently (--older-than)."""
    with registry_errors():
        store = Cache.at(cache_dir)
        kept: set[str] = set()
        if keep:
            if root_url is None:
                raise click.UsageError("--keep needs --root-url")
            remote = RemoteRegistry(parse_root_url(root_url), store, offline=True)
            for spec in keep:
                kept |= {p.oid for p in remote.resolve(spec).objects.values()}
        removed = store.prune(
            keep=kept, older_than=None if older_than is None else older_than * 86400
        )
    click.echo(f"removed {_count(len(removed), 'object')} from {store.root}")
