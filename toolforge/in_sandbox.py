"""The program the forge runs in the sandbox (sent as source; never imported there).

The host appends one line, `answer = main(<job as JSON>)`. Two kinds of job:

- `verify`: the *opaque* tests of a candidate (those the host cannot read as literal
  calls; `toolforge/assertions.py`). The tool is imported with `from tools import
  <tool>`: the sandbox runs it in a process of its own, so this program only ever sees
  plain data coming back. Each `test_*` function runs under a per-test alarm, and the
  program counts the tool calls each test made. Test code runs in this very process and
  can reach it, so the host believes its report only where it says a test FAILED (and
  checks the counts against the supervisor's records); a pass proves nothing. The literal
  tests, perturbed inputs and real inputs never come here: the host makes those calls
  with a plain caller program and checks them itself.
- `instrument`: re-run one solution with a recorder on each of its top-level functions,
  to observe calls of functions the model wrote itself (the runner records library tools
  only). What it observes only proposes tests; the candidate must then pass them in
  its own process, in a `verify` job.

Standard library only; state in function locals.
"""

from __future__ import annotations

import ast
import json
import re
import signal
import sys
import time
import types
from typing import Any


class ForgeTimeout(BaseException):
    """Raised by the alarm; a BaseException so `except Exception` cannot swallow it."""


def _on_alarm(signum: int, frame: object) -> None:
    raise ForgeTimeout()


def _alarm(seconds: float) -> None:
    signal.setitimer(signal.ITIMER_REAL, seconds)


def _short(text: object, n: int = 300) -> str:
    text = str(text)
    return text if len(text) <= n else text[:n] + "..."


def main(job: dict[str, Any]) -> Any:
    signal.signal(signal.SIGALRM, _on_alarm)
    if job["kind"] == "instrument":
        return instrument(job)
    return verify(job)


# --------------------------------------------------------------------------- verify


def verify(job: dict[str, Any]) -> dict[str, Any]:
    name, per_test = job["tool"], job["per_test"]
    deadline = time.perf_counter() + job["budget"]
    out: dict[str, Any] = {"import_error": None, "suites": []}
    ns: dict[str, Any] = {}
    try:
        _alarm(per_test + 5)  # the tool's process starts and imports its module
        try:
            exec("from tools import " + name + " as tool", ns)
        finally:
            _alarm(0)
    except BaseException as exc:
        out["import_error"] = type(exc).__name__ + ": " + _short(exc)
        return out
    tool = ns["tool"]
    _install_pytest_shim()
    counter = [0]

    def counted(*args: object, **kwargs: object) -> Any:
        counter[0] += 1
        return tool(*args, **kwargs)

    # Tests import the tool by name: they get the counting wrapper.
    setattr(sys.modules["tools"], name, counted)
    for suite in job["suites"]:
        out["suites"].append(_run_suite(suite, counter, deadline, per_test))
    return out


def _run_suite(
    suite: dict[str, Any], counter: list[int], deadline: float, per_test: float
) -> dict[str, Any]:
    label, source = suite["label"], suite["source"]
    out: dict[str, Any] = {"label": label, "error": None, "tests": []}
    ns: dict[str, Any] = {"__name__": "forge_tests"}
    filename = "<tests " + label + ">"
    try:
        _alarm(per_test)
        try:
            exec(compile(source, filename, "exec"), ns)
        finally:
            _alarm(0)
    except BaseException as exc:
        out["error"] = type(exc).__name__ + ": " + _short(exc)
        return out
    for test_name, fn in list(ns.items()):
        if not (test_name.startswith("test") and isinstance(fn, types.FunctionType)):
            continue
        rec: dict[str, Any] = {"name": test_name, "status": "pass", "message": "", "calls": 0}
        out["tests"].append(rec)
        if fn.__code__.co_argcount or fn.__code__.co_kwonlyargcount:
            rec["status"], rec["message"] = "error", "takes parameters (fixtures are not supported)"
            continue
        if time.perf_counter() > deadline:
            rec["status"], rec["message"] = "skipped", "the candidate's time budget was used up"
            continue
        before = counter[0]
        try:
            _alarm(per_test + 1)  # a slow tool call is stopped by the runner at per_test
            try:
                fn()
            finally:
                _alarm(0)
        except ForgeTimeout:
            rec["status"] = "timeout"
            rec["message"] = f"exceeded the per-test limit of {per_test:g}s"
        except AssertionError as exc:
            rec["status"] = "fail"
            where = _failing_line(exc, filename, source)
            rec["message"] = _short((str(exc) + " " if str(exc) else "") + where, 300)
        except BaseException as exc:
            rec["status"] = "error"
            where = _failing_line(exc, filename, source)
            rec["message"] = _short(
                type(exc).__name__ + ": " + _short(exc, 200) + " at " + where, 300
            )
        rec["calls"] = counter[0] - before
    return out


