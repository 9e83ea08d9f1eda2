"""Find the registry a path belongs to, and the model it names if it points into one.

`root` may be the registry's root, any folder inside it, or a model's folder
(`path/to/model-registry/YOLOX-l`), in which case selectors may leave the model out
(`resolve("base/1.2", root=".../YOLOX-l")`). A plain copy of a registry without `.git`
(a Docker image, an unpacked archive) works too, with no commit information.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from registry.errors import InvalidReference, NotARegistry, RegistryError
from registry.refs import parse_model_name
from registry.repo.gitrepo import GitRepo


@dataclass(frozen=True)
class Location:
    root: Path  # the registry's root folder (a bare repository's git dir for a bare repo)
    repo: GitRepo | None  # None for a copy without git
    model: str | None  # the model `root` pointed at, if any


def locate(root: str | os.PathLike[str] | None = None) -> Location:
    """Find the registry at or above `root` (default: the current directory).

    Raises:
        NotARegistry: `root` does not exist or is not a folder.
        RegistryError: `root` is a URL this version cannot read.
    """
    text = os.fspath(root) if root is not None else os.getcwd()
    if "://" in text:
        raise RegistryError(
            f"cannot resolve from '{text}': only a registry checkout (a local path) is "
            "supported here; clone the registry and pass its path"
        )
    start = Path(text).expanduser().resolve()
    if not start.is_dir():
        raise NotARegistry(f"'{start}' is not a folder: pass the path of a registry checkout")
    try:
        repo: GitRepo | None = GitRepo.discover(start)
    except NotARegistry:
        repo = None
    if repo is not None and not repo.bare and start != repo.root and not _tracked(repo, start):
        # A registry copied into another project's work tree (app/models/): the
        # repository around it is not the registry's.
        repo = None
    if repo is not None:
        top = repo.root
    elif _is_model_dir(start):
        top = start.parent
    else:
        top = start
    model = None
    if start != top:
        rel = start.relative_to(top).parts
        if len(rel) == 1 and _is_model_name(rel[0]):
            model = rel[0]
    return Location(top, repo, model)


def _tracked(repo: GitRepo, folder: Path) -> bool:
    """Whether git tracks anything under `folder` (one `ls-files`, stopped at the first)."""
    proc = repo.run("--literal-pathspecs", "ls-files", "-z", "--", str(folder), check=False)
    return bool(proc.stdout)


def _is_model_name(name: str) -> bool:
    try:
        parse_model_name(name)
    except InvalidReference:
        return False
    return True


def _is_model_dir(path: Path) -> bool:
    # A model folder holds scope folders: base, pretrained or projects with version folders.
    return _is_model_name(path.name) and any(
        (path / scope).is_dir() for scope in ("base", "pretrained")
    )
