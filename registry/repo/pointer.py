"""Git LFS pointer files: recognise one, read its object id and size, and write one back.

A registry checkout that has not been pulled holds pointer files where the checkpoints should
be. This module tells the two apart without running git. The format is the one in
https://github.com/git-lfs/git-lfs/blob/main/docs/spec.md:

```
version https://git-lfs.github.com/spec/v1
oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393
size 12345
```

We accept exactly the encoding the spec prescribes (git-lfs itself writes nothing else), and
reject anything else rather than guess:

* the version line is first, with one of the version URLs git-lfs reads (the current one, the
  pre-release `hawser` one, and the alpha `git-media` one);
* then `ext-<digit>-<name> sha256:<hex>` lines (git-lfs extensions), then `oid`, then `size`,
  keys in ascending order, each key once, each extension priority once;
* oids are 64 *lowercase* hex digits; the size is a decimal without sign or leading zeros that
  fits git-lfs's int64;
* every line ends with LF, including the last; **CRLF is rejected**. The spec requires LF, the
  `-text` attribute git-lfs writes into `.gitattributes` keeps git from converting pointers, so
  a CRLF "pointer" was edited by hand and is not what git-lfs would store;
* the whole file is shorter than `MAX_POINTER_SIZE` (1024) bytes.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from lfs_agent.oids import OID_PATTERN as _OID
from registry.errors import InvalidReference

__all__ = ["MAX_POINTER_SIZE", "LfsPointer", "parse_pointer", "read_pointer"]

MAX_POINTER_SIZE = 1024
"""git-lfs never treats a blob of this many bytes or more as a pointer."""

VERSION_URL = "https://git-lfs.github.com/spec/v1"
# Older pointers are still valid; git-lfs reads them and writes VERSION_URL (lfs/pointer.go).
_VERSION_URLS = frozenset(
    {VERSION_URL, "https://hawser.github.com/spec/v1", "http://git-media.io/v/2"}
)

# Explicit ASCII classes: in a str pattern `\d` would also match other scripts' digits.
_SIZE = re.compile(r"0|[1-9][0-9]{0,18}")
_EXT_KEY = re.compile(r"ext-([0-9])-[a-z0-9.-]+")
_INT64_MAX = 2**63 - 1


@dataclass(frozen=True)
class LfsPointer:
    """The object a pointer file stands for: its sha256 `oid` and its `size` in bytes.

    `extensions` keeps the `ext-N-name` lines of pointers written through git-lfs extensions
    (rare), as `(key, "sha256:<hex>")` pairs in file order. With extensions, the object stored
    under `oid` is the *cleaned* content, not the file a user would see after smudging.

    >>> p = LfsPointer("4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393", 12345)
    >>> parse_pointer(p.text().encode()) == p
    True
    """

    oid: str
    size: int
    extensions: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        # Validate on construction so that text() always yields a file parse_pointer accepts.
        if not _OID.fullmatch(self.oid):
            raise InvalidReference(
                f"LFS oid {self.oid!r} is not 64 lowercase hex digits", value=self.oid
            )
        if not 0 <= self.size <= _INT64_MAX:
            raise InvalidReference(f"LFS object size {self.size} is out of range")
        if not _valid_extensions(self.extensions):
            raise InvalidReference(f"invalid LFS pointer extensions {self.extensions!r}")
        if len(self.text().encode()) >= MAX_POINTER_SIZE:
            raise InvalidReference(f"LFS pointer would be {MAX_POINTER_SIZE} bytes or more")

    def text(self) -> str:
        """The canonical pointer file content, as `git lfs pointer` writes it."""
        lines = [
            f"version {VERSION_URL}",
            *(f"{key} {value}" for key, value in self.extensions),
            f"oid sha256:{self.oid}",
            f"size {self.size}",
        ]
        return "".join(line + "\n" for line in lines)


def parse_pointer(data: bytes) -> LfsPointer | None:
    """The pointer `data` encodes, or None when `data` is anything else. Never raises.

    >>> parse_pointer(b"not a pointer") is None
    True
    """
    if not 0 < len(data) < MAX_POINTER_SIZE or not data.endswith(b"\n"):
        return None
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        return None
    pairs = [line.partition(" ") for line in text[:-1].split("\n")]
    if len(pairs) < 3 or any(not sep for _, sep, _ in pairs):
        return None
    (version_key, _, version), *exts, (oid_key, _, oid), (size_key, _, size) = pairs
    if version_key != "version" or version not in _VERSION_URLS:
        return None
    if oid_key != "oid" or size_key != "size" or not _SIZE.fullmatch(size):
        return None
    if not oid.startswith("sha256:"):
        return None
    extensions = tuple((key, value) for key, _, value in exts)
    try:
        return LfsPointer(oid.removeprefix("sha256:"), int(size), extensions)
    except InvalidReference:
        # Bad oid, size beyond int64, malformed extensions, or (only with absurdly long
        # extension names) a legacy pointer whose canonical form would reach 1024 bytes.
        return None


def read_pointer(path: Path) -> LfsPointer | None:
    """The pointer stored in the file at `path`, or None if the file holds something else.

    Reads at most `MAX_POINTER_SIZE + 1` bytes, so it is cheap on multi-gigabyte checkpoints.
    A symlink, a FIFO or a device is not a pointer: it is neither followed nor waited on.

    Raises:
        OSError: the file cannot be opened or read (missing, a directory, no permission).
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return None
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        data = os.read(fd, MAX_POINTER_SIZE + 1)
    finally:
        os.close(fd)
    return parse_pointer(data)


def _valid_extensions(extensions: tuple[tuple[str, str], ...]) -> bool:
    """Keys strictly ascending, one per priority, values `sha256:<hex>` (lfs/pointer.go)."""
    keys = [key for key, _ in extensions]
    if keys != sorted(set(keys)):
        return False
    priorities: set[str] = set()
    for key, value in extensions:
        match = _EXT_KEY.fullmatch(key)
        if match is None or not value.startswith("sha256:"):
            return False
        if not _OID.fullmatch(value.removeprefix("sha256:")):
            return False
        priorities.add(match.group(1))
    return len(priorities) == len(extensions)