def _failing_line(exc: BaseException, filename: str, source: str) -> str:
    """The test-file line an exception came from, to name what failed."""
    tb = exc.__traceback__
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    if line is None:
        return ""
    lines = source.splitlines()
    return lines[line - 1].strip() if 0 < line <= len(lines) else ""


def _install_pytest_shim() -> None:
    """Tests may use pytest.raises / pytest.approx; the image need not have pytest."""
    try:
        import pytest  # noqa: F401

        return
    except ImportError:
        pass
    import contextlib

    mod = types.ModuleType("pytest")

    class Info:
        value: Any = None
        type: Any = None

    @contextlib.contextmanager
    def raises(expected: Any, match: str | None = None) -> Any:
        info = Info()
        try:
            yield info
        except expected as exc:
            info.value, info.type = exc, type(exc)
            if match is not None and not re.search(match, str(exc)):
                raise AssertionError(
                    f"exception message {str(exc)!r} does not match {match!r}"
                ) from None
            return
        raise AssertionError("DID NOT RAISE " + getattr(expected, "__name__", str(expected)))

    class Approx:
        def __init__(self, expected: Any, rel: float = 1e-6, abs: float = 1e-12) -> None:
            self.expected, self.rel, self.abs = expected, rel, abs

        def __eq__(self, other: object) -> bool:
            return bool(abs(other - self.expected) <= max(self.rel * abs(self.expected), self.abs))

        def __repr__(self) -> str:
            return f"approx({self.expected!r})"

    mod.raises = raises  # type: ignore[attr-defined]
    mod.approx = Approx  # type: ignore[attr-defined]
    sys.modules["pytest"] = mod


# --------------------------------------------------------------------------- instrument


def instrument(job: dict[str, Any]) -> dict[str, Any]:
    calls: list[dict[str, Any]] = []
    state = {"seen": {}, "depth": 0}
    recorder = _make_recorder(calls, state, job["cap"], job["limit"])
    ns: dict[str, Any] = {
        "__name__": "__main__",
        "__forge_record__": recorder,
        # The act step ran the code with the task's text as TASK (a sandbox input).
        "TASK": globals().get("TASK", ""),
    }
    out: dict[str, Any] = {"error": None, "has_answer": False, "answer": None, "calls": calls}
    try:
        _alarm(job["seconds"])
        try:
            exec(compile(job["code"], "<trace>", "exec"), ns)
        finally:
            _alarm(0)
    except ForgeTimeout:
        out["error"] = f"timeout after {job['seconds']:g}s"
    except BaseException as exc:
        out["error"] = type(exc).__name__ + ": " + _short(exc)
    if "answer" in ns:
        out["has_answer"] = True
        try:
            out["answer"] = json.loads(json.dumps(ns["answer"]))
        except BaseException:
            out["answer"] = repr(ns["answer"])
    return out


def _literal_repr(value: object, limit: int) -> str | None:
    """repr(value) if it reads back as an equal Python literal, else None."""
    try:
        text = repr(value)
        if len(text) > limit:
            return None
        return text if ast.literal_eval(text) == value else None
    except BaseException:
        return None


def _make_recorder(calls: list[dict[str, Any]], state: dict[str, Any], cap: int, limit: int) -> Any:
    def record(name: str) -> Any:
        def deco(fn: Any) -> Any:
            def wrapper(*args: Any, **kwargs: Any) -> Any:
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
                    calls.append(
                        {
                            "name": name,
                            "depth": depth,
                            "args": args_src,
                            "result": None,
                            "error": type(exc).__name__,
                        }
                    )
                    raise
                finally:
                    state["depth"] = depth
                calls.append(
                    {
                        "name": name,
                        "depth": depth,
                        "args": args_src,
                        "result": _literal_repr(result, limit),
                        "error": None,
                    }
                )
                return result

            wrapper.__name__ = getattr(fn, "__name__", name)
            wrapper.__doc__ = getattr(fn, "__doc__", None)
            wrapper.__wrapped__ = fn  # type: ignore[attr-defined]
            return wrapper

        return deco

    return record
