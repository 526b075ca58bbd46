"""Host side of the runner protocol, shared by both backends: job line out, result line in.

Everything that comes back is treated as hostile: the result line must carry this job's
secret and be the only thing on the runner's stdout, and every field is checked for type,
size and nesting depth (`to_exec_result`). A result that fails any check is discarded
whole and replaced by an `ExecResult` with `error_type="SandboxResultInvalid"`: the run
failed, the caller (the act step, the forge) treats it as a failed run, nothing raises.
"""

from __future__ import annotations

import json
import math
import secrets
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from sandbox.base import ExecResult, SandboxError, ToolCall
from sandbox.runner.codec import (
    ANSWER_LIMIT,
    MARKER,
    MAX_NOTES,
    MAX_TOOL_CALLS,
    NOTE_LIMIT,
    TRACEBACK_LIMIT,
    VALUE_LIMIT,
    Unplain,
    from_plain,
    json_problem,
    jsonish,
    to_plain,
)

#: the runner's package (copied whole into the image); its entry point
RUNNER_DIR = Path(__file__).with_name("runner")
RUNNER_PATH = RUNNER_DIR / "__main__.py"
#: where the image keeps the runner's entry point
RUNNER_IN_IMAGE = "/opt/evoagent/runner/__main__.py"
#: seconds the host waits past the run's timeout before it gives up on the runner
#: itself (the runner enforces the timeout; this only catches a runner that died or hung)
HOST_GRACE_S = 3.0
_RESULT_KEYS = frozenset(
    [
        "exit_code",
        "stdout",
        "stderr",
        "truncated",
        "timed_out",
        "oom_killed",
        "duration_s",
        "answer",
        "has_answer",
        "error_type",
        "error_message",
        "traceback",
        "tool_calls",
        "notes",
    ]
)
_CALL_KEYS = frozenset(
    ["tool", "args", "kwargs", "result", "error_type", "error_message", "seconds", "cut"]
)


def runner_files() -> dict[str, bytes]:
    """The runner package's files by name (what the image copies and its tag hashes)."""
    return {p.name: p.read_bytes() for p in sorted(RUNNER_DIR.glob("*.py"))}


class InvalidResult(ValueError):
    """The runner's result is not what an honest runner writes."""


def check_tools(tools: Mapping[str, str] | None) -> dict[str, str]:
    """Tool module names must be importable identifiers; sources must be text."""
    out: dict[str, str] = {}
    for name, source in (tools or {}).items():
        if not isinstance(name, str) or not name.isidentifier() or name.startswith("_"):
            raise SandboxError(
                f"tool module name {name!r} is not a public Python identifier: "
                "name each tool module like its function (e.g. 'sort_words')"
            )
        if not isinstance(source, str):
            raise SandboxError(
                f"tool {name!r}: its source must be a str, got {type(source).__name__}"
            )
        out[name] = source
    return out


def check_host_tools(
    host_tools: Mapping[str, str] | None, tools: Mapping[str, str] | None
) -> dict[str, str]:
    """Host tools (name -> docstring) are named like tool modules and not like a library
    tool of the same run."""
    docs = check_tools(host_tools)
    clash = sorted(set(docs) & set(tools or {}))
    if clash:
        raise SandboxError(
            f"host tool {clash[0]!r} has the name of a library tool of this run: rename one"
        )
    return docs


def check_inputs(inputs: Mapping[str, Any] | None) -> dict[str, Any]:
    """Inputs are plain data under identifier names; encoded as the runner reads them."""
    out: dict[str, Any] = {}
    for name, value in (inputs or {}).items():
        if not isinstance(name, str) or not name.isidentifier() or name.startswith("__"):
            raise SandboxError(f"input name {name!r} is not a Python identifier")
        try:
            out[name] = to_plain(value)
        except Unplain as exc:
            raise SandboxError(f"input {name!r} is not plain data: {exc}") from None
    return out


def new_secret() -> str:
    """A per-job secret: only the supervisor and the host ever hold it."""
    return secrets.token_hex(16)


