"""Model versions, references and selectors: immutable values that parse and print round-trip.

The grammar (README, "The registry"):

- a model is `{algorithm}-{option}`, e.g. `YOLOX-l`;
- a scope is `base`, `pretrained`, or a project name, e.g. `projectA`;
- versions: `base/X.Y` (X: major as the application sees it, Y: training settings or data),
  `{project}/X.Y.Z` (fine-tuned from base X.Y, Z-th update), `pretrained/YYYY-MM-DD`;
- a reference names one version: `YOLOX-l/base/1.2`;
- a selector may also name the newest of several: `base/1` (newest 1.x), `base/latest`,
  `pretrained/latest`, `projectA/1.2` (newest Z on base 1.2), `projectA/1`, `projectA/latest`
  (`registry.selector`).

Ordering is numeric within a kind (1.10 > 1.9, via `semver`) and by date for pretrained;
comparing versions of different kinds raises TypeError.

>>> ref = parse_ref("YOLOX-l/base/1.10")
>>> str(ref), ref.version > parse_version("base", "1.9")
('YOLOX-l/base/1.10', True)
"""

from __future__ import annotations

import datetime
import re
from typing import Any, ClassVar, Literal

import semver
from pydantic import BaseModel, ConfigDict, model_validator

from registry.errors import InvalidReference

BASE = "base"
PRETRAINED = "pretrained"
LATEST = "latest"
RESERVED_SCOPES = frozenset({BASE, PRETRAINED, LATEST})

_MODEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9_]*(?:-[A-Za-z0-9_]+)+")
_PROJECT = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
_NUMBER = re.compile(r"0|[1-9][0-9]*")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_LOOSE_DATE = re.compile(r"([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})")
_MAX_DIGITS = 9


class _Version(BaseModel):
    """Common behaviour: frozen, hashable, ordered within one kind only."""

    model_config = ConfigDict(frozen=True)
    kind: ClassVar[str]

    def _key(self) -> Any:
        raise NotImplementedError

    def _same_kind(self, other: object) -> _Version:
        if type(other) is not type(self):
            raise TypeError(
                f"cannot compare a {self.kind} version with {other!r}: versions of different "
                "scopes are not ordered"
            )
        assert isinstance(other, _Version)
        return other

    def __lt__(self, other: object) -> bool:
        return bool(self._key() < self._same_kind(other)._key())

    def __le__(self, other: object) -> bool:
        return bool(self._key() <= self._same_kind(other)._key())

    def __gt__(self, other: object) -> bool:
        return bool(self._key() > self._same_kind(other)._key())

    def __ge__(self, other: object) -> bool:
        return bool(self._key() >= self._same_kind(other)._key())


class BaseVersion(_Version):
    """`X.Y`: X is the major version as the application sees it, Y the training version."""

    kind: ClassVar[str] = BASE
    major: int
    minor: int

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"

    def _key(self) -> semver.Version:
        return semver.Version(self.major, self.minor, 0)

    def next(self, bump: Literal["major", "minor"]) -> BaseVersion:
        """`major`: (X+1).0, the application must change too; `minor`: X.(Y+1)."""
        key = self._key()
        bumped = key.bump_major() if bump == "major" else key.bump_minor()
        return BaseVersion(major=bumped.major, minor=bumped.minor)

    @property
    def parts(self) -> tuple[int, ...]:
        return (self.major, self.minor)


class ProjectVersion(_Version):
    """`X.Y.Z`: fine-tuned from base X.Y, the Z-th update of that project model."""

    kind: ClassVar[str] = "project"
    major: int
    minor: int
    patch: int

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"

    def _key(self) -> semver.Version:
        return semver.Version(self.major, self.minor, self.patch)

    def next(self) -> ProjectVersion:
        """The next update on the same base: X.Y.(Z+1)."""
        bumped = self._key().bump_patch()
        return ProjectVersion(major=bumped.major, minor=bumped.minor, patch=bumped.patch)

    @property
    def parts(self) -> tuple[int, ...]:
        return (self.major, self.minor, self.patch)

    @property
    def base(self) -> BaseVersion:
        """The base version this project version was fine-tuned from."""
        return BaseVersion(major=self.major, minor=self.minor)


class PretrainedVersion(_Version):
    """`YYYY-MM-DD`: a pretrained model, by the date it was made."""

    kind: ClassVar[str] = PRETRAINED
    date: datetime.date

    def __str__(self) -> str:
        return self.date.isoformat()

    def _key(self) -> datetime.date:
        return self.date

    @property
    def parts(self) -> tuple[int, ...]:
        return (self.date.year, self.date.month, self.date.day)


