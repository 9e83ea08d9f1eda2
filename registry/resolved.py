"""`ResolvedModel`: one model version on disk, what `resolve` returns for a checkout and for S3."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from registry.refs import ModelRef
from registry.repo.pointer import LfsPointer


@dataclass(frozen=True)
class ResolvedModel:
    """One model version, on disk.

    Attributes:
        ref: the concrete version the selector resolved to (`str(r.ref) == "YOLOX-l/base/1.10"`).
        path: the version folder.
        files: each file of the version by name (`r.files["checkpoint.pth"]`), absolute paths.
        commit: the last commit that changed the version folder (None outside git, or if the
            version is not committed yet).
        objects: for each file stored in Git LFS, its oid and size.
    """

    ref: ModelRef
    path: Path
    files: Mapping[str, Path]
    commit: str | None
    objects: Mapping[str, LfsPointer]
