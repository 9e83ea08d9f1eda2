"""A version's record: `meta.yaml` in its folder, what the tools reason about (metrics,
provenance, dataset), as README's "Version records, the release gate and yanks" describes them.

```yaml
schema: 1
metrics: {mAP: 0.412, latency_ms: 31.5}
source: {repo: git@example.com:team/train.git, commit: 3f2a9c1..., dirty: false}
hardware: {gpu: NVIDIA A100-SXM4-80GB, count: 8, nodes: 1}
dataset: {name: coco-cars, schema_version: 2.1.0}
trained_from: YOLOX-l/pretrained/2024-05-01
notes: lr warm-up doubled
```
Every key but `schema` is optional; unknown keys are refused. Metrics may also come from
`log.txt` through `[metrics.patterns]` in `model-registry.toml`; meta.yaml wins where both
have a value.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from registry.errors import InvalidReference, RecordError
from registry.refs import ModelRef, parse_numbers, parse_ref
from registry.repo import layout
from registry.repo.settings import MetricsSettings

FILE = "meta.yaml"
LOG = "log.txt"
_MAX_BYTES = 1024 * 1024  # a record is a few lines; anything bigger is not one


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SourceInfo(_Frozen):
    """The training code: its repository, the commit trained from, and whether it was dirty."""

    repo: str
    commit: str
    dirty: bool | None = None


class Hardware(_Frozen):
    gpu: str
    count: int = Field(ge=1)
    nodes: int | None = Field(default=None, ge=1)


class Dataset(_Frozen):
    """The training data: its name and schema version X.Y.Z."""

    name: str
    schema_version: str

    @field_validator("schema_version", mode="before")
    @classmethod
    def _grammar(cls, value: object) -> str:
        if not isinstance(value, str):
            raise ValueError(f"{value!r} is not X.Y.Z: write it as a quoted string, e.g. '1.2.3'")
        try:
            parse_schema_version(value)
        except InvalidReference as exc:
            raise ValueError(str(exc)) from None
        return value


class Record(_Frozen):
    """What one version records about itself."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )
    schema_: Literal[1] = Field(default=1, alias="schema")
    metrics: dict[str, float] = Field(default_factory=dict)
    source: SourceInfo | None = None
    hardware: Hardware | None = None
    dataset: Dataset | None = None
    trained_from: str | None = None
    notes: str | None = None

    @field_validator("metrics", mode="before")
    @classmethod
    def _numbers(cls, metrics: object) -> object:
        if not isinstance(metrics, Mapping):
            return metrics
        for name, value in metrics.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"metric {name} is {value!r}, not a number")
            if not math.isfinite(value):
                raise ValueError(f"metric {name} is {value!r}, not a finite number")
        return metrics

    @field_validator("trained_from")
    @classmethod
    def _ref(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                parse_ref(value)
            except InvalidReference as exc:
                raise ValueError(str(exc)) from None
        return value

    def to_yaml(self) -> str:
        data = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        if not data.get("metrics"):
            data.pop("metrics", None)
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)

    def lookup(self, path: str) -> object | None:
        """The value at a dotted path such as `metrics.mAP`, or None when it is not recorded."""
        value: Any = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        for part in path.split("."):
            if not isinstance(value, dict) or part not in value:
                return None
            value = value[part]
        found: object = value
        return found


def parse_record(data: bytes | str, where: str = FILE) -> Record:
    """Parse a meta.yaml.

    Raises:
        RecordError: not YAML, not a mapping, or bad fields; every problem quotes its value.
    """
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    if len(text) > _MAX_BYTES:
        raise RecordError(f"{where} is {len(text):,} bytes: a record is a few lines of YAML")
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        detail = str(exc).replace("\n", " ")
        raise RecordError(f"{where} is not YAML: {detail}", problems=(detail,)) from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise RecordError(
            f"{where} must be a mapping (schema: 1, metrics: ..., source: ...), not {raw!r}",
            problems=(f"not a mapping: {raw!r}",),
        )
    problems: tuple[str, ...] = ()
    if "schema" not in raw:
        problems = ("schema: missing; add 'schema: 1' (the record's format version)",)
    try:
        record = Record.model_validate(raw)
    except ValidationError as exc:
        problems += tuple(_problem(e) for e in exc.errors())
    if problems:
        raise RecordError(f"invalid {where}: " + "; ".join(problems), problems=problems)
    return record


def _problem(error: Mapping[str, Any]) -> str:
    where = ".".join(str(p) for p in error["loc"]) or "(top level)"
    message = str(error["msg"]).removeprefix("Value error, ")
    kind = error["type"]
    if kind == "extra_forbidden":
        return f"{where}: unknown key (value {error['input']!r}); see the record's keys in README"
    if kind == "literal_error" and where == "schema":
        return f"schema: is {error['input']!r}, must be 1 (add 'schema: 1')"
    if kind == "missing":
        return f"{where}: missing"
    value = error.get("input")
    if not isinstance(value, dict) and repr(value) not in message:
        return f"{where}: {message} (got {value!r})"
    return f"{where}: {message}"


def metrics_from_log(text: str, settings: MetricsSettings) -> dict[str, float]:
    """Each pattern's last match in `text`, as a number; a pattern that never matches, or
    whose last match is not a finite number, gives nothing."""
    found: dict[str, float] = {}
    for name, pattern in settings.patterns.items():
        matches = re.findall(pattern, text)
        if not matches:
            continue
        try:
            value = float(matches[-1])
        except ValueError:
            continue
        if math.isfinite(value):
            found[name] = value
    return found


def record_of(source: layout.Source, ref: ModelRef, settings: MetricsSettings) -> Record | None:
    """The record of `ref`: its meta.yaml and the metrics its log.txt yields, or None when it
    has neither.

    Raises:
        RecordError: meta.yaml is there but invalid.
    """
    names = {f.name: f for f in source.walk_files(ref.path)}
    record: Record | None = None
    meta = names.get(FILE)
    if meta is not None and meta.lfs is None:
        record = parse_record(source.read(meta.path), f"{ref.path}/{FILE}")
    log = names.get(LOG)
    if log is None or log.lfs is not None or not settings.patterns:
        return record
    from_log = metrics_from_log(source.read(log.path).decode("utf-8", "replace"), settings)
    if not from_log:
        return record
    record = record or Record()
    return record.model_copy(update={"metrics": {**from_log, **record.metrics}})


def parse_schema_version(text: str, what: str = "dataset schema version") -> tuple[int, int, int]:
    """Parse `X.Y.Z` with the same grammar and messages as a project version's numbers.

    Raises:
        InvalidReference: not three dot-separated numbers without leading zeros.
    """
    if not isinstance(text, str) or not text:
        raise InvalidReference(f"invalid {what} {text!r}: expected X.Y.Z, e.g. '1.2.3'")
    numbers = parse_numbers(what, text, (3,))
    if len(numbers) != 3:
        raise InvalidReference(
            f"invalid version '{text}' in {what}: expected X.Y.Z (X: breaking schema change, "
            "Y: compatible change, Z: annotation rules changed), e.g. '1.2.3'",
            value=text,
        )
    return numbers[0], numbers[1], numbers[2]
