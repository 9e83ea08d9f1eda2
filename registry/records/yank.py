"""Withdrawn versions: `yanks.yaml` at the registry's root, one committed file for all models.

```yaml
YOLOX-l/base/1.3:
  reason: mAP drops on night images
  date: 2026-11-30
```
A yanked version stays in the repository, and resolves when named exactly (with a
`YankedWarning` naming the reason), but selectors (`base/1`, `latest`) skip it. Keeping the
list outside the version folders means yanking never modifies a released version, so
`check --against` stays green. `publish` copies each model's yanks into its index, so readers
of S3 skip them too.
"""

from __future__ import annotations

import datetime
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from registry.errors import InvalidReference, NotFound, RegistryError
from registry.refs import ModelRef, Version, parse_ref, parse_version
from registry.repo import layout
from registry.repo.gitrepo import GitRepo

FILE = "yanks.yaml"
_HEADER = (
    "# Versions withdrawn from selectors ('model-registry yank' / 'unyank' keep this file).\n"
    "# A yanked version still resolves when named exactly, with a warning.\n"
)


class Yank(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    reason: str
    date: datetime.date

    @field_validator("reason")
    @classmethod
    def _said(cls, reason: str) -> str:
        if not reason.strip():
            raise ValueError("the reason is empty: say why the version was withdrawn")
        return reason


class Yanks:
    """The yank list, by reference (`YOLOX-l/base/1.3`)."""

    def __init__(self, entries: Mapping[str, Yank] | None = None) -> None:
        self.entries: Mapping[str, Yank] = MappingProxyType(dict(entries or {}))

    def reason(self, ref: ModelRef) -> str | None:
        entry = self.entries.get(str(ref))
        return entry.reason if entry else None

    def for_scope(self, model: str, scope: str) -> dict[Version, str]:
        """The yanked versions of one scope, with their reasons."""
        head = f"{model}/{scope}/"
        return {
            parse_version(scope, ref[len(head) :]): entry.reason
            for ref, entry in self.entries.items()
            if ref.startswith(head)
        }

    def for_model(self, model: str) -> dict[str, str]:
        """`scope/version` -> reason, as a published index carries them."""
        return {
            ref.split("/", 1)[1]: entry.reason
            for ref, entry in sorted(self.entries.items())
            if ref.split("/", 1)[0] == model
        }


def parse_yanks(data: bytes | str, where: str = FILE) -> Yanks:
    """Parse the yank list.

    Raises:
        RegistryError: not YAML, or an entry that is not `REF: {reason, date}`.
    """
    try:
        raw = yaml.safe_load(data) or {}
    except yaml.YAMLError as exc:
        raise RegistryError(f"{where} is not YAML: {exc}; fix it by hand") from None
    if not isinstance(raw, dict):
        raise RegistryError(f"{where} must map references to {{reason, date}}, not {raw!r}")
    entries: dict[str, Yank] = {}
    for key, value in raw.items():
        try:
            ref = parse_ref(str(key))
            entries[str(ref)] = Yank.model_validate(value)
        except InvalidReference as exc:
            raise RegistryError(f"{where}: {key!r} is not a version reference: {exc}") from None
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'entry'}: "
                f"{str(e['msg']).removeprefix('Value error, ')}"
                for e in exc.errors()
            )
            raise RegistryError(
                f"{where}: the entry of {key} is invalid ({problems}; got {value!r}); "
                "each entry is REF: {reason: TEXT, date: YYYY-MM-DD}"
            ) from None
    return Yanks(entries)


def load_yanks(source: layout.Source) -> Yanks:
    """The yank list of the registry at `source` (empty when it has none)."""
    if FILE not in source.files(""):
        return Yanks()
    return parse_yanks(source.read(FILE))


def set_yank(
    root: Path, repo: GitRepo | None, ref: ModelRef, reason: str | None, today: datetime.date
) -> Yanks:
    """Yank `ref` with `reason` (None: unyank it) in the checkout at `root`, and stage the file.

    Raises:
        NotFound: `ref` is not a version of the registry.
        RegistryError: the reason is empty, unyanking a version that is not yanked, or the
            yank list is invalid.
    """
    source = layout.CheckoutSource(root)
    if ref.version not in layout.versions(source, ref.model, ref.scope):
        raise NotFound(
            f"{ref} is not a version of the registry at '{root}': nothing to "
            f"{'yank' if reason is not None else 'unyank'}",
            wanted=str(ref),
        )
    current = dict(load_yanks(source).entries)
    if reason is None:
        if str(ref) not in current:
            raise RegistryError(f"{ref} is not yanked; yanked: {', '.join(current) or 'none'}")
        del current[str(ref)]
    else:
        try:
            current[str(ref)] = Yank(reason=reason, date=today)
        except ValidationError:
            raise RegistryError(
                f"--reason {reason!r} is empty: say why {ref} is withdrawn"
            ) from None
    path = root / FILE
    body = {k: v.model_dump(mode="json") for k, v in sorted(current.items())}
    text = _HEADER + (yaml.safe_dump(body, sort_keys=False, allow_unicode=True) if body else "")
    fd, tmp = tempfile.mkstemp(prefix=f".{FILE}.", dir=root)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if repo is not None:
        repo.add([path])
    return Yanks(current)


def scope_yanks(yanked: Mapping[str, str], scope: str) -> dict[Version, str]:
    """A published index's yanks (`scope/version` -> reason) of one scope, by version."""
    head = f"{scope}/"
    return {
        parse_version(scope, key[len(head) :]): reason
        for key, reason in yanked.items()
        if key.startswith(head)
    }
