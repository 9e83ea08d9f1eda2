"""The shape ARCHITECTURE.md describes, kept: no import cycle inside a package, no module over
400 lines, the agent never importing the registry, and each package's exceptions in its one
error tree (the agent's functions also stay under 60 lines).

The import graph is read from the source (every `import`, function-level ones too, since a
cycle hidden in a function is still a cycle; `if TYPE_CHECKING:` blocks are left out, they never
run). `from pkg import name` is an edge to `pkg.name` when that is a module, else to `pkg`.
"""

from __future__ import annotations

import ast
import importlib
import inspect
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
MAX_LINES = 400

MAX_FUNCTION_LINES = 60
PACKAGES = ["registry", "lfs_agent"]


def modules(package: str) -> dict[str, Path]:
    """Every module of `package`, by dotted name (a package by its own name)."""
    found: dict[str, Path] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """The nodes of `tree` outside `if TYPE_CHECKING:` blocks."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            yield from (n for child in node.orelse for n in [child, *_runtime_nodes(child)])
            continue
        yield node
        yield from _runtime_nodes(node)


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The modules of `known` that module `name` imports."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    edges: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            edges.update(alias.name for alias in node.names if alias.name in known)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            for alias in node.names:
                if f"{target}.{alias.name}" in known:
                    edges.add(f"{target}.{alias.name}")
                elif target in known:
                    edges.add(target)
    edges.discard(name)
    return edges


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of `graph` as a path that ends where it starts, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)) is not None:
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)) is not None:
            return cycle
    return None


def graph_of(package: str) -> dict[str, set[str]]:
    known = modules(package)
    return {name: imports(name, path, known) for name, path in known.items()}


def test_find_cycle_finds_one_and_only_one() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_the_graph_sees_relative_absolute_and_function_level_imports(tmp_path: Path) -> None:
    known = {"p": tmp_path / "__init__.py", "p.a": tmp_path / "a.py", "p.b": tmp_path / "b.py"}
    known["p.a"].write_text(
        "from typing import TYPE_CHECKING\n"
        "from . import b\n"
        "if TYPE_CHECKING:\n    from p import c\n"
        "def f():\n    import p.b\n    from p.b import x\n"
    )
    assert imports("p.a", known["p.a"], known) == {"p.b"}
    known["p.b"].write_text("def g():\n    from .a import f\n")
    assert imports("p.b", known["p.b"], known) == {"p.a"}


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_cycle(package: str) -> None:
    assert find_cycle(graph_of(package)) is None


@pytest.mark.parametrize("package", PACKAGES)
def test_no_module_over_400_lines(package: str) -> None:
    long = {
        str(path.relative_to(ROOT)): lines
        for path in modules(package).values()
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}


def test_the_agent_never_imports_the_registry() -> None:
    agent = modules("lfs_agent")
    offenders = {
        name
        for name, path in agent.items()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Import | ast.ImportFrom)
        and any(
            (getattr(node, "module", None) or alias.name).split(".")[0] == "registry"
            for alias in node.names
        )
    }
    assert offenders == set()


# Raised and caught inside the package, never met by a caller: PartialFile tells the cache that
# the store sent too many bytes, and the cache raises CorruptDownload instead.
_INTERNAL_ERRORS = {"registry.cache.partial.OutOfRange"}


def test_every_registry_error_is_in_the_tree_and_exported() -> None:
    import registry
    import registry.errors

    outside: list[str] = []
    for name in modules("registry"):
        if name.endswith("__main__") or name == "registry.errors":
            continue  # running __main__ is the CLI
        module = importlib.import_module(name)
        for attr, value in vars(module).items():
            if (
                isinstance(value, type)
                and issubclass(value, BaseException | Warning)
                and value.__module__ == name
                and not attr.startswith("_")
                and f"{name}.{attr}" not in _INTERNAL_ERRORS
            ):
                outside.append(f"{name}.{attr}")
    assert outside == []
    tree = {
        name
        for name, value in vars(registry.errors).items()
        if isinstance(value, type) and issubclass(value, BaseException | Warning)
    }
    assert tree - set(registry.__all__) == set()


def test_no_registry_error_shadows_an_agent_error() -> None:
    import lfs_agent.errors
    import registry.errors

    def names(module: ModuleType) -> set[str]:
        return {n for n, v in vars(module).items() if isinstance(v, type)}

    agent = {
        n
        for n in names(lfs_agent.errors)
        if issubclass(getattr(lfs_agent.errors, n), BaseException)
    }
    assert agent & names(registry.errors) == set()


def test_no_agent_function_over_60_lines() -> None:
    package = "lfs_agent"  # registry/ still has three (publish, add_version, store_error)
    long = {
        f"{name}.{node.name}": n
        for name, path in modules(package).items()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and (n := (node.end_lineno or node.lineno) - node.lineno + 1) > MAX_FUNCTION_LINES
    }
    assert long == {}


def test_every_agent_exception_is_in_the_error_module_and_its_docstring() -> None:
    import lfs_agent.errors

    doc = inspect.getdoc(lfs_agent.errors) or ""
    outside: list[str] = []
    for name, path in modules("lfs_agent").items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ClassDef) or node.name.startswith("_"):
                continue  # a private class never leaves its module: control flow, not an error
            if name != "lfs_agent.errors":
                cls = getattr(__import__(name, fromlist=["_"]), node.name)
                if isinstance(cls, type) and issubclass(cls, BaseException):
                    outside.append(f"{name}.{node.name}")
    assert outside == []
    defined = [
        name
        for name, cls in vars(lfs_agent.errors).items()
        if isinstance(cls, type)
        and issubclass(cls, BaseException)
        and cls.__module__ == "lfs_agent.errors"
    ]
    assert len(defined) > 10
    assert [name for name in defined if name not in doc] == []
