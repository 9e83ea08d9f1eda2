"""Settings remembered across agent starts by the warm server, while what git read is unchanged.

Reading the settings takes four or five `git` processes (`sources.load`), paid at every agent
start, and some commands start an agent per object (`git archive`, a smudge outside delayed
checkout). A warm server's children (`warm.py`) therefore report what they loaded, and the next
child for the same folder, environment and operation takes it instead, after checking that no
file git read has changed since: every config file git named as an origin, the usual config
locations (so that a file created since is noticed), the committed files, and the index, HEAD
and refs that the committed files are read from when the work tree lacks them.

A file is unchanged when its inode, size, and modification and change times (ns) are. As git
does with its index ("racily clean" entries), settings are not remembered while any of those
files was changed in the last `SETTLE_NS`: a change made while git was reading could otherwise
hide behind a signature taken after it. Settings from a config that includes other files
(`include.*`, `includeIf.*`) are not remembered either: a conditional include can start to
apply without any file changing.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from .config import AgentConfig, Value
    from .gitenv import ConfigEntry, RepoPaths

COMMITTED = (".lfsconfig", ".lfs-s3config")
MAX_ENTRIES = 64
SETTLE_NS = 2_000_000_000
Stamp = tuple[int, int, int, int] | None
Signature = tuple[tuple[str, Stamp], ...]


class Loaded(NamedTuple):
    """The settings one agent start loaded (`sources.load`), as a warm server remembers them."""

    config: AgentConfig
    values: dict[str, Value]
    repo: RepoPaths
    lfs_dir: Path


class Entry(NamedTuple):
    key: str
    signature: Signature
    loaded: Loaded


def key_of(environ: Mapping[str, str], cwd: str, operation: str, remote: str) -> str:
    """What must be equal for remembered settings to apply: folder, environment, operation."""
    items = "\0".join(f"{k}={v}" for k, v in sorted(environ.items()))
    return f"{operation}\0{remote}\0{cwd}\0{items}"


def _stamp(path: str) -> Stamp:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def watched_files(
    repo: RepoPaths, environ: Mapping[str, str], origins: Iterable[str], cwd: str
) -> list[str]:
    """Every file whose change could change the settings, in a fixed order."""
    home = environ.get("HOME", "")
    xdg = environ.get("XDG_CONFIG_HOME") or os.path.join(home, ".config")
    paths = [
        os.path.join(home, ".gitconfig"),
        os.path.join(xdg, "git", "config"),
        environ.get("GIT_CONFIG_GLOBAL", ""),
        environ.get("GIT_CONFIG_SYSTEM", "") or "/etc/gitconfig",
        str(repo.common_dir / "config"),
        str(repo.git_dir / "config.worktree"),
        str(repo.git_dir / "index"),
        str(repo.git_dir / "HEAD"),
        str(repo.common_dir / "packed-refs"),
    ]
    head = _head_ref(repo.git_dir / "HEAD")
    if head:
        paths.append(str(repo.common_dir / head))
    if repo.toplevel is not None:
        paths += [str(repo.toplevel / name) for name in COMMITTED]
    for origin in origins:
        kind, _, path = origin.partition(":")
        if kind == "file" and path:
            paths.append(os.path.join(cwd, path))
    return sorted({p for p in paths if p})


def _head_ref(head: Path) -> str | None:
    try:
        text = head.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None
    ref = text[5:].strip() if text.startswith("ref: ") else ""
    return ref if ref.startswith("refs/") and ".." not in ref else None


def signature(files: Iterable[str]) -> Signature:
    return tuple((path, _stamp(path)) for path in files)


def rememberable(git: Iterable[ConfigEntry]) -> bool:
    return not any(e.key.startswith(("include.", "includeif.")) for e in git)


class Memo:
    """A child's view of the server's remembered settings, and its way to report new ones."""

    def __init__(
        self, entries: Mapping[str, Entry], report: Callable[[Entry], None] | None
    ) -> None:
        self._entries = entries
        self._report = report

    def lookup(self, key: str) -> Loaded | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        files = [path for path, _ in entry.signature]
        if signature(files) != entry.signature:
            return None
        return entry.loaded

    def remember(self, key: str, files: list[str], loaded: Loaded) -> None:
        if self._report is None:
            return
        taken = signature(files)
        recent = time.time_ns() - SETTLE_NS
        if any(stamp is not None and stamp[2] > recent for _, stamp in taken):
            return
        self._report(Entry(key, taken, loaded))


def store(entries: dict[str, Entry], entry: Entry) -> None:
    """Keep `entry` in the server's table, the oldest one leaving when it is full."""
    entries.pop(entry.key, None)
    entries[entry.key] = entry
    while len(entries) > MAX_ENTRIES:
        entries.pop(next(iter(entries)))
