"""Building the programs the forge runs in the sandbox (`toolforge/in_sandbox.py`).

`in_sandbox.py` is a real module (linted, type-checked); a job's program is its source
plus one line that calls its `main` with the job as JSON. One job per sandbox run: a
candidate's tests, its perturbed calls, or one library tool cross-run against another
candidate's tests never share a process with another candidate's code or tests.
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from memory import pyparse

PROGRAM = Path(__file__).with_name("in_sandbox.py")


@dataclass
class Suite:
    label: str
    source: str


@dataclass
class Job:
    """One tool module and the checks to run against it in the sandbox."""

    id: str
    tool: str
    source: str
    suites: list[Suite] = field(default_factory=list)
    #: (label, args literal, kwargs literal)
    perturb: list[tuple[str, str, str]] = field(default_factory=list)


@cache
def _program_source() -> str:
    return PROGRAM.read_text(encoding="utf-8")


def _program(job: dict[str, Any]) -> str:
    return _program_source() + f"\n\nanswer = main(json.loads({json.dumps(job)!r}))\n"


def verify_program(job: Job, *, per_test_s: float, budget_s: float) -> str:
    return _program(
        {
            "kind": "verify",
            "tool": job.tool,
            "budget": budget_s,
            "per_test": per_test_s,
            "suites": [{"label": s.label, "source": s.source} for s in job.suites],
            "perturb": [{"label": p[0], "args": p[1], "kwargs": p[2]} for p in job.perturb],
        }
    )


def instrument_program(code: str, *, cap: int, limit: int, seconds: float) -> str:
    return _program(
        {"kind": "instrument", "code": code, "cap": cap, "limit": limit, "seconds": seconds}
    )


def add_recorders(code: str) -> tuple[str, list[str]]:
    """The trace's code with `@__forge_record__("name")` on every top-level function.

    Raises SyntaxError when the code does not parse.
    """
    tree = pyparse.parse(code)
    names: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            deco = ast.Call(
                func=ast.Name("__forge_record__", ast.Load()),
                args=[ast.Constant(node.name)],
                keywords=[],
            )
            node.decorator_list.insert(0, deco)
            names.append(node.name)
    return ast.unparse(ast.fix_missing_locations(tree)), names
