"""`history`: a scope's versions in order with their metrics, and a plot of each metric across
versions with the gate's thresholds drawn as lines (matplotlib: the `plot` extra)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from registry.errors import NotFound, RegistryError
from registry.records.compare import number, open_source, table
from registry.records.record import record_of
from registry.records.yank import load_yanks
from registry.refs import ModelRef, parse_model_name, parse_scope
from registry.repo import layout
from registry.repo.checks import load_settings
from registry.repo.settings import GateRule

EXTRA = "plot"


@dataclass(frozen=True)
class HistoryRow:
    ref: ModelRef
    metrics: dict[str, float]
    yanked: str | None  # the reason, when yanked


@dataclass(frozen=True)
class History:
    model: str
    scope: str
    rows: tuple[HistoryRow, ...]
    gate: GateRule | None

    @property
    def metric_names(self) -> list[str]:
        return sorted({name for row in self.rows for name in row.metrics})


def history(
    target: str, root: str | os.PathLike[str] | None = None, *, rev: str | None = None
) -> History:
    """The versions of `target` (`MODEL/SCOPE`, or `SCOPE` in a model's folder), oldest first.

    Raises:
        InvalidReference: `target` is not MODEL/SCOPE.
        NotFound: no such model or scope.
    """
    source, where = open_source(root, rev)
    parts = target.split("/")
    if len(parts) == 1 and where.model is not None:
        parts = [where.model, *parts]
    if len(parts) != 2:
        raise NotFound(f"'{target}' is not MODEL/SCOPE, e.g. 'YOLOX-l/base'", wanted=target)
    model, scope = parse_model_name(parts[0]), parse_scope(parts[1])
    versions = layout.versions(source, model, scope)
    if not versions:
        raise NotFound(f"{model}/{scope} has no versions in '{where.root}'", wanted=target)
    settings = load_settings(source)
    yanks = load_yanks(source)
    rows = []
    for version in sorted(versions):
        ref = ModelRef(model=model, scope=scope, version=version)
        record = record_of(source, ref, settings.metrics)
        rows.append(HistoryRow(ref, dict(record.metrics) if record else {}, yanks.reason(ref)))
    return History(model, scope, tuple(rows), settings.gate_rule(model, scope))


def render(result: History, metrics: Sequence[str] = ()) -> str:
    names = list(metrics) or result.metric_names
    head = ["version", *names, "yanked"]
    rows = [
        [str(row.ref.version), *(number(row.metrics.get(n)) for n in names), row.yanked or ""]
        for row in result.rows
    ]
    return "\n".join(table(head, rows))


def plot(result: History, path: Path, metrics: Sequence[str] = ()) -> Path:
    """Draw each metric across versions (one panel each) with the gate's thresholds as lines.

    Raises:
        RegistryError: matplotlib is not installed (names the extra), or nothing to plot.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise RegistryError(
            f"history --plot needs matplotlib: pip install 'lfs-s3-registry[{EXTRA}]'"
        ) from None
    names = list(metrics) or result.metric_names
    if not names:
        raise RegistryError(
            f"{result.model}/{result.scope} records no metrics to plot: add them to meta.yaml "
            "or set [metrics.patterns] in model-registry.toml"
        )
    labels = [str(row.ref.version) for row in result.rows]
    fig, axes = plt.subplots(len(names), 1, figsize=(8, 2.6 * len(names)), squeeze=False)
    for axis, name in zip(axes[:, 0], names, strict=True):
        _panel(axis, name, labels, result)
    axes[0, 0].set_title(f"{result.model}/{result.scope}")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _panel(axis: Any, name: str, labels: list[str], result: History) -> None:
    points = [(i, row.metrics[name]) for i, row in enumerate(result.rows) if name in row.metrics]
    axis.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=name)
    yanked = [
        (i, row.metrics[name])
        for i, row in enumerate(result.rows)
        if row.yanked and name in row.metrics
    ]
    if yanked:
        axis.scatter(
            [p[0] for p in yanked],
            [p[1] for p in yanked],
            marker="x",
            s=80,
            color="red",
            label="yanked",
            zorder=3,
        )
    if result.gate is not None:
        if name in result.gate.min:
            axis.axhline(result.gate.min[name], linestyle="--", color="green", label="min")
        if name in result.gate.max:
            axis.axhline(result.gate.max[name], linestyle="--", color="orange", label="max")
    axis.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    axis.set_ylabel(name)
    axis.grid(True, alpha=0.3)
    axis.legend(loc="best", fontsize="small")
