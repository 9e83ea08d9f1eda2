"""`Finding`: one problem `check` reports, shared by the layout checks and the record checks."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Finding:
    """One problem: where, which rule, and what to do."""

    path: str
    rule: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)

    def __str__(self) -> str:
        return f"{self.path}: [{self.rule}] {self.message}"