def job_line(
    code: str,
    tools: Mapping[str, str] | None,
    timeout_s: float,
    output_limit: int,
    *,
    secret: str,
    rlimits: Mapping[str, int] | None = None,
    ids: Mapping[str, int | None] | None = None,
    tool_timeout_s: float | None = None,
    inputs: Mapping[str, Any] | None = None,
    host_tools: Mapping[str, str] | None = None,
) -> bytes:
    """The job as the runner reads it. `rlimits` and `ids` (run the code and the tools as
    these users, when the runner may) are for the local backend: a container gets its
    users from its command line and its limits from cgroups."""
    if not isinstance(code, str):
        raise SandboxError(f"code must be a str, got {type(code).__name__}")
    if not timeout_s > 0:
        raise SandboxError(f"timeout_s must be more than 0 seconds, got {timeout_s}")
    job = {
        "v": 2,
        "code": code,
        "tools": check_tools(tools),
        "inputs": check_inputs(inputs),
        "timeout_s": timeout_s,
        "output_limit": output_limit,
        "secret": secret,
        "rlimits": dict(rlimits) if rlimits else None,
        "ids": dict(ids) if ids else None,
        "tool_timeout_s": tool_timeout_s,
        "host_tools": check_host_tools(host_tools, tools),
    }
    # json.dumps escapes newlines: the job is exactly one line.
    return (json.dumps(job) + "\n").encode("utf-8")


def result_prefix(secret: str) -> bytes:
    return (MARKER + secret + " ").encode("ascii")


