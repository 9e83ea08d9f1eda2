"""Version folders in the cache: a version's files by name, hard links to their objects, built
in `tmp/` and renamed into place; `links/<key>.json` records which objects each one links."""

from __future__ import annotations

import errno
import json
import os
import stat
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from registry.cache.fsops import (
    check_key,
    fsync_dir,
    link_or_copy,
    remove_empty_parents,
    rmtree,
    translated,
)
from registry.cache.store import ObjectStore
from registry.errors import NotCached, RegistryError
from registry.releases.formats import FileEntry, check_file_names
from registry.safeio import dir_mode

# A lost race for a version folder is retried this many times before giving up.
_RENAME_ATTEMPTS = 5


class VersionFolders(ObjectStore):
    """The object store, with version folders built from its objects."""

    def version_path(self, key: str) -> Path:
        """`root/versions/<key>` (whether or not it exists)."""
        return self.root / "versions" / check_key(key)

    def version_dir(self, key: str, files: Sequence[FileEntry]) -> Path:
        """A folder `versions/<key>/` holding each file by its name, linked to its object.

        Files are hard links to their objects (read-only, no extra space); where the file
        system refuses hard links they are copies. The folder is built in `tmp/` and renamed
        into place, so it appears whole or not at all. An existing folder that is complete and
        correct (the same names, each the object's inode or a file of its size) is returned as
        it is; an incomplete or wrong one is replaced. When several processes build it at
        once, one rename wins and the others use its result.

        Raises:
            ValueError: a bad key, a key nested in another version's, or clashing file names.
            NotCached: an object is not in the cache; `ensure` it first.
        """
        target = self.version_path(key)
        _check_names(key, files)
        if self._version_ok(target, files) and self._links_match(key, files):
            # Complete already: serve it without a lock, so a read-only cache (a baked
            # image, a shared volume mounted read-only) works.
            self.mark_used(*{entry.oid for entry in files})
            return target
        with translated(self.root, f"build version folder {key}"), self._shared():
            self._check_version_key(key)
            for entry in files:
                if not self.has(entry.oid, entry.size):
                    raise NotCached(
                        f"cannot build version folder {key}: its file '{entry.name}' (object "
                        f"{entry.oid}, {entry.size} bytes) is not in the cache at {self.root}. "
                        "Download it first (Cache.ensure), or go online if you are offline.",
                        oid=entry.oid,
                        name=entry.name,
                    )
            if not self._version_ok(target, files):
                self._build_version(key, target, files)
            self._write_links(key, files)
        self.mark_used(*{entry.oid for entry in files})
        return target

    def _build_version(self, key: str, target: Path, files: Sequence[FileEntry]) -> None:
        for _ in range(_RENAME_ATTEMPTS):
            build = Path(tempfile.mkdtemp(dir=self._tmp(), prefix="version-"))
            try:
                os.chmod(build, dir_mode())  # mkdtemp makes it 0700: others could not read it
                for entry in files:
                    dest = build / entry.name
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    link_or_copy(self.object_path(entry.oid), dest)
                fsync_dir(build)
                self._write_links(key, files)
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.rename(build, target)
                    fsync_dir(target.parent)
                    return
                except OSError as exc:
                    if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                        raise
            finally:
                if build.exists():
                    rmtree(build)
            # Another process put a folder there first: use it if it is right.
            if self._version_ok(target, files):
                return
            self._remove_tree(target)
        raise RegistryError(  # pragma: no cover - needs a writer racing us on every attempt
            f"could not build version folder {target}: other processes kept replacing it "
            f"{_RENAME_ATTEMPTS} times. Check that they agree on the version's files."
        )

    def _version_ok(self, target: Path, files: Sequence[FileEntry]) -> bool:
        """The folder holds exactly these names, each a regular file of its object's size
        (a hard link to the object has it by construction; a copy is checked by size only,
        `verify` re-hashes copies)."""
        if not target.is_dir() or target.is_symlink():
            return False
        try:
            present = {
                p.relative_to(target).as_posix()
                for p in target.rglob("*")
                if not p.is_dir() or p.is_symlink()
            }
        except OSError:
            return False
        if present != {entry.name for entry in files}:
            return False
        for entry in files:
            try:
                st = (target / entry.name).lstat()
            except FileNotFoundError:
                return False
            if not stat.S_ISREG(st.st_mode) or st.st_size != entry.size:
                return False
        return True

    def _check_version_key(self, key: str) -> None:
        """A version folder may not hold another: no key is a prefix of another key."""
        parts = key.split("/")
        for i in range(1, len(parts)):
            outer = "/".join(parts[:i])
            if self._links_path(outer).exists():
                raise ValueError(
                    f"version key '{key}' would put a version folder inside version '{outer}': "
                    "use keys of the same depth, e.g. 'MODEL/SCOPE/VERSION'"
                )
        inner = self.root / "links" / key
        if inner.is_dir() and any(inner.rglob("*.json")):
            raise ValueError(
                f"version key '{key}' would hold other version folders (under {inner}): use "
                "keys of the same depth, e.g. 'MODEL/SCOPE/VERSION'"
            )

    def _links_path(self, key: str) -> Path:
        return self.root / "links" / f"{key}.json"

    def _links_match(self, key: str, files: Sequence[FileEntry]) -> bool:
        try:
            return self._links_path(key).read_bytes() == _links_data(files)
        except OSError:
            return False

    def _write_links(self, key: str, files: Sequence[FileEntry]) -> None:
        if not self._links_match(key, files):
            self._write_atomic(self._links_path(key), _links_data(files))

    def _versions(self) -> dict[str, list[FileEntry]]:
        """The version folders that exist, by key, with the files their links record."""
        links = self.root / "links"
        found: dict[str, list[FileEntry]] = {}
        for path in sorted(links.rglob("*.json")) if links.is_dir() else ():
            key = path.relative_to(links).as_posix()[: -len(".json")]
            try:
                if not self.version_path(key).is_dir():
                    continue
                found[key] = [FileEntry.model_validate(e) for e in json.loads(path.read_bytes())]
            except (OSError, ValueError):
                continue
        return found

    def _remove_version(self, key: str) -> None:
        self._remove_tree(self.version_path(key))
        self._links_path(key).unlink(missing_ok=True)
        remove_empty_parents(self._links_path(key).parent, self.root / "links")

    def _remove_tree(self, path: Path) -> None:
        """Move `path` out of sight atomically, then delete it; empty parents go too."""
        trash = self._tmp() / f"trash-{os.getpid()}-{time.monotonic_ns()}"
        try:
            os.rename(path, trash)
        except FileNotFoundError:
            return
        rmtree(trash)
        remove_empty_parents(path.parent, self.root / "versions")


def _links_data(files: Sequence[FileEntry]) -> bytes:
    return json.dumps(
        [entry.model_dump() for entry in sorted(files, key=lambda e: e.name)], indent=1
    ).encode()


def _check_names(key: str, files: Sequence[FileEntry]) -> None:
    try:
        check_file_names([entry.name for entry in files])
    except ValueError as exc:
        raise ValueError(f"version {key}: {exc}") from None
