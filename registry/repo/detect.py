"""What makes a folder a registry, decided in one place.

A registry is a git work tree, a bare repository (read at a revision) or a plain copy of one
whose root holds at least one of:
- `.lfsconfig` whose `lfs.url` routes to lfs-s3 (`https://lfs-s3.invalid/BUCKET/PREFIX`), as
  `model-registry init` writes it;
- `model-registry.toml`, the registry's own rules for `check`;
- `.lfs-s3config`, the store settings a registry commits.

Any other folder (an empty one, a plain git repository, the folder that holds registries) is
refused by every command that reads or writes a registry, naming the folder and
`model-registry init`, so that nothing is created or staged where it does not belong.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from lfs_agent.config import COMMITTED_FILE, PLACEHOLDER_HOST
from registry.errors import NotARegistry
from registry.repo import layout

RULES_FILE = "model-registry.toml"
_ROUTED = re.compile(
    rf"^\s*(?:push)?url\s*=\s*\"?https?://{re.escape(PLACEHOLDER_HOST)}/", re.I | re.M
)
_MAX_LISTED = 10
_MAX_READ = 65536


def marker(source: layout.Source) -> str | None:
    """The file that makes `source` a registry, or None when it is not one."""
    lfsconfig = _read(source, ".lfsconfig")
    if lfsconfig is not None and _ROUTED.search(lfsconfig.decode("utf-8", "replace")):
        return ".lfsconfig"
    for name in (RULES_FILE, COMMITTED_FILE):
        if _read(source, name) is not None:
            return name
    return None


def _read(source: layout.Source, name: str) -> bytes | None:
    """A root file's first bytes (dot files are not listed by `files`), or None if absent."""
    if isinstance(source, layout.CheckoutSource):
        path = source.root / name
        if not path.is_file():
            return None
        with path.open("rb") as f:
            return f.read(_MAX_READ)
    try:
        return source.read(name)[:_MAX_READ]
    except OSError:
        return None


def is_registry(folder: Path) -> bool:
    """Whether the folder on disk is a registry's root (its work tree or a plain copy)."""
    return folder.is_dir() and marker(layout.CheckoutSource(folder)) is not None


def registries_below(folder: Path) -> list[Path]:
    """The registries directly inside `folder` (not deeper: a parent holds its clones)."""
    found = []
    try:
        with os.scandir(folder) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                if not entry.name.startswith(".") and entry.is_dir(follow_symlinks=False):
                    if is_registry(Path(entry.path)):
                        found.append(Path(entry.path))
    except OSError:
        return []
    return found


def require(source: layout.Source, root: Path) -> None:
    """Refuse anything that is not a registry.

    Raises:
        NotARegistry: naming the folder, `model-registry init`, and any registries below it.
    """
    if marker(source) is not None:
        return
    below = registries_below(root)
    if below:
        names = ", ".join(f"{p.name}/" for p in below[:_MAX_LISTED])
        more = f" and {len(below) - _MAX_LISTED} more" if len(below) > _MAX_LISTED else ""
        raise NotARegistry(
            f"'{root}' is not a model registry, but it holds the registries {names}{more}: "
            f"run the command inside one (cd {below[0].name}) or pass it as --root"
        )
    raise NotARegistry(
        f"'{root}' is not a model registry (no .lfsconfig routing to lfs-s3, "
        f"{RULES_FILE} or {COMMITTED_FILE} at its root): run the command in a registry's "
        "clone or pass it as --root, or make this folder one with "
        "'model-registry init --bucket BUCKET'"
    )
