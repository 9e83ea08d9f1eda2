"""A thin wrapper around the git command line: the only module of `registry` that runs git.

Everything here is a subprocess call whose output is parsed into plain values. Every failure
becomes `RepoError` carrying the command and git's own message; not being in a repository at
all is `NotARegistry`. Reading a whole registry costs two processes, whatever its size:
`ls_tree` lists every file with its blob id and size, and `read_blobs` reads every small blob
through one `git cat-file --batch`.

>>> repo = GitRepo.discover(Path("."))                                  # doctest: +SKIP
>>> entries = repo.ls_tree("HEAD", "YOLOX-l")                           # doctest: +SKIP
>>> blobs = repo.read_blobs([e.object_id for e in entries if e.size < 1024])  # doctest: +SKIP
"""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from registry.errors import InvalidReference, NotARegistry, RepoError

__all__ = ["GitRepo", "TreeEntry"]

# The variables with which git points a child process at a repository (the repository-locating
# part of `git rev-parse --local-env-vars`). Git exports GIT_DIR, and in some hooks
# GIT_INDEX_FILE, to hooks and aliases; inherited, they would aim our commands at whatever
# repository invoked us instead of `root`.
_LOCATION_VARS = frozenset(
    {
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_IMPLICIT_WORK_TREE",
        "GIT_COMMON_DIR",
        "GIT_INDEX_FILE",
        "GIT_OBJECT_DIRECTORY",
        "GIT_ALTERNATE_OBJECT_DIRECTORIES",
        "GIT_PREFIX",
        "GIT_INTERNAL_SUPER_PREFIX",
        "GIT_SHALLOW_FILE",
        "GIT_GRAFT_FILE",
        "GIT_NAMESPACE",
    }
)


@dataclass(frozen=True)
class TreeEntry:
    """One file of a commit's tree, as `git ls-tree -r -l` reports it."""

    path: str
    """posix path relative to the repository root; undecodable bytes as surrogate escapes"""
    mode: str
    """"100644", "100755", "120000" (symlink) or "160000" (submodule)"""
    kind: str
    """"blob", or "commit" for a submodule"""
    object_id: str
    size: int
    """blob size in bytes; -1 for a submodule"""


