"""The sandbox contract: what every backend implements and every caller depends on.

Callers (the agent's act step, toolforge's dynamic gate) hold a `Sandbox` and never
import docker. A run takes Python source plus library tools (module name -> source)
that the code can import as `from tools import name`, and returns an `ExecResult`.

What comes back (every field checked by the host, see `sandbox/jobs.py`):
- `answer`: the value of the global `answer` after the code ran, if it set one
  (JSON value; anything else comes back as its `repr`). `has_answer` says whether it did.
- `error_type` / `error_message` / `traceback`: the exception that ended the code, if
  any (a `SyntaxError` included: code that does not compile is the model's mistake and
  is reported, not raised).
- `tool_calls`: every call of a library tool, in the order the calls started, with its
  arguments, its result or error, and its duration. The runner's supervisor writes these
  records from the calls it brokers between the code's process and the tool's: the code
  can neither add, alter nor drop one.

Failures of the infrastructure itself (Docker down, image missing) raise `SandboxError`
subclasses whose message says what to do.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

#: the error type of a run whose result the host discarded (see `ExecResult.discarded`)
INVALID = "SandboxResultInvalid"


class HostToolError(Exception):
    """A host tool's own failure, given to the code as `error_type: message`."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type if error_type.isidentifier() else "ToolError"
        self.message = message


@dataclass(frozen=True)
class HostTool:
    """A tool answered on the host. `call(args, kwargs, timeout_s)` returns plain data or
    raises (`HostToolError` for the tool's own errors)."""

    doc: str
    call: Callable[[list[Any], dict[str, Any], float | None], Any]


@dataclass(frozen=True)
class ToolCall:
    """One call of a library tool, recorded by the in-sandbox runner."""

    tool: str
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    result: Any = None
    error_type: str | None = None
    error_message: str | None = None
    seconds: float = 0.0
    #: the result as the runner's plain encoding (`sandbox.runner.codec.from_plain` gives
    #: it back with its types: a tuple stays a tuple); what host-side checks compare.
    #: None for a call that raised or whose values were cut
    plain: Any = None
    #: the record's values were too large for the run's records budget: kept cut
    cut: bool = False

    @property
    def ok(self) -> bool:
        return self.error_type is None

    def value(self) -> Any:
        """The result with its types, decoded from `plain` (ValueError if malformed)."""
        from sandbox.runner.codec import from_plain

        return from_plain(self.plain)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ToolCall:
        return cls(
            tool=str(data["tool"]),
            args=list(data.get("args") or []),
            kwargs=dict(data.get("kwargs") or {}),
            result=data.get("result"),
            error_type=data.get("error_type"),
            error_message=data.get("error_message"),
            seconds=float(data.get("seconds") or 0.0),
            plain=data.get("plain"),
            cut=bool(data.get("cut", False)),
        )


@dataclass
class ExecResult:
    """What one run of code in a sandbox produced."""

    exit_code: int
    stdout: str = ""
    stderr: str = ""
    duration_s: float = 0.0
    timed_out: bool = False
    oom_killed: bool = False
    #: stdout or stderr was cut at the configured output cap
    truncated: bool = False
    answer: Any = None
    has_answer: bool = False
    error_type: str | None = None
    error_message: str | None = None
    traceback: str | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)
    #: what the sandbox's supervisor noted about the run (a refused answer, requests it
    #: dropped, a confinement it could not set up), apart from what the code printed
    notes: list[str] = field(default_factory=list)

    @classmethod
    def discarded(cls, problem: str, duration_s: float) -> ExecResult:
        """A run whose result the host discarded (malformed, or records it cannot vouch
        for): it failed, with the reason."""
        return cls(
            exit_code=1,
            duration_s=duration_s,
            error_type=INVALID,
            error_message=f"the sandbox's result was discarded: {problem}"[:2000],
        )

    @property
    def ok(self) -> bool:
        """The code ran to its end without an exception, a kill or a limit."""
        return (
            self.exit_code == 0
            and not self.timed_out
            and not self.oom_killed
            and self.error_type is None
        )

    def observation(self, limit: int = 4000) -> str:
        """A compact text of this result, written for a model to read."""
        parts: list[str] = []
        if self.timed_out:
            parts.append(f"TIMEOUT: the code was killed after {self.duration_s:.1f} s.")
        if self.oom_killed:
            parts.append("OUT OF MEMORY: the code was killed for exceeding the memory limit.")
        if self.error_type:
            parts.append(f"ERROR {self.error_type}: {self.error_message or ''}".rstrip())
            if self.traceback:
                parts.append(_tail(self.traceback, limit // 2))
        if self.stdout:
            parts.append("STDOUT:\n" + _tail(self.stdout, limit // 2))
        if self.stderr and not self.error_type:
            parts.append("STDERR:\n" + _tail(self.stderr, limit // 4))
        if self.truncated:
            parts.append("(output was truncated at the sandbox's output cap)")
        parts.extend(f"SANDBOX NOTE: {note}" for note in self.notes)
        if self.has_answer:
            parts.append(f"ANSWER: {self.answer!r}")
        elif self.ok:
            parts.append("(the code set no `answer` variable)")
        return "\n".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ExecResult:
        fields = dict(data)
        fields["tool_calls"] = [ToolCall.from_dict(c) for c in fields.get("tool_calls") or []]
        return cls(**fields)


def _tail(text: str, limit: int) -> str:
    return text if len(text) <= limit else "…" + text[-limit:]


@runtime_checkable
class Sandbox(Protocol):
    """Runs untrusted Python. Implementations: `DockerSandbox`, `LocalSandbox`."""

    #: "docker" or "local"
    kind: str

    def run(
        self,
        code: str,
        *,
        tools: Mapping[str, str] | None = None,
        timeout_s: float | None = None,
        tool_timeout_s: float | None = None,
        inputs: Mapping[str, Any] | None = None,
        host_tools: Mapping[str, HostTool] | None = None,
    ) -> ExecResult:
        """Run `code` with `tools` (module name -> source) importable as `from tools import name`,
        and `inputs` (name -> plain data) as globals of the code (`TASK`, the task's text).
        `host_tools` are importable the same way and answered on the host (an external MCP
        server's tools, `sandbox/hostcalls.py`); their calls are recorded by the host.

        Each tool runs in a process of its own and is called through the runner, which
        records the call; values cross as plain data. `tool_timeout_s` limits one call
        of a tool (the call raises TimeoutError in the code); default: the run's limit.
        Thread-safe: several threads may call `run` at once; each run is isolated
        from every other (a fresh container, or a fresh process).
        """
        ...

    def close(self) -> None:
        """Release every resource (containers, pool threads). Idempotent."""
        ...


class SandboxError(Exception):
    """The sandbox itself failed (not the code in it). The message says what to do."""


class SandboxUnavailable(SandboxError):
    """The backend cannot be reached (for instance the Docker daemon is down)."""


class ImageMissing(SandboxError):
    """The sandbox image is not built (run `evoagent sandbox build`)."""
