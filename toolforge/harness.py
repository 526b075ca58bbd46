"""The jobs the forge runs in the sandbox, and the programs that run them.

A `Job` is one tool module and what to check it with:

- `probes`: calls the host asks for and checks itself (`toolforge/assertions.py`): the
  literal calls of the tests, perturbed inputs, real tasks of its kind. They are made by
  `CALLER`, a plain program of the shape of a real use (`from tools import name`, then
  calls): no test code, no signal handler, no shim runs beside it, and the tool answers
  each call in a process of its own, so it cannot tell a test from real use. What each
  call gave is read from the supervisor's records, never from the caller's word.
- `suites`: opaque tests (code the host cannot read as literal calls), run by the test
  program of `in_sandbox.py`; its report is believed only where it says a test failed.

One job per sandbox run (two when it has both kinds): no candidate's code or tests
share a process or a run with another's.
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from memory import pyparse
from toolforge.assertions import Expect, Probe, read_tests

PROGRAM = Path(__file__).with_name("in_sandbox.py")


@dataclass(frozen=True)
class Call:
    """One probe of a job: which group and test it belongs to, and the call."""

    group: str  # "own", "b3", "i:name", "perturb", "origin", "sibling"...
    test: str  # the test function's name ("" for perturbations and real inputs)
    label: str  # what to call it in a message ("arg0:digits", a sibling's index...)
    probe: Probe


@dataclass
class Suite:
    """Opaque tests of one group (their source, the tool imported as `name`)."""

    label: str
    source: str


@dataclass
class Job:
    """One tool module and the checks to run against it in the sandbox."""

    id: str
    tool: str
    source: str
    calls: list[Call] = field(default_factory=list)
    suites: list[Suite] = field(default_factory=list)
    #: the test functions of each group, in order (the host's own reading of them)
    tests: dict[str, list[str]] = field(default_factory=dict)
    #: why each opaque test could not be read as literal calls, by group and name
    opaque: dict[tuple[str, str], str] = field(default_factory=dict)
    #: the library tools the module imports, with their sources (shipped beside it)
    deps: dict[str, str] = field(default_factory=dict)

    def add_tests(self, group: str, tests: str) -> None:
        """The tests of `tests` (which import the tool as `self.tool`) as group `group`:
        literal ones as probes, the rest as an opaque suite."""
        cases = read_tests(tests, self.tool)
        self.tests[group] = [c.name for c in cases]
        opaque = [c for c in cases if c.opaque]
        for case in cases:
            if case.opaque:
                self.opaque[(group, case.name)] = case.opaque
                continue
            for probe in case.probes:
                self.calls.append(Call(group, case.name, case.name, probe))
        if opaque or not cases:
            # Opaque tests run in the test program; a file with no test the host can read
            # runs there too, so its load error or emptiness is reported as before.
            self.suites.append(Suite(group, only_tests(tests, [c.name for c in opaque])))

    def add_probe(
        self,
        group: str,
        label: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any] | None = None,
        expect: Expect | None = None,
    ) -> None:
        self.calls.append(Call(group, "", label, Probe(tuple(args), dict(kwargs or {}), expect)))


def only_tests(tests: str, names: list[str]) -> str:
    """`tests` with only the `test_*` functions named (imports and helpers kept)."""
    try:
        tree = pyparse.parse(tests)
    except SyntaxError:
        return tests
    keep = set(names)
    tree.body = [
        n
        for n in tree.body
        if not (isinstance(n, ast.FunctionDef) and n.name.startswith("test") and n.name not in keep)
    ]
    return ast.unparse(tree)


#: the program that makes a job's probes: the shape of a real use (import, then calls)
CALLER = """from tools import {tool} as tool

for args, kwargs in CALLS:
    try:
        tool(*args, **kwargs)
    except Exception:
        pass
"""


def caller_program(tool: str) -> str:
    return CALLER.format(tool=tool)


@cache
def _program_source() -> str:
    return PROGRAM.read_text(encoding="utf-8")


def _program(job: dict[str, Any]) -> str:
    return _program_source() + f"\n\nanswer = main(json.loads({json.dumps(job)!r}))\n"


def suite_program(job: Job, *, per_test_s: float, budget_s: float) -> str:
    return _program(
        {
            "kind": "verify",
            "tool": job.tool,
            "budget": budget_s,
            "per_test": per_test_s,
            "suites": [{"label": s.label, "source": s.source} for s in job.suites],
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
