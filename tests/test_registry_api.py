"""The public API of the two packages: `__all__` is sorted, complete and importable."""

from __future__ import annotations

import ast
import inspect
from types import ModuleType

import pytest

import lfs_agent
import registry


def defined_names(package: ModuleType) -> set[str]:
    """Public names that the package's `__init__.py` itself binds (imports from, defs, vars)."""
    tree = ast.parse(inspect.getsource(package))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module != "__future__":
            names.update(alias.asname or alias.name for alias in node.names)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    # TYPE_CHECKING: a module may define its own (lfs_agent does, to spare importing typing).
    return {name for name in names if not name.startswith("_") and name != "TYPE_CHECKING"}


@pytest.mark.parametrize("package", [registry, lfs_agent], ids=lambda p: p.__name__)
def test_all_is_sorted_and_unique(package: ModuleType) -> None:
    names = list(package.__all__)
    assert names == sorted(names)
    assert len(names) == len(set(names))


@pytest.mark.parametrize("package", [registry, lfs_agent], ids=lambda p: p.__name__)
def test_every_name_in_all_exists(package: ModuleType) -> None:
    missing = [name for name in package.__all__ if not hasattr(package, name)]
    assert missing == []
    namespace: dict[str, object] = {}
    exec(f"from {package.__name__} import *", namespace)
    assert set(package.__all__) <= set(namespace)


@pytest.mark.parametrize("package", [registry, lfs_agent], ids=lambda p: p.__name__)
def test_every_public_name_of_the_init_is_in_all(package: ModuleType) -> None:
    assert defined_names(package) - set(package.__all__) == set()


def test_registry_api_names() -> None:
    # The documented entry point is the function, not the submodule of the same name.
    import registry.cli  # noqa: F401  (imports every submodule)

    assert callable(registry.resolve) and not isinstance(registry.resolve, ModuleType)
    assert callable(registry.check) and not isinstance(registry.check, ModuleType)
    for name in ("InvalidReference", "NotARegistry", "NotFound", "NotPulled", "RepoError"):
        assert issubclass(getattr(registry, name), registry.RegistryError)
    assert issubclass(registry.VersionExists, registry.RegistryError)
    assert issubclass(registry.InvalidReference, ValueError)
    assert issubclass(registry.NotFound, LookupError)
    assert issubclass(registry.VersionExists, FileExistsError)


def test_lfs_agent_errors_share_a_base() -> None:
    errors = [
        getattr(lfs_agent, name)
        for name in lfs_agent.__all__
        if isinstance(getattr(lfs_agent, name), type)
        and issubclass(getattr(lfs_agent, name), BaseException)
    ]
    assert lfs_agent.AgentError in errors
    assert all(issubclass(error, lfs_agent.AgentError) for error in errors)
