"""Host side of the runner protocol, shared by both backends: job line out, result line in."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sandbox.base import ExecResult, SandboxError, ToolCall
from sandbox.runner import MARKER

RUNNER_PATH = Path(__file__).with_name("runner.py")
#: where the image keeps the runner
RUNNER_IN_IMAGE = "/opt/evoagent/runner.py"
#: seconds the host waits past the run's timeout before it gives up on the runner
#: itself (the runner enforces the timeout; this only catches a runner that died or hung)
HOST_GRACE_S = 3.0


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


def job_line(
    code: str,
    tools: Mapping[str, str] | None,
    timeout_s: float,
    output_limit: int,
    rlimits: Mapping[str, int] | None = None,
    uid: int | None = None,
) -> bytes:
    """The job as the runner reads it. `rlimits` and `uid` (run the code as this user,
    when the runner is root) are for the local backend: containers have cgroups."""
    if not isinstance(code, str):
        raise SandboxError(f"code must be a str, got {type(code).__name__}")
    if not timeout_s > 0:
        raise SandboxError(f"timeout_s must be more than 0 seconds, got {timeout_s}")
    job = {
        "v": 1,
        "code": code,
        "tools": check_tools(tools),
        "timeout_s": timeout_s,
        "output_limit": output_limit,
        "rlimits": dict(rlimits) if rlimits else None,
        "uid": uid,
    }
    # json.dumps escapes newlines: the job is exactly one line.
    return (json.dumps(job) + "\n").encode("utf-8")


def find_result(stdout: bytes) -> dict[str, Any] | None:
    """The runner's result from its stdout, or None if it wrote none (it died)."""
    marker = MARKER.encode()
    for line in stdout.split(b"\n"):
        if line.startswith(marker):
            try:
                data = json.loads(line[len(marker) :])
            except ValueError:
                return None
            return data if isinstance(data, dict) else None
    return None


def to_exec_result(data: Mapping[str, Any], duration_s: float) -> ExecResult:
    """Build an ExecResult from the runner's (untrusted) result, field by field."""

    def text(key: str) -> str | None:
        value = data.get(key)
        return None if value is None else str(value)

    calls = []
    for raw in data.get("tool_calls") or []:
        if isinstance(raw, Mapping) and "tool" in raw:
            try:
                calls.append(ToolCall.from_dict(raw))
            except (TypeError, ValueError):
                continue
    try:
        exit_code = int(data.get("exit_code", 1))
    except (TypeError, ValueError):
        exit_code = 1
    return ExecResult(
        exit_code=exit_code,
        stdout=str(data.get("stdout") or ""),
        stderr=str(data.get("stderr") or ""),
        duration_s=duration_s,
        timed_out=bool(data.get("timed_out")),
        oom_killed=bool(data.get("oom_killed")),
        truncated=bool(data.get("truncated")),
        answer=data.get("answer"),
        has_answer=bool(data.get("has_answer")),
        error_type=text("error_type"),
        error_message=text("error_message"),
        traceback=text("traceback"),
        tool_calls=calls,
    )


def runner_died(exit_code: int, stderr: str, duration_s: float, *, oom: bool = False) -> ExecResult:
    """The runner ended without a result (the code killed it, or the OOM killer did)."""
    if oom:
        return ExecResult(
            exit_code=exit_code, stderr=stderr, duration_s=duration_s, oom_killed=True
        )
    return ExecResult(
        exit_code=exit_code,
        stderr=stderr,
        duration_s=duration_s,
        error_type="SandboxRunnerDied",
        error_message=(
            f"the sandbox's runner ended with exit code {exit_code} without a result "
            "(did the code kill its parent process?)"
        ),
    )


def timed_out(duration_s: float, stderr: str = "") -> ExecResult:
    return ExecResult(exit_code=137, stderr=stderr, duration_s=duration_s, timed_out=True)
