"""Where models, scopes, versions and files are in a registry, read from a checkout or a revision.

```
<root>/YOLOX-l/base/README.md
<root>/YOLOX-l/base/1.2/{config.yaml, checkpoint.pth, checkpoint.onnx, log.txt}
<root>/YOLOX-l/pretrained/2024-05-01/...
<root>/YOLOX-l/projectA/1.2.3/...
```
Two sources give the same view: `CheckoutSource` (the files on disk, where an LFS file may still
be a pointer if it was not pulled) and `TreeSource` (a git revision, so it works in a bare
repository and on history). Folder names that do not follow the grammar are reported as
`Problem`s by `scan`, never silently used.

A cloned repository is not trusted: symlinks (mode 120000 in a revision) and special files
(FIFOs, devices, submodules) are listed with their `kind`, never followed or opened, and
`read` takes a size cap. `check` reports them; `resolve`, `show` and `add` refuse them.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from registry.errors import InvalidReference, RegistryError, UnsafeContent
from registry.refs import ModelRef, Version, parse_model_name, parse_scope, parse_version
from registry.repo.gitrepo import GitRepo, TreeEntry
from registry.repo.pointer import MAX_POINTER_SIZE, LfsPointer, parse_pointer, read_pointer
from registry.safeio import MAX_TEXT_SIZE, describe_mode, read_regular, too_large


@dataclass(frozen=True)
class FileInfo:
    """One file of a version folder."""

    name: str  # relative to the version folder, `/`-separated
    path: str  # relative to the registry root, `/`-separated
    size: int  # size as stored (a pointer's own size when `lfs` is set)
    lfs: LfsPointer | None  # the LFS object when the stored file is a pointer
    kind: str = "file"  # "file", or "symlink" / "special" (FIFO, device, submodule...)
    detail: str = ""  # for a symlink, where it points; for a special file, what it is

    def describe(self) -> str:
        """What a non-regular entry is, for messages."""
        if self.kind == "symlink":
            return f"a symlink to '{self.detail}'" if self.detail else "a symlink"
        return self.detail or "not a regular file"


class Source(Protocol):
    """A read-only view of a registry's tree."""

    def subdirs(self, path: str) -> list[str]:
        """Names of the folders directly inside `path` ("" for the root), hidden ones excluded."""
        ...

    def files(self, path: str) -> list[str]:
        """Names of the files directly inside `path`."""
        ...

    def walk_files(self, path: str) -> list[FileInfo]:
        """Every file below `path`, with names relative to it; symlinks (to files or folders)
        and special files are listed with their `kind`, never followed."""
        ...

    def kind(self, path: str) -> str:
        """ "file", "folder", "symlink", "special", or "missing"."""
        ...

    def read(self, path: str, limit: int = MAX_TEXT_SIZE) -> bytes:
        """The content of a regular file (as stored: a pointer's text for an LFS file not
        pulled), at most `limit` bytes.

        Raises:
            UnsafeContent: a symlink, a special file, or larger than `limit`.
            FileNotFoundError: no such file.
        """
        ...


def _visible(name: str) -> bool:
    return not name.startswith(".")


