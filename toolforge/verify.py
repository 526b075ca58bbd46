"""Running a job's checks in the sandbox and judging them on this side.

A job's probes (literal test calls, perturbed inputs, real tasks) are made by the plain
caller program (`harness.CALLER`); the tool answers each in a process of its own, and
the supervisor records every call. The verdict of each probe is reached HERE, from those
records: the call was made with the arguments asked for (checked), and what it gave meets
the test's expectation (`assertions.meets`, on the value decoded from the record's plain
encoding). No test code runs for them, so none can rig its own verdict; a test counts as
passed only when every call it asked for met its expectation and at least one of them
returned (a test whose every call raised proves nothing).

Opaque tests (code the host cannot read as calls) run in the test program
(`in_sandbox.py`) in a run of their own. Its report is checked field by field against
the records, and believed only where it says a test failed: a pass there is `unchecked`.

Anything malformed rejects that job (`run_error`), never the batch. Runs go in parallel.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from memory.protocol import ToolSearch
from memory.tools import imported_tools
from sandbox.base import ExecResult, Sandbox, ToolCall
from sandbox.runner.codec import VALUE_LIMIT, jsonish
from toolforge.assertions import meets
from toolforge.config import ForgeConfig
from toolforge.harness import Call, Job, caller_program, instrument_program, suite_program

STATUSES = frozenset(["pass", "fail", "error", "timeout", "skipped"])
#: groups of probes that are not tests: their outcome is read by the judge, not summed up
#: into test verdicts
FREE_GROUPS = ("perturb", "origin", "sibling", "failed")
T = TypeVar("T")
R = TypeVar("R")


@dataclass
class TestResult:
    name: str
    status: str  # pass | fail | error | timeout | skipped | unchecked
    message: str = ""
    digest: str = ""
    calls: int = 0
    #: the verdict was reached on this side, from the records (a literal test)
    checked: bool = False
    #: at least one of its calls returned (a test whose every call raised proves nothing)
    returned: bool = False


@dataclass
class SuiteResult:
    label: str
    error: str | None
    tests: list[TestResult] = field(default_factory=list)


@dataclass
class ProbeResult:
    """What one free probe (a perturbation, a real input) gave, from its record."""

    group: str
    label: str
    status: str  # ok | error | timeout | skipped
    args: tuple[Any, ...] = ()
    error_type: str | None = None
    message: str = ""
    value: Any = None
    shown: str = ""
    digest: str = ""


@dataclass
class JobResult:
    """What a job's runs showed (or why they showed nothing usable)."""

    id: str
    import_error: str | None = None
    run_error: str | None = None
    suites: list[SuiteResult] = field(default_factory=list)
    probes: list[ProbeResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def error(self) -> str | None:
        if self.run_error:
            return self.run_error
        if self.import_error:
            return f"importing the tool failed: {self.import_error}"
        return None

    @property
    def perturb(self) -> list[ProbeResult]:
        return [p for p in self.probes if p.group == "perturb"]

    def free(self, group: str) -> list[ProbeResult]:
        return [p for p in self.probes if p.group == group]

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
                if test.status not in ("pass", "unchecked"):
                    detail = f": {test.message}" if test.message else ""
                    out.append(f"test {test.name} {_verb(test.status)}{detail}")
        return out

    def n_tests(self, label: str | None = None) -> int:
        return sum(len(s.tests) for s in self.suites if label is None or s.label == label)

    def n_confirmed(self, label: str | None = None) -> int:
        """Tests this side judged passed, with at least one call that returned."""
        return sum(
            1
            for s in self.suites
            if label is None or s.label == label
            for t in s.tests
            if t.checked and t.status == "pass" and t.returned
        )

    def passed(self, label: str | None = None) -> bool:
        return not self.failures(label) and self.n_confirmed(label) > 0

    def fingerprint(self) -> list[tuple[Any, ...]]:
        """What must be identical between a run and its determinism re-run."""
        out: list[tuple[Any, ...]] = []
        for suite in self.suites:
            for t in suite.tests:
                out.append((suite.label, t.name, t.status, t.digest))
        for p in self.probes:
            out.append((p.group, p.label, p.status, p.error_type, p.digest))
        return out


def _verb(status: str) -> str:
    return {
        "fail": "failed",
        "error": "raised",
        "timeout": "timed out",
        "skipped": "was skipped",
    }.get(status, status)


class Verifier:
    """Runs jobs in the sandbox; `runs` counts the sandbox runs made. With a `library`, a
    tool that imports library tools runs with their current sources beside it (a call
    stays a call: `toolforge/composition.py`); without one, such an import fails on record."""

    def __init__(
        self, sandbox: Sandbox, config: ForgeConfig, library: ToolSearch | None = None
    ) -> None:
        self.sandbox = sandbox
        self.config = config
        self.library = library
        self.runs = 0

    def _with_deps(self, job: Job) -> None:
        """Fill `job.deps` from the library (this side): the tools its module imports."""
        wanted = [n for n in imported_tools(job.source) if n != job.tool]
        if job.deps or self.library is None or not wanted:
            return
        known = set(self.library.tool_names())
        sources = self.library.tool_sources([n for n in wanted if n in known])
        job.deps = {n: src for n, src in sources.items() if n != job.tool}

    def run_jobs(self, jobs: Sequence[Job]) -> dict[str, JobResult]:
        """Run every job (in parallel); results by job id."""
        return self.run_each([jobs])[0]

    def run_each(self, groups: Sequence[Sequence[Job]]) -> list[dict[str, JobResult]]:
        """Several job lists (a run and its determinism re-run), all in parallel."""
        pieces: list[tuple[int, Job, str]] = []
        for g, group in enumerate(groups):
            for job in group:
                self._with_deps(job)
                if job.calls or not job.suites:
                    pieces.append((g, job, "calls"))
                if job.suites:
                    pieces.append((g, job, "suites"))
        done = self._parallel(lambda item: self._run(item[1], item[2]), pieces)
        parts: dict[tuple[int, str], dict[str, Any]] = {}
        for (g, job, kind), res in zip(pieces, done, strict=True):
            parts.setdefault((g, job.id), {"job": job})[kind] = res
        out: list[dict[str, JobResult]] = [{} for _ in groups]
        for (g, job_id), got in parts.items():
            out[g][job_id] = self._result(got["job"], got.get("calls"), got.get("suites"))
        return out

    def _parallel(self, fn: Callable[[T], R], items: list[T]) -> list[R]:
        if len(items) <= 1 or self.config.parallel_runs <= 1:
            return [fn(item) for item in items]
        with ThreadPoolExecutor(max_workers=min(self.config.parallel_runs, len(items))) as pool:
            return list(pool.map(fn, items))

    def _timeout(self) -> float:
        cfg = self.config
        return min(
            cfg.max_run_timeout_s,
            cfg.run_overhead_s + cfg.test_timeout_s + 2 * cfg.per_test_timeout_s,
        )

    def _run(self, job: Job, kind: str) -> ExecResult:
        cfg = self.config
        self.runs += 1
        if kind == "calls":
            calls = [[list(c.probe.args), dict(c.probe.kwargs)] for c in job.calls]
            return self.sandbox.run(
                caller_program(job.tool),
                tools={**job.deps, job.tool: job.source},
                timeout_s=self._timeout(),
                tool_timeout_s=cfg.per_test_timeout_s,
                inputs={"CALLS": calls},
            )
        program = suite_program(job, per_test_s=cfg.per_test_timeout_s, budget_s=cfg.test_timeout_s)
        return self.sandbox.run(
            program,
            tools={**job.deps, job.tool: job.source},
            timeout_s=self._timeout(),
            tool_timeout_s=cfg.per_test_timeout_s,
        )

    def _result(self, job: Job, calls: ExecResult | None, suites: ExecResult | None) -> JobResult:
        result = JobResult(id=job.id)
        seconds = 0.0
        try:
            if calls is not None:
                seconds += calls.duration_s
                read_calls(job, calls, result, self._timeout())
            if suites is not None and result.error is None:
                seconds += suites.duration_s
                problem = run_problem(suites, self._timeout())
                if problem is not None:
                    raise ValueError(problem)
                read_report(job, suites.answer, suites.tool_calls, result)
        except ValueError as exc:
            result = JobResult(id=job.id, run_error=str(exc))
        result.seconds = seconds
        if result.error is None:
            _order_suites(job, result)
        return result

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
            problem = run_problem(res, timeout)
            if problem is None:
                try:
                    return read_instrument_report(res.answer)
                except ValueError as exc:
                    problem = f"the instrumentation report was refused: {exc}"
            return {"error": problem, "has_answer": False, "answer": None, "calls": []}

        return self._parallel(one, list(zip(codes, tasks or [""] * len(codes), strict=True)))


def run_problem(res: ExecResult, timeout: float) -> str | None:
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


# --------------------------------------------------------------------------- probes


def read_calls(job: Job, res: ExecResult, result: JobResult, timeout: float) -> None:
    """The probes' outcomes from the supervisor's records of the caller's run, judged
    here. Raises ValueError when the records are not what the caller asked for."""
    if res.oom_killed:
        raise ValueError("the sandbox run ran out of memory")
    records = own_records(job, res.tool_calls)
    if res.error_type == "ImportError" and not records:
        result.import_error = res.error_message or "the tool could not be imported"
        return
    if res.error_type or res.exit_code:
        why = res.error_type or f"exit code {res.exit_code}"
        if not res.timed_out:
            raise ValueError(f"the caller program failed: {why}: {res.error_message or ''}".strip())
    if len(records) > len(job.calls):
        raise ValueError(f"{len(records)} calls were recorded, {len(job.calls)} were asked for")
    tests: dict[tuple[str, str], list[tuple[Call, ToolCall | None]]] = {}
    for i, call in enumerate(job.calls):
        record = records[i] if i < len(records) else None
        if record is not None and _args_of(record) != _args_of_probe(call):
            raise ValueError("a call was not made with the arguments asked for")
        if call.group in FREE_GROUPS or not call.test:
            result.probes.append(_free(call, record))
        else:
            tests.setdefault((call.group, call.test), []).append((call, record))
    by_group: dict[str, SuiteResult] = {}
    for (group, name), pairs in tests.items():
        suite = by_group.setdefault(group, SuiteResult(group, None))
        suite.tests.append(_judge_test(name, pairs))
    result.suites.extend(by_group.values())


def own_records(job: Job, records: list[ToolCall]) -> list[ToolCall]:
    """The records of the job's tool. Calls it made of the tools it imports are recorded
    too and left out here: no callee imports the job's tool (`composition.circle_problem`),
    so every record of the job's tool is a call the caller program or the tests made.
    Raises ValueError for a record of any other tool."""
    if any(c.tool != job.tool and c.tool not in job.deps for c in records):
        raise ValueError("a record names another tool than the job's or its callees'")
    return [c for c in records if c.tool == job.tool]


def _args_of(record: ToolCall) -> str:
    return json.dumps([record.args, record.kwargs], sort_keys=True)


def _args_of_probe(call: Call) -> str:
    args = [jsonish(v, VALUE_LIMIT)[0] for v in call.probe.args]
    kwargs = {k: jsonish(v, VALUE_LIMIT)[0] for k, v in call.probe.kwargs.items()}
    return json.dumps([args, kwargs], sort_keys=True)


def _digest(records: list[ToolCall | None]) -> str:
    parts = [
        "missing"
        if c is None
        else (f"raise {c.error_type}" if c.error_type else json.dumps(c.plain, sort_keys=True))
        for c in records
    ]
    return hashlib.sha1("\n".join(parts).encode("utf-8", "replace")).hexdigest()[:16]


def _status(record: ToolCall | None) -> str:
    if record is None:
        return "skipped"
    if record.ok:
        return "ok"
    stopped = record.error_type == "TimeoutError" and "took longer than" in (
        record.error_message or ""
    )
    return "timeout" if stopped else "error"


def _value(record: ToolCall) -> Any:
    try:
        return record.value()
    except ValueError:
        return None


def _free(call: Call, record: ToolCall | None) -> ProbeResult:
    status = _status(record)
    out = ProbeResult(call.group, call.label, status, call.probe.args, digest=_digest([record]))
    if record is None:
        out.message = "the candidate's time budget was used up"
        return out
    out.error_type = record.error_type
    out.message = (record.error_message or "")[:200]
    if record.ok:
        out.value = _value(record)
        out.shown = _show(record.result, 200)
    return out


def _judge_test(name: str, pairs: list[tuple[Call, ToolCall | None]]) -> TestResult:
    """One literal test's verdict from the records of its calls."""
    records = [r for _, r in pairs]
    test = TestResult(name, "pass", digest=_digest(records), calls=len(pairs), checked=True)
    test.returned = any(r is not None and r.ok for r in records)
    for call, record in pairs:
        status = _status(record)
        if status == "skipped":
            test.status, test.message = "skipped", "the candidate's time budget was used up"
            return test
        if status == "timeout":
            assert record is not None
            test.status = "timeout"
            test.message = f"a call exceeded the per-test limit ({record.error_message})"
            return test
        assert record is not None
        if record.cut:
            test.status, test.message = "fail", "a call's values were too large to check"
            return test
        problem = meets(
            call.probe.expect,
            record.ok,
            _value(record) if record.ok else None,
            record.error_type,
            record.error_message,
        )
        if problem is not None:
            test.status = (
                "error"
                if not record.ok and call.probe.expect and call.probe.expect.op != "raises"
                else "fail"
            )
            args = ", ".join(_show(a, 60) for a in record.args)
            test.message = f"{_show(call.probe.args[0] if len(call.probe.args) == 1 else args, 120)}: {problem}"
            return test
    # A test whose every call raised (as it expected) passes, but proves nothing of what
    # the tool computes: it is not `returned`, and `n_confirmed` leaves it out.
    return test


def _show(value: object, n: int = 150) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= n else text[:n] + "..."


def _order_suites(job: Job, result: JobResult) -> None:
    """Suites in the order the job's groups were given; tests in file order."""
    order = list(job.tests)
    result.suites.sort(key=lambda s: order.index(s.label) if s.label in order else len(order))
    for suite in result.suites:
        names = job.tests.get(suite.label, [])
        suite.tests.sort(key=lambda t: names.index(t.name) if t.name in names else len(names))


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


def read_report(job: Job, answer: object, records: list[ToolCall], result: JobResult) -> None:
    """The opaque tests' outcomes from the test program's report, checked against the
    records; added to `result`. A failure it reports is believed (a test can only hurt
    itself by lying so); a pass is `unchecked`. Raises ValueError when the report is
    malformed or does not match the records."""
    report = _dict(answer, {"import_error", "suites"}, "the report")
    import_error = _str(report["import_error"], "import_error", optional=True)
    records = own_records(job, records)
    if import_error is not None:
        if records:
            raise ValueError("the tool failed to import, yet calls were recorded")
        result.import_error = import_error
        return
    suites_raw = report["suites"]
    if type(suites_raw) is not list or len(suites_raw) != len(job.suites):
        raise ValueError("the report does not have one entry per suite")
    pos = 0
    for asked, raw in zip(job.suites, suites_raw, strict=True):
        raw = _dict(raw, {"label", "error", "tests"}, "a suite")
        if raw["label"] != asked.label:
            raise ValueError("the suites are not in the order they were given")
        tests_raw = raw["tests"]
        if type(tests_raw) is not list or len(tests_raw) > 1000:
            raise ValueError("tests is not a list")
        suite = next((s for s in result.suites if s.label == asked.label), None)
        if suite is None:
            suite = SuiteResult(asked.label, None)
            result.suites.append(suite)
        suite.error = _str(raw["error"], "a suite error", optional=True)
        for t in tests_raw:
            t = _dict(t, {"name", "status", "message", "calls"}, "a test")
            name = _str(t["name"], "a test name", 200) or ""
            if not name.isidentifier() or t["status"] not in STATUSES:
                raise ValueError("a test has a malformed name or status")
            n = _int(t["calls"], "calls", 0, len(records) - pos)
            mine = records[pos : pos + n]
            pos += n
            status = t["status"]
            message = _str(t["message"], "a message") or ""
            why = job.opaque.get((asked.label, name))
            if status == "pass":
                # Its own word: the test code ran in the process that reports on it.
                status = "unchecked"
                message = f"its verdict cannot be checked here ({why or 'not literal calls'})"
            elif status in ("fail", "error") and mine:
                last = mine[-1]
                if _status(last) == "timeout":
                    status = "timeout"
                    message = f"a call exceeded the per-test limit ({last.error_message})"
                elif last.ok:
                    message = f"{message} (last result: {_show(last.result)})".strip()
                else:
                    message = f"{message} (the tool raised {last.error_type}: {(last.error_message or '')[:150]})".strip()
            suite.tests.append(
                TestResult(
                    name, status, message, _digest(list(mine)), n, returned=any(c.ok for c in mine)
                )
            )
    if pos != len(records):
        raise ValueError(f"{len(records)} calls were recorded, the report accounts for {pos}")


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
