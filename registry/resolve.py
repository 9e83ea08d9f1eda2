"""Resolve a selector to the files of one model version: `from registry import resolve`.

>>> r = resolve("YOLOX-l/base/1", root="path/to/model-registry")      # doctest: +SKIP
>>> str(r.ref), r.files["checkpoint.pth"]                               # doctest: +SKIP
('YOLOX-l/base/1.10', PosixPath('/.../YOLOX-l/base/1.10/checkpoint.pth'))

A version's files are never handed out as LFS pointers: when they were not pulled, `resolve`
pulls that version only (`git lfs pull --include`, through git-lfs and the lfs-s3 agent) or
raises NotPulled naming the command to run.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType

from registry.errors import NotFound, NotPulled, RegistryError
from registry.records.yank import load_yanks
from registry.refs import ModelRef, Version
from registry.repo import detect, layout
from registry.repo.gitrepo import GitRepo
from registry.repo.location import Location, locate
from registry.resolved import ResolvedModel
from registry.selector import (
    Exact,
    Prefix,
    Selector,
    check_selector,
    parse_selector,
    pick_version,
    skipped,
)


def resolve(
    spec: str,
    root: str | os.PathLike[str] | None = None,
    *,
    fetch: bool = True,
    offline: bool | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> ResolvedModel:
    """Resolve `spec` (e.g. `"YOLOX-l/base/1"`) in the registry at `root` (default: here).

    Args:
        spec: a selector; the model may be left out when `root` is a model's folder.
        root: a registry checkout, any folder in it, or a model's folder; or a published
            registry or model in S3, `s3://bucket/prefix[/model]` (see `registry.releases.remote`).
        fetch: pull the version's LFS files when they are still pointers (checkouts).
        offline: for s3:// roots, use only the local cache (default: MODEL_REGISTRY_OFFLINE).
        cache_dir: for s3:// roots, the cache (default: MODEL_REGISTRY_CACHE, else the user's
            cache directory).

    Raises:
        InvalidReference: `spec` does not parse.
        NotFound: no such model, scope or version; the message lists what exists.
        NotPulled: the files are LFS pointers and could not be pulled.
        NotARegistry, RepoError: `root` is not usable.
        RegistryError: the version holds a symlink or a special file (never handed out).
        OfflineMiss: offline, and what is needed is not cached.
    """
    if root is not None and os.fspath(root).startswith("s3://"):
        return _resolve_published(spec, os.fspath(root), offline, cache_dir)
    check_selector(spec)  # hostile input is refused before any file is read or git runs
    where = locate(root)
    if where.repo is not None and where.repo.bare:
        raise RegistryError(
            f"'{where.root}' is a bare repository: it has no files to resolve to. Clone it "
            f"('git clone {where.root}') and resolve in the clone"
        )
    selector = parse_selector(spec, model=where.model)
    source = layout.CheckoutSource(where.root)
    detect.require(source, where.root)
    ref = select(source, selector, where.root)
    found = layout.regular_files(source, ref)
    if not found:
        raise NotFound(f"version folder {ref.path} in '{where.root}' is empty", wanted=str(ref))
    if fetch and any(f.lfs for f in found.values()) and where.repo is not None:
        reason = _pull(where.repo, ref)
        found = layout.regular_files(source, ref)
    else:
        reason = ""
    _refuse_pointers(where, ref, found, reason)
    return ResolvedModel(
        ref=ref,
        path=where.root / ref.path,
        files=MappingProxyType({n: where.root / f.path for n, f in sorted(found.items())}),
        commit=_commit(where, ref),
        objects=MappingProxyType(
            layout.committed_pointers(where.repo, "HEAD", ref.path) if where.repo else {}
        ),
    )


def _resolve_published(
    spec: str, root: str, offline: bool | None, cache_dir: str | os.PathLike[str] | None
) -> ResolvedModel:
    """`resolve` of an s3:// root: the published release, through the local cache."""
    from registry.cache import Cache
    from registry.hints import offline_source
    from registry.releases.formats import parse_root_url
    from registry.releases.remote import RemoteRegistry

    why = offline_source(offline, given_as="offline=True")
    with RemoteRegistry(
        parse_root_url(root),
        Cache.at(cache_dir),
        offline=why is not None,
        offline_source=why or "",
    ) as remote:
        return remote.resolve(spec)


