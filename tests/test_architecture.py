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


def test_the_library_has_every_method_of_the_tool_library_seam() -> None:
    """`memory.Library` satisfies `ToolLibrary` name by name and parameter by parameter
    (mypy checks the types in `make lint`; this keeps the seam honest in every test run)."""
    import inspect

    from memory.library import Library
    from memory.protocol import ToolLibrary

    members = [n for n, v in vars(ToolLibrary).items() if not n.startswith("_") and callable(v)]
    assert len(members) > 20
    for name in members:
        want = list(inspect.signature(getattr(ToolLibrary, name)).parameters)
        have = list(inspect.signature(getattr(Library, name)).parameters)
        assert have == want, f"Library.{name}{have} differs from the seam's {want}"
    assert "config" in vars(ToolLibrary)
