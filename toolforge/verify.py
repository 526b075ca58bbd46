"""Running checks in the sandbox: pack jobs into as few runs as possible, run them,
read the harness's report.

One run holds many jobs (candidates' tests, cross-tests, perturbations): the container
start is paid once per batch. Two jobs that need the same module name with different
sources (two `sort_words` candidates) cannot share `tools`, so the later one is renamed
to an alias (`sort_words__2`, in its source and in its tests). A run that fails as a
whole (timeout, memory) is split in two and retried, so one candidate that hangs in C
code cannot sink the rest of its batch.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sandbox.base import ExecResult, Sandbox
from toolforge.config import ForgeConfig
from toolforge.harness import Job, Suite, instrument_program, parse_report, verify_program
from toolforge.source import rename_identifier


@dataclass
class TestResult:
    name: str
    status: str  # pass | fail | error | timeout | skipped
    message: str = ""
    seconds: float = 0.0
    digest: str = ""
    calls: int = 0


@dataclass
class SuiteResult:
    label: str
    error: str | None
    tests: list[TestResult] = field(default_factory=list)


@dataclass
class JobResult:
    """What the harness reported for one job (or why the run gave no report)."""

    id: str
    import_error: str | None = None
    run_error: str | None = None
    suites: list[SuiteResult] = field(default_factory=list)
    perturb: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def error(self) -> str | None:
        if self.run_error:
            return self.run_error
        if self.import_error:
            return f"importing the tool failed: {self.import_error}"
        return None

    def failures(self, label: str | None = None) -> list[str]:
        """One line per failed test (or broken suite), naming it."""
        if self.error:
            return [self.error]
        out: list[str] = []
        for suite in self.suites:
            if label is not None and suite.label != label:
                continue
            if suite.error:
                out.append(f"the tests ({suite.label}) could not be loaded: {suite.error}")
            for test in suite.tests:
                if test.status != "pass":
                    detail = f": {test.message}" if test.message else ""
                    out.append(f"test {test.name} {_verb(test.status)}{detail}")
        return out

    def n_tests(self, label: str | None = None) -> int:
        return sum(len(s.tests) for s in self.suites if label is None or s.label == label)

    def passed(self, label: str | None = None) -> bool:
        return not self.failures(label) and self.n_tests(label) > 0

    def fingerprint(self) -> list[tuple[Any, ...]]:
        """What must be identical between a run and its determinism re-run."""
        out: list[tuple[Any, ...]] = []
        for suite in self.suites:
            for t in suite.tests:
                out.append((suite.label, t.name, t.status, t.digest))
        for p in self.perturb:
            out.append(
                ("perturb", p.get("label"), p.get("status"), p.get("error_type"), p.get("digest"))
            )
        return out


def _verb(status: str) -> str:
    return {
        "fail": "failed",
        "error": "raised",
        "timeout": "timed out",
        "skipped": "was skipped",
    }.get(status, status)


class Verifier:
    """Runs jobs in the sandbox, batched; `runs` counts the sandbox runs made."""

    def __init__(self, sandbox: Sandbox, config: ForgeConfig) -> None:
        self.sandbox = sandbox
        self.config = config
        self.runs = 0

    # --- verification jobs --------------------------------------------------------

    def run_jobs(
        self, jobs: Sequence[Job], extra_tools: dict[str, str] | None = None
    ) -> dict[str, JobResult]:
        """Run every job; returns results by job id (runs go in parallel)."""
        if not jobs:
            return {}
        chunks = [
            list(jobs[i : i + self.config.max_jobs_per_run])
            for i in range(0, len(jobs), self.config.max_jobs_per_run)
        ]
        results: dict[str, JobResult] = {}
        for part in self._parallel(lambda chunk: self._run_chunk(chunk, extra_tools or {}), chunks):
            results.update(part)
        return results

    def run_each(self, groups: Sequence[Sequence[Job]]) -> list[dict[str, JobResult]]:
        """Several independent job lists (for instance a run and its determinism re-run),
        each in its own sandbox run(s), in parallel."""
        return self._parallel(lambda group: self.run_jobs(group), list(groups))

    def _parallel(self, fn: Any, items: list[Any]) -> list[Any]:
        if len(items) <= 1 or self.config.parallel_runs <= 1:
            return [fn(item) for item in items]
        with ThreadPoolExecutor(max_workers=min(self.config.parallel_runs, len(items))) as pool:
            return list(pool.map(fn, items))

    def _run_chunk(self, jobs: list[Job], extra_tools: dict[str, str]) -> dict[str, JobResult]:
        packed, tools = _alias(jobs, extra_tools)
        cfg = self.config
        budget = cfg.test_timeout_s
        timeout = min(
            cfg.max_run_timeout_s,
            cfg.run_overhead_s + len(jobs) * (budget + cfg.per_test_timeout_s),
        )
        code = verify_program(packed, per_test_s=cfg.per_test_timeout_s, budget_s=budget)
        self.runs += 1
        res = self.sandbox.run(code, tools=tools, timeout_s=timeout)
        problem = _run_problem(res, timeout)
        if problem is None:
            try:
                report = parse_report(res.answer)
                by_id = {entry["id"]: entry for entry in report["jobs"]}
                out = {job.id: _job_result(by_id[job.id]) for job in jobs}
            except (KeyError, TypeError, ValueError, SyntaxError) as exc:
                problem = f"the harness report could not be read ({type(exc).__name__}: {exc})"
            else:
                per_job = res.duration_s / max(1, len(jobs))
                for result in out.values():
                    result.seconds = per_job
                return out
        if len(jobs) > 1:
            # Find the culprit: each half gets its own run.
            half = math.ceil(len(jobs) / 2)
            out = {}
            for part in self._parallel(
                lambda js: self._run_chunk(js, extra_tools), [jobs[:half], jobs[half:]]
            ):
                out.update(part)
            return out
        return {jobs[0].id: JobResult(id=jobs[0].id, run_error=problem, seconds=res.duration_s)}

    # --- instrumentation ------------------------------------------------------------

    def instrument(self, codes: list[str], tools: dict[str, str]) -> list[dict[str, Any]]:
        """Re-run traces' (recorder-annotated) code; one report per code."""
        cfg = self.config
        seconds = max(cfg.test_timeout_s, 1.0)
        timeout = min(cfg.max_run_timeout_s, cfg.run_overhead_s + len(codes) * seconds)
        program = instrument_program(codes, cap=50, limit=2000, seconds=seconds)
        self.runs += 1
        res = self.sandbox.run(program, tools=tools, timeout_s=timeout)
        problem = _run_problem(res, timeout)
        if problem is None:
            try:
                report = parse_report(res.answer)
                if isinstance(report, list) and len(report) == len(codes):
                    return report
                problem = "the instrumentation report has the wrong shape"
            except (ValueError, SyntaxError) as exc:
                problem = f"the instrumentation report could not be read ({exc})"
        if len(codes) > 1:
            half = math.ceil(len(codes) / 2)
            return self.instrument(codes[:half], tools) + self.instrument(codes[half:], tools)
        return [{"error": problem, "has_answer": False, "answer": None, "calls": []}]


