"""Selectors: what an application asks for, one version or the newest of a family.

A selector is a model (or None, when the model comes from elsewhere), a scope and a target,
which is one of three shapes, so that a selector that means nothing cannot be built:

- `Exact(version)`: `base/1.2`, `projectA/1.2.3`, `pretrained/2024-05-01`;
- `Prefix(parts)`: the newest version whose numbers start with `parts`: `base/1` (newest 1.x),
  `projectA/1.2` (newest Z on base 1.2), `projectA/1`;
- `Latest()`: the newest version of the scope, `base/latest`.

`pick_version` is the one place a version is chosen from a list, for a checkout and for S3
alike: selectors skip yanked versions, and an exact one still resolves, with a YankedWarning.

>>> selector = parse_selector("YOLOX-l/projectA/1.2")
>>> selector.target, str(selector)
(Prefix(kind='prefix', parts=(1, 2)), 'YOLOX-l/projectA/1.2')
>>> selector.pick([parse_version("projectA", v) for v in ("1.2.0", "1.2.3", "1.3.0")])
ProjectVersion(major=1, minor=2, patch=3)
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from registry.errors import InvalidReference, YankedWarning
from registry.refs import (
    BASE,
    LATEST,
    PRETRAINED,
    Version,
    parse_model_name,
    parse_numbers,
    parse_scope,
    parse_version,
    scope_kind,
    split_spec,
    wrong_arity,
)

__all__ = [
    "Exact",
    "Latest",
    "Prefix",
    "Selector",
    "check_selector",
    "parse_selector",
    "pick_version",
    "skipped",
]


class Exact(BaseModel):
    """One version, named in full."""

    model_config = ConfigDict(frozen=True)
    kind: Literal["exact"] = "exact"
    version: Version


class Prefix(BaseModel):
    """The newest version whose numbers start with `parts` (at least one, fewer than all)."""

    model_config = ConfigDict(frozen=True)
    kind: Literal["prefix"] = "prefix"
    parts: tuple[int, ...] = Field(min_length=1)


class Latest(BaseModel):
    """The newest version of the scope."""

    model_config = ConfigDict(frozen=True)
    kind: Literal["latest"] = "latest"


Target = Annotated[Exact | Prefix | Latest, Field(discriminator="kind")]

_ARITY = {BASE: 2, "project": 3}  # numbers in a full version; pretrained ones are dates


class Selector(BaseModel):
    """What an application asks for: `model` (None when a `root` names it), `scope`, `target`."""

    model_config = ConfigDict(frozen=True)
    model: str | None
    scope: str
    target: Target

    @model_validator(mode="after")
    def _consistent(self) -> Selector:
        if self.model is not None:
            parse_model_name(self.model)
        parse_scope(self.scope)
        kind = scope_kind(self.scope)
        match self.target:
            case Exact(version=version) if version.kind != kind:
                raise ValueError(f"a {version.kind} version ({version}) is not in '{self.scope}'")
            case Prefix(parts=parts) if kind == PRETRAINED or len(parts) >= _ARITY[kind]:
                raise ValueError(f"{parts} is not a prefix of a version in '{self.scope}'")
        return self

    @property
    def kind(self) -> Literal["exact", "prefix", "latest"]:
        return self.target.kind

    def __str__(self) -> str:
        match self.target:
            case Exact(version=version):
                tail = str(version)
            case Prefix(parts=parts):
                tail = ".".join(map(str, parts))
            case Latest():
                tail = LATEST
        head = f"{self.model}/" if self.model else ""
        return f"{head}{self.scope}/{tail}"

    def matches(self, version: Version) -> bool:
        if version.kind != scope_kind(self.scope):
            return False
        match self.target:
            case Exact(version=exact):
                return version == exact
            case Prefix(parts=parts):
                return version.parts[: len(parts)] == parts
            case Latest():
                return True

    def pick(self, versions: Iterable[Version]) -> Version | None:
        """The newest matching version, or None (yanks aside: see `pick_version`)."""
        return max((v for v in versions if self.matches(v)), default=None)


def parse_selector(text: str, *, model: str | None = None) -> Selector:
    """Parse a selector, `{model}/{scope}/{version or prefix or latest}`.

    With `model` given, the text may leave the model out (`base/1.2`).

    Raises:
        InvalidReference: the text is not a selector.
    """
    if model is not None:
        parse_model_name(model)
    name, scope, rest = split_spec(text, need_model=model is None)
    if name is not None and model is not None and name != model:
        raise InvalidReference(
            f"'{text}' names model '{name}' but the root is model '{model}'", value=text
        )
    return Selector(model=name or model, scope=scope, target=_target(scope, rest))


def _target(scope: str, rest: str) -> Exact | Prefix | Latest:
    if rest == LATEST:
        return Latest()
    kind = scope_kind(scope)
    if kind == PRETRAINED:
        return Exact(version=parse_version(scope, rest))
    full = _ARITY[kind]
    numbers = parse_numbers(scope, rest, tuple(range(1, full + 1)))
    if len(numbers) == full:
        return Exact(version=parse_version(scope, rest))
    if len(numbers) > full:
        raise InvalidReference(wrong_arity(scope, rest, len(numbers)), value=rest)
    return Prefix(parts=numbers)


def check_selector(text: str) -> None:
    """Refuse `text` unless it is a selector with or without its model; no I/O, nothing else.

    For callers that must reject hostile input before they touch the disk, when the model a
    short form (`base/1.2`) belongs to is only known later.

    Raises:
        InvalidReference: the text is not a selector.
    """
    short = isinstance(text, str) and text.count("/") == 1
    parse_selector(text, model=_STAND_IN_MODEL if short else None)


_STAND_IN_MODEL = "any-model"


def pick_version(
    selector: Selector, versions: Iterable[Version], yanked: Mapping[Version, str]
) -> Version | None:
    """The version `selector` names: an exact one even when yanked (warning with the reason),
    else the newest match that is not yanked."""
    if isinstance(selector.target, Exact):
        picked = selector.pick(versions)
        if picked is not None and picked in yanked:
            warnings.warn(
                YankedWarning(
                    f"{selector} is yanked ({yanked[picked]}); selectors skip it, and it "
                    "resolves only because it was named exactly"
                ),
                stacklevel=3,
            )
        return picked
    return selector.pick(v for v in versions if v not in yanked)


def skipped(selector: Selector, versions: Iterable[Version], yanked: Mapping[Version, str]) -> str:
    """Why nothing matched, when yanked versions would have: for a NotFound message."""
    hidden = sorted(v for v in versions if v in yanked and selector.matches(v))
    if not hidden:
        return ""
    return "; yanked, so skipped by selectors: " + ", ".join(f"{v} ({yanked[v]})" for v in hidden)
