"""Looking after the cache: what it holds (`entries`), re-hashing it (`verify`), and removing
what is old or unused (`prune`), under the exclusive lock that keeps writers out."""

from __future__ import annotations

import contextlib
import dataclasses
import stat
import time
from collections.abc import Callable, Collection, Sequence
from pathlib import Path

from lfs_agent.oids import OID_PATTERN
from registry.cache import meta as cachemeta
from registry.cache.fsops import remove_empty_parents, rmtree, sha256, translated
from registry.cache.partial import discard
from registry.cache.versions import VersionFolders
from registry.releases.formats import FileEntry


@dataclasses.dataclass(frozen=True)
class CacheEntry:
    """One cached object.

    Attributes:
        oid: its SHA-256.
        size: its size in bytes.
        path: where it is, under `objects/`.
        last_used: when it was last used (seconds since the epoch): the last `mark_used`, which
            `ensure` and `version_dir` call, else the time it was added.
        versions: the keys of the version folders that link it.
    """

    oid: str
    size: int
    path: Path
    last_used: float
    versions: tuple[str, ...]


class Upkeep(VersionFolders):
    """The cache, with its maintenance."""

    def entries(self) -> list[CacheEntry]:
        """Every cached object, sorted by oid, with its last use and the versions linking it."""
        by_oid: dict[str, list[str]] = {}
        for key, files in self._versions().items():
            for entry in files:
                by_oid.setdefault(entry.oid, []).append(key)
        result = []
        for path in self._object_paths():
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            oid = path.name
            result.append(
                CacheEntry(
                    oid=oid,
                    size=st.st_size,
                    path=path,
                    last_used=used if (used := self.last_used(oid)) is not None else st.st_mtime,
                    versions=tuple(sorted(set(by_oid.get(oid, ())))),
                )
            )
        return result

    def verify(self) -> list[str]:
        """Re-hash every object; delete the corrupt ones and the version folders that link them.

        Copies in version folders (where hard links were refused) are re-hashed too, and a
        folder with a wrong or missing file is deleted (the next `version_dir` rebuilds it).
        Waits for running downloads to finish and blocks new ones while it runs.

        Returns:
            The oids of the corrupt objects that were deleted, sorted.
        """
        corrupt: list[str] = []
        with translated(self.root, "verify the cache"), self._exclusive():
            for path in self._object_paths():
                # A symlink or FIFO in an object's place is never hashed through: it is wrong.
                if not stat.S_ISREG(path.lstat().st_mode) or sha256(path) != path.name:
                    corrupt.append(path.name)
                    self._remove_object(path.name)
            bad = set(corrupt)
            for key, files in self._versions().items():
                if any(entry.oid in bad for entry in files) or not self._version_intact(key, files):
                    self._remove_version(key)
        return sorted(corrupt)

    def _version_intact(self, key: str, files: Sequence[FileEntry]) -> bool:
        target = self.version_path(key)
        if not self._version_ok(target, files):
            return False
        for entry in files:
            st = (target / entry.name).stat()
            obj = self.object_path(entry.oid).stat()
            if (st.st_dev, st.st_ino) != (obj.st_dev, obj.st_ino):
                if sha256(target / entry.name) != entry.oid:
                    return False
        return True

    def prune(self, *, keep: Collection[str] = (), older_than: float | None = None) -> list[str]:
        """Remove objects not in `keep` and not used within `older_than` seconds.

        With `older_than=None`, every object not in `keep` goes. Version folders that link a
        removed object are removed too, as are interrupted downloads (same rules) and leftovers
        of crashed processes in `tmp/`. Cached release metadata stays: it is small, and it is
        what lets a model be resolved offline. Waits for running downloads to finish and blocks
        new ones while it runs.

        Returns:
            The removed oids, sorted.
        """
        keep = set(keep)
        now = time.time()

        def stale(oid: str, used: float | None) -> bool:
            if oid in keep:
                return False
            return older_than is None or used is None or now - used >= older_than

        removed: list[str] = []
        with translated(self.root, "prune the cache"), self._exclusive():
            for path in self._object_paths():
                if stale(path.name, self.last_used(path.name)):
                    removed.append(path.name)
                    self._remove_object(path.name)
            gone = set(removed)
            for key, files in self._versions().items():
                if any(entry.oid in gone for entry in files):
                    self._remove_version(key)
            self._prune_leftovers(stale)
            self._remove_invalid_meta()
        return sorted(removed)

    def verify_meta(self) -> list[str]:
        """Check every cached index and manifest; remove those that do not validate (not
        JSON, not the model or version their place says, clashing names, a symlink...), so
        the next resolve reads them from the store again.

        Returns:
            The keys removed, sorted.
        """
        with translated(self.root, "verify the cache"), self._exclusive():
            return self._remove_invalid_meta()

    def _remove_invalid_meta(self) -> list[str]:
        """Hold the exclusive lock."""
        releases = self.root / "releases"
        bad = cachemeta.invalid(releases)
        for key in bad:
            (releases / key).unlink(missing_ok=True)
            remove_empty_parents((releases / key).parent, releases)
        return bad

    def _prune_leftovers(self, stale: Callable[[str, float | None], bool]) -> None:
        """Partial downloads, stray link records and temporary files. Hold the exclusive lock."""
        partials = self.root / "partial"
        for path in sorted(partials.glob("*.partial")) if partials.is_dir() else ():
            oid = path.name[: -len(".partial")]
            with contextlib.suppress(FileNotFoundError):
                if stale(oid, path.stat().st_mtime):
                    discard(path)
                    if not self.object_path(oid).exists():
                        (self.root / "locks" / f"{oid}.lock").unlink(missing_ok=True)
        links = self.root / "links"
        for path in sorted(links.rglob("*.json")) if links.is_dir() else ():
            key = path.relative_to(links).as_posix()[: -len(".json")]
            if not self.version_path(key).is_dir():
                path.unlink(missing_ok=True)
                remove_empty_parents(path.parent, links)
        tmp = self.root / "tmp"
        for path in sorted(tmp.iterdir()) if tmp.is_dir() else ():
            if path.is_dir() and not path.is_symlink():
                rmtree(path)
            else:
                path.unlink(missing_ok=True)

    def _remove_object(self, oid: str) -> None:
        """Delete an object and what belongs to it. Hold the exclusive lock."""
        path = self.object_path(oid)
        path.unlink(missing_ok=True)
        remove_empty_parents(path.parent, self.root / "objects")
        (self.root / "used" / oid).unlink(missing_ok=True)
        # Safe only because nobody holds (or waits for) an object lock under the exclusive one.
        (self.root / "locks" / f"{oid}.lock").unlink(missing_ok=True)

    def _object_paths(self) -> list[Path]:
        objects = self.root / "objects"
        if not objects.is_dir():
            return []
        return sorted(
            p
            for p in objects.glob("*/*/*")
            if OID_PATTERN.fullmatch(p.name)
            and p.parent.name == p.name[2:4]
            and p.parent.parent.name == p.name[0:2]
        )
