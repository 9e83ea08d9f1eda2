"""The next free version of a scope, by the registry's rules (README, "The registry").

- base X.Y: `major` starts a new X (the application must change too): (X+1).0;
  `minor` is new training settings or data within the newest X: X.(Y+1).
- project X.Y.Z: always on a base X.Y (the newest base unless told), Z+1 on that base.
- pretrained: today's date.
"""

from __future__ import annotations

import datetime
from collections.abc import Collection
from typing import Literal

from registry.errors import RegistryError
from registry.refs import BaseVersion, PretrainedVersion, ProjectVersion, Version, scope_kind

Bump = Literal["major", "minor", "patch"]
_BEFORE_BASE = BaseVersion(major=0, minor=0)


def next_version(
    scope: str,
    existing: Collection[Version],
    bump: Bump | None,
    *,
    bases: Collection[BaseVersion] = (),
    base: BaseVersion | None = None,
    today: datetime.date | None = None,
) -> Version:
    """The version to register next in `scope`, given the versions that exist.

    Raises:
        RegistryError: the bump does not apply to this scope, or there is no base to build on.
    """
    kind = scope_kind(scope)
    if kind == "pretrained":
        if bump is not None:
            raise RegistryError(
                f"pretrained versions are dates: 'next .../pretrained' takes no --{bump}"
            )
        date = today or datetime.date.today()
        version = PretrainedVersion(date=date)
        if version in existing:
            raise RegistryError(
                f"pretrained/{date} already exists; pretrained versions are dates, one per day"
            )
        return version
    if kind == "base":
        if bump not in ("major", "minor"):
            raise RegistryError(
                "base versions are X.Y: use --major (the application must change) or --minor "
                "(new training settings or data)"
            )
        # Before the first version, 0.0: the first major is 1.0, the first minor 0.1.
        newest = max((v for v in existing if isinstance(v, BaseVersion)), default=_BEFORE_BASE)
        return newest.next(bump)
    if bump not in (None, "patch"):
        raise RegistryError(
            "project versions X.Y.Z follow the base X.Y they were fine-tuned from: use "
            "--patch, with --base X.Y to choose the base (default: the newest)"
        )
    if base is None:
        if not bases:
            raise RegistryError(
                "this model has no base version to fine-tune from: register one under base/ "
                "first, or pass --base X.Y"
            )
        base = max(bases)
    elif bases and base not in bases:
        available = ", ".join(str(b) for b in sorted(bases))
        raise RegistryError(f"base {base} does not exist; available: {available}")
    on_base = [v for v in existing if isinstance(v, ProjectVersion) and v.base == base]
    if not on_base:
        return ProjectVersion(major=base.major, minor=base.minor, patch=0)
    return max(on_base).next()