def _run_problem(res: ExecResult, timeout: float) -> str | None:
    if res.timed_out:
        return f"the sandbox run timed out after {timeout:.0f}s"
    if res.oom_killed:
        return "the sandbox run ran out of memory"
    if res.error_type:
        return f"the harness failed: {res.error_type}: {res.error_message}"
    if not res.has_answer:
        tail = (res.stderr or res.stdout or "")[-300:]
        return f"the sandbox run ended without a report (exit code {res.exit_code}) {tail}".strip()
    return None


def _alias(jobs: list[Job], extra_tools: dict[str, str]) -> tuple[list[Job], dict[str, str]]:
    """Give each distinct (name, source) its own module name within one run."""
    tools: dict[str, str] = dict(extra_tools)
    packed: list[Job] = []
    for job in jobs:
        name = job.tool
        if tools.get(name, job.source) != job.source:
            for k in itertools.count(2):
                alias = f"{job.tool}__{k}"
                if tools.get(alias) in (None, rename_identifier(job.source, job.tool, alias)):
                    name = alias
                    break
        if name != job.tool:
            job = Job(
                id=job.id,
                tool=name,
                source=rename_identifier(job.source, job.tool, name),
                suites=[
                    Suite(s.label, rename_identifier(s.source, job.tool, name)) for s in job.suites
                ],
                perturb=job.perturb,
            )
        tools[name] = job.source
        packed.append(job)
    return packed, tools


def _job_result(entry: dict[str, Any]) -> JobResult:
    suites = [
        SuiteResult(
            label=s["label"],
            error=s.get("error"),
            tests=[
                TestResult(
                    name=t["name"],
                    status=t["status"],
                    message=t.get("message", ""),
                    seconds=float(t.get("seconds", 0.0)),
                    digest=t.get("digest", ""),
                    calls=int(t.get("calls", 0)),
                )
                for t in s.get("tests", [])
            ],
        )
        for s in entry.get("suites", [])
    ]
    return JobResult(
        id=entry["id"],
        import_error=entry.get("import_error"),
        suites=suites,
        perturb=list(entry.get("perturb", [])),
    )
