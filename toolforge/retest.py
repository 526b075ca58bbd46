"""Stored tests re-run in the sandbox: `evoagent tools test`, the check of every tool
after a benchmark stream, and the callers of a changed tool (`composition.py`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from memory.protocol import ToolSearch
from sandbox.base import Sandbox
from toolforge.config import ForgeConfig
from toolforge.harness import Job
from toolforge.verify import Verifier

if TYPE_CHECKING:
    from memory.types import ToolInfo


@dataclass
class StoredTestReport:
    """One tool's stored tests, judged on this side. A test passes when this side judged it
    from the records (`n_passed`); opaque tests that only their own report says passed
    are `n_unchecked`."""

    tool: str
    version: int
    passed: bool
    n_tests: int
    n_passed: int
    n_unchecked: int
    failures: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def test_stored_tools(
    tools: list[ToolInfo],
    sandbox: Sandbox,
    config: ForgeConfig,
    library: ToolSearch | None = None,
) -> list[StoredTestReport]:
    """Run each tool's stored tests (one batched sandbox run); one report per tool, in
    order. With `library`, a tool that calls library tools runs with their current
    versions."""
    jobs = []
    for t in tools:
        job = Job(id=t.name, tool=t.name, source=t.source)
        job.add_tests("stored", t.tests)
        jobs.append(job)
    results = Verifier(sandbox, config, library).run_jobs(jobs)
    reports = []
    for tool in tools:
        res = results[tool.name]
        n = res.n_tests()
        failures = res.failures()
        tests = [t for s in res.suites for t in s.tests]
        reports.append(
            StoredTestReport(
                tool=tool.name,
                version=tool.version,
                passed=res.passed(),
                n_tests=n,
                n_passed=sum(1 for t in tests if t.status == "pass"),
                n_unchecked=sum(1 for t in tests if t.status == "unchecked"),
                failures=failures if n or failures else ["no test functions are stored"],
            )
        )
    return reports
