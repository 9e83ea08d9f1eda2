"""A registry's own rules, from `model-registry.toml` at its root (all keys optional).

```toml
[check]
required = ["config.yaml", "checkpoint.pth", "log.txt"]   # files every version must have
lfs = ["*.pth", "*.pt", "*.onnx", "*.ckpt", "*.safetensors", "*.bin"]  # must be LFS pointers
ignore = ["docs", "tools"]       # top-level folders that are not models
max_text_size = 1048576          # bytes: config.yaml, README.md... larger is a finding
```
The file itself is read with a fixed cap (`MAX_SETTINGS_SIZE`), before its own limit is known.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import RegistryError
from .safeio import MAX_TEXT_SIZE, parse_toml

FILE = "model-registry.toml"
MAX_SETTINGS_SIZE = 256 * 1024


class CheckSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    required: tuple[str, ...] = ("config.yaml", "checkpoint.pth", "log.txt")
    lfs: tuple[str, ...] = ("*.pth", "*.pt", "*.onnx", "*.ckpt", "*.safetensors", "*.bin")
    ignore: tuple[str, ...] = ()
    max_text_size: int = Field(default=MAX_TEXT_SIZE, ge=1024, le=1 << 30)


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    check: CheckSettings = Field(default_factory=CheckSettings)


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
            f"invalid {where}: {problems}. Known keys: [check] required, lfs, ignore, max_text_size"
        ) from None
