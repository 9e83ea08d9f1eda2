"""The local cache of published model versions: content-addressed, verified and process-safe.

No S3 code lives here: `Cache.ensure` takes the download as a callable, so the cache works with
any store (and with fakes in tests). Layout under `root`:

```
objects/<oid[0:2]>/<oid[2:4]>/<oid>   every object, verified by SHA-256 and size, read-only
partial/<oid>.partial[.upto]          an interrupted download and how far it got, resumed by
                                      the next `ensure`
versions/<key>/<name>                 a version's files by name, hard links to their objects
links/<key>.json                      which objects each version folder links (for prune/verify)
releases/<key>                        cached index and manifest JSON (`read_meta`/`write_meta`)
used/<oid>                            mtime = when the object was last used (`mark_used`)
locks/                                `cache.lock` and one `<oid>.lock` per download
tmp/                                  temporary files and folders, renamed into place
CACHEDIR.TAG                          tells backup tools to skip the cache
```

Guarantees:

- Nothing unverified is ever under `objects/`: a download goes to `partial/`, its size and
  SHA-256 are checked, and only then is it renamed into place (atomically, read-only).
- A download that fails half-way, or whose process is killed, is resumed from where it
  stopped, not restarted; the bytes kept are hashed again first (`registry.cache.partial`).
- The SHA-256 is computed while the bytes arrive (in order, even when ranges arrive out of
  order), not by reading the object back afterwards.
- Processes share the cache safely: one `flock` per object means an object is downloaded once
  even when several processes ask for it at once; the others wait and then use it. Version
  folders are built in `tmp/` and renamed into place, so a reader sees all of one or none.
  Locks held by a process that dies are released by the kernel.
- Maintenance (`verify`, `prune`) takes `locks/cache.lock` exclusively and every writer takes
  it shared, so an object is never removed while another process is linking or fetching it.
- Use is recorded in `used/<oid>` (its mtime), not in atime, which `noatime`/`relatime` mounts
  do not keep and which `verify` would disturb; `prune(older_than=...)` reads it.
- Nothing in the cache is trusted blindly: a hit is a regular file (`lstat`: a symlink put in
  place of an object is a miss, never followed); cached metadata is read capped and no-follow,
  and `verify`/`prune` remove metadata that no longer validates (`registry.cache.meta`).
- Folders and files honour the umask (objects read-only), so a team sharing a cache with a
  group-writable umask (002) can all use and fill it. A complete version is served from a
  read-only cache (a baked image) without taking any lock; a write the file system refuses
  (read-only, permissions, disk full) is a `CacheError` naming the path and the fix.

`flock` is advisory and a no-op on some network file systems (NFS without lock support,
Lustre, GPFS): there two processes may fetch the same object at once, but verification still
keeps a corrupt result out of `objects/`.

>>> import hashlib, tempfile
>>> data = b"weights"
>>> oid = hashlib.sha256(data).hexdigest()
>>> def fetch(out: PartialFile, offset: int) -> None:
...     out.write(offset, data[offset:])
>>> with tempfile.TemporaryDirectory() as tmp:
...     cache = Cache(Path(tmp))
...     path = cache.ensure(oid, len(data), fetch)
...     path.read_bytes(), cache.has(oid, len(data))
(b'weights', True)
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import hashlib
import json
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from pathlib import Path, PurePosixPath

from lfs_agent.oids import OID_PATTERN as _OID
from registry.cache import meta as cachemeta
from registry.cache.partial import OutOfRange, PartialFile, discard
from registry.errors import RegistryError
from registry.releases.formats import MAX_META_SIZE, FileEntry
from registry.safeio import UnsafeContent, dir_mode, file_mode, read_regular

__all__ = ["Cache", "CacheEntry", "CacheError", "CorruptDownload", "Fetch", "NotCached"]

Fetch = Callable[[PartialFile, int], None]
"""`fetch(out, offset)`: deliver the object's bytes from `offset` to the end, as
`out.write(position, data)` calls, in any order and from any number of threads."""

ENV_VAR = "MODEL_REGISTRY_CACHE"
CHUNK = 1 << 20
READ_ONLY = 0o444
_CACHEDIR_TAG = (
    b"Signature: 8a477f597d28d172789f06886806bc55\n"
    b"# This file is a cache directory tag created by model-registry.\n"
    b"# For information about cache directory tags see https://bford.info/cachedir/\n"
)
# A lost race for a version folder is retried this many times before giving up.
_RENAME_ATTEMPTS = 5


class CorruptDownload(RegistryError):
    """A downloaded object does not match its oid or size; nothing was added to the cache."""

    def __init__(
        self,
        message: str,
        *,
        oid: str,
        expected_size: int,
        actual_size: int,
        actual_sha256: str | None = None,
    ) -> None:
        super().__init__(message)
        self.oid = oid
        self.expected_size = expected_size
        self.actual_size = actual_size
        self.actual_sha256 = actual_sha256


class CacheError(RegistryError):
    """The file system refused a write to the cache: read-only, permissions, or disk full."""

    def __init__(self, message: str, *, path: str, errno: int | None) -> None:
        super().__init__(message)
        self.path = path
        self.errno = errno


_FIXES = {
    errno.EROFS: "the cache is on a read-only file system",
    errno.EACCES: "this user may not write there",
    errno.EPERM: "this user may not write there",
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exhausted",
    errno.EFBIG: "the file size limit was reached",
}


@contextlib.contextmanager
def _translated(cache: Path, doing: str) -> Iterator[None]:
    """A write the file system refused becomes a CacheError that says what to do."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in _FIXES:
            raise
        where = exc.filename or cache
        raise CacheError(
            f"cannot {doing}: {_FIXES[exc.errno]} ({exc.strerror}: '{where}'). Free space or "
            f"fix the permissions of {cache}, or point MODEL_REGISTRY_CACHE (or --cache-dir) at "
            "a writable folder; versions already complete there are still served read-only",
            path=str(where),
            errno=exc.errno,
        ) from None


