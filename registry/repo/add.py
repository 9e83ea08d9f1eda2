"""`model-registry add`: put a new version's files in place, all or nothing, and stage them.

The source folder is not trusted: it may hold a symlink to `/etc/passwd` or to a private
folder, or a FIFO or `/dev/zero` that would never end. Only regular files are copied, each
opened without following links, and anything else is refused before a byte is copied. The copy
goes to a staging folder (`.<version>.adding-<random>`) renamed into place at the end; a failure,
Ctrl-C, SIGTERM or SIGHUP removes it. Only SIGKILL or a power loss can leave one: `check` reports
it and the next `add` of the version removes it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import stat
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

from registry.errors import NotFound, RegistryError, VersionExists
from registry.records.record import FILE as RECORD_FILE
from registry.records.record import Record
from registry.refs import ModelRef, ProjectVersion
from registry.repo.checks import STAGING_MARK
from registry.repo.gitrepo import GitRepo
from registry.repo.settings import Settings
from registry.safeio import describe_mode, dir_mode, parse_yaml, read_regular

_CHUNK = 1 << 20
_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class _Signalled(BaseException):
    """SIGTERM or SIGHUP arrived while copying: unwind, clean up, then die of the signal."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def add_version(
    root: Path,
    ref: ModelRef,
    source: Path,
    *,
    settings: Settings,
    repo: GitRepo | None,
    record: Record | None = None,
) -> Path:
    """Copy the regular files of `source` into `root/ref.path` and `git add` them.

    The files are validated first (regular files only, required files, config.yaml, the base
    of a project version) and copied into a staging folder next to the destination, then
    renamed into place, so a failure never leaves a half-written version. Files and folders
    get the modes `cp` would give them (0644/0755 under umask 022). `record`, when given, is
    written as the version's meta.yaml (the caller merged it with the one in `source`).

    Raises:
        VersionExists: the version folder exists (released versions are immutable).
        NotFound: `source` is not a folder, or the base of a project version is missing.
        RegistryError: a symlink or special file in `source`, a required file is missing,
            config.yaml does not parse, or the copy failed (disk full, permissions).
    """
    dest = root / ref.path
    if dest.exists() or dest.is_symlink():
        raise VersionExists(
            f"{ref} already exists at '{dest}': released versions are immutable. Register "
            f"a new version instead ('model-registry next {ref.model}/{ref.scope} ...')"
        )
    if not source.is_dir():
        raise NotFound(f"'{source}' is not a folder: pass the folder holding the model files")
    folders, present = _listing(source)
    missing = [name for name in settings.check.required if name not in present]
    if missing:
        raise RegistryError(
            f"'{source}' lacks {', '.join(missing)}; every version needs "
            + ", ".join(settings.check.required)
        )
    if "config.yaml" in present:
        config = source / "config.yaml"
        parse_yaml(read_regular(config, settings.check.max_text_size), f"'{config}'")
    if isinstance(ref.version, ProjectVersion):
        base = root / ref.model / "base" / str(ref.version.base)
        if not base.is_dir():
            raise NotFound(
                f"{ref} is fine-tuned from base {ref.version.base}, but {ref.model}/base/"
                f"{ref.version.base} does not exist; register it first"
            )
    dest.parent.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(dest)
    with _cleanup_on_signal():
        staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}{STAGING_MARK}", dir=dest.parent))
        try:
            os.chmod(staging, dir_mode())  # mkdtemp makes it 0700
            for folder in folders:
                (staging / folder).mkdir()
            for name in present:
                _copy_file(source / name, staging / name)
            if record is not None:
                (staging / RECORD_FILE).write_text(record.to_yaml(), encoding="utf-8")
            staging.rename(dest)
        except BaseException as exc:
            shutil.rmtree(staging, ignore_errors=True)
            if isinstance(exc, OSError):
                raise RegistryError(
                    f"could not copy '{source}' into '{dest}': {exc}. Nothing was added; "
                    "fix the cause (disk space, permissions) and run the add again"
                ) from None
            raise
    if repo is not None:
        repo.add([dest])
    return dest


def _listing(source: Path) -> tuple[list[str], list[str]]:
    """The folders and regular files under `source`, relative, `/`-separated, sorted.

    Raises:
        RegistryError: naming every symlink and special file found; nothing was copied.
    """
    folders: list[str] = []
    files: list[str] = []
    refused: list[str] = []
    for dirpath, dirnames, filenames in os.walk(source, onerror=_unreadable):
        here = Path(dirpath)
        rel = here.relative_to(source).as_posix()
        prefix = "" if rel == "." else f"{rel}/"
        for name in sorted(dirnames + filenames):
            mode = (here / name).lstat().st_mode
            if stat.S_ISDIR(mode):
                folders.append(prefix + name)
            elif stat.S_ISREG(mode):
                files.append(prefix + name)
            else:
                what = describe_mode(mode)
                if stat.S_ISLNK(mode):
                    what += f" to '{os.readlink(here / name)}'"
                refused.append(f"{prefix}{name} ({what})")
    if refused:
        raise RegistryError(
            f"'{source}' holds entries that are not regular files: {'; '.join(refused)}. A "
            "version holds regular files only: copy the files themselves in place of links "
            "(e.g. 'cp -L'), and remove FIFOs and devices. Nothing was copied"
        )
    return sorted(folders), sorted(files)


def _unreadable(exc: OSError) -> None:
    # os.walk would skip a folder it cannot list, and the version would lack its files.
    raise RegistryError(f"cannot read '{exc.filename}': {exc.strerror}; nothing was copied")


def _copy_file(src: Path, dest: Path) -> None:
    """Copy one regular file, opened without following a link (it may have been swapped for
    one since it was listed); the copy gets `cp`'s mode: the source's, less the umask."""
    fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise RegistryError(f"'{src}' is {describe_mode(st.st_mode)}; nothing was added")
        out = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, st.st_mode & 0o777)
        try:
            while chunk := os.read(fd, _CHUNK):
                view = memoryview(chunk)
                while view:
                    view = view[os.write(out, view) :]
        finally:
            os.close(out)
    finally:
        os.close(fd)


def _remove_leftovers(dest: Path) -> None:
    """Staging folders of an earlier `add` of this version that was killed."""
    for path in dest.parent.glob(f".{dest.name}{STAGING_MARK}*"):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def _cleanup_on_signal() -> Iterator[None]:
    """Turn SIGTERM and SIGHUP into an exception while copying, so the staging folder is
    removed; afterwards the process dies of that signal, as it would have."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def raise_signal(signum: int, frame: FrameType | None) -> None:
        raise _Signalled(signum)

    previous = {sig: signal.signal(sig, raise_signal) for sig in _SIGNALS}
    try:
        yield
    except _Signalled as got:
        sig = signal.Signals(got.signum)
        signal.signal(sig, previous.pop(sig) or signal.SIG_DFL)
        os.kill(os.getpid(), sig)
        raise  # a handler that did not end the process: let the caller see it
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
