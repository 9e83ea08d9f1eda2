"""What the doctor's checks share: the `Context` they look in and the `Result`s they find.

Kept apart from the checks themselves, so that the local checks (`doctor`) and the S3 ones
(`doctor_s3`) both build on it and neither imports the other's module for its types.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from .memo import Loaded

Status = Literal["ok", "problem", "warning", "note"]


@dataclass(frozen=True)
class Result:
    """One finding: `check` names what was checked, `fix` what to do about a problem."""

    check: str
    status: Status
    detail: str
    fix: str = ""

    def line(self) -> str:
        text = f"{self.status:<8} {self.check}: {self.detail}"
        return f"{text}. Fix: {self.fix}" if self.fix else text


@dataclass
class Context:
    """What the checks share: where and how to look, and what earlier checks found."""

    cwd: Path
    environ: Mapping[str, str]
    write: bool = False
    fresh_bucket_seconds: float = 600.0
    """A bucket created less than this long ago is reported (a typo a server auto-created)."""
    lfs_env: dict[str, str] = field(default_factory=dict)
    loaded: Loaded | None = None
    settings_error: str = ""
    shared: dict[str, object] = field(default_factory=dict)
    """For checks that build on an earlier one's work (the S3 client, the bucket's state)."""


Check = Callable[[Context], Iterable[Result]]
