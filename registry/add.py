"""`model-registry add`: put a new version's files in place, all or nothing, and stage them."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import yaml

from .errors import NotFound, RegistryError, VersionExists
from .gitrepo import GitRepo
from .record import FILE as RECORD_FILE
from .record import Record
from .refs import ModelRef, ProjectVersion
from .settings import Settings


def add_version(
    root: Path,
    ref: ModelRef,
    source: Path,
    *,
    settings: Settings,
    repo: GitRepo | None,
    record: Record | None = None,
) -> Path:
    """Copy the files of `source` into `root/ref.path` and `git add` them.

    The files are validated first (required files, config.yaml, the base of a project
    version) and copied into a temp folder next to the destination, then renamed into place,
    so a failure never leaves a half-written version. `record`, when given, is written as the
    version's meta.yaml (the caller merged it with the one in `source`).

    Raises:
        VersionExists: the version folder exists (released versions are immutable).
        NotFound: `source` is not a folder, or the base of a project version is missing.
        RegistryError: a required file is missing or config.yaml does not parse.
    """
    dest = root / ref.path
    if dest.exists():
        raise VersionExists(
            f"{ref} already exists at '{dest}': released versions are immutable. Register "
            f"a new version instead ('model-registry next {ref.model}/{ref.scope} ...')"
        )
    if not source.is_dir():
        raise NotFound(f"'{source}' is not a folder: pass the folder holding the model files")
    present = {p.relative_to(source).as_posix() for p in source.rglob("*") if p.is_file()}
    missing = [name for name in settings.check.required if name not in present]
    if missing:
        raise RegistryError(
            f"'{source}' lacks {', '.join(missing)}; every version needs "
            + ", ".join(settings.check.required)
        )
    if "config.yaml" in present:
        try:
            yaml.safe_load((source / "config.yaml").read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise RegistryError(f"'{source / 'config.yaml'}' does not parse: {exc}") from None
    if isinstance(ref.version, ProjectVersion):
        base = root / ref.model / "base" / str(ref.version.base)
        if not base.is_dir():
            raise NotFound(
                f"{ref} is fine-tuned from base {ref.version.base}, but {ref.model}/base/"
                f"{ref.version.base} does not exist; register it first"
            )
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.adding-", dir=dest.parent))
    try:
        shutil.copytree(source, staging, dirs_exist_ok=True)
        if record is not None:
            (staging / RECORD_FILE).write_text(record.to_yaml(), encoding="utf-8")
        staging.rename(dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if repo is not None:
        repo.add([dest])
    return dest
