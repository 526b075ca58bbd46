"""Running checks in the sandbox and judging them on this side.

One sandbox run per job (a candidate's tests and perturbed calls, a determinism re-run,
a library tool against a candidate's tests): the tool runs in a process of its own, the
test program in another, and no other candidate shares either. Runs go in parallel.

What is trusted: the runner's tool-call records (written by its supervisor from the
calls it brokered) and this module's reading of them. The test program's report is
not: it only says which test made how many calls and how each ended, and it is checked
field by field and against the records (the counts must add up to the calls recorded).
Results, errors, digests for the determinism check and the perturbation outcomes are
read from the records. Anything malformed rejects that job (`run_error`), never the batch.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sandbox.base import ExecResult, Sandbox, ToolCall
from sandbox.runner import VALUE_LIMIT, jsonish
from toolforge.config import ForgeConfig
from toolforge.harness import Job, instrument_program, verify_program

STATUSES = frozenset(["pass", "fail", "error", "timeout", "skipped"])
T = TypeVar("T")
R = TypeVar("R")


@dataclass
class TestResult:
    name: str
    status: str  # pass | fail | error | timeout | skipped
    message: str = ""
    digest: str = ""
    calls: int = 0


@dataclass
class SuiteResult:
    label: str
    error: str | None
    tests: list[TestResult] = field(default_factory=list)


@dataclass
class JobResult:
    """What a job's run showed (or why it showed nothing usable)."""

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
    """Runs jobs in the sandbox, one run each; `runs` counts the sandbox runs made."""

    def __init__(self, sandbox: Sandbox, config: ForgeConfig) -> None:
        self.sandbox = sandbox
        self.config = config
        self.runs = 0

    def run_jobs(self, jobs: Sequence[Job]) -> dict[str, JobResult]:
        """Run every job (in parallel); results by job id."""
        return {r.id: r for r in self._parallel(self._run_job, list(jobs))}

    def run_each(self, groups: Sequence[Sequence[Job]]) -> list[dict[str, JobResult]]:
        """Several job lists (a run and its determinism re-run), all in parallel."""
        flat = [(g, job) for g, group in enumerate(groups) for job in group]
        results = self._parallel(lambda item: self._run_job(item[1]), flat)
        out: list[dict[str, JobResult]] = [{} for _ in groups]
        for (g, _), result in zip(flat, results, strict=True):
            out[g][result.id] = result
        return out

    def _parallel(self, fn: Callable[[T], R], items: list[T]) -> list[R]:
        if len(items) <= 1 or self.config.parallel_runs <= 1:
            return [fn(item) for item in items]
        with ThreadPoolExecutor(max_workers=min(self.config.parallel_runs, len(items))) as pool:
            return list(pool.map(fn, items))

    def _run_job(self, job: Job) -> JobResult:
        cfg = self.config
        timeout = min(
            cfg.max_run_timeout_s,
            cfg.run_overhead_s + cfg.test_timeout_s + 2 * cfg.per_test_timeout_s,
        )
        code = verify_program(job, per_test_s=cfg.per_test_timeout_s, budget_s=cfg.test_timeout_s)
        self.runs += 1
        res = self.sandbox.run(
            code,
            tools={job.tool: job.source},
            timeout_s=timeout,
            tool_timeout_s=cfg.per_test_timeout_s,
        )
        problem = _run_problem(res, timeout)
        if problem is None:
            try:
                result = read_report(job, res.answer, res.tool_calls)
            except ValueError as exc:
                problem = f"the test program's report was refused: {exc}"
            else:
                result.seconds = res.duration_s
                return result
        return JobResult(id=job.id, run_error=problem, seconds=res.duration_s)

    # --- instrumentation ------------------------------------------------------------

    def instrument(
        self, codes: list[str], tools: dict[str, str], tasks: list[str] | None = None
    ) -> list[dict[str, Any]]:
        """Re-run traces' (recorder-annotated) code, one run each, with its task's text as
        TASK (as the act step ran it); one report per code."""
        cfg = self.config
        seconds = max(cfg.test_timeout_s, 1.0)
        timeout = min(cfg.max_run_timeout_s, cfg.run_overhead_s + seconds)

        def one(item: tuple[str, str]) -> dict[str, Any]:
            code, task = item
            self.runs += 1
            program = instrument_program(code, cap=50, limit=2000, seconds=seconds)
            res = self.sandbox.run(program, tools=tools, timeout_s=timeout, inputs={"TASK": task})
            problem = _run_problem(res, timeout)
            if problem is None:
                try:
                    return read_instrument_report(res.answer)
                except ValueError as exc:
                    problem = f"the instrumentation report was refused: {exc}"
            return {"error": problem, "has_answer": False, "answer": None, "calls": []}

        return self._parallel(one, list(zip(codes, tasks or [""] * len(codes), strict=True)))


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


# --------------------------------------------------------------------------- reports