def find_result(stdout: bytes, secret: str) -> dict[str, Any] | None:
    """The runner's result from its stdout; None when it wrote none (it died).

    Raises `InvalidResult` when anything else is there: a second result, a result line
    with another secret, or any other byte. The supervisor writes that one line and
    nothing else, and the code has no way to write on its stdout."""
    prefix = result_prefix(secret)
    lines = [line for line in stdout.split(b"\n") if line.strip()]
    if not lines:
        return None
    if len(lines) > 1 or not lines[0].startswith(prefix):
        raise InvalidResult(
            f"the runner's stdout holds {len(lines)} line(s) and not exactly one result "
            "line with this job's secret"
        )
    try:
        data = json.loads(lines[0][len(prefix) :])
    except (ValueError, RecursionError) as exc:
        raise InvalidResult(f"the result line is not JSON ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise InvalidResult("the result is not a JSON object")
    return data


def to_exec_result(
    data: Mapping[str, Any],
    duration_s: float,
    *,
    tools: Collection[str] = (),
    output_limit: int = 256 * 1024,
) -> ExecResult:
    """The runner's result, checked field by field; a bad one becomes an invalid result."""
    try:
        return _checked(data, duration_s, set(tools), output_limit)
    except InvalidResult as exc:
        return ExecResult.discarded(str(exc), duration_s)


def _checked(
    data: Mapping[str, Any], duration_s: float, tools: set[str], output_limit: int
) -> ExecResult:
    if set(data) != _RESULT_KEYS:
        raise InvalidResult(f"unexpected result fields: {sorted(set(data) ^ _RESULT_KEYS)[:5]}")
    exit_code = data["exit_code"]
    if type(exit_code) is not int or not -1000 < exit_code < 1000:
        raise InvalidResult("exit_code is not a small int")
    flags = {}
    for name in ("truncated", "timed_out", "oom_killed", "has_answer"):
        if type(data[name]) is not bool:
            raise InvalidResult(f"{name} is not a bool")
        flags[name] = data[name]
    stdout = _text(data, "stdout", output_limit, optional=False)
    stderr = _text(data, "stderr", output_limit, optional=False)
    error_type = _text(data, "error_type", 200)
    if error_type is not None and not error_type.isidentifier():
        raise InvalidResult("error_type is not an identifier")
    answer = data["answer"]
    if problem := json_problem(answer, ANSWER_LIMIT + 64):
        raise InvalidResult(f"the answer: {problem}")
    calls = data["tool_calls"]
    if type(calls) is not list or len(calls) > MAX_TOOL_CALLS:
        raise InvalidResult("tool_calls is not a list of at most the recorded maximum")
    notes = data["notes"]
    if (
        type(notes) is not list
        or len(notes) > MAX_NOTES + 1
        or not all(type(n) is str and len(n) <= NOTE_LIMIT + 16 for n in notes)
    ):
        raise InvalidResult("notes is not a short list of short strings")
    return ExecResult(
        exit_code=exit_code,
        stdout=stdout or "",
        stderr=stderr or "",
        duration_s=duration_s,
        answer=answer if flags["has_answer"] else None,
        error_type=error_type,
        error_message=_text(data, "error_message", VALUE_LIMIT),
        traceback=_text(data, "traceback", TRACEBACK_LIMIT),
        tool_calls=[_tool_call(raw, tools) for raw in calls],
        notes=list(notes),
        **flags,
    )


def _text(data: Mapping[str, Any], key: str, limit: int, *, optional: bool = True) -> str | None:
    value = data[key]
    if value is None and optional:
        return None
    if type(value) is not str or len(value) > limit:
        raise InvalidResult(f"{key} is not a str of at most {limit} characters")
    return value


def _tool_call(raw: object, tools: set[str]) -> ToolCall:
    if type(raw) is not dict or set(raw) != _CALL_KEYS:
        raise InvalidResult("a tool-call record has unexpected fields")
    tool = raw["tool"]
    if type(tool) is not str or tool not in tools:
        # The supervisor brokers only the tools of this job: anything else is not its record.
        raise InvalidResult(
            f"a tool-call record names a tool this run was not given: {str(tool)[:60]!r}"
        )
    try:
        args = from_plain(raw["args"])
        kwargs = from_plain(raw["kwargs"])
        result = from_plain(raw["result"])
    except ValueError as exc:
        raise InvalidResult(f"a record of {tool}: {exc}") from None
    if (
        type(args) is not list
        or type(kwargs) is not dict
        or not all(type(k) is str for k in kwargs)
    ):
        raise InvalidResult(f"a record of {tool} has malformed arguments")
    error_type = _text(raw, "error_type", 200)
    if error_type is not None and not error_type.isidentifier():
        raise InvalidResult(f"a record of {tool} has a malformed error type")
    seconds = raw["seconds"]
    if type(seconds) not in (int, float) or not math.isfinite(seconds) or seconds < 0:
        raise InvalidResult(f"a record of {tool} has a malformed duration")
    if type(raw["cut"]) is not bool:
        raise InvalidResult(f"a record of {tool} has a malformed cut flag")
    return ToolCall(
        tool=tool,
        args=[jsonish(a, VALUE_LIMIT)[0] for a in args],
        kwargs={k: jsonish(v, VALUE_LIMIT)[0] for k, v in kwargs.items()},
        result=jsonish(result, VALUE_LIMIT)[0] if error_type is None else None,
        error_type=error_type,
        error_message=_text(raw, "error_message", VALUE_LIMIT),
        seconds=float(seconds),
        plain=raw["result"] if error_type is None and not raw["cut"] else None,
        cut=raw["cut"],
    )


def runner_died(exit_code: int, stderr: str, duration_s: float, *, oom: bool = False) -> ExecResult:
    """The runner ended without a result (the OOM killer, or a bug of ours)."""
    if oom:
        return ExecResult(
            exit_code=exit_code, stderr=stderr, duration_s=duration_s, oom_killed=True
        )
    return ExecResult(
        exit_code=exit_code,
        stderr=stderr,
        duration_s=duration_s,
        error_type="SandboxRunnerDied",
        error_message=(f"the sandbox's runner ended with exit code {exit_code} without a result"),
    )


def timed_out(duration_s: float, stderr: str = "") -> ExecResult:
    return ExecResult(exit_code=137, stderr=stderr, duration_s=duration_s, timed_out=True)
