"""A registry's own rules, from `model-registry.toml` at its root (all keys optional).

```toml
[check]
required = ["config.yaml", "checkpoint.pth", "log.txt"]   # files every version must have
lfs = ["*.pth", "*.pt", "*.onnx", "*.ckpt", "*.safetensors", "*.bin"]  # must be LFS pointers
ignore = ["docs", "tools"]       # top-level folders that are not models
max_text_size = 1048576          # bytes: config.yaml, README.md... larger is a finding
meta = ["metrics.mAP", "source.commit"]   # what every version's record must hold

[metrics.patterns]               # metrics read from log.txt, last match wins
mAP = 'bbox_mAP: ([0-9.]+)'

[gate."YOLOX-l/base"]            # thresholds of `model-registry gate`, per MODEL/SCOPE or MODEL
min = { mAP = 0.35 }             # absolute, loose
max = { latency_ms = 40 }
max_regression = { mAP = 0.005, latency_ms = 2.0 }   # against the previous version, strict
lower_is_better = ["latency_ms"]
```
The file itself is read with a fixed cap (`MAX_SETTINGS_SIZE`), before its own limit is known.
"""

from __future__ import annotations

import math
import re

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from registry.errors import RegistryError
from registry.safeio import MAX_TEXT_SIZE, parse_toml

FILE = "model-registry.toml"
MAX_SETTINGS_SIZE = 256 * 1024


class CheckSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    required: tuple[str, ...] = ("config.yaml", "checkpoint.pth", "log.txt")
    lfs: tuple[str, ...] = ("*.pth", "*.pt", "*.onnx", "*.ckpt", "*.safetensors", "*.bin")
    ignore: tuple[str, ...] = ()
    max_text_size: int = Field(default=MAX_TEXT_SIZE, ge=1024, le=1 << 30)
    meta: tuple[str, ...] = ()


class MetricsSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    patterns: dict[str, str] = Field(default_factory=dict)

    @field_validator("patterns")
    @classmethod
    def _compiles(cls, patterns: dict[str, str]) -> dict[str, str]:
        for name, pattern in patterns.items():
            try:
                compiled = re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"pattern {pattern!r} of {name} is not a regex ({exc})") from None
            if compiled.groups != 1:
                raise ValueError(
                    f"pattern {pattern!r} of {name} must have exactly one group, the number"
                )
        return patterns


class GateRule(BaseModel):
    """The thresholds one model scope's versions must meet."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    min: dict[str, float] = Field(default_factory=dict)
    max: dict[str, float] = Field(default_factory=dict)
    max_regression: dict[str, float] = Field(default_factory=dict)
    lower_is_better: tuple[str, ...] = ()

    @field_validator("min", "max", "max_regression")
    @classmethod
    def _finite(cls, limits: dict[str, float]) -> dict[str, float]:
        for name, value in limits.items():
            if not math.isfinite(value):
                raise ValueError(f"the threshold of {name} is {value}, not a finite number")
        return limits


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    check: CheckSettings = Field(default_factory=CheckSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    gate: dict[str, GateRule] = Field(default_factory=dict)

    def gate_rule(self, model: str, scope: str) -> GateRule | None:
        """The thresholds of `model/scope`: its own table, else the model's."""
        return self.gate.get(f"{model}/{scope}") or self.gate.get(model)


def parse_settings(data: bytes | str, where: str = FILE) -> Settings:
    """Parse the settings file's content.

    Raises:
        UnsafeContent: not TOML (syntax, encoding, or nested too deeply); names the file.
        RegistryError: an unknown key or a wrong type; the message names the file.
    """
    raw = parse_toml(data.encode() if isinstance(data, str) else data, where)
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise RegistryError(
            f"invalid {where}: {problems}. Known keys: [check] required, lfs, ignore, meta, "
            'max_text_size; [metrics.patterns]; [gate."MODEL/SCOPE"] min, max, max_regression, '
            "lower_is_better"
        ) from None
