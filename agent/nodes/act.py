"""act: the model writes Python; it runs in the sandbox with the chosen tools importable.

One act step = one model reply. The observation (stdout, answer, error) goes back to
the model for the next step when the code did not produce an answer; a reply without
exactly one ```python block goes back with the format expected and uses up the step.
"""

from __future__ import annotations

import json
from typing import Any

from agent import prompts
from agent.nodes.common import Run, Stop, Turn, history_entry
from agent.nodes.parse import ACT_GRAMMAR, FormatError, parse_code
from agent.state import State

#: caps of what one act step leaves in the checkpointed state
MAX_STATE_TEXT = 4000
MAX_STATE_CALLS = 50
MAX_STATE_VALUE = 2000


def act(state: State, run: Run) -> dict[str, Any]:
    from sandbox.base import SandboxError

    turn = Turn(run, state, "act")
    step = state.get("step", 0) + 1
    messages = list(state.get("act_messages") or []) or first_messages(state)
    try:
        reply = turn.ask(messages, ACT_GRAMMAR)
    except Stop as stop:
        return turn.done(step=step, status=stop.status, reason=stop.reason)
    messages.append({"role": "assistant", "content": reply})
    try:
        code = parse_code(reply)
    except FormatError as exc:
        problem = f"the reply could not be used: {exc}"
        run.emit("act", step=step, format_error=str(exc))
        messages.append({"role": "user", "content": prompts.render("act", "format", problem=exc)})
        return turn.done(
            step=step,
            act_messages=messages,
            code=None,
            exec=None,
            has_answer=False,
            problem=problem,
            history=[history_entry(state, "act", step=step, error=problem)],
        )
    chosen = list(state.get("chosen_tools") or [])
    try:
        sources = run.deps.library.tool_sources(chosen) if chosen else {}
        res = run.deps.sandbox.run(
            code, tools=sources, timeout_s=run.deps.settings.sandbox.timeout_s
        )
    except SandboxError as exc:
        return turn.done(step=step, code=code, status="error", reason=f"sandbox failed: {exc}")
    observation = res.observation()
    usable = res.ok and res.has_answer
    run.emit(
        "act",
        step=step,
        ok=res.ok,
        answer=res.answer if res.has_answer else None,
        error=res.error_type or ("timeout" if res.timed_out else None),
        tools=[call.tool for call in res.tool_calls],
    )
    update: dict[str, Any] = {
        "step": step,
        "code": code,
        "exec": compact_exec(res),
        "has_answer": usable,
        "problem": None if usable else observation,
        "tool_events": [_event(call) for call in res.tool_calls[:MAX_STATE_CALLS]],
        "tools_used": [call.tool for call in res.tool_calls],
        "history": [history_entry(state, "act", step=step, code=code, observation=observation)],
    }
    if usable:
        update["answer"] = res.answer
    else:
        nudge = prompts.render("act", "retry")
        messages.append(
            {
                "role": "user",
                "content": prompts.render(
                    "act", "observation", observation=observation, next=nudge
                ),
            }
        )
    update["act_messages"] = messages
    return turn.done(**update)


def first_messages(state: State) -> list[dict[str, str]]:
    by_name = {t["name"]: t for t in state.get("offered_tools") or []}
    chosen = [by_name[name] for name in state.get("chosen_tools") or [] if name in by_name]
    if chosen:
        lines = "\n".join(
            f"- {t['name']}: {t['signature']}\n  " + " ".join(str(t["docstring"]).split())
            for t in chosen
        )
        tools = prompts.render("act", "tools", tool_lines=lines)
    else:
        tools = prompts.render("act", "no_tools")
    user = prompts.render(
        "act", "user", task=state["task"]["task"], plan=state.get("plan") or "", tools=tools
    )
    return [
        {"role": "system", "content": prompts.render("act", "system")},
        {"role": "user", "content": user},
    ]


def compact_exec(res: Any) -> dict[str, Any]:
    """The run's result as the state keeps it: every step of every task is checkpointed,
    so output, tracebacks and call records are capped (the observation the model saw is
    in the history)."""
    data = res.to_dict()
    data["stdout"] = data["stdout"][-MAX_STATE_TEXT:]
    data["stderr"] = data["stderr"][-MAX_STATE_TEXT // 2 :]
    if data.get("traceback"):
        data["traceback"] = data["traceback"][-MAX_STATE_TEXT:]
    data["tool_calls"] = [_event(call) for call in res.tool_calls[:MAX_STATE_CALLS]]
    return data


def _capped(value: Any) -> Any:
    text = json.dumps(value, default=repr)
    return value if len(text) <= MAX_STATE_VALUE else text[:MAX_STATE_VALUE] + "…"


def _event(call: Any) -> dict[str, Any]:
    return {
        "tool": call.tool,
        "ok": call.ok,
        "args": [_capped(a) for a in call.args],
        "kwargs": {k: _capped(v) for k, v in call.kwargs.items()},
        "result": _capped(call.result),
        "error_type": call.error_type,
        "error_message": (call.error_message or "")[:MAX_STATE_VALUE] or None,
        "seconds": call.seconds,
    }