class NotCached(RegistryError, LookupError):
    """An object that a version folder needs is not in the cache (call `Cache.ensure` first)."""

    def __init__(self, message: str, *, oid: str, name: str = "") -> None:
        super().__init__(message)
        self.oid = oid
        self.name = name


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


class Cache:
    """A content-addressed cache of model files under `root` (see the module docstring).

    Creating a Cache touches no files: folders are made when something is written.
    """

    root: Path

    def __init__(self, root: Path) -> None:
        self.root = Path(root).absolute()
        self._prepared = False

    def __repr__(self) -> str:
        return f"Cache({str(self.root)!r})"

    @classmethod
    def at(
        cls,
        cache_dir: str | os.PathLike[str] | None = None,
        environ: Mapping[str, str] = os.environ,
    ) -> Cache:
        """The cache the caller asked for, else the user's.

        Precedence, first that is set (and not empty) wins:

        1. the `cache_dir` argument: code that names a folder means that folder;
        2. `$MODEL_REGISTRY_CACHE`: a deployment's choice, e.g. a shared volume;
        3. `$XDG_CACHE_HOME/model-registry` (ignored unless absolute, as the XDG spec says);
        4. `~/.cache/model-registry`, with `~` from `$HOME` (else the password database).

        A leading `~` is expanded in 1 and 2; relative paths are made absolute against the
        current directory. This is the only place the cache reads the environment.
        """
        home = environ.get("HOME") or str(Path.home())
        if cache_dir is not None and os.fspath(cache_dir) != "":
            return cls(_expand(os.fspath(cache_dir), home))
        if environ.get(ENV_VAR):
            return cls(_expand(environ[ENV_VAR], home))
        xdg = environ.get("XDG_CACHE_HOME", "")
        if xdg and Path(xdg).is_absolute():
            return cls(Path(xdg) / "model-registry")
        return cls(Path(home) / ".cache" / "model-registry")

    # -- objects -------------------------------------------------------------------------------

    def object_path(self, oid: str) -> Path:
        """`root/objects/<oid[0:2]>/<oid[2:4]>/<oid>` (whether or not it exists).

        Raises:
            ValueError: `oid` is not a SHA-256 (64 lowercase hex digits).
        """
        _check_oid(oid)
        return self.root / "objects" / oid[0:2] / oid[2:4] / oid

    def has(self, oid: str, size: int) -> bool:
        """Whether the object is cached with that size (objects are verified on the way in).

        Only a regular file counts (`lstat`): a symlink in its place may point at any bytes.
        """
        try:
            st = self.object_path(oid).lstat()
        except (FileNotFoundError, NotADirectoryError):
            return False
        return stat.S_ISREG(st.st_mode) and st.st_size == size

    def ensure(self, oid: str, size: int, fetch: Fetch) -> Path:
        """The object's path in the cache, downloaded and verified first if it is not there.

        `fetch(out, offset)` must deliver the object's bytes from `offset` to the end through
        `out.write(position, data)`, in any order (e.g. parallel ranged GETs). `offset` is not 0
        when an earlier download was interrupted: the bytes it kept are verified as part of the
        whole and only the rest is fetched. If another process is downloading the same object,
        this waits for it (a blocking `flock`) and then uses its result.

        When `fetch` raises, the exception propagates and what arrived stays for the next
        attempt. When the result does not match `oid` and `size`, the partial file is deleted
        (a resumed one gets one more attempt from the start first) and CorruptDownload is
        raised; nothing is added under `objects/`.

        Raises:
            ValueError: `oid` is not a SHA-256, or `size` is negative.
            CorruptDownload: the downloaded bytes do not match `oid` and `size`.
        """
        path = self.object_path(oid)
        if size < 0:
            raise ValueError(f"size {size} of object {oid} is negative")
        if self.has(oid, size):
            self.mark_used(oid)
            return path
        with _translated(self.root, f"download object {oid} into the cache"):
            with self._shared(), _locked(self._lock_path(oid)):
                if not self.has(oid, size):
                    self._download(oid, size, fetch)
        self.mark_used(oid)
        return path

    def _download(self, oid: str, size: int, fetch: Fetch) -> None:
        """Fetch into the partial file, verify, and rename into place. Hold the object's lock."""
        partial = self.root / "partial" / f"{oid}.partial"
        partial.parent.mkdir(parents=True, exist_ok=True)
        while True:
            with PartialFile.open(partial, size=size) as out:
                resumed = out.start > 0
                actual_size = None
                if out.done < size:
                    try:
                        fetch(out, out.done)
                    except OutOfRange as exc:
                        actual_size = exc.end  # at least that many
                actual_size = out.done if actual_size is None else actual_size
                digest = out.hexdigest() if actual_size == size else None
                if digest == oid:
                    os.fsync(out.fileno())
            if digest == oid:
                break
            discard(partial)
            if resumed:  # the bytes kept from an earlier attempt may be the bad ones
                continue
            raise CorruptDownload(
                f"the download of object {oid} does not match it: expected {size} bytes with "
                "that SHA-256, got "
                + (f"{actual_size} bytes" if actual_size <= size else f"{actual_size}+ bytes")
                + (f" with SHA-256 {digest}" if digest else "")
                + ". The store's copy may be corrupt: compare it with the file in a checkout "
                "(`sha256sum`) and re-upload it if it differs. Nothing was cached; retrying "
                "downloads it again from the start.",
                oid=oid,
                expected_size=size,
                actual_size=actual_size,
                actual_sha256=digest,
            )
        os.chmod(partial, READ_ONLY & file_mode())
        target = self.object_path(oid)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(partial, target)
        discard(partial)  # the watermark record
        _fsync_dir(target.parent)

    # -- use tracking --------------------------------------------------------------------------

    def mark_used(self, *oids: str, at: float | None = None) -> None:
        """Record that the objects were used now (or at `at`, seconds since the epoch).

        `prune(older_than=...)` keeps what was used recently. Best effort: a cache on a
        read-only or foreign-owned volume still works, it just does not record use.
        """
        for oid in oids:
            _check_oid(oid)
            stamp = self.root / "used" / oid
            try:
                stamp.parent.mkdir(parents=True, exist_ok=True)
                stamp.touch()
                if at is not None:
                    os.utime(stamp, (at, at))
            except OSError:
                pass

    def last_used(self, oid: str) -> float | None:
        """When the object was last used (see `mark_used`), or None if it is not cached."""
        try:
            return (self.root / "used" / oid).stat().st_mtime
        except FileNotFoundError:
            pass
        try:
            return self.object_path(oid).stat().st_mtime
        except FileNotFoundError:
            return None

    # -- release metadata ----------------------------------------------------------------------

    def read_meta(self, key: str) -> bytes | None:
        """The cached metadata (index or manifest JSON) under `releases/<key>`, or None.

        Anything but a regular file of at most `MAX_META_SIZE` bytes counts as absent: it was
        not written here, and is neither followed nor read whole.

        Raises:
            ValueError: `key` is not a relative `/`-separated path without `.` or `..`.
        """
        path = self.root / "releases" / _check_key(key)
        try:
            return read_regular(path, MAX_META_SIZE)
        except (FileNotFoundError, NotADirectoryError, UnsafeContent):
            return None

    def drop_meta(self, key: str) -> None:
        """Remove cached metadata that turned out invalid (best effort: the cache may be
        read-only, and then the caller's error stands on its own)."""
        with contextlib.suppress(OSError):
            (self.root / "releases" / _check_key(key)).unlink(missing_ok=True)

    def write_meta(self, key: str, data: bytes) -> None:
        """Store metadata under `releases/<key>`, atomically (readers see old or new, whole).

        Raises:
            ValueError: `key` is not a relative `/`-separated path without `.` or `..`.
        """
        target = self.root / "releases" / _check_key(key)
        with _translated(self.root, f"cache {key}"), self._shared():
            self._write_atomic(target, data)

    # -- version folders -----------------------------------------------------------------------

    def version_path(self, key: str) -> Path:
        """`root/versions/<key>` (whether or not it exists)."""
        return self.root / "versions" / _check_key(key)

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
        with _translated(self.root, f"build version folder {key}"), self._shared():
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
                    _link_or_copy(self.object_path(entry.oid), dest)
                _fsync_dir(build)
                self._write_links(key, files)
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.rename(build, target)
                    _fsync_dir(target.parent)
                    return
                except OSError as exc:
                    if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                        raise
            finally:
                if build.exists():
                    _rmtree(build)
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
        _remove_empty_parents(self._links_path(key).parent, self.root / "links")

    def _remove_tree(self, path: Path) -> None:
        """Move `path` out of sight atomically, then delete it; empty parents go too."""
        trash = self._tmp() / f"trash-{os.getpid()}-{time.monotonic_ns()}"
        try:
            os.rename(path, trash)
        except FileNotFoundError:
            return
        _rmtree(trash)
        _remove_empty_parents(path.parent, self.root / "versions")

    # -- maintenance ---------------------------------------------------------------------------

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
        with _translated(self.root, "verify the cache"), self._exclusive():
            for path in self._object_paths():
                # A symlink or FIFO in an object's place is never hashed through: it is wrong.
                if not stat.S_ISREG(path.lstat().st_mode) or _sha256(path) != path.name:
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
                if _sha256(target / entry.name) != entry.oid:
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
        with _translated(self.root, "prune the cache"), self._exclusive():
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
        with _translated(self.root, "verify the cache"), self._exclusive():
            return self._remove_invalid_meta()

    def _remove_invalid_meta(self) -> list[str]:
        """Hold the exclusive lock."""
        releases = self.root / "releases"
        bad = cachemeta.invalid(releases)
        for key in bad:
            (releases / key).unlink(missing_ok=True)
            _remove_empty_parents((releases / key).parent, releases)
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
                _remove_empty_parents(path.parent, links)
        tmp = self.root / "tmp"
        for path in sorted(tmp.iterdir()) if tmp.is_dir() else ():
            if path.is_dir() and not path.is_symlink():
                _rmtree(path)
            else:
                path.unlink(missing_ok=True)

    def _remove_object(self, oid: str) -> None:
        """Delete an object and what belongs to it. Hold the exclusive lock."""
        path = self.object_path(oid)
        path.unlink(missing_ok=True)
        _remove_empty_parents(path.parent, self.root / "objects")
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
            if _OID.fullmatch(p.name)
            and p.parent.name == p.name[2:4]
            and p.parent.parent.name == p.name[0:2]
        )

    # -- plumbing ------------------------------------------------------------------------------

    def _prepare(self) -> None:
        """Create the root and its CACHEDIR.TAG once per instance."""
        if self._prepared:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        tag = self.root / "CACHEDIR.TAG"
        if not tag.exists():
            with contextlib.suppress(OSError):
                self._write_atomic(tag, _CACHEDIR_TAG)
        self._prepared = True

    def _tmp(self) -> Path:
        tmp = self.root / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        return tmp

    def _lock_path(self, oid: str) -> Path:
        return self.root / "locks" / f"{oid}.lock"

    @contextlib.contextmanager
    def _shared(self) -> Iterator[None]:
        """Writers hold `locks/cache.lock` shared; `verify` and `prune` hold it exclusively."""
        self._prepare()
        with _locked(self.root / "locks" / "cache.lock", shared=True):
            yield

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        self._prepare()
        with _locked(self.root / "locks" / "cache.lock"):
            yield

    def _write_atomic(self, target: Path, data: bytes) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self._tmp(), prefix="write-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(name, file_mode())  # mkstemp makes it 0600
            os.replace(name, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name)
            raise


