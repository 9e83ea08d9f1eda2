"""Reading what a repository or a store hands us, and writing files for users, safely.

A cloned registry or a published release is not trusted: a `config.yaml` may be 200 MB, a
symlink to `/dev/zero` or `/etc/passwd`, a FIFO that never answers, or nested 100,000 levels
deep. Every read of such content goes through `read_regular` (no-follow, non-blocking, capped)
and every parse through `parse_yaml`/`parse_toml`, whose errors of every kind, the parser's own
and `RecursionError`/`MemoryError` alike, become one `UnsafeContent` naming the file. Callers
decide whether that is a finding (`check`) or an error (`add`, `show`).

Files and folders made for users honour the umask, as `cp` and `mkdir` would: `mkstemp` and
`mkdtemp` create 0600/0700, which another user (a container running as someone else, a team
sharing a cache) cannot read.
"""

from __future__ import annotations

import errno
import os
import stat
import tomllib
from pathlib import Path
from typing import Any

import yaml

from registry.errors import UnsafeContent

__all__ = [
    "MAX_TEXT_SIZE",
    "UnsafeContent",
    "describe_mode",
    "dir_mode",
    "file_mode",
    "parse_toml",
    "parse_yaml",
    "read_regular",
    "too_large",
    "umask",
]

MAX_TEXT_SIZE = 1 << 20
"""Default cap on a text file we parse (config.yaml, meta.yaml, README.md): 1 MiB. A real
config is a few KB; YAML parses at a few MB/s, so the cap also bounds the time spent."""

_NO_FOLLOW = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC

_YamlLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def describe_mode(mode: int) -> str:
    """What a non-regular file is, for messages: "a symlink", "a FIFO", ..."""
    if stat.S_ISLNK(mode):
        return "a symlink"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def read_regular(path: Path, limit: int, *, name: str | None = None) -> bytes:
    """The bytes of the regular file at `path`, at most `limit` of them.

    The open does not follow a symlink in the last component and does not block on a FIFO,
    so a hostile file can neither redirect the read nor hang it.

    Raises:
        UnsafeContent: a symlink, a special file, more than `limit` bytes, or unreadable;
            the message names `name` (default: `path`).
        FileNotFoundError: there is no such file.
    """
    shown = name or str(path)
    try:
        fd = os.open(path, _NO_FOLLOW)
    except FileNotFoundError:
        raise
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafeContent(
                f"{shown} is a symlink; a registry holds regular files only: replace the link "
                "with the file itself",
                path=shown,
                reason="symlink",
            ) from None
        raise UnsafeContent(
            f"cannot read {shown}: {exc.strerror}", path=shown, reason="unreadable"
        ) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafeContent(
                f"{shown} is {describe_mode(st.st_mode)}; a registry holds regular files only",
                path=shown,
                reason="special",
            )
        if st.st_size > limit:
            raise too_large(shown, st.st_size, limit)
        chunks: list[bytes] = []
        got = 0
        while got <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - got))
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
        if got > limit:  # it grew while we read
            raise too_large(shown, got, limit)
        return b"".join(chunks)
    except OSError as exc:
        raise UnsafeContent(
            f"cannot read {shown}: {exc.strerror}", path=shown, reason="unreadable"
        ) from None
    finally:
        os.close(fd)


def too_large(name: str, size: int, limit: int) -> UnsafeContent:
    """The error for a file over its cap (also for sizes known without reading: git blobs)."""
    return UnsafeContent(
        f"{name} is {size:,} bytes, over the limit of {limit:,} bytes for a file the registry "
        "reads; keep large data out of it (checkpoints belong in Git LFS), or raise "
        "[check] max_text_size in model-registry.toml",
        path=name,
        reason="too-large",
    )


def parse_yaml(data: bytes, name: str) -> object:
    """Parse YAML safely (no object construction); any failure is `UnsafeContent`.

    The bytes must be UTF-8 (libyaml would otherwise guess UTF-16 from a stray BOM).
    """
    try:
        return yaml.load(data.decode("utf-8-sig"), Loader=_YamlLoader)  # noqa: S506 - safe
    except yaml.YAMLError as exc:
        detail = str(exc).replace("\n", " ")
    except (RecursionError, MemoryError) as exc:
        detail = f"nested too deeply or too large to parse ({type(exc).__name__})"
    except UnicodeDecodeError as exc:
        detail = f"not UTF-8 ({exc})"
    except ValueError as exc:
        detail = str(exc)
    raise UnsafeContent(f"{name} does not parse: {detail}", path=name, reason="parse")


def parse_toml(data: bytes, name: str) -> dict[str, Any]:
    """Parse TOML; any failure (syntax, encoding, nesting) is `UnsafeContent`."""
    try:
        return tomllib.loads(data.decode("utf-8"))
    except tomllib.TOMLDecodeError as exc:
        detail = str(exc)
    except UnicodeDecodeError as exc:
        detail = f"not UTF-8 ({exc})"
    except (RecursionError, MemoryError) as exc:
        detail = f"nested too deeply or too large to parse ({type(exc).__name__})"
    raise UnsafeContent(f"{name} is not valid TOML: {detail}", path=name, reason="parse")


def umask() -> int:
    """The process's umask, read without changing it (other threads may be creating files)."""
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    # No /proc (not Linux): the classic set-and-restore.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode(base: int = 0o666) -> int:
    """The mode `open()` would give a new file: `base` less the umask (0644 under 022)."""
    return base & ~umask()


def dir_mode() -> int:
    """The mode `mkdir` would give a new folder: 0777 less the umask (0755 under 022)."""
    return 0o777 & ~umask()