Version = BaseVersion | ProjectVersion | PretrainedVersion


class ModelRef(BaseModel):
    """One concrete version of one model: `{model}/{scope}/{version}`."""

    model_config = ConfigDict(frozen=True)
    model: str
    scope: str
    version: Version

    @model_validator(mode="after")
    def _consistent(self) -> ModelRef:
        parse_model_name(self.model)
        parse_scope(self.scope)
        if self.version.kind != scope_kind(self.scope):
            raise ValueError(
                f"a {self.version.kind} version ({self.version}) cannot be in scope '{self.scope}'"
            )
        return self

    def __str__(self) -> str:
        return f"{self.model}/{self.scope}/{self.version}"

    @property
    def path(self) -> str:
        """The version folder, relative to the registry root (always `/`-separated)."""
        return str(self)


def scope_kind(scope: str) -> str:
    """'base', 'pretrained' or 'project'."""
    return scope if scope in (BASE, PRETRAINED) else "project"


def parse_model_name(text: str) -> str:
    """Validate a model name `{algorithm}-{option}`.

    Raises:
        InvalidReference: not of that form.
    """
    _no_path_tricks(text, "model name")
    if not _MODEL.fullmatch(text):
        raise InvalidReference(
            f"invalid model name '{text}': a model is named {{algorithm}}-{{option}} with "
            "letters, digits and '_' (e.g. 'YOLOX-l', 'ResNet-50')",
            value=text,
        )
    return text


def parse_scope(text: str) -> str:
    """Validate a scope: `base`, `pretrained`, or a project name.

    Raises:
        InvalidReference: not a valid scope.
    """
    _no_path_tricks(text, "scope")
    if text in (BASE, PRETRAINED):
        return text
    if text.lower() in RESERVED_SCOPES and text != LATEST:
        raise InvalidReference(
            f"invalid scope '{text}': it differs from the reserved word '{text.lower()}' only "
            "by case, which collides on case-insensitive file systems"
            + (f"; write '{text.lower()}'" if text.lower() != LATEST else ""),
            value=text,
        )
    if text == LATEST or not _PROJECT.fullmatch(text):
        raise InvalidReference(
            f"invalid scope '{text}': use 'base', 'pretrained' or a project name that starts "
            "with a letter and has only letters, digits, '_' and '-' (e.g. 'projectA')",
            value=text,
        )
    return text


def parse_version(scope: str, text: str) -> Version:
    """Parse the version part for a scope.

    Raises:
        InvalidReference: the text is not a version of that scope's kind; the message says why
            and, where there is one, the fix.
    """
    _no_path_tricks(text, "version")
    kind = scope_kind(scope)
    if kind == PRETRAINED:
        return PretrainedVersion(date=_parse_date(scope, text))
    numbers = parse_numbers(scope, text, (2,) if kind == BASE else (3,))
    if kind == BASE:
        if len(numbers) != 2:
            raise InvalidReference(wrong_arity(scope, text, len(numbers)), value=text)
        return BaseVersion(major=numbers[0], minor=numbers[1])
    if len(numbers) != 3:
        raise InvalidReference(wrong_arity(scope, text, len(numbers)), value=text)
    return ProjectVersion(major=numbers[0], minor=numbers[1], patch=numbers[2])


def parse_ref(text: str) -> ModelRef:
    """Parse a reference to one version, `{model}/{scope}/{version}`.

    Raises:
        InvalidReference: not a reference to exactly one version.
    """
    model, scope, rest = split_spec(text, need_model=True)
    assert model is not None
    return ModelRef(model=model, scope=scope, version=parse_version(scope, rest))


def split_spec(text: str, *, need_model: bool) -> tuple[str | None, str, str]:
    if not isinstance(text, str) or not text.strip():
        raise InvalidReference(
            f"empty reference {text!r}: expected e.g. 'YOLOX-l/base/1.2'", value=str(text)
        )
    if "\\" in text:
        raise InvalidReference(
            f"invalid reference '{text}': use '/' between model, scope and version, "
            "e.g. 'YOLOX-l/base/1.2'",
            value=text,
        )
    parts = text.split("/")
    if any(p == "" for p in parts):
        raise InvalidReference(
            f"invalid reference '{text}': it has an empty part (a leading, trailing or doubled "
            "'/'); expected e.g. 'YOLOX-l/base/1.2'",
            value=text,
        )
    if len(parts) == 3:
        return parse_model_name(parts[0]), parse_scope(parts[1]), parts[2]
    if len(parts) == 2 and not need_model:
        return None, parse_scope(parts[0]), parts[1]
    expected = "{model}/{scope}/{version}" if need_model else "[{model}/]{scope}/{version}"
    hint = (
        " (to leave the model out, pass a model's folder as root, e.g. 'model-registry/YOLOX-l')"
        if need_model and len(parts) == 2
        else ""
    )
    raise InvalidReference(
        f"invalid reference '{text}': expected {expected}, e.g. 'YOLOX-l/base/1.2', "
        f"'YOLOX-l/pretrained/2024-05-01' or 'YOLOX-l/projectA/1.2.3'{hint}",
        value=text,
    )