# -- helpers -----------------------------------------------------------------------------------


def _expand(value: str, home: str) -> Path:
    if value == "~" or value.startswith("~/"):
        value = home + value[1:]
    return Path(value).absolute()


def _check_oid(oid: str) -> None:
    if not isinstance(oid, str) or not _OID.fullmatch(oid):
        raise ValueError(f"oid {oid!r} is not a SHA-256: expected 64 lowercase hex digits")


def _check_key(key: str) -> str:
    """A relative `/`-separated path without empty, `.` or `..` parts."""
    if (
        not isinstance(key, str)
        or not key
        or "\0" in key
        or "\\" in key
        or PurePosixPath(key).is_absolute()
        or any(part in ("", ".", "..") for part in key.split("/"))
    ):
        raise ValueError(
            f"cache key {key!r} is not a relative '/'-separated path without '.' or '..' parts "
            "(e.g. 'YOLOX-l/base/1.2')"
        )
    return key


def _links_data(files: Sequence[FileEntry]) -> bytes:
    return json.dumps(
        [entry.model_dump() for entry in sorted(files, key=lambda e: e.name)], indent=1
    ).encode()


def _check_names(key: str, files: Sequence[FileEntry]) -> None:
    names = [entry.name for entry in files]
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"version {key} lists these files more than once: {', '.join(dupes)}")
    folders = {"/".join(n.split("/")[:i]) for n in names for i in range(1, n.count("/") + 1)}
    clash = sorted(folders & set(names))
    if clash:
        raise ValueError(
            f"version {key} has files that are also folders of other files: {', '.join(clash)}"
        )


@contextlib.contextmanager
def _locked(path: Path, *, shared: bool = False) -> Iterator[None]:
    """Hold a blocking `flock` on `path` (created if missing); the kernel drops it on exit."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _link_or_copy(source: Path, dest: Path) -> None:
    """Hard-link `dest` to `source`; copy (read-only) where the file system refuses links."""
    try:
        os.link(source, dest)
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EACCES):
            raise
        shutil.copyfile(source, dest)
        _fsync_file(dest)
        os.chmod(dest, READ_ONLY & file_mode())


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    """Make a rename into `path` durable (best effort: not every file system supports it)."""
    with contextlib.suppress(OSError):
        _fsync_file(path)


def _rmtree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def _remove_empty_parents(path: Path, stop: Path) -> None:
    """Remove `path` and its parents while they are empty, up to (not including) `stop`."""
    while path != stop and stop in path.parents:
        try:
            path.rmdir()
        except OSError:
            return
        path = path.parent