def _str(value: object, what: str, limit: int = 2000, *, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if type(value) is not str or len(value) > limit:
        raise ValueError(f"{what} is not a str of at most {limit} characters")
    return value


def _int(value: object, what: str, low: int, high: int) -> int:
    if type(value) is not int or not low <= value <= high:
        raise ValueError(f"{what} is not an int in [{low}, {high}]")
    return value


def _dict(value: object, keys: set[str], what: str) -> dict[str, Any]:
    if type(value) is not dict or set(value) != keys:
        raise ValueError(f"{what} does not have exactly the fields {sorted(keys)}")
    return value


def _digest(calls: list[ToolCall]) -> str:
    parts = [
        f"raise {c.error_type}" if c.error_type else json.dumps(c.result, sort_keys=True)
        for c in calls
    ]
    return hashlib.sha1("\n".join(parts).encode("utf-8", "replace")).hexdigest()[:16]


def _show(value: object, n: int = 150) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= n else text[:n] + "..."


def read_report(job: Job, answer: object, records: list[ToolCall]) -> JobResult:
    """The job's result from the test program's report, checked against the records.

    Raises ValueError when the report is malformed or does not match the records."""
    report = _dict(answer, {"import_error", "suites", "perturbed"}, "the report")
    import_error = _str(report["import_error"], "import_error", optional=True)
    if any(c.tool != job.tool for c in records):
        raise ValueError("a record names another tool than the job's")
    if import_error is not None:
        if records:
            raise ValueError("the tool failed to import, yet calls were recorded")
        return JobResult(id=job.id, import_error=import_error)
    suites_raw = report["suites"]
    if type(suites_raw) is not list or len(suites_raw) != len(job.suites):
        raise ValueError("the report does not have one entry per suite")
    perturbed = _int(report["perturbed"], "perturbed", 0, len(job.perturb))
    pos = 0
    suites: list[SuiteResult] = []
    for asked, raw in zip(job.suites, suites_raw, strict=True):
        raw = _dict(raw, {"label", "error", "tests"}, "a suite")
        if raw["label"] != asked.label:
            raise ValueError("the suites are not in the order they were given")
        tests_raw = raw["tests"]
        if type(tests_raw) is not list or len(tests_raw) > 1000:
            raise ValueError("tests is not a list")
        tests: list[TestResult] = []
        for t in tests_raw:
            t = _dict(t, {"name", "status", "message", "calls"}, "a test")
            name = _str(t["name"], "a test name", 200) or ""
            if not name.isidentifier() or t["status"] not in STATUSES:
                raise ValueError("a test has a malformed name or status")
            n = _int(t["calls"], "calls", 0, len(records) - pos)
            mine = records[pos : pos + n]
            pos += n
            result = TestResult(
                name, t["status"], _str(t["message"], "a message") or "", _digest(mine), n
            )
            _judge_test(result, mine)
            tests.append(result)
        suites.append(
            SuiteResult(asked.label, _str(raw["error"], "a suite error", optional=True), tests)
        )
    if pos + perturbed != len(records):
        raise ValueError(
            f"{len(records)} calls were recorded, the report accounts for {pos + perturbed}"
        )
    perturb = []
    for (label, args, kwargs), call in zip(job.perturb, records[pos:], strict=False):
        if json.dumps([call.args, call.kwargs]) != json.dumps(_asked(args, kwargs)):
            raise ValueError("a perturbed call was not made with the arguments asked for")
        perturb.append(
            {
                "label": label,
                "status": "ok" if call.ok else _call_status(call),
                "error_type": call.error_type,
                "message": (call.error_message or "")[:200],
                "result": _show(call.result, 200) if call.ok else "",
                "digest": _digest([call]),
            }
        )
    for label, _args, _kwargs in job.perturb[perturbed:]:
        perturb.append(
            {
                "label": label,
                "status": "skipped",
                "error_type": None,
                "message": "the candidate's time budget was used up",
                "digest": "",
            }
        )
    return JobResult(id=job.id, suites=suites, perturb=perturb)


def _asked(args: str, kwargs: str) -> list[Any]:
    import ast

    a, k = ast.literal_eval(args), ast.literal_eval(kwargs)
    return [
        [jsonish(v, VALUE_LIMIT)[0] for v in a],
        {n: jsonish(v, VALUE_LIMIT)[0] for n, v in k.items()},
    ]


def _call_status(call: ToolCall) -> str:
    stopped = call.error_type == "TimeoutError" and "took longer than" in (call.error_message or "")
    return "timeout" if stopped else "error"


def _judge_test(test: TestResult, calls: list[ToolCall]) -> None:
    """The report's word on a test, held against what the records show."""
    if test.status == "pass" and not calls:
        test.status, test.message = "fail", "the test passed without calling the tool"
        return
    if test.status in ("fail", "error") and calls:
        last = calls[-1]
        if _call_status(last) == "timeout":
            test.status = "timeout"
            test.message = f"a call exceeded the per-test limit ({last.error_message})"
        elif last.ok:
            test.message = f"{test.message} (last result: {_show(last.result)})".strip()
        else:
            test.message = f"{test.message} (the tool raised {last.error_type}: {(last.error_message or '')[:150]})".strip()


def read_instrument_report(answer: object) -> dict[str, Any]:
    """An instrumentation report, checked (it only proposes tests: see in_sandbox.py)."""
    report = _dict(answer, {"error", "has_answer", "answer", "calls"}, "the report")
    _str(report["error"], "error", optional=True)
    if type(report["has_answer"]) is not bool:
        raise ValueError("has_answer is not a bool")
    calls = report["calls"]
    if type(calls) is not list or len(calls) > 10_000:
        raise ValueError("calls is not a list")
    for call in calls:
        call = _dict(call, {"name", "depth", "args", "result", "error"}, "a call")
        name = _str(call["name"], "a function name", 200) or ""
        if not name.isidentifier():
            raise ValueError("a call names no function")
        _int(call["depth"], "depth", 0, 10_000)
        _str(call["args"], "args", 4000, optional=True)
        _str(call["result"], "result", 4000, optional=True)
        _str(call["error"], "error", 200, optional=True)
    return report
