"""The object store under the cache's root: verified objects, their use, cached release
metadata, and the locks every writer takes (the layout and guarantees: `registry.cache`)."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Self

from registry.cache.fsops import (
    READ_ONLY,
    check_key,
    check_oid,
    expand,
    fsync_dir,
    locked,
    translated,
)
from registry.cache.partial import OutOfRange, PartialFile, discard
from registry.errors import CorruptDownload, UnsafeContent
from registry.releases.formats import MAX_META_SIZE
from registry.safeio import file_mode, read_regular

Fetch = Callable[[PartialFile, int], None]
"""`fetch(out, offset)`: deliver the object's bytes from `offset` to the end, as
`out.write(position, data)` calls, in any order and from any number of threads."""

ENV_VAR = "MODEL_REGISTRY_CACHE"
_CACHEDIR_TAG = (
    b"Signature: 8a477f597d28d172789f06886806bc55\n"
    b"# This file is a cache directory tag created by model-registry.\n"
    b"# For information about cache directory tags see https://bford.info/cachedir/\n"
)


class ObjectStore:
    """Objects by oid, their use, and cached release metadata under `root`.

    Creating one touches no files: folders are made when something is written.
    """

    root: Path

    def __init__(self, root: Path) -> None:
        self.root = Path(root).absolute()
        self._prepared = False

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.root)!r})"

    @classmethod
    def at(
        cls,
        cache_dir: str | os.PathLike[str] | None = None,
        environ: Mapping[str, str] = os.environ,
    ) -> Self:
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
            return cls(expand(os.fspath(cache_dir), home))
        if environ.get(ENV_VAR):
            return cls(expand(environ[ENV_VAR], home))
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
        check_oid(oid)
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
        with translated(self.root, f"download object {oid} into the cache"):
            with self._shared(), locked(self._lock_path(oid)):
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
        fsync_dir(target.parent)

    # -- use tracking --------------------------------------------------------------------------

    def mark_used(self, *oids: str, at: float | None = None) -> None:
        """Record that the objects were used now (or at `at`, seconds since the epoch).

        `prune(older_than=...)` keeps what was used recently. Best effort: a cache on a
        read-only or foreign-owned volume still works, it just does not record use.
        """
        for oid in oids:
            check_oid(oid)
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
        path = self.root / "releases" / check_key(key)
        try:
            return read_regular(path, MAX_META_SIZE)
        except (FileNotFoundError, NotADirectoryError, UnsafeContent):
            return None

    def drop_meta(self, key: str) -> None:
        """Remove cached metadata that turned out invalid (best effort: the cache may be
        read-only, and then the caller's error stands on its own)."""
        with contextlib.suppress(OSError):
            (self.root / "releases" / check_key(key)).unlink(missing_ok=True)

    def write_meta(self, key: str, data: bytes) -> None:
        """Store metadata under `releases/<key>`, atomically (readers see old or new, whole).

        Raises:
            ValueError: `key` is not a relative `/`-separated path without `.` or `..`.
        """
        target = self.root / "releases" / check_key(key)
        with translated(self.root, f"cache {key}"), self._shared():
            self._write_atomic(target, data)

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
        with locked(self.root / "locks" / "cache.lock", shared=True):
            yield

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        self._prepare()
        with locked(self.root / "locks" / "cache.lock"):
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
