"""People's tools: `evoagent tools add` (the same gates as forged tools) and
`evoagent tools import` (an exported folder, every tool verified before it is admitted).
`evoagent tools test` re-runs stored tests: `retest.py`."""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING

from memory import pyparse
from memory.protocol import ForgeWrites
from sandbox.base import Sandbox
from toolforge.config import ForgeConfig
from toolforge.harness import Job
from toolforge.pipeline import forge_candidate
from toolforge.static_gate import check_static
from toolforge.types import Candidate, ForgeOutcome
from toolforge.verify import Verifier

if TYPE_CHECKING:
    pass


def add_people_tool(
    source: str,
    tests: str,
    filename: str,
    library: ForgeWrites,
    sandbox: Sandbox,
    config: ForgeConfig,
) -> ForgeOutcome:
    """Static gate, dynamic gate, dedup and admission for a hand-written tool."""
    # No task: a person's tool has no source answer to hide, and no task text to link.
    candidate = Candidate(
        name="",
        source=source,
        tests=tests,
        origin="human",
        trace_index=0,
        log=[f"added by hand from {filename}"],
    )
    return forge_candidate(candidate, library, sandbox, config)


def verify_imports(
    tools: list[tuple[str, str, str]], sandbox: Sandbox, config: ForgeConfig
) -> dict[str, list[str]]:
    """Static gate and stored tests (one batched sandbox run) for (name, source, tests)
    triples; the problems of each tool by name, empty when it may be admitted.

    Unlike the forge's pipeline, a tool the static gate rejects still has its tests run
    (in the sandbox, like all tool code): a person fixes the file once, so the report
    names every problem, not only the first gate's."""
    problems: dict[str, list[str]] = {}
    jobs = []
    for name, source, tests in tools:
        mine = problems[name] = []
        has_tests = _has_tests(tests)
        if not has_tests:
            # Only its tests vouch for an imported tool: without any, nothing verifies it.
            mine.append(f"no test functions: give test_{name}.py with test_* functions")
        # No task and no answer: an exported tool has no source answer to hide (as `tools add`).
        report = check_static(source, tests, config, expected_name=name)
        mine.extend(
            f"static gate: {p}" for p in report.problems if not (mine and "test functions" in p)
        )
        if has_tests:
            job = Job(id=name, tool=name, source=source)
            job.add_tests("stored", tests)
            jobs.append(job)
    results = Verifier(sandbox, config).run_jobs(jobs) if jobs else {}
    for job_id, res in results.items():
        if not res.passed():
            problems[job_id].extend(res.failures() or ["no test functions ran"])
    return problems


def _has_tests(tests: str) -> bool:
    try:
        tree = pyparse.parse(tests)
    except SyntaxError:
        return True  # the static gate names the syntax error
    return any(isinstance(n, ast.FunctionDef) and n.name.startswith("test") for n in tree.body)
