"""People's tools: `evoagent tools add` (the same gates as forged tools) and
`evoagent tools test` (stored tests re-run in the sandbox)."""

from __future__ import annotations

from typing import Any

from sandbox.base import Sandbox
from toolforge.config import ForgeConfig
from toolforge.harness import Job, Suite
from toolforge.pipeline import _Batch, _TraceState
from toolforge.types import Candidate, ForgeOutcome
from toolforge.verify import Verifier


def add_people_tool(
    source: str, tests: str, filename: str, library: Any, sandbox: Sandbox, config: ForgeConfig
) -> ForgeOutcome:
    """Static gate, dynamic gate, dedup and admission for a hand-written tool."""
    batch = _Batch(library, sandbox, None, config)
    batch.states = [_TraceState(n_candidates=1)]
    # No task: a person's tool has no source answer to hide, and no task text to link.
    candidate = Candidate(
        name="",
        source=source,
        tests=tests,
        origin="human",
        trace_index=0,
        log=[f"added by hand from {filename}"],
    )
    if batch._static(candidate):
        batch._dynamic_and_place([candidate])
    return batch._outcome(batch.states[0])


def test_stored_tools(
    tools: list[Any], sandbox: Sandbox, config: ForgeConfig
) -> list[dict[str, Any]]:
    """Run each tool's stored tests (one batched sandbox run); one report per tool."""
    jobs = [
        Job(id=t.name, tool=t.name, source=t.source, suites=[Suite("stored", t.tests)])
        for t in tools
    ]
    results = Verifier(sandbox, config).run_jobs(jobs)
    reports = []
    for tool in tools:
        res = results[tool.name]
        n = res.n_tests()
        failures = res.failures()
        n_passed = sum(1 for s in res.suites for t in s.tests if t.status == "pass")
        reports.append(
            {
                "tool": tool.name,
                "version": tool.version,
                "passed": res.passed(),
                "n_tests": n,
                "n_passed": n_passed,
                "failures": failures if n or failures else ["no test functions are stored"],
            }
        )
    return reports