def _no_path_tricks(text: str, what: str) -> None:
    if text in (".", ".."):
        raise InvalidReference(f"invalid {what} '{text}': '.' and '..' are not allowed", value=text)
    if "/" in text or "\\" in text:
        raise InvalidReference(
            f"invalid {what} '{text}': it may not contain a path separator", value=text
        )
    if text != text.strip() or not text:
        raise InvalidReference(f"invalid {what} '{text}': empty or padded with spaces", value=text)


def parse_numbers(scope: str, text: str, counts: tuple[int, ...]) -> tuple[int, ...]:
    """The dot-separated numbers of `text`; `counts` are the lengths the caller accepts, so
    that a suggested spelling is one that parses."""
    example = "1.2" if scope_kind(scope) == BASE else "1.2.3"
    if text[:1] in ("v", "V") and re.fullmatch(r"[0-9.]+", text[1:]):
        try:
            numbers = parse_numbers(scope, text[1:], counts)
            if len(numbers) not in counts:
                raise InvalidReference(wrong_arity(scope, text[1:], len(numbers)))
        except InvalidReference as inner:
            raise InvalidReference(
                f"invalid version '{text}' in {scope}: drop the 'v', and then: {inner}",
                value=text,
            ) from None
        raise InvalidReference(
            f"invalid version '{text}' in {scope}: drop the 'v' (write '{text[1:]}')", value=text
        )
    pieces = text.split(".")
    if any(p == "" for p in pieces):
        raise InvalidReference(
            f"invalid version '{text}' in {scope}: it has an empty part; "
            f"write numbers separated by single dots, e.g. '{example}'",
            value=text,
        )
    for piece in pieces:
        if not piece.isdigit() or not piece.isascii():
            raise InvalidReference(
                f"invalid version '{text}' in {scope}: '{piece}' is not a number; "
                f"expected e.g. '{example}'",
                value=text,
            )
        if len(piece) > _MAX_DIGITS:
            raise InvalidReference(
                f"invalid version '{text[:40]}...' in {scope}: a number has more than "
                f"{_MAX_DIGITS} digits",
                value=text,
            )
        if not _NUMBER.fullmatch(piece):
            fixed = ".".join(p.lstrip("0") or "0" for p in pieces)
            raise InvalidReference(
                f"invalid version '{text}' in {scope}: leading zeros are not allowed "
                f"(write '{fixed}')",
                value=text,
            )
    return tuple(int(p) for p in pieces)


def wrong_arity(scope: str, text: str, count: int) -> str:
    if scope_kind(scope) == BASE:
        hint = (
            " Base versions are X.Y; X.Y.Z is for project versions (e.g. 'projectA/1.2.3')."
            if count == 3
            else " Base versions are X.Y, e.g. 'base/1.2'."
        )
    else:
        hint = (
            " Project versions are X.Y.Z: X.Y is the base version it was fine-tuned from, "
            f"Z counts its updates (e.g. '{scope}/{text}.0')."
            if count == 2
            else f" Project versions are X.Y.Z, e.g. '{scope}/1.2.3'."
        )
    return f"invalid version '{text}' in {scope}.{hint}"


def _parse_date(scope: str, text: str) -> datetime.date:
    if not _DATE.fullmatch(text):
        loose = _LOOSE_DATE.fullmatch(text)
        example = "2024-05-01"
        if loose:
            padded = f"{loose[1]}-{int(loose[2]):02d}-{int(loose[3]):02d}"
            try:
                datetime.date.fromisoformat(padded)
                example = padded
            except ValueError:
                pass
        raise InvalidReference(
            f"invalid version '{text}' in {scope}: pretrained versions are dates written "
            f"YYYY-MM-DD, e.g. '{example}'",
            value=text,
        )
    try:
        return datetime.date.fromisoformat(text)
    except ValueError as exc:
        raise InvalidReference(
            f"invalid version '{text}' in {scope}: not a date ({exc})", value=text
        ) from None
