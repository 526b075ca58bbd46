"""One episode: how one task went, in one record.

The graph ends with an `Episode` (agent/state.py projects its final state), exactly one
caller stores it (`agent.solve.solve_task`, with what it taught, in one transaction),
and every reader takes this type: the library's episode row, a run's results line
(`summary()` plus the run's own fields), the Ray outbox, `solve --json` and the serve
protocol (`to_dict` / `from_dict`). `Trace` (what an attempt ran: the forge's input) and
`ToolUse` (one call of a tool in it) travel inside it.

Plain dataclasses of plain values: this module imports nothing of ours but the literal
words, so every package can hold an episode.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

#: how a task ended: right on evidence (a label, an independent route's agreement, a
#: trusted tool), answered but with nothing to back the answer (`unverified`: without a
#: label no independent route confirmed it), wrong or unanswered after every attempt, its
#: token or time budget spent, or an error (the model endpoint, the sandbox) that says
#: nothing about the task
Status = Literal["solved", "unverified", "failed", "budget_exhausted", "error"]
STATUSES: tuple[str, ...] = ("solved", "unverified", "failed", "budget_exhausted", "error")


def _known(cls: type, data: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of `cls` in `data` (keys a newer writer added are left out)."""
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in data.items() if k in names}


@dataclass(frozen=True)
class ToolUse:
    """One call of a tool in an episode, as the sandbox's supervisor recorded it (never
    the code's word). `server` names the external MCP server of a tool the library does
    not hold (None: a library tool). A use whose answer did not hold up on its task
    carries the answer it should have given (`expected`: the label, or the independent
    route's) and its `error_type` says how it failed (WrongAnswer, Disagreement,
    PropertyViolated, OffForm)."""

    tool: str
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    result: Any = None
    error_type: str | None = None
    error_message: str | None = None
    seconds: float = 0.0
    server: str | None = None
    expected: Any = None

    @property
    def ok(self) -> bool:
        return self.error_type is None

    @classmethod
    def did_not_hold(
        cls, tool: str, task: str, answer: Any, kind: str, expected: Any = None, detail: str = ""
    ) -> ToolUse:
        """A use of `tool` on `task` whose answer did not hold up, as its repair reads it:
        `kind` WrongAnswer (against the label `expected`), Disagreement (against the
        independent route's `expected`), PropertyViolated or OffForm (`detail` says how)."""
        if kind == "WrongAnswer":
            message = f"returned {answer!r}; the task's label is {expected!r}"
        elif kind == "Disagreement":
            message = (
                f"returned {answer!r}; an independent route answering the same task gave "
                f"{expected!r}"
            )
        else:
            message = f"returned {answer!r}: {detail or kind}"
        return cls(
            tool=tool,
            args=[task],
            result=answer,
            error_type=kind,
            error_message=message,
            expected=expected,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ToolUse:
        values = _known(cls, data)
        values["tool"] = str(values["tool"])
        values["args"] = list(values.get("args") or [])
        values["kwargs"] = dict(values.get("kwargs") or {})
        values["seconds"] = float(values.get("seconds") or 0.0)
        return cls(**values)


@dataclass
class Trace:
    """One attempt of the agent: what it ran and what came out (the forge's input)."""

    task: str
    code: str = ""
    answer: Any = None
    verdict: str = "correct"
    task_id: str | None = None
    tool_calls: list[ToolUse] = field(default_factory=list)
    tools_used: list[str] = field(default_factory=list)
    episode_id: str | None = None
    stdout: str = ""
    #: what backs the answer: `checker` (a label), `agreement` (an independent route
    #: reached it too), `person` (a tool added by hand); "" when nothing does (the forge
    #: admits no tool from such a trace)
    verified_by: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain data, as checkpoints, episodes and a run's traces file keep it."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Trace:
        values = _known(cls, data)
        values["tool_calls"] = [ToolUse.from_dict(c) for c in values.get("tool_calls") or []]
        return cls(**values)


@dataclass
class Episode:
    """How one task went. `traces`: the solved attempts a stream's batch end forges
    (`forge="defer"`); `evidence`: the evidence about library tools left for that batch
    end (plain dicts of `memory.Evidence`'s fields)."""

    task_id: str
    task: str
    status: Status
    answer: Any = None
    #: scored against the label whenever the task has one, in every feedback mode
    correct: bool | None = None
    feedback: str = "none"
    attempts: int = 0
    n_calls: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    seconds: float = 0.0
    #: calls, errors, tokens and seconds per step (`check`: what audits cost)
    usage_by_step: dict[str, dict[str, Any]] = field(default_factory=dict)
    tools_used: list[str] = field(default_factory=list)
    tools_created: list[str] = field(default_factory=list)
    reason: str = ""
    #: what backs a solved answer: checker | agreement | trusted tool ("" otherwise)
    verified_by: str = ""
    #: the library tool whose answer the task's answer is (the fast path's, or a call of
    #: it on the task's text), read from the supervisor's records
    answer_tool: str | None = None
    #: programs sampled together for it (exploration: no library tool covered it)
    explored: int = 0
    run_id: str | None = None
    id: str | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    traces: list[Trace] = field(default_factory=list)
    evidence: list[dict[str, Any]] = field(default_factory=list)

    @property
    def check_calls(self) -> int:
        """Model calls of the independent route (audits)."""
        return int((self.usage_by_step.get("check") or {}).get("n_calls", 0))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # traces and their calls too: asdict recurses

    def summary(self) -> dict[str, Any]:
        """The episode without its text, history, traces and deferred evidence: the body
        of a run's results line (where `id` is the task's, so the episode's is
        `episode_id`)."""
        out = self.to_dict()
        for key in ("history", "traces", "evidence", "usage_by_step", "task", "task_id"):
            out.pop(key)
        out["episode_id"] = out.pop("id")
        out["check_calls"] = self.check_calls
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Episode:
        """The inverse of `to_dict`, from data another process or an older version wrote."""
        values = _known(cls, data)
        values["traces"] = [Trace.from_dict(t) for t in values.get("traces") or []]
        for key in ("tools_used", "tools_created", "history", "evidence"):
            values[key] = list(values.get(key) or [])
        values["usage_by_step"] = dict(values.get("usage_by_step") or {})
        return cls(**values)
