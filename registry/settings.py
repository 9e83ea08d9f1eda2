"""A registry's own rules, from `model-registry.toml` at its root (all keys optional).

```toml
[check]
required = ["config.yaml", "checkpoint.pth", "log.txt"]   # files every version must have
lfs = ["*.pth", "*.pt", "*.onnx", "*.ckpt", "*.safetensors", "*.bin"]  # must be LFS pointers
ignore = ["docs", "tools"]       # top-level folders that are not models
```
"""

from __future__ import annotations

import tomllib

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import RegistryError

FILE = "model-registry.toml"


class CheckSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    required: tuple[str, ...] = ("config.yaml", "checkpoint.pth", "log.txt")
    lfs: tuple[str, ...] = ("*.pth", "*.pt", "*.onnx", "*.ckpt", "*.safetensors", "*.bin")
    ignore: tuple[str, ...] = ()


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    check: CheckSettings = Field(default_factory=CheckSettings)


def parse_settings(text: str, where: str = FILE) -> Settings:
    """Parse the settings file's text.

    Raises:
        RegistryError: not TOML, or an unknown key or a wrong type; the message names the file.
    """
    try:
        return Settings.model_validate(tomllib.loads(text))
    except tomllib.TOMLDecodeError as exc:
        raise RegistryError(f"{where} is not valid TOML: {exc}") from None
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise RegistryError(
            f"invalid {where}: {problems}. Known keys: [check] required, lfs, ignore"
        ) from None