class GitRepo:
    """A git repository, worked on by running git with `root` as the working directory.

    `env`, when given, is the complete environment of every git process; by default the
    current environment without the variables that would redirect git to another repository.
    """

    def __init__(
        self, root: Path, *, bare: bool = False, env: Mapping[str, str] | None = None
    ) -> None:
        self.root = root
        self.bare = bare
        self._env = dict(env) if env is not None else None

    def __repr__(self) -> str:
        return f"GitRepo({str(self.root)!r}, bare={self.bare})"

    @classmethod
    def discover(cls, start: Path, *, env: Mapping[str, str] | None = None) -> GitRepo:
        """The repository containing `start`: its work tree root, or the git dir if bare.

        Raises:
            NotARegistry: `start` is not inside a git repository (or is inside a `.git` dir).
        """
        where = start if start.is_dir() else start.parent
        if not where.is_dir():
            raise NotARegistry(f"'{start}' does not exist, so it is not in a git repository")
        probe = cls(where, env=env)
        info = probe.run(
            "rev-parse", "--is-bare-repository", "--is-inside-work-tree", "--absolute-git-dir",
            check=False,
        )  # fmt: skip
        if info.returncode != 0:
            message = _stderr(info)
            if "not a git repository" in message:
                raise NotARegistry(f"'{start}' is not inside a git repository: {message}")
            # A repository git refuses to use ("dubious ownership", whose message says which
            # `git config --global --add safe.directory` to run; an unknown format...).
            raise RepoError(f"git cannot use the repository at '{start}': {message}")
        is_bare, in_work_tree, git_dir = _lines(info.stdout)[:3]
        if is_bare == "true":
            return cls(Path(git_dir), bare=True, env=env)
        if in_work_tree != "true":
            raise RepoError(
                f"'{start}' is inside the git directory '{git_dir}', not in a work tree; "
                "use a path in the checkout instead"
            )
        top = probe.run("rev-parse", "--show-toplevel")
        return cls(Path(_lines(top.stdout)[0]), env=env)

    @classmethod
    def toplevel(cls, path: Path) -> Path | None:
        """The work tree root of the repository `path` is in; None when it is in none."""
        proc = cls(path).run("rev-parse", "--show-toplevel", check=False)
        return Path(_lines(proc.stdout)[0]) if proc.returncode == 0 else None

    @classmethod
    def init(cls, path: Path) -> GitRepo:
        """A new repository at `path` (`git init`).

        Raises:
            RepoError: git refused; the message carries its reason.
        """
        repo = cls(path)
        repo.run("init", "-q")
        return repo

    def run(
        self, *args: str, input: bytes | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[bytes]:
        """Run `git *args` in `root` and capture its output.

        Raises:
            RepoError: git is not installed, or (with `check`) it exited non-zero.
        """
        command = ["git", *args]
        try:
            proc = subprocess.run(
                command,
                cwd=self.root,
                env=self._child_env(),
                input=input,
                # Never let git read our stdin: callers may be speaking a protocol on it.
                stdin=subprocess.DEVNULL if input is None else None,
                capture_output=True,
                check=False,
            )
        except FileNotFoundError as e:
            # A missing cwd raises FileNotFoundError too; tell the two apart for the message.
            if self.root.is_dir():
                what = "git is not installed or not on PATH"
            else:
                what = f"directory '{self.root}' does not exist"
            raise RepoError(f"cannot run `{shlex.join(command)}`: {what}") from e
        if check and proc.returncode != 0:
            raise RepoError(_failure(self.root, proc))
        return proc

    def rev_parse(self, rev: str) -> str:
        """The full id of the commit `rev` names.

        Raises:
            RepoError: `rev` names no commit in this repository.
        """
        _check_rev(rev)
        proc = self.run("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", check=False)
        if proc.returncode != 0:
            command = shlex.join(str(arg) for arg in proc.args)
            detail = _stderr(proc) or "no such commit"
            raise RepoError(
                f"unknown revision '{rev}' in '{self.root}' (`{command}`: {detail}); "
                "check the name, or `git fetch` it first"
            )
        return _lines(proc.stdout)[0]

    def head(self) -> str | None:
        """The commit HEAD points at; None in a repository with no commits yet."""
        proc = self.run("rev-parse", "--verify", "--quiet", "HEAD^{commit}", check=False)
        # --quiet: exit 1 with nothing on stderr means "no such commit", anything else failed.
        if proc.returncode == 1 and not proc.stderr:
            return None
        if proc.returncode != 0:
            raise RepoError(_failure(self.root, proc))
        return _lines(proc.stdout)[0]

    def ls_tree(self, rev: str, path: str | None = None) -> list[TreeEntry]:
        """Every file of `rev`'s tree, recursively, or only those at or under `path`.

        `path` is matched literally (no globs), relative to the root, by whole components:
        "YOLOX-l/ba" does not match "YOLOX-l/base". No match is an empty list.

        Raises:
            RepoError: `rev` is unknown, or git failed.
        """
        _check_rev(rev)
        args = ["--literal-pathspecs", "ls-tree", "-r", "-l", "-z", "--full-tree", rev]
        if path is not None:
            args += ["--", path]
        out = self.run(*args).stdout
        return [_tree_entry(record) for record in out.split(b"\0") if record]

    def index_entries(self, paths: Sequence[str] | None) -> dict[str, TreeEntry]:
        """What is staged (the index) for `paths`, or for everything when None, with sizes.

        The index is what the next commit holds, so it is what a pre-commit check must see.
        """
        if paths is not None and not paths:
            return {}
        args = ["--literal-pathspecs", "ls-files", "-s", "-z"]
        if paths is not None:
            args += ["--", *paths]
        staged: dict[str, tuple[str, str]] = {}
        for record in self.run(*args).stdout.split(b"\0"):
            if record:
                meta, _, name = record.partition(b"\t")
                mode, object_id, _stage = meta.decode().split(" ")
                staged[name.decode("utf-8", "surrogateescape")] = (mode, object_id)
        ids = sorted({oid for mode, oid in staged.values() if mode != "160000"})
        check = self.run("cat-file", "--batch-check", input="".join(f"{i}\n" for i in ids).encode())
        sizes = {}
        for line in check.stdout.decode().splitlines():
            fields = line.split(" ")
            if len(fields) == 3 and fields[2].isdigit():
                sizes[fields[0]] = int(fields[2])
        return {
            path: TreeEntry(
                path, mode, "commit" if mode == "160000" else "blob", oid, sizes.get(oid, -1)
            )
            for path, (mode, oid) in staged.items()
        }

    def check_attr(self, attr: str, paths: Sequence[str]) -> dict[str, str]:
        """The value of a gitattribute for each path ("unspecified", "set", or its value)."""
        if not paths:
            return {}
        proc = self.run(
            "check-attr",
            "-z",
            "--stdin",
            attr,
            input=b"".join(p.encode("utf-8", "surrogateescape") + b"\0" for p in paths),
        )
        fields = proc.stdout.split(b"\0")
        return {
            fields[i].decode("utf-8", "surrogateescape"): fields[i + 2].decode()
            for i in range(0, len(fields) - 2, 3)
        }

    def read_blobs(self, object_ids: Sequence[str]) -> dict[str, bytes]:
        """The content of each blob in `object_ids`, read by a single `git cat-file --batch`.

        Meant for small blobs (configs, pointers): everything is held in memory at once.

        Raises:
            RepoError: an object is missing or is not a blob, or git failed.
        """
        wanted = list(dict.fromkeys(object_ids))
        if not wanted:
            return {}
        for oid in wanted:
            if not oid or oid.isspace() or "\n" in oid:
                raise RepoError(f"invalid object id {oid!r}")
        request = "".join(f"{oid}\n" for oid in wanted).encode()
        out = self.run("cat-file", "--batch", input=request).stdout
        return _parse_batch(out, wanted, self.root)

    def last_commit(self, path: str, rev: str = "HEAD") -> str | None:
        """The last commit reachable from `rev` that changed `path`; None if none did.

        Raises:
            RepoError: `rev` is unknown (except HEAD of a repository with no commits), or git
                failed.
        """
        _check_rev(rev)
        args = ("--literal-pathspecs", "log", "-1", "--format=%H", rev, "--", path)
        proc = self.run(*args, check=False)
        if proc.returncode != 0:
            if rev == "HEAD" and self.head() is None:
                return None
            raise RepoError(_failure(self.root, proc))
        lines = _lines(proc.stdout)
        return lines[0] if lines else None

    def add(self, paths: Sequence[Path]) -> None:
        """Stage `paths` (files or directories, taken literally); runs the LFS clean filter.

        Raises:
            RepoError: git refused (path outside the work tree, bare repository, ...).
        """
        if paths:
            self.run("--literal-pathspecs", "add", "--", *map(str, paths))

    def lfs_pull(self, include: Sequence[str]) -> subprocess.CompletedProcess[bytes]:
        """Run `git lfs pull --include=<patterns>` and return the finished process unchecked.

        The caller decides what a failure means (typically `NotPulled`), with `stderr` in hand.

        Raises:
            InvalidReference: no pattern, or a pattern containing a comma (git-lfs splits the
                list on commas and has no escape for them).
        """
        if not include:
            # An empty --include means no filter at all: it would fetch every object.
            raise InvalidReference("lfs_pull needs at least one --include pattern")
        for pattern in include:
            if not pattern or "," in pattern:
                raise InvalidReference(
                    f"cannot pass {pattern!r} to `git lfs pull --include`", value=pattern
                )
        return self.run("lfs", "pull", f"--include={','.join(include)}", check=False)

    def _child_env(self) -> dict[str, str]:
        if self._env is not None:
            return self._env
        return {k: v for k, v in os.environ.items() if k not in _LOCATION_VARS}


def _tree_entry(record: bytes) -> TreeEntry:
    # -z -l record: "<mode> SP <type> SP <id> SP+ <size or -> TAB <path>" (size right-aligned)
    meta, tab, raw_path = record.partition(b"\t")
    fields = meta.decode("ascii").split()
    if not tab or len(fields) != 4:
        raise RepoError(f"unexpected `git ls-tree` output: {record[:200]!r}")
    mode, kind, object_id, size = fields
    return TreeEntry(
        # git stores names as bytes; surrogateescape keeps non-UTF-8 names round-trippable.
        path=raw_path.decode("utf-8", "surrogateescape"),
        mode=mode,
        kind=kind,
        object_id=object_id,
        size=int(size) if size != "-" else -1,
    )


def _parse_batch(out: bytes, wanted: list[str], root: Path) -> dict[str, bytes]:
    """Split `git cat-file --batch` output; answers come in request order.

    Each answer is "<id> SP <type> SP <size> LF <content> LF", or "<name> SP missing LF"
    (also "ambiguous"), so content is sliced by its declared size, never split on newlines.
    """
    blobs: dict[str, bytes] = {}
    problems: list[str] = []
    pos = 0
    for oid in wanted:
        end = out.find(b"\n", pos)
        if end < 0:
            raise RepoError(f"`git cat-file --batch` in '{root}' stopped before {oid!r}")
        header = out[pos:end].decode("utf-8", "replace").split(" ")
        pos = end + 1
        if header[-1] in ("missing", "ambiguous"):
            problems.append(f"{oid} ({header[-1]})")
            continue
        if len(header) != 3 or not header[2].isdigit():
            raise RepoError(f"unexpected `git cat-file --batch` output in '{root}': {header!r}")
        kind, size = header[1], int(header[2])
        content, pos = out[pos : pos + size], pos + size + 1
        if out[pos - 1 : pos] != b"\n":
            raise RepoError(f"`git cat-file --batch` in '{root}' cut {oid!r} short")
        if kind != "blob":
            problems.append(f"{oid} (a {kind}, not a blob)")
            continue
        blobs[oid] = content
    if problems:
        shown = ", ".join(problems[:5]) + (f" and {len(problems) - 5} more" if problems[5:] else "")
        raise RepoError(
            f"`git cat-file --batch` in '{root}' could not read {shown}; the repository may "
            "be incomplete (shallow or partial clone): try `git fetch`"
        )
    return blobs


def _check_rev(rev: str) -> None:
    # A leading dash would be read as an option by git; no ref name can start with one.
    if not rev or rev.startswith("-"):
        raise RepoError(f"unknown revision {rev!r}: a revision cannot be empty or start with '-'")


def _failure(root: Path, proc: subprocess.CompletedProcess[bytes]) -> str:
    command = shlex.join(str(arg) for arg in proc.args)
    detail = _stderr(proc) or "(no message from git)"
    return f"`{command}` failed in '{root}' (exit {proc.returncode}): {detail}"


def _stderr(proc: subprocess.CompletedProcess[bytes]) -> str:
    return proc.stderr.decode("utf-8", "replace").strip()


def _lines(out: bytes) -> list[str]:
    return out.decode("utf-8", "surrogateescape").splitlines()
