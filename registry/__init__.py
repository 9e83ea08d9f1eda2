"""model-registry: a model registry that is a Git repository with its checkpoints in Git LFS.

    from registry import resolve
    model = resolve("YOLOX-l/base/1", root="path/to/model-registry")
    model.files["checkpoint.pth"]      # the newest 1.x, pulled if it was not

Versions (`base/X.Y`, `{project}/X.Y.Z`, `pretrained/YYYY-MM-DD`) are immutable values that
parse and print round-trip; `check` enforces the registry's rules. A version's `meta.yaml`
records metrics and provenance (`Record`); `compare`, `gate` and `history` reason about them.
"""

from __future__ import annotations

from registry.errors import (
    InvalidReference,
    NotARegistry,
    NotFound,
    NotPulled,
    RegistryError,
    RepoError,
    VersionExists,
)
from registry.records.compare import Comparison, compare
from registry.records.gate import GateResult, gate
from registry.records.history import History, history
from registry.records.record import Record, RecordError
from registry.records.yank import YankedWarning
from registry.refs import (
    BaseVersion,
    ModelRef,
    PretrainedVersion,
    ProjectVersion,
    Selector,
    Version,
    parse_ref,
    parse_selector,
    parse_version,
)
from registry.repo.checks import Finding, check
from registry.resolve import ResolvedModel, resolve

__all__ = [
    "BaseVersion",
    "Comparison",
    "Finding",
    "GateResult",
    "History",
    "InvalidReference",
    "ModelRef",
    "NotARegistry",
    "NotFound",
    "NotPulled",
    "PretrainedVersion",
    "ProjectVersion",
    "Record",
    "RecordError",
    "RegistryError",
    "RepoError",
    "ResolvedModel",
    "Selector",
    "Version",
    "VersionExists",
    "YankedWarning",
    "check",
    "compare",
    "gate",
    "history",
    "parse_ref",
    "parse_selector",
    "parse_version",
    "resolve",
]