def _pull(repo: GitRepo, ref: ModelRef) -> str:
    """Pull the version's LFS files; what git-lfs said when it failed ("" when it did not)."""
    pulled = repo.lfs_pull([f"{ref.path}/**"])
    said = pulled.stderr.decode("utf-8", "replace").strip().splitlines()
    # The agent's reasons are on the "error transferring" lines; the last line is generic.
    errors = [line for line in said if "error transferring" in line] or said[-1:]
    return f" ('git lfs pull' said: {' '.join(errors)})" if pulled.returncode else ""


def _refuse_pointers(
    where: Location, ref: ModelRef, found: Mapping[str, layout.FileInfo], reason: str
) -> None:
    """Raise NotPulled when a file of the version is still an LFS pointer."""
    missing = sorted(name for name, f in found.items() if f.lfs)
    if missing:
        command = f'git lfs pull --include "{ref.path}/**"'
        raise NotPulled(
            f"{ref} is not pulled: {', '.join(missing)} "
            f"{'is an LFS pointer' if len(missing) == 1 else 'are LFS pointers'}{reason}. Run "
            f"'{command}' in '{where.root}' (with 'lfs-s3-agent install' done and S3 "
            "credentials available)",
            command=command,
        )


def select(source: layout.Source, selector: Selector, root: Path) -> ModelRef:
    """The version `selector` names in `source`.

    Selectors skip yanked versions; an exact one resolves with a YankedWarning.

    Raises:
        NotFound: listing the models, scopes or versions that do exist, and the closest one.
    """
    model = selector.model
    if model is None:
        raise NotFound(
            f"'{selector}' names no model: write it as MODEL/{selector}, or pass a model's "
            "folder as root",
            wanted=str(selector),
        )
    known = layout.models(source)
    if model not in known:
        raise _not_found(f"no model '{model}' in the registry at '{root}'", model, known)
    scopes = layout.scopes(source, model)
    if selector.scope not in scopes:
        raise _not_found(f"model {model} has no scope '{selector.scope}'", selector.scope, scopes)
    versions = layout.versions(source, model, selector.scope)
    yanked = load_yanks(source).for_scope(model, selector.scope)
    picked = pick_version(selector, versions, yanked)
    if picked is None:
        names = [str(v) for v in sorted(versions)]
        raise _not_found(
            f"no version of {model}/{selector.scope} matches '{selector}'"
            + skipped(selector, versions, yanked),
            str(selector).rsplit("/", 1)[-1],
            names,
            closest=_closest_version(selector, sorted(versions)),
        )
    return ModelRef(model=model, scope=selector.scope, version=picked)


def _not_found(
    message: str, wanted: str, available: Sequence[str], *, closest: str | None = None
) -> NotFound:
    if closest is None:
        matches = difflib.get_close_matches(wanted, available, n=1, cutoff=0.5)
        closest = matches[0] if matches else None
    text = message + "; available: " + (", ".join(available) if available else "none")
    if closest:
        text += f"; did you mean '{closest}'?"
    return NotFound(text, wanted=wanted, available=available, closest=closest)


def _closest_version(selector: Selector, versions: Sequence[Version]) -> str | None:
    """The newest version below what was asked for, else the oldest above it."""
    if not versions:
        return None
    match selector.target:
        case Exact(version=exact):
            wanted = exact.parts
        case Prefix(parts=parts):
            wanted = parts
        case _:
            wanted = ()
    below = [v for v in versions if v.parts[: len(wanted)] < wanted]
    return str(below[-1] if below else versions[0])


def _commit(where: Location, ref: ModelRef) -> str | None:
    return where.repo.last_commit(ref.path) if where.repo is not None else None
