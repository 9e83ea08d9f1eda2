"""`gate`: does a version meet its scope's thresholds? (README: "Version records, the release
gate and yanks".)

A loose absolute threshold (`min`, `max`) and a strict one relative to the previous version
(`max_regression`), from `[gate."MODEL/SCOPE"]` in model-registry.toml. The previous version is
the newest version of the same scope ordered below the candidate that is not yanked, unless
`against` names one. Semi-automatic: the result says what failed and by how much, and a person
decides.

>>> result = gate("YOLOX-l/base/1.3", root="model-registry")      # doctest: +SKIP
>>> result.passed, [c.detail for c in result.failures]             # doctest: +SKIP
(False, ['mAP 0.391 is 0.009 below 0.4 (previous YOLOX-l/base/1.2) ...'])
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Literal

from registry.errors import NoGate
from registry.records.compare import number, open_source
from registry.records.record import Record, record_of
from registry.records.yank import load_yanks
from registry.refs import ModelRef
from registry.repo import layout
from registry.repo.checks import load_settings
from registry.repo.settings import GateRule
from registry.resolve import select
from registry.selector import parse_selector

_SLACK = 1e-9  # so that 0.400 - 0.395 counts as a regression of 0.005, not 0.0050000000004


@dataclass(frozen=True)
class Check:
    """One threshold applied to one metric."""

    metric: str
    kind: Literal["min", "max", "regression"]
    limit: float
    value: float | None
    previous: float | None
    passed: bool
    detail: str


@dataclass(frozen=True)
class GateResult:
    ref: ModelRef
    against: ModelRef | None
    rule: str  # the [gate."..."] table used
    checks: tuple[Check, ...]
    notes: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def failures(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if not c.passed)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ref": str(self.ref),
            "against": str(self.against) if self.against else None,
            "gate": self.rule,
            "passed": self.passed,
            "checks": [
                {
                    "metric": c.metric,
                    "threshold": c.kind,
                    "limit": c.limit,
                    "value": c.value,
                    "previous": c.previous,
                    "passed": c.passed,
                    "detail": c.detail,
                }
                for c in self.checks
            ],
            "missing": list(self.missing),
            "notes": list(self.notes),
        }

    @property
    def missing(self) -> tuple[str, ...]:
        """Metrics the thresholds name that the candidate does not record."""
        return tuple(sorted({c.metric for c in self.checks if c.value is None}))


def gate(
    spec: str,
    root: str | os.PathLike[str] | None = None,
    *,
    against: str | None = None,
    rev: str | None = None,
) -> GateResult:
    """Apply the thresholds of `spec`'s scope to the version it names.

    Raises:
        NoGate: no `[gate."MODEL/SCOPE"]` (or `[gate."MODEL"]`) for the version's scope.
        InvalidReference, NotFound: a selector that does not parse or matches nothing.
        RecordError: a meta.yaml is invalid.
    """
    source, where = open_source(root, rev)
    ref = select(source, parse_selector(spec, model=where.model), where.root)
    other = None
    if against is not None:
        other = select(source, parse_selector(against, model=where.model), where.root)
    return gate_ref(source, ref, against=other)


def previous_version(source: layout.Source, ref: ModelRef) -> ModelRef | None:
    """The newest version of `ref`'s scope ordered below it that is not yanked."""
    yanked = load_yanks(source).for_scope(ref.model, ref.scope)
    below = [
        v
        for v in layout.versions(source, ref.model, ref.scope)
        if v < ref.version and v not in yanked
    ]
    return ModelRef(model=ref.model, scope=ref.scope, version=max(below)) if below else None


