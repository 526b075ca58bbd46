"""The packages depend only downward: agent -> toolforge -> {memory, sandbox}.

Every import counts, lazy ones inside functions and `TYPE_CHECKING` ones included: a
lower package that reached up would tie the library and the sandbox to the agent's
graph and CLI, and make an import cycle one refactor away.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = ("agent", "toolforge", "memory", "sandbox")
ALLOWED = {
    "agent": {"agent", "toolforge", "memory", "sandbox"},
    "toolforge": {"toolforge", "memory", "sandbox"},
    "memory": {"memory"},
    "sandbox": {"sandbox"},
}


def imported_packages(path: Path) -> set[tuple[str, int]]:
    """(top-level package of ours, line) for every import in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[tuple[str, int]] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            if top in OURS:
                found.add((top, node.lineno))
    return found


def upward_imports(package: str) -> list[str]:
    wrong = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for top, line in imported_packages(path):
            if top not in ALLOWED[package]:
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {top}")
    return wrong


@pytest.mark.parametrize("package", OURS)
def test_dependencies_point_down(package: str) -> None:
    assert upward_imports(package) == []


def test_the_check_sees_lazy_and_type_checking_imports(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from agent.config import Settings\n"
        "def f():\n    import toolforge.pipeline\n    from .x import y\n",
        encoding="utf-8",
    )
    assert imported_packages(module) == {("agent", 3), ("toolforge", 5)}


def _members(protocol: type) -> list[str]:
    """The methods a role protocol declares, its bases' included."""
    return sorted(
        {
            name
            for klass in protocol.__mro__
            if klass.__module__ == "memory.protocol"
            for name, value in vars(klass).items()
            if not name.startswith("_") and callable(value)
        }
    )


@pytest.mark.parametrize("role", ["ToolSearch", "EpisodeSink", "ForgeWrites", "Upkeep"])
def test_the_library_plays_every_role_of_the_seam(role: str) -> None:
    """`memory.Library` has each role's methods name by name and parameter by parameter
    (mypy checks the types in `make lint`; this keeps the seam honest in every test run)."""
    import inspect

    from memory import protocol
    from memory.library import Library

    members = _members(getattr(protocol, role))
    assert members
    for name in members:
        want = list(inspect.signature(getattr(getattr(protocol, role), name)).parameters)
        have = list(inspect.signature(getattr(Library, name)).parameters)
        assert have == want, f"Library.{name}{have} differs from the seam's {want}"


def test_a_workers_snapshot_plays_the_solving_role_fully() -> None:
    """A Ray worker solves against `SnapshotLibrary`: every method solving uses, with the
    seam's parameters, and no more (no catch-all, no method that would write elsewhere)."""
    import inspect

    from memory.protocol import Solving, ToolLibrary
    from memory.snapshot import SnapshotLibrary

    for name in _members(Solving):
        want = list(inspect.signature(getattr(Solving, name)).parameters)
        have = list(inspect.signature(getattr(SnapshotLibrary, name)).parameters)
        assert have == want, f"SnapshotLibrary.{name}{have} differs from the seam's {want}"
    assert "__getattr__" not in vars(SnapshotLibrary)
    assert not set(_members(ToolLibrary)) - set(_members(Solving)) & set(vars(SnapshotLibrary))


def module_graph() -> dict[str, set[str]]:
    """Every module of ours and the modules of ours it imports (lazy and `TYPE_CHECKING`
    imports included; `from pkg import mod` names the module)."""
    modules: dict[str, Path] = {}
    for package in OURS:
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        here = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    head = here.split(".")[: len(here.split(".")) - node.level + 1]
                    base = ".".join([*head, *([node.module] if node.module else [])])
                found = [
                    f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                    for a in node.names
                ]
            else:
                continue
            for target in found:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    targets.add(target)
        graph[name] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    found.append(sorted(group))
    return found


def test_no_two_modules_import_each_other() -> None:
    """No import cycle between files of the four packages, through any chain of imports:
    a cycle means neither module can be read, tested or changed without the other."""
    assert cycles(module_graph()) == []


def test_the_cycle_check_finds_a_cycle_through_a_lazy_import() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
