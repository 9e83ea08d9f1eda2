"""`plan.next_version`: the next free version of a scope, table by table."""

from __future__ import annotations

import datetime

import pytest

from registry import BaseVersion, ProjectVersion, RegistryError, Version, parse_version
from registry.repo.plan import Bump, next_version

TODAY = datetime.date(2024, 6, 3)


def versions(scope: str, *texts: str) -> list[Version]:
    return [parse_version(scope, t) for t in texts]


def bases(*texts: str) -> list[BaseVersion]:
    found = versions("base", *texts)
    assert all(isinstance(v, BaseVersion) for v in found)
    return [v for v in found if isinstance(v, BaseVersion)]


# --- base -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("existing", "bump", "expected"),
    [
        ((), "minor", "0.1"),
        ((), "major", "1.0"),
        (("1.2",), "minor", "1.3"),
        (("1.2",), "major", "2.0"),
        (("1.9", "1.10"), "minor", "1.11"),
        (("1.9", "1.10"), "major", "2.0"),
        (("1.10", "1.9", "0.4"), "minor", "1.11"),
        (("2.0", "1.7"), "minor", "2.1"),
        (("9.99",), "major", "10.0"),
    ],
)
def test_base(existing: tuple[str, ...], bump: Bump, expected: str) -> None:
    found = next_version("base", versions("base", *existing), bump, today=TODAY)
    assert found == parse_version("base", expected)
    assert str(found) == expected


@pytest.mark.parametrize("bump", [None, "patch"])
def test_base_needs_major_or_minor(bump: Bump | None) -> None:
    with pytest.raises(RegistryError, match="base versions are X.Y: use --major .* or --minor"):
        next_version("base", versions("base", "1.2"), bump)


# --- project --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("existing", "known_bases", "base", "expected"),
    [
        # the newest base by default
        ((), ("1.2",), None, "1.2.0"),
        ((), ("1.2", "1.10", "1.9"), None, "1.10.0"),
        (("1.2.0", "1.2.1"), ("1.2",), None, "1.2.2"),
        (("1.2.0", "1.2.1"), ("1.2", "1.3"), None, "1.3.0"),
        # an explicit base; the patch counts per base
        (("1.2.0", "1.2.1", "1.3.0"), ("1.2", "1.3"), "1.2", "1.2.2"),
        (("1.2.0", "1.2.1", "1.3.0"), ("1.2", "1.3"), "1.3", "1.3.1"),
        (("1.2.9", "1.2.10"), ("1.2",), "1.2", "1.2.11"),
        (("2.0.4",), ("1.2", "2.0"), "1.2", "1.2.0"),
    ],
)
def test_project(
    existing: tuple[str, ...], known_bases: tuple[str, ...], base: str | None, expected: str
) -> None:
    chosen = bases(base)[0] if base else None
    found = next_version(
        "projectA",
        versions("projectA", *existing),
        "patch",
        bases=bases(*known_bases),
        base=chosen,
        today=TODAY,
    )
    assert found == parse_version("projectA", expected)


def test_project_without_a_bump_is_a_patch() -> None:
    found = next_version("projectA", versions("projectA", "1.2.0"), None, bases=bases("1.2"))
    assert str(found) == "1.2.1"


def test_project_without_any_base() -> None:
    with pytest.raises(RegistryError, match="no base version to fine-tune from"):
        next_version("projectA", [], "patch")


def test_project_on_an_unknown_base_lists_the_bases() -> None:
    with pytest.raises(RegistryError, match=r"base 2\.5 does not exist; available: 1\.2, 1\.10"):
        next_version("projectA", [], "patch", bases=bases("1.10", "1.2"), base=bases("2.5")[0])


@pytest.mark.parametrize("bump", ["major", "minor"])
def test_project_refuses_major_and_minor(bump: Bump) -> None:
    with pytest.raises(RegistryError, match="project versions X.Y.Z follow the base X.Y"):
        next_version("projectA", [], bump, bases=bases("1.2"))


# --- pretrained -----------------------------------------------------------------------------


def test_pretrained_is_today() -> None:
    existing = versions("pretrained", "2024-05-01", "2024-06-02")
    found = next_version("pretrained", existing, None, today=TODAY)
    assert str(found) == "2024-06-03"


def test_pretrained_defaults_to_the_real_today() -> None:
    before = datetime.date.today()
    found = next_version("pretrained", [], None)
    assert str(found) in {before.isoformat(), datetime.date.today().isoformat()}


def test_pretrained_already_registered_today() -> None:
    existing = versions("pretrained", "2024-06-03")
    with pytest.raises(RegistryError, match="pretrained/2024-06-03 already exists"):
        next_version("pretrained", existing, None, today=TODAY)


@pytest.mark.parametrize("bump", ["major", "minor", "patch"])
def test_pretrained_refuses_a_bump(bump: Bump) -> None:
    with pytest.raises(RegistryError):
        next_version("pretrained", [], bump, today=TODAY)


def test_versions_bump_through_semver() -> None:
    assert BaseVersion(major=1, minor=9).next("minor") == BaseVersion(major=1, minor=10)
    assert BaseVersion(major=1, minor=9).next("major") == BaseVersion(major=2, minor=0)
    assert ProjectVersion(major=1, minor=2, patch=9).next() == ProjectVersion(
        major=1, minor=2, patch=10
    )
