"""Checkers: is an answer right? Built from a spec string.

| spec | passes when |
|---|---|
| `exact` | `text(answer) == text(expected)` |
| `normalized` | equal after case-folding, trimming and collapsing whitespace (the default) |
| `numeric:TOL` | both parse as numbers and differ by at most TOL (absolute) or TOL relative |
| `regex:PATTERN` | the answer's text fully matches PATTERN (`re.fullmatch`); `expected` unused |
| `python:FILE_OR_SOURCE` | `check(answer, expected)` defined by that source returns true. It runs in the SANDBOX, never on the host |

`text(x)` is `x` for a string, else its JSON (`[1, 2]`, `true`) so that a list answer
can be compared with a label written as JSON. Bad specs raise `AgentError` saying what
the valid ones are.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.errors import AgentError
from toolforge.properties import as_text, normalize

if TYPE_CHECKING:
    from agent.task import Task

KINDS = ("exact", "normalized", "numeric", "regex", "python")
DEFAULT = "normalized"
VALID = "exact, normalized, numeric:TOL, regex:PATTERN, python:FILE_OR_SOURCE"


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    reason: str


@dataclass(frozen=True)
class Checker:
    kind: str
    arg: str = ""

    @property
    def needs_expected(self) -> bool:
        return self.kind in ("exact", "normalized", "numeric")

    def expected_problem(self, expected: object) -> str | None:
        """What is wrong with `expected` for this checker (None: nothing), so a task
        stream can report a bad label at load instead of as an error mid-run."""
        if self.kind == "numeric" and expected is not None and _number(expected) is None:
            return f"the expected answer {expected!r} is not a number"
        return None

    def check(self, answer: object, expected: object, sandbox: object = None) -> CheckResult:
        """Whether `answer` passes; `sandbox` is needed by `python:` checkers only."""
        if self.needs_expected and expected is None:
            raise AgentError(f"checker {self.kind!r} needs an expected answer (--expect)")
        if self.kind == "exact":
            return _verdict(as_text(answer) == as_text(expected), answer, expected)
        if self.kind == "normalized":
            return _verdict(normalize(answer) == normalize(expected), answer, expected)
        if self.kind == "numeric":
            return _numeric(answer, expected, float(self.arg))
        if self.kind == "regex":
            ok = re.fullmatch(self.arg, as_text(answer).strip()) is not None
            return CheckResult(ok, f"answer {'matches' if ok else 'does not match'} /{self.arg}/")
        return _python(self.arg, answer, expected, sandbox)


def parse_checker(spec: str | None, *, has_expected: bool = True) -> Checker:
    """The checker a spec names (None: the default). Raises `AgentError` for a bad spec."""
    if spec is None or not spec.strip():
        return Checker(DEFAULT)
    kind, _, arg = spec.strip().partition(":")
    kind = kind.strip().lower()
    if kind == "normalised":
        kind = "normalized"
    if kind not in KINDS:
        raise AgentError(f"unknown checker {spec!r}: use one of {VALID}")
    if kind in ("exact", "normalized") and arg:
        raise AgentError(f"checker {kind!r} takes no argument (got {spec!r})")
    if kind == "numeric":
        try:
            tol = float(arg or "1e-6")
        except ValueError:
            raise AgentError(
                f"checker {spec!r}: the tolerance must be a number, e.g. numeric:1e-6"
            ) from None
        if tol < 0 or math.isnan(tol):
            raise AgentError(f"checker {spec!r}: the tolerance must be >= 0")
        arg = repr(tol)
    if kind == "regex":
        if not arg:
            raise AgentError("checker 'regex:' needs a pattern, e.g. regex:^\\d+$")
        try:
            re.compile(arg)
        except re.error as exc:
            raise AgentError(f"checker {spec!r}: invalid regular expression ({exc})") from None
    if kind == "python":
        arg = _python_source(arg)
    checker = Checker(kind, arg)
    if checker.needs_expected and not has_expected:
        raise AgentError(f"checker {kind!r} compares with an expected answer: give --expect too")
    return checker


def _verdict(ok: bool, answer: object, expected: object) -> CheckResult:
    if ok:
        return CheckResult(True, "answer matches the expected answer")
    return CheckResult(
        False, f"answer {as_text(answer)[:200]!r} != expected {as_text(expected)[:200]!r}"
    )


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(as_text(value).strip().replace(",", ""))
    except ValueError:
        return None


def _numeric(answer: object, expected: object, tol: float) -> CheckResult:
    a, e = _number(answer), _number(expected)
    if e is None:
        raise AgentError(f"checker numeric: the expected answer {expected!r} is not a number")
    if a is None:
        return CheckResult(False, f"answer {as_text(answer)[:200]!r} is not a number")
    ok = math.isclose(a, e, rel_tol=tol, abs_tol=tol)
    return CheckResult(ok, f"{a:g} {'is' if ok else 'is not'} within {tol:g} of {e:g}")


def _python_source(arg: str) -> str:
    if not arg.strip():
        raise AgentError(
            "checker 'python:' needs a file or source defining check(answer, expected)"
        )
    candidate = Path(arg).expanduser()
    source = arg
    if "\n" not in arg and len(arg) < 4096 and candidate.suffix == ".py":
        if not candidate.is_file():
            raise AgentError(f"checker python: file {arg} not found")
        source = candidate.read_text(encoding="utf-8")
    try:
        compile(source, "<checker>", "exec")  # syntax only: nothing runs on the host
    except SyntaxError as exc:
        raise AgentError(f"checker python: the source does not compile ({exc})") from None
    if not re.search(r"^def check\s*\(", source, re.MULTILINE):
        raise AgentError("checker python: the source must define `def check(answer, expected)`")
    return source


def _python(source: str, answer: Any, expected: Any, sandbox: Any) -> CheckResult:
    if sandbox is None:
        raise AgentError("checker python: needs a sandbox to run in")
    # The values travel as JSON text so that no answer can inject code into the runner.
    payload = json.dumps({"answer": answer, "expected": expected}, default=str)
    code = (
        f"{source}\n\nimport json as _json\n_v = _json.loads({payload!r})\n"
        "answer = bool(check(_v['answer'], _v['expected']))\n"
    )
    res = sandbox.run(code)
    if not res.ok or not res.has_answer:
        detail = res.error_message or ("timed out" if res.timed_out else "no result")
        return CheckResult(
            False, f"the python checker failed: {res.error_type or ''} {detail}".strip()
        )
    ok = res.answer is True
    return CheckResult(ok, f"check(answer, expected) returned {ok}")


def checker_for(task: Task) -> Checker | None:
    """The checker of a `Task`, or None when it has neither a label nor a checker."""
    if not task.has_label:
        return None
    return parse_checker(task.checker, has_expected=task.expected is not None)
