"""Programs the forge runs inside the sandbox.

Two harnesses, both plain Python that sets the global `answer` to a JSON report:

- `verify_program(jobs)`: for each job (a tool module given to the sandbox as
  `tools={name: source}`), import it with `from tools import <name>`, run each test
  suite's `test_*` functions one by one under a per-test alarm, then call the tool on
  perturbed inputs. Many jobs share one run: one container start per batch.
- `instrument_program(traces)`: re-run successful traces' code with every top-level
  function wrapped by a recorder, to observe the calls (arguments and results, as
  Python literals) of functions the model wrote itself; the sandbox runner only
  records calls of library tools.

The harness code runs in the sandbox with the untrusted code, so it keeps its state in
function locals, and the report is only what it returns at the end.
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass, field
from typing import Any

_COMMON = r'''
import ast as _ast
import hashlib as _hashlib
import json as _json
import re as _re
import signal as _signal
import sys as _sys
import time as _time
import types as _types


class _ForgeTimeout(BaseException):
    """Raised by the alarm; a BaseException so `except Exception` cannot swallow it."""


def _on_alarm(signum, frame):
    raise _ForgeTimeout()


try:
    _signal.signal(_signal.SIGALRM, _on_alarm)
    _ALARM = True
except (ValueError, AttributeError, OSError):  # not the main thread: measure instead
    _ALARM = False


def _arm(seconds):
    if _ALARM:
        _signal.setitimer(_signal.ITIMER_REAL, seconds)


def _disarm():
    if _ALARM:
        _signal.setitimer(_signal.ITIMER_REAL, 0)


def _short(text, n=300):
    text = str(text)
    return text if len(text) <= n else text[:n] + "..."


def _crepr(x, depth=0):
    """A repr that is the same in every process (sets sorted, no memory addresses)."""
    if depth > 30:
        return "..."
    if isinstance(x, (set, frozenset)):
        inner = sorted(_crepr(e, depth + 1) for e in x)
        return type(x).__name__ + "{" + ", ".join(inner) + "}"
    if isinstance(x, dict):
        return "{" + ", ".join(
            _crepr(k, depth + 1) + ": " + _crepr(v, depth + 1) for k, v in x.items()
        ) + "}"
    if isinstance(x, list):
        return "[" + ", ".join(_crepr(e, depth + 1) for e in x) + "]"
    if isinstance(x, tuple):
        return "(" + ", ".join(_crepr(e, depth + 1) for e in x) + ",)"
    try:
        text = repr(x)
    except BaseException as exc:
        text = "<unrepresentable " + type(exc).__name__ + ">"
    return _re.sub(r" at 0x[0-9a-fA-F]+", "", text)
'''

_VERIFY = r'''

def _digest(lines):
    return _hashlib.sha1("\n".join(lines).encode("utf-8", "replace")).hexdigest()[:16]


def _failing_line(exc, label, source):
    """The test-file line an exception came from, to name what failed."""
    tb = exc.__traceback__
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<tests " + label + ">":
            line = tb.tb_lineno
        tb = tb.tb_next
    if line is None:
        return ""
    lines = source.splitlines()
    return lines[line - 1].strip() if 0 < line <= len(lines) else ""


def _make_spy(fn, log):
    def spy(*args, **kwargs):
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            log.append("raise " + type(exc).__name__)
            raise
        log.append(_crepr(result))
        return result

    spy.__name__ = getattr(fn, "__name__", "tool")
    spy.__doc__ = getattr(fn, "__doc__", None)
    spy.__wrapped__ = fn
    return spy


def _install_pytest_shim():
    """Tests may use pytest.raises / pytest.approx; the image need not have pytest."""
    try:
        import pytest  # noqa: F401
        return
    except ImportError:
        pass
    import contextlib

    mod = _types.ModuleType("pytest")

    class _Info:
        value = None
        type = None

    @contextlib.contextmanager
    def raises(expected, match=None):
        info = _Info()
        try:
            yield info
        except expected as exc:
            info.value, info.type = exc, type(exc)
            if match is not None and not _re.search(match, str(exc)):
                raise AssertionError("exception message %r does not match %r" % (str(exc), match))
            return
        raise AssertionError("DID NOT RAISE " + getattr(expected, "__name__", str(expected)))

    class approx:
        def __init__(self, expected, rel=1e-6, abs=1e-12):
            self.expected, self.rel, self.abs = expected, rel, abs

        def __eq__(self, other):
            return abs(other - self.expected) <= max(self.rel * abs(self.expected), self.abs)

        def __repr__(self):
            return "approx(%r)" % (self.expected,)

    mod.raises, mod.approx = raises, approx
    _sys.modules["pytest"] = mod


def _run_suite(suite, log, deadline, per_test):
    label, source = suite["label"], suite["source"]
    out = {"label": label, "error": None, "tests": []}
    ns = {"__name__": "forge_tests"}
    try:
        _arm(per_test)
        try:
            exec(compile(source, "<tests " + label + ">", "exec"), ns)
        finally:
            _disarm()
    except BaseException as exc:
        out["error"] = type(exc).__name__ + ": " + _short(exc)
        return out
    for name, fn in list(ns.items()):
        if not (name.startswith("test") and isinstance(fn, _types.FunctionType)):
            continue
        rec = {"name": name, "status": "pass", "message": "", "seconds": 0.0}
        out["tests"].append(rec)
        if fn.__code__.co_argcount or fn.__code__.co_kwonlyargcount:
            rec["status"], rec["message"] = "error", "takes parameters (fixtures are not supported)"
            continue
        if _time.perf_counter() > deadline:
            rec["status"], rec["message"] = "skipped", "the candidate's time budget was used up"
            continue
        del log[:]
        start = _time.perf_counter()
        try:
            _arm(per_test)
            try:
                fn()
            finally:
                _disarm()
        except _ForgeTimeout:
            rec["status"] = "timeout"
            rec["message"] = "exceeded the per-test limit of %gs" % per_test
        except AssertionError as exc:
            rec["status"] = "fail"
            where = _failing_line(exc, label, source)
            got = (" (last result: " + _short(log[-1], 150) + ")") if log else ""
            rec["message"] = _short((str(exc) + " " if str(exc) else "") + where + got, 400)
        except BaseException as exc:
            rec["status"] = "error"
            where = _failing_line(exc, label, source)
            rec["message"] = _short(type(exc).__name__ + ": " + _short(exc, 200) + " at " + where, 400)
        seconds = _time.perf_counter() - start
        rec["seconds"] = round(seconds, 4)
        if rec["status"] == "pass" and not _ALARM and seconds > per_test:
            rec["status"] = "timeout"
            rec["message"] = "took %.2fs, over the per-test limit of %gs" % (seconds, per_test)
        rec["calls"] = len(log)
        rec["digest"] = _digest(log)
        rec["first"] = _short(log[0], 150) if log else ""
    return out


def _run_job(job):
    name = job["tool"]
    out = {"id": job["id"], "import_error": None, "suites": [], "perturb": []}
    deadline = _time.perf_counter() + job["budget"]
    per_test = job["per_test"]
    ns = {}
    try:
        _arm(per_test)
        try:
            exec("from tools import " + name + " as _tool", ns)
        finally:
            _disarm()
        fn = ns["_tool"]
    except BaseException as exc:
        out["import_error"] = type(exc).__name__ + ": " + _short(exc)
        return out
    tools_module = _sys.modules["tools"]  # the import above succeeded, so it is there
    log = []
    # Tests import the tool by name; hand them a spy so their calls' results can be
    # compared between the run and its determinism re-run.
    setattr(tools_module, name, _make_spy(fn, log))
    try:
        for suite in job["suites"]:
            out["suites"].append(_run_suite(suite, log, deadline, per_test))
    finally:
        setattr(tools_module, name, fn)
    for item in job.get("perturb", []):
        rec = {"label": item["label"], "status": "ok", "error_type": None, "message": "", "result": ""}
        out["perturb"].append(rec)
        if _time.perf_counter() > deadline:
            rec["status"], rec["message"] = "skipped", "the candidate's time budget was used up"
            continue
        try:
            args, kwargs = _ast.literal_eval(item["args"]), _ast.literal_eval(item["kwargs"])
            _arm(per_test)
            try:
                result = fn(*args, **kwargs)
            finally:
                _disarm()
            rec["result"] = _short(_crepr(result), 200)
            rec["digest"] = _digest([_crepr(result)])
        except _ForgeTimeout:
            rec["status"], rec["message"] = "timeout", "exceeded the per-test limit of %gs" % per_test
        except BaseException as exc:
            rec["status"], rec["error_type"] = "error", type(exc).__name__
            rec["message"] = _short(exc, 200)
    return out


def _main(jobs):
    _install_pytest_shim()
    report = {"alarm": _ALARM, "jobs": []}
    for job in jobs:
        try:
            report["jobs"].append(_run_job(job))
        except BaseException as exc:
            report["jobs"].append({"id": job["id"], "import_error": "harness: " + type(exc).__name__ + ": " + _short(exc), "suites": [], "perturb": []})
    return report


answer = _main(_JOBS)
'''

_INSTRUMENT = r'''

def _literal_repr(value, limit):
    """repr(value) if it reads back as an equal Python literal, else None."""
    try:
        text = repr(value)
        if len(text) > limit:
            return None
        return text if _ast.literal_eval(text) == value else None
    except BaseException:
        return None


def _make_recorder(calls, state, cap, limit):
    def record(name):
        def deco(fn):
            def wrapper(*args, **kwargs):
                seen = state["seen"].get(name, 0)
                if seen >= cap:
                    return fn(*args, **kwargs)
                state["seen"][name] = seen + 1
                # Arguments are captured before the call: the function may mutate them.
                args_src = _literal_repr((tuple(args), dict(kwargs)), limit)
                depth = state["depth"]
                state["depth"] = depth + 1
                try:
                    result = fn(*args, **kwargs)
                except BaseException as exc:
                    calls.append({"name": name, "depth": depth, "args": args_src, "result": None, "error": type(exc).__name__})
                    raise
                finally:
                    state["depth"] = depth
                calls.append({"name": name, "depth": depth, "args": args_src, "result": _literal_repr(result, limit), "error": None})
                return result

            wrapper.__name__ = getattr(fn, "__name__", name)
            wrapper.__doc__ = getattr(fn, "__doc__", None)
            wrapper.__wrapped__ = fn
            return wrapper

        return deco

    return record


def _jsonish(value):
    try:
        return _json.loads(_json.dumps(value))
    except BaseException:
        return repr(value)


def _main(traces, cap, limit, seconds):
    report = []
    for item in traces:
        calls = []
        state = {"seen": {}, "depth": 0}
        ns = {"__name__": "__main__", "__forge_record__": _make_recorder(calls, state, cap, limit)}
        out = {"error": None, "has_answer": False, "answer": None, "calls": calls}
        try:
            _arm(seconds)
            try:
                exec(compile(item["code"], "<trace>", "exec"), ns)
            finally:
                _disarm()
        except _ForgeTimeout:
            out["error"] = "timeout after %gs" % seconds
        except BaseException as exc:
            out["error"] = type(exc).__name__ + ": " + _short(exc)
        if "answer" in ns:
            out["has_answer"], out["answer"] = True, _jsonish(ns["answer"])
        report.append(out)
    return report


answer = _main(_TRACES, _CAP, _LIMIT, _SECONDS)
'''


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


def verify_program(jobs: list[Job], *, per_test_s: float, budget_s: float) -> str:
    payload = [
        {
            "id": job.id,
            "tool": job.tool,
            "budget": budget_s,
            "per_test": per_test_s,
            "suites": [{"label": s.label, "source": s.source} for s in job.suites],
            "perturb": [{"label": p[0], "args": p[1], "kwargs": p[2]} for p in job.perturb],
        }
        for job in jobs
    ]
    return _COMMON + f"\n_JOBS = _json.loads({json.dumps(payload)!r})\n" + _VERIFY


def instrument_program(codes: list[str], *, cap: int, limit: int, seconds: float) -> str:
    payload = [{"code": code} for code in codes]
    head = (
        f"\n_TRACES = _json.loads({json.dumps(payload)!r})\n"
        f"_CAP = {cap!r}\n_LIMIT = {limit!r}\n_SECONDS = {seconds!r}\n"
    )
    return _COMMON + head + _INSTRUMENT


def add_recorders(code: str) -> tuple[str, list[str]]:
    """The trace's code with `@__forge_record__("name")` on every top-level function.

    Raises SyntaxError when the code does not parse.
    """
    tree = ast.parse(code)
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


def parse_report(answer: Any) -> Any:
    """The harness report, whether the runner returned it as JSON or as a string."""
    if isinstance(answer, str):
        try:
            return json.loads(answer)
        except json.JSONDecodeError:
            return ast.literal_eval(answer)
    return answer
