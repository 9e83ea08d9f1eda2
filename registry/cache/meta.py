"""Which cached release metadata (`releases/` in the cache) no longer validates.

The cache keeps a model's index and each version's manifest so versions resolve offline. They
are validated before they are cached, but a cache written by an older version, edited by hand,
or tampered with may hold one that is not: `Cache.verify_meta` and `Cache.prune` remove what
this module flags, and the next online resolve reads it from the store again. Keys look like
`<bucket>/<prefix...>/releases/<model>/index.json` and
`<bucket>/<prefix...>/releases/<model>/<scope>/<version>/manifest.json`; other files are left
alone (they are not ours to judge).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from pydantic import ValidationError

from registry.errors import RegistryError
from registry.releases.formats import MAX_META_SIZE, Manifest, ModelIndex
from registry.safeio import read_regular

__all__ = ["invalid"]


def invalid(releases: Path) -> list[str]:
    """The keys (relative to `releases`) of cached indexes and manifests that fail, sorted."""
    if not releases.is_dir() or releases.is_symlink():
        return []
    bad: list[str] = []
    for dirpath, dirnames, filenames in os.walk(releases):
        for name in filenames + [d for d in dirnames if Path(dirpath, d).is_symlink()]:
            if name not in ("index.json", "manifest.json"):
                continue
            path = Path(dirpath) / name
            key = path.relative_to(releases).as_posix()
            if not _valid(path, key):
                bad.append(key)
    return sorted(bad)


def _valid(path: Path, key: str) -> bool:
    parts = key.split("/")
    try:
        if not stat.S_ISREG(path.lstat().st_mode):
            return False
        data = read_regular(path, MAX_META_SIZE)
        if parts[-1] == "index.json":
            index = ModelIndex.model_validate_json(data)
            return len(parts) >= 3 and parts[-3] == "releases" and index.model == parts[-2]
        manifest = Manifest.model_validate_json(data)
        where = "/".join(parts[-4:-1])
        return len(parts) >= 5 and parts[-5] == "releases" and manifest.ref == where
    except (OSError, RegistryError, ValidationError, RecursionError, MemoryError):
        return False