class CheckoutSource:
    """A registry as files on disk."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _entries(self, path: str) -> list[os.DirEntry[str]]:
        try:
            with os.scandir(self.root / path) as it:
                return [e for e in it if _visible(e.name)]
        except (FileNotFoundError, NotADirectoryError):
            return []

    def subdirs(self, path: str) -> list[str]:
        return sorted(e.name for e in self._entries(path) if e.is_dir(follow_symlinks=False))

    def files(self, path: str) -> list[str]:
        return sorted(e.name for e in self._entries(path) if not e.is_dir(follow_symlinks=False))

    def walk_files(self, path: str) -> list[FileInfo]:
        out: list[FileInfo] = []
        base = self.root / path
        for dirpath, dirnames, filenames in os.walk(base):
            rel_dir = Path(dirpath).relative_to(base).as_posix()
            # os.walk lists a symlink to a folder among the folders (and does not descend).
            linked = [d for d in dirnames if _visible(d) and Path(dirpath, d).is_symlink()]
            dirnames[:] = sorted(d for d in dirnames if _visible(d) and d not in linked)
            for name in sorted([n for n in filenames if _visible(n)] + linked):
                full = Path(dirpath) / name
                rel = name if rel_dir == "." else f"{rel_dir}/{name}"
                try:
                    st = full.lstat()
                except FileNotFoundError:
                    continue
                if stat.S_ISREG(st.st_mode):
                    size = st.st_size
                    pointer = read_pointer(full) if size <= MAX_POINTER_SIZE else None
                    out.append(FileInfo(rel, f"{path}/{rel}", size, pointer))
                elif stat.S_ISLNK(st.st_mode):
                    target = os.readlink(full)
                    out.append(FileInfo(rel, f"{path}/{rel}", 0, None, "symlink", target))
                else:
                    what = describe_mode(st.st_mode)
                    out.append(FileInfo(rel, f"{path}/{rel}", 0, None, "special", what))
        return out

    def kind(self, path: str) -> str:
        try:
            mode = (self.root / path).lstat().st_mode
        except (FileNotFoundError, NotADirectoryError):
            return "missing"
        if stat.S_ISREG(mode):
            return "file"
        if stat.S_ISDIR(mode):
            return "folder"
        return "symlink" if stat.S_ISLNK(mode) else "special"

    def read(self, path: str, limit: int = MAX_TEXT_SIZE) -> bytes:
        return read_regular(self.root / path, limit, name=path)


class TreeSource:
    """A registry as committed at one git revision (works in bare repositories)."""

    def __init__(self, repo: GitRepo, rev: str = "HEAD") -> None:
        self.repo = repo
        self.rev = rev
        self.commit = repo.rev_parse(rev)
        self._by_path: dict[str, TreeEntry] = {}
        self._children: dict[str, set[str]] = {}
        for entry in repo.ls_tree(self.commit):
            self._by_path[entry.path] = entry
            parts = entry.path.split("/")
            for depth in range(len(parts)):
                parent = "/".join(parts[:depth])
                self._children.setdefault(parent, set()).add(parts[depth])
        self._pointers: dict[str, LfsPointer | None] | None = None

    def _is_dir(self, path: str) -> bool:
        return path not in self._by_path and path in self._children

    def _join(self, path: str, name: str) -> str:
        return f"{path}/{name}" if path else name

    def subdirs(self, path: str) -> list[str]:
        names = self._children.get(path, set())
        return sorted(n for n in names if _visible(n) and self._is_dir(self._join(path, n)))

    def files(self, path: str) -> list[str]:
        names = self._children.get(path, set())
        return sorted(n for n in names if _visible(n) and not self._is_dir(self._join(path, n)))

    def _pointer_map(self) -> dict[str, LfsPointer | None]:
        # One `git cat-file --batch` for every small blob: pointers are under 1 KiB.
        if self._pointers is None:
            small = {
                e.path: e.object_id
                for e in self._by_path.values()
                if e.kind == "blob" and 0 <= e.size <= MAX_POINTER_SIZE
            }
            blobs = self.repo.read_blobs(sorted(set(small.values())))
            self._pointers = {p: parse_pointer(blobs[oid]) for p, oid in small.items()}
        return self._pointers

    def walk_files(self, path: str) -> list[FileInfo]:
        prefix = f"{path}/"
        pointers = self._pointer_map()
        out = []
        for p, e in sorted(self._by_path.items()):
            if not p.startswith(prefix) or not _visible_path(p[len(prefix) :]):
                continue
            kind = _tree_kind(e)
            if kind == "file":
                out.append(FileInfo(p[len(prefix) :], p, e.size, pointers.get(p)))
            elif kind == "symlink":
                target = self._link_target(e)
                out.append(FileInfo(p[len(prefix) :], p, 0, None, "symlink", target))
            else:
                what = "a submodule" if e.kind == "commit" else f"a git entry of mode {e.mode}"
                out.append(FileInfo(p[len(prefix) :], p, 0, None, "special", what))
        return out

    def _link_target(self, entry: TreeEntry) -> str:
        # A link's blob is its target path: short, but capped all the same.
        if not 0 <= entry.size <= 4096:
            return ""
        data = self.repo.read_blobs([entry.object_id])[entry.object_id]
        return data.decode("utf-8", "replace")

    def kind(self, path: str) -> str:
        entry = self._by_path.get(path)
        if entry is None:
            return "folder" if path in self._children else "missing"
        return _tree_kind(entry)

    def object_id(self, path: str) -> str:
        return self._by_path[path].object_id

    def read(self, path: str, limit: int = MAX_TEXT_SIZE) -> bytes:
        entry = self._by_path.get(path)
        if entry is None:
            raise FileNotFoundError(f"{path} is not in {self.rev}")
        kind = _tree_kind(entry)
        if kind != "file":
            what = "a symlink" if kind == "symlink" else f"not a regular file (mode {entry.mode})"
            raise UnsafeContent(
                f"{path} is {what} in {self.rev}; a registry holds regular files only",
                path=path,
                reason=kind if kind == "symlink" else "special",
            )
        if entry.size > limit:
            raise too_large(path, entry.size, limit)
        return self.repo.read_blobs([entry.object_id])[entry.object_id]


def _tree_kind(entry: TreeEntry) -> str:
    if entry.kind == "blob" and entry.mode in ("100644", "100755"):
        return "file"
    return "symlink" if entry.mode == "120000" else "special"


def committed_pointers(repo: GitRepo, rev: str, path: str) -> dict[str, LfsPointer]:
    """The LFS pointers committed at `rev` under the folder `path`, by name relative to it.

    Reads only that folder (one `ls-tree`, one `cat-file`), so it stays fast in big registries;
    a repository with no commits yet has none.
    """
    if repo.head() is None:
        return {}
    entries = [
        e for e in repo.ls_tree(rev, path) if e.kind == "blob" and 0 <= e.size <= MAX_POINTER_SIZE
    ]
    blobs = repo.read_blobs([e.object_id for e in entries])
    found = {e.path.removeprefix(f"{path}/"): parse_pointer(blobs[e.object_id]) for e in entries}
    return {name: pointer for name, pointer in found.items() if pointer is not None}


def _visible_path(rel: str) -> bool:
    return all(_visible(part) for part in rel.split("/"))


@dataclass(frozen=True)
class Problem:
    """A naming problem found while scanning: the path and what is wrong with it."""

    path: str
    message: str
    rule: str = "name"  # the `check` rule: "name", or "not-regular" for a symlink


@dataclass
class Scan:
    """Everything `scan` found: valid versions by model and scope, and the problems."""

    versions: dict[str, dict[str, dict[Version, str]]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def refs(self) -> Iterator[ModelRef]:
        for model, scopes in sorted(self.versions.items()):
            for scope, versions in sorted(scopes.items()):
                for version in sorted(versions):
                    yield ModelRef(model=model, scope=scope, version=version)


def models(source: Source) -> list[str]:
    """Top-level folders that are valid model names."""
    return [m for m in source.subdirs("") if _valid(parse_model_name, m)]


def scopes(source: Source, model: str) -> list[str]:
    return [s for s in source.subdirs(model) if _valid(parse_scope, s)]


def versions(source: Source, model: str, scope: str) -> dict[Version, str]:
    """The valid versions of one scope, mapped to their folder names."""
    found: dict[Version, str] = {}
    for name in source.subdirs(f"{model}/{scope}"):
        try:
            found[parse_version(scope, name)] = name
        except InvalidReference:
            continue
    return found


def files(source: Source, ref: ModelRef) -> Mapping[str, FileInfo]:
    """The files of one version folder, by name."""
    return {f.name: f for f in source.walk_files(ref.path)}


def regular_files(source: Source, ref: ModelRef) -> Mapping[str, FileInfo]:
    """The files of one version folder, refusing a version that holds anything but regular
    files (what `resolve`, `show` and `fetch` hand out must be the version's own bytes).

    Raises:
        RegistryError: a symlink or special file in the version, named with what it is.
    """
    found = files(source, ref)
    odd = [f for f in found.values() if f.kind != "file"]
    if odd:
        listed = "; ".join(f"{f.path} is {f.describe()}" for f in odd)
        raise RegistryError(
            f"{ref} holds something other than regular files: {listed}. A version holds "
            "regular files only: replace each with the file itself (`model-registry check` "
            "lists them)"
        )
    return found


def scan(source: Source) -> Scan:
    """Every valid version, and a Problem for every folder whose name breaks the grammar."""
    result = Scan()
    for model in source.subdirs(""):
        if not _check(result, model, parse_model_name, model):
            continue
        _odd_entries(result, source, model)
        for scope in source.subdirs(model):
            if not _check(result, f"{model}/{scope}", parse_scope, scope):
                continue
            _odd_entries(result, source, f"{model}/{scope}")
            found = result.versions.setdefault(model, {}).setdefault(scope, {})
            for name in source.subdirs(f"{model}/{scope}"):
                path = f"{model}/{scope}/{name}"
                try:
                    found[parse_version(scope, name)] = name
                except InvalidReference as exc:
                    result.problems.append(Problem(path, str(exc)))
    return result


def _odd_entries(result: Scan, source: Source, folder: str) -> None:
    """A symlink or special file where a scope or version folder would be is never followed
    (it would read outside the registry): report it instead of ignoring it."""
    for name in source.files(folder):
        path = f"{folder}/{name}"
        kind = source.kind(path)
        if kind in ("symlink", "special"):
            what = "a symlink" if kind == "symlink" else "a special file"
            result.problems.append(
                Problem(
                    path,
                    f"'{path}' is {what}; a registry holds folders and regular files only: "
                    "replace it with the folder or file itself",
                    "not-regular",
                )
            )


def _valid(parse: Callable[[str], object], text: str) -> bool:
    try:
        parse(text)
    except InvalidReference:
        return False
    return True


def _check(result: Scan, path: str, parse: Callable[[str], object], text: str) -> bool:
    try:
        parse(text)
    except InvalidReference as exc:
        result.problems.append(Problem(path, str(exc)))
        return False
    return True
