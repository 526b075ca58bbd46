"""Running one act step's code in the sandbox, and what the trusted side reads from it:
whether its answer is usable as the task's answer at all, and the capped record of the
run the checkpointed state keeps. Shared by act (one program per step) and explore
(several sampled programs)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from agent.nodes.common import Run
from agent.state import State
from memory.episode import ToolUse
from toolforge.properties import task_options

#: caps of what one act step leaves in the checkpointed state
MAX_STATE_TEXT = 4000
MAX_STATE_CALLS = 50
MAX_STATE_VALUE = 2000


@dataclass
class Step:
    """What one act step runs: its number, its code, the tools it may call, whether it is
    the fast path, and the conversation so far."""

    n: int
    code: str
    chosen: list[str]
    fast: bool
    messages: list[dict[str, str]]


def run_sandboxed(state: State, run: Run, step: Step) -> tuple[Any, dict[str, Any]]:
    """The step's code run in the sandbox on the task's text, with the library's and the
    MCP servers' tools it may call: (the result, the host-side tools). Raises SandboxError."""
    external = run.deps.external
    host = external.host_tools(step.chosen) if external is not None else {}
    own = [name for name in step.chosen if name not in host]
    res = run.deps.sandbox.run(
        step.code,
        tools=run.deps.library.tool_sources(own) if own else {},
        timeout_s=run.deps.settings.sandbox.timeout_s,
        inputs={"TASK": state["task"]["task"]},
        host_tools=host or None,
    )
    return res, host


_TYPE_NAMES = {"str": str, "int": int, "float": float, "bool": bool, "list": list, "dict": dict}


def answer_problem(res: Any, task: str, allowed: list[str]) -> str | None:
    """What makes a run's answer unusable before anyone judges it (None: nothing), checked
    here, on the trusted side: its type, emptiness, and the task's options if it lists any."""
    if not (res.ok and res.has_answer):
        return None
    answer = res.answer
    types = tuple(_TYPE_NAMES[t] for t in allowed if t in _TYPE_NAMES)
    if answer is None or not isinstance(answer, types):
        kind = "nothing" if answer is None else f"a {type(answer).__name__}"
        return (
            f"the answer is {kind}: set `answer` to a {' or '.join(allowed)} in the form the "
            "task asks for (several items: one str, separated as the task shows)"
        )
    if isinstance(answer, str) and not answer.strip():
        return "the answer is an empty string"
    options = task_options(task)
    if options and isinstance(answer, str):
        given = " ".join(answer.split()).lower()
        if given not in {" ".join(o.split()).lower() for o in options}:
            return f"the answer must be one of the task's options: {', '.join(options)}"
    return None


def compact_exec(res: Any, host: Any = ()) -> dict[str, Any]:
    """The run's result as the state keeps it: every step of every task is checkpointed,
    so output, tracebacks and call records are capped (the observation the model saw is
    in the history)."""
    data = res.to_dict()
    data["stdout"] = data["stdout"][-MAX_STATE_TEXT:]
    data["stderr"] = data["stderr"][-MAX_STATE_TEXT // 2 :]
    if data.get("traceback"):
        data["traceback"] = data["traceback"][-MAX_STATE_TEXT:]
    data["tool_calls"] = [event(call, host) for call in res.tool_calls[:MAX_STATE_CALLS]]
    return data


def _capped(value: object) -> Any:
    text = json.dumps(value, default=repr)
    return value if len(text) <= MAX_STATE_VALUE else text[:MAX_STATE_VALUE] + "…"


def event(call: Any, host: Any = ()) -> dict[str, Any]:
    """A supervisor's call record as the state keeps it: a `ToolUse`, capped."""
    return ToolUse(
        tool=call.tool,
        args=[_capped(a) for a in call.args],
        kwargs={k: _capped(v) for k, v in call.kwargs.items()},
        result=_capped(call.result),
        error_type=call.error_type,
        error_message=(call.error_message or "")[:MAX_STATE_VALUE] or None,
        seconds=call.seconds,
        server="mcp" if call.tool in host else None,
    ).to_dict()
