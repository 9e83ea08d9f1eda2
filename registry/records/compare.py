"""`compare`: what changed between two versions: metrics (difference and relative change),
config keys, dataset schema version, source commit, file sizes (see the change between
versions before a model reaches production; README, "Version records, the release gate and yanks").

>>> c = compare("YOLOX-l/base/1.2", "YOLOX-l/base/1", root="model-registry")  # doctest: +SKIP
>>> [(m.name, m.delta) for m in c.metrics]                                    # doctest: +SKIP
[('mAP', 0.012)]
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from registry.errors import RegistryError
from registry.records.record import Record, record_of
from registry.refs import ModelRef
from registry.repo import layout
from registry.repo.checks import load_settings
from registry.repo.location import Location, locate
from registry.resolve import select
from registry.selector import parse_selector


@dataclass(frozen=True)
class MetricDiff:
    name: str
    a: float | None
    b: float | None

    @property
    def delta(self) -> float | None:
        return None if self.a is None or self.b is None else self.b - self.a

    @property
    def relative(self) -> float | None:
        """The change relative to `a` (0.1 is +10 %); None when `a` is 0 or missing."""
        delta = self.delta
        return None if delta is None or not self.a else delta / abs(self.a)


@dataclass(frozen=True)
class Change:
    """Something other than a metric that differs: a config key, the dataset, a file..."""

    what: str  # "config", "dataset", "source", "file"
    key: str
    a: str | None
    b: str | None


@dataclass(frozen=True)
class Comparison:
    a: ModelRef
    b: ModelRef
    metrics: tuple[MetricDiff, ...]
    changes: tuple[Change, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "a": str(self.a),
            "b": str(self.b),
            "metrics": [
                {"name": m.name, "a": m.a, "b": m.b, "delta": m.delta, "relative": m.relative}
                for m in self.metrics
            ],
            "changes": [{"what": c.what, "key": c.key, "a": c.a, "b": c.b} for c in self.changes],
        }


def compare(
    a: str,
    b: str,
    root: str | os.PathLike[str] | None = None,
    *,
    rev: str | None = None,
) -> Comparison:
    """Compare the versions selectors `a` and `b` name in the registry at `root`.

    Args:
        rev: read the registry as committed at this revision (works in a bare repository).

    Raises:
        InvalidReference, NotFound: a selector that does not parse or matches nothing.
        RecordError: a meta.yaml is invalid.
    """
    source, where = open_source(root, rev)
    ref_a = select(source, parse_selector(a, model=where.model), where.root)
    ref_b = select(source, parse_selector(b, model=where.model), where.root)
    return compare_refs(source, ref_a, ref_b)


def open_source(
    root: str | os.PathLike[str] | None, rev: str | None
) -> tuple[layout.Source, Location]:
    """The registry at `root`: as committed at `rev` (or in a bare repository), else on disk."""
    where = locate(root)
    if rev is not None or (where.repo is not None and where.repo.bare):
        if where.repo is None:
            raise RegistryError(f"'{where.root}' is not a git repository: --rev needs one")
        return layout.TreeSource(where.repo, rev or "HEAD"), where
    return layout.CheckoutSource(where.root), where


def compare_refs(source: layout.Source, a: ModelRef, b: ModelRef) -> Comparison:
    settings = load_settings(source).metrics
    rec_a, rec_b = record_of(source, a, settings), record_of(source, b, settings)
    ma, mb = (rec_a.metrics if rec_a else {}), (rec_b.metrics if rec_b else {})
    metrics = tuple(MetricDiff(n, ma.get(n), mb.get(n)) for n in sorted(ma.keys() | mb.keys()))
    files_a, files_b = layout.files(source, a), layout.files(source, b)
    changes = _config_changes(source, files_a, files_b)
    changes += _record_changes(rec_a, rec_b)
    for name in sorted(files_a.keys() | files_b.keys()):
        size_a, size_b = _size(files_a.get(name)), _size(files_b.get(name))
        if size_a != size_b or name.endswith((".pth", ".pt", ".onnx", ".ckpt", ".safetensors")):
            changes.append(Change("file", name, _bytes(size_a), _bytes(size_b)))
    return Comparison(a, b, metrics, tuple(changes))


def _size(info: layout.FileInfo | None) -> int | None:
    if info is None:
        return None
    return info.lfs.size if info.lfs is not None else info.size


def _bytes(size: int | None) -> str | None:
    return None if size is None else f"{size:,} bytes"


def _config_changes(
    source: layout.Source,
    files_a: Mapping[str, layout.FileInfo],
    files_b: Mapping[str, layout.FileInfo],
) -> list[Change]:
    flat_a, flat_b = _config(source, files_a), _config(source, files_b)
    return [
        Change("config", key, flat_a.get(key), flat_b.get(key))
        for key in sorted(flat_a.keys() | flat_b.keys())
        if flat_a.get(key) != flat_b.get(key)
    ]


def _config(source: layout.Source, files: Mapping[str, layout.FileInfo]) -> dict[str, str]:
    info = files.get("config.yaml")
    if info is None or info.lfs is not None:
        return {}
    try:
        data = yaml.safe_load(source.read(info.path))
    except yaml.YAMLError:
        return {"(config.yaml)": "does not parse"}
    flat: dict[str, str] = {}
    _flatten(data, "", flat)
    return flat


def _flatten(value: object, prefix: str, out: dict[str, str]) -> None:
    if isinstance(value, dict) and value:
        for key, item in value.items():
            _flatten(item, f"{prefix}.{key}" if prefix else str(key), out)
    else:
        out[prefix or "(config.yaml)"] = json.dumps(value, default=str)


def _record_changes(a: Record | None, b: Record | None) -> list[Change]:
    out = []
    for what, key in (
        ("dataset", "dataset.name"),
        ("dataset", "dataset.schema_version"),
        ("source", "source.repo"),
        ("source", "source.commit"),
        ("source", "source.dirty"),
        ("hardware", "hardware.gpu"),
        ("hardware", "hardware.count"),
        ("lineage", "trained_from"),
    ):
        va = a.lookup(key) if a else None
        vb = b.lookup(key) if b else None
        if va != vb:
            out.append(Change(what, key, _text(va), _text(vb)))
    return out


def _text(value: object) -> str | None:
    return None if value is None else str(value)


# --------------------------------------------------------------------------- rendering


def number(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.6g}"


def signed(value: float | None) -> str:
    return "-" if value is None else f"{value:+.6g}"


def percent(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value * 100:+.2f}%"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Left-aligned columns separated by two spaces."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]


def markdown(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]


def render(result: Comparison, fmt: str) -> str:
    """The comparison as `table`, `json` or `markdown` (a pull-request comment)."""
    if fmt == "json":
        return json.dumps(result.as_dict(), indent=2)
    metric_rows = [
        [m.name, number(m.a), number(m.b), signed(m.delta), percent(m.relative)]
        for m in result.metrics
    ]
    change_rows = [[c.what, c.key, c.a or "-", c.b or "-"] for c in result.changes]
    metric_head = ["metric", str(result.a), str(result.b), "change", "relative"]
    change_head = ["what", "key", str(result.a), str(result.b)]
    draw = markdown if fmt == "markdown" else table
    lines = [f"### {result.a} → {result.b}", ""] if fmt == "markdown" else []
    lines += draw(metric_head, metric_rows) if metric_rows else ["(no metrics recorded)"]
    lines.append("")
    lines += draw(change_head, change_rows) if change_rows else ["(nothing else differs)"]
    return "\n".join(lines)
