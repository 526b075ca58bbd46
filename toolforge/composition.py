"""Tools that call tools.

A tool may import active library tools (`from tools import name`). The call stays a call:
the callee is shipped beside it into the sandbox (`Library.tool_sources` gives the
callees' current sources with the tools asked for), never inlined into it, and the import
line is the record of the dependency (`Library.callees` / `callers` read it). Two rules
keep that sound:

- **no circle**: a tool may not import a tool that imports it, however far round;
- **a callee's change re-runs its callers**: when a tool gets a new version, every tool
  that calls it (transitively) has its stored tests run again with the new callee, and a
  caller that fails them is quarantined, with the change named as the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from memory.errors import LibraryError
from memory.protocol import ForgeWrites, ToolSearch
from memory.tools import imported_tools
from sandbox.base import Sandbox
from toolforge.config import ForgeConfig
from toolforge.retest import StoredTestReport, test_stored_tools


def callable_tools(library: ToolSearch, source: str) -> frozenset[str]:
    """Of the library tools `source` imports, those it may: the active ones (only the
    imported names are looked up, not the whole library)."""
    return frozenset(n for n in imported_tools(source) if _active(library, n))


def _active(library: ToolSearch, name: str) -> bool:
    tool = library.get_tool(name)
    return tool is not None and tool.status == "active"


def circle_problem(name: str, source: str, library: ToolSearch) -> str | None:
    """Why `source` (the module of tool `name`) would close a circle of imports, or None."""
    callees = [n for n in imported_tools(source) if n != name]
    if not callees:
        return None
    try:
        closure = library.tool_sources(callees)
    except LibraryError:
        return None  # an unknown callee is the static gate's to name
    for callee, callee_source in closure.items():
        if name in imported_tools(callee_source):
            return (
                f"{name} imports {callees[0]}, and {callee} imports {name}: tools may not "
                "call each other in a circle"
            )
    return None


@dataclass
class CallersCheck:
    """What re-running the callers of a changed tool found."""

    changed: str
    version: int
    reports: list[StoredTestReport] = field(default_factory=list)
    quarantined: list[str] = field(default_factory=list)


def all_callers(name: str, library: ForgeWrites) -> list[str]:
    """The active tools that call `name`, directly or through other tools, nearest first."""
    out: list[str] = []
    todo = [name]
    while todo:
        current = todo.pop(0)
        for caller in library.callers(current):
            if caller != name and caller not in out:
                out.append(caller)
                todo.append(caller)
    return [n for n in out if _active(library, n)]


def recheck_callers(
    changed: str, library: ForgeWrites, sandbox: Sandbox, config: ForgeConfig
) -> CallersCheck:
    """Run the stored tests of every active caller of `changed` (which just got a new
    version) with the callee as it is now; quarantine those that fail them."""
    info = library.get_tool(changed)
    check = CallersCheck(changed, info.version if info is not None else 0)
    callers = all_callers(changed, library)
    tools = [t for t in (library.get_tool(n) for n in callers) if t is not None]
    if not tools:
        return check
    check.reports = test_stored_tools(tools, sandbox, config, library)
    for report in check.reports:
        if report.passed:
            continue
        why = report.failures[0] if report.failures else "no test passed"
        library.set_status(
            report.tool,
            "quarantined",
            f"its stored tests fail with {changed} v{check.version}, which it calls: {why}",
        )
        check.quarantined.append(report.tool)
    return check
