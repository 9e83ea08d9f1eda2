"""The shape of a package, read from its source: no import cycle, no module over 400 lines, no
function over 60, and (for the agent) every exception class in the one error tree.

The import graph is built from the AST, so it counts what a run may never reach: imports inside
functions and under `TYPE_CHECKING` too. A cycle among those still ties two modules together:
neither can be read, tested or moved without the other.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ["lfs_agent"]
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def modules(package: str) -> dict[str, Path]:
    """Every module of `package` (subpackages included) by dotted name."""
    found: dict[str, Path] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def imported(name: str, path: Path, known: set[str]) -> set[str]:
    """The modules of `known` that the module `name` (at `path`) imports, anywhere in it."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            for alias in node.names:
                # `from . import logs` imports the module `logs`; `from .x import Y` imports x.
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in known else base)
    return (found & known) - {name}


def import_graph(package: str) -> dict[str, set[str]]:
    found = modules(package)
    known = set(found)
    return {name: imported(name, path, known) for name, path in found.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle as a path that returns to its start (`[a, b, a]`), or [] when none."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return []

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return []


def test_find_cycle_finds_one_and_only_one() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) == []
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": set(), "b": {"c"}, "c": {"b"}}) == ["b", "c", "b"]


def test_the_graph_sees_function_level_and_relative_imports(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from . import b\n")
    (pkg / "b.py").write_text("from .a import f\n")
    known = {"pkg", "pkg.a", "pkg.b"}
    assert imported("pkg.a", pkg / "a.py", known) == {"pkg.b"}
    assert imported("pkg.b", pkg / "b.py", known) == {"pkg.a"}


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_cycle(package: str) -> None:
    graph = import_graph(package)
    assert len(graph) > 1
    cycle = find_cycle(graph)
    assert cycle == [], "import cycle: " + " -> ".join(cycle)


@pytest.mark.parametrize("package", PACKAGES)
def test_no_module_over_the_limit(package: str) -> None:
    long = {
        name: n
        for name, path in modules(package).items()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}


@pytest.mark.parametrize("package", PACKAGES)
def test_no_function_over_the_limit(package: str) -> None:
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