def gate_ref(source: layout.Source, ref: ModelRef, *, against: ModelRef | None) -> GateResult:
    settings = load_settings(source)
    rule = settings.gate_rule(ref.model, ref.scope)
    if rule is None:
        known = ", ".join(f'"{k}"' for k in settings.gate) or "none"
        raise NoGate(
            f'no thresholds for {ref.model}/{ref.scope}: add [gate."{ref.model}/{ref.scope}"] '
            f"(min, max, max_regression, lower_is_better) to model-registry.toml; gates "
            f"defined: {known}"
        )
    name = f"{ref.model}/{ref.scope}" if f"{ref.model}/{ref.scope}" in settings.gate else ref.model
    previous = against or previous_version(source, ref)
    candidate = record_of(source, ref, settings.metrics)
    before = record_of(source, previous, settings.metrics) if previous else None
    checks, notes = evaluate(candidate, before, rule, previous)
    return GateResult(ref, previous, name, tuple(checks), tuple(notes))


def evaluate(
    candidate: Record | None, previous: Record | None, rule: GateRule, against: ModelRef | None
) -> tuple[list[Check], list[str]]:
    """Every threshold of `rule` applied to `candidate` (and `previous`, for regressions)."""
    now = candidate.metrics if candidate else {}
    was = previous.metrics if previous else {}
    checks: list[Check] = []
    notes: list[str] = []
    for metric, limit in sorted(rule.min.items()):
        checks.append(_absolute(metric, "min", limit, now.get(metric)))
    for metric, limit in sorted(rule.max.items()):
        checks.append(_absolute(metric, "max", limit, now.get(metric)))
    for metric, limit in sorted(rule.max_regression.items()):
        value = now.get(metric)
        if against is None:
            notes.append(f"{metric}: no previous version to compare with; regression not checked")
            continue
        if metric not in was and value is not None:
            notes.append(f"{metric}: {against} does not record it; regression not checked")
            continue
        checks.append(_regression(metric, limit, value, was.get(metric), rule, against))
    return checks, notes


def _absolute(metric: str, kind: Literal["min", "max"], limit: float, value: float | None) -> Check:
    if value is None:
        return Check(metric, kind, limit, None, None, False, f"{metric} is not recorded")
    if kind == "min":
        ok = value >= limit - _SLACK
        by, side = limit - value, "below the minimum"
    else:
        ok = value <= limit + _SLACK
        by, side = value - limit, "above the maximum"
    detail = f"{metric} {number(value)} is {number(by)} {side} {number(limit)}"
    return Check(metric, kind, limit, value, None, ok, "" if ok else detail)


def _regression(
    metric: str,
    limit: float,
    value: float | None,
    previous: float | None,
    rule: GateRule,
    against: ModelRef,
) -> Check:
    if value is None:
        missing = f"{metric} is not recorded"
        return Check(metric, "regression", limit, None, previous, False, missing)
    assert previous is not None
    lower = metric in rule.lower_is_better
    worse = value - previous if lower else previous - value
    ok = worse <= limit + _SLACK
    direction = "up" if lower else "down"
    detail = (
        f"{metric} {number(value)} is {direction} {number(worse)} from {number(previous)} "
        f"({against}), more than the {number(limit)} allowed"
    )
    return Check(metric, "regression", limit, value, previous, ok, "" if ok else detail)


def render(result: GateResult) -> str:
    """The gate's verdict, with a table of every check."""
    from registry.records.compare import table

    head = ["metric", "threshold", "limit", "value", "previous", "result"]
    rows = [
        [
            c.metric,
            c.kind,
            number(c.limit),
            number(c.value),
            number(c.previous),
            "ok" if c.passed else "FAIL: " + c.detail,
        ]
        for c in result.checks
    ]
    against = f" against {result.against}" if result.against else " (no previous version)"
    verdict = "passes" if result.passed else f"FAILS ({len(result.failures)} of {len(rows)})"
    lines = [f'{result.ref} {verdict} the gate [gate."{result.rule}"]{against}']
    lines += table(head, rows) if rows else ["(the gate sets no thresholds)"]
    if result.missing:
        lines.append(f"missing metrics: {', '.join(result.missing)} (record them in meta.yaml)")
    lines += [f"note: {n}" for n in result.notes]
    return "\n".join(lines)
