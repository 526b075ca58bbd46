"""act: the model writes Python; it runs in the sandbox with the chosen tools importable.

One act step = one model reply. The observation (stdout, answer, error) goes back to
the model for the next step when the code did not produce an answer; a reply without
exactly one ```python block goes back with the format expected and uses up the step.
"""

from __future__ import annotations

import re
from typing import Any

from agent import prompts
from agent.nodes.common import Run, Stop, Turn, history_entry
from agent.nodes.execute import (
    MAX_STATE_CALLS,
    Step,
    answer_problem,
    compact_exec,
    event,
    run_sandboxed,
)
from agent.nodes.explore import explorable, explore
from agent.nodes.parse import ACT_GRAMMAR, ACT_NEW_GRAMMAR, FormatError, parse_code
from agent.state import State
from agent.tasktext import data_hint
from memory.episode import ToolUse
from toolforge.properties import violations


def act(state: State, run: Run) -> dict[str, Any]:
    """One step: code from the model (or the fast path's call), run in the sandbox, and
    what came out judged (see the module docstring)."""
    turn = Turn(run, state, "act")
    step = state.get("step", 0) + 1
    chosen = list(state.get("chosen_tools") or [])
    fast = bool(state.get("fast")) and step == 1
    messages = list(state.get("act_messages") or []) or first_messages(state, run)
    if fast:
        # The fast path: the chosen tool on the task's text, no model call.
        code = f"from tools import {chosen[0]}\n\nanswer = {chosen[0]}(TASK)"
    else:
        k = explorable(state, run, step, chosen)
        grammar = ACT_GRAMMAR if free_form(state, run) else ACT_NEW_GRAMMAR
        explored = explore(turn, state, run, k, messages, grammar) if k else None
        if explored is not None:
            return explored
        written = write_code(turn, state, run, step, messages, bool(chosen))
        if isinstance(written, dict):
            return written
        code = written
        # Code the model sent before in this task ran already: do not run it again, and
        # end the attempt (a small model that repeats itself would repeat itself to the
        # limit).
        tried = [h.get("code") for h in state.get("history") or [] if h.get("kind") == "act"]
        if code in tried:
            return refused(turn, state, run, step, messages, code)
    return run_code(turn, state, run, Step(step, code, chosen, fast, messages))


def write_code(
    turn: Turn,
    state: State,
    run: Run,
    step: int,
    messages: list[dict[str, str]],
    with_tools: bool,
) -> str | dict[str, Any]:
    """The model's code for this step, or the node's update when there is none (the
    budget ran out, the endpoint failed, the reply was not code)."""
    retry = step > 1 or state.get("attempt", 1) > 1
    try:
        reply = turn.ask(
            messages,
            ACT_GRAMMAR if with_tools or free_form(state, run) else ACT_NEW_GRAMMAR,
            temperature=run.agent.retry_temperature if retry else None,
        )
    except Stop as stop:
        return turn.done(step=step, status=stop.status, reason=stop.reason)
    messages.append({"role": "assistant", "content": reply})
    try:
        return parse_code(reply)
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


def refused(
    turn: Turn, state: State, run: Run, step: int, messages: list[dict[str, str]], code: str
) -> dict[str, Any]:
    """Code that repeats an earlier try is not run: the attempt ends (its answer might be
    right, but the function would teach a tool that only knows this one task)."""
    problem = "the code repeats an earlier try, which did not work: change it"
    run.emit("act", step=step, repeated=problem)
    messages.append({"role": "user", "content": prompts.render("act", "format", problem=problem)})
    return turn.done(
        step=run.agent.max_steps,
        act_messages=messages,
        code=code,
        exec=None,
        has_answer=False,
        problem=problem,
        history=[history_entry(state, "act", step=step, code=code, error=problem)],
    )


def run_code(turn: Turn, state: State, run: Run, step: Step) -> dict[str, Any]:
    """Run the step's code in the sandbox (with the library's and the MCP servers' tools it
    may call) and judge what came out: usable as the task's answer, or an observation for
    the next step."""
    from sandbox.base import SandboxError

    task_text = state["task"]["task"]
    try:
        res, host = run_sandboxed(state, run, step)
    except SandboxError as exc:
        return turn.done(
            step=step.n, code=step.code, status="error", reason=f"sandbox failed: {exc}"
        )
    observation = res.observation()
    form = answer_problem(res, task_text, run.agent.answer_types)
    tool = answer_tool(res, task_text, step.chosen[0] if step.fast else None, host)
    evidence: list[dict[str, Any]] = []
    wrong: list[dict[str, Any]] = []
    if tool is not None:
        form, evidence, wrong = judge_tool_answer(state, tool, res, form, step.fast)
    usable = res.ok and res.has_answer and form is None
    if form is not None:
        observation += f"\nNOT USABLE: {form}"
    run.emit(
        "act",
        step=step.n,
        ok=res.ok,
        answer=res.answer if res.has_answer else None,
        error=res.error_type or ("timeout" if res.timed_out else None) or form,
        tools=[call.tool for call in res.tool_calls],
        fast=step.fast,
    )
    update: dict[str, Any] = {
        # A fast-path run that fails is not repaired here: plan again without that tool.
        "step": run.agent.max_steps if step.fast and not usable else step.n,
        "code": step.code,
        "exec": compact_exec(res, host),
        "has_answer": usable,
        "answer_tool": tool if usable else None,
        "problem": None if usable else observation,
        "tool_events": [event(call, host) for call in res.tool_calls[:MAX_STATE_CALLS]],
        # The library's tools: an MCP server's are in the events, not the library's record.
        "tools_used": [call.tool for call in res.tool_calls if call.tool not in host],
        "evidence": evidence,
        "wrong_tools": wrong,
        "history": [
            history_entry(
                state, "act", step=step.n, code=step.code, observation=observation, fast=step.fast
            )
        ],
    }
    if usable:
        update["answer"] = res.answer
    elif not step.fast:
        nudge = prompts.render("act", "retry")
        step.messages.append(
            {
                "role": "user",
                "content": prompts.render(
                    "act", "observation", observation=observation, next=nudge
                ),
            }
        )
    update["act_messages"] = step.messages
    return turn.done(**update)


def answer_tool(res: Any, task: str, fast_tool: str | None, host: Any = ()) -> str | None:
    """The library tool whose answer is the run's answer, read from the supervisor's records
    (never from the code's word): the fast path's tool, or a tool called on the task's text
    whose result the code returned as it was."""
    if not (res.ok and res.has_answer):
        return fast_tool if fast_tool and _call_of(res, fast_tool, task) is not None else None
    for call in res.tool_calls:
        if call.tool in host or (fast_tool and call.tool != fast_tool):
            continue
        if call.ok and list(call.args) == [task] and not call.kwargs and call.result == res.answer:
            return call.tool
    return None


def _call_of(res: Any, tool: str, task: str) -> Any:
    return next((c for c in res.tool_calls if c.tool == tool and list(c.args) == [task]), None)


def judge_tool_answer(
    state: State, tool: str, res: Any, form: str | None, fast: bool
) -> tuple[str | None, list[dict[str, Any]], list[dict[str, Any]]]:
    """A library tool's answer on a real input, held against what the task states: (why the
    answer is unusable or None, evidence about the tool, failed uses for its repair). A
    tool that raises, answers outside the task's form or breaks one of its properties is
    evidence against it, and its answer is never returned."""
    task = state["task"]["task"]
    call = _call_of(res, tool, task)
    info = next((t for t in state.get("offered_tools") or [] if t["name"] == tool), {})
    answer = call.result if call is not None else None
    kind, problem = "", form
    if call is not None and not call.ok:
        kind = "raised"
        problem = problem or f"tool {tool} raised {call.error_type}: {call.error_message}"
        detail = f"{call.error_type}: {(call.error_message or '')[:300]}"
    elif form is not None:
        kind, detail = "off_form", form
    else:
        broken = violations(info.get("properties") or [], task, answer)
        if broken:
            kind, detail = "property_violated", "; ".join(broken)
            problem = f"the answer of tool {tool} breaks what the task states: {detail}"
        elif info.get("properties"):
            names = ", ".join(str(p.get("kind")) for p in info["properties"])
            return None, [_tool_evidence(tool, "property_held", answer, names)], []
        else:
            return None, [], []
    evidence = [_tool_evidence(tool, kind, answer, detail)]
    # The fast path's failed use feeds the tool's repair (a raise is already on record as
    # a failed call).
    wrong = []
    if fast and kind != "raised":
        kind = "PropertyViolated" if kind == "property_violated" else "OffForm"
        wrong = [ToolUse.did_not_hold(tool, task, answer, kind, detail=detail).to_dict()]
    return problem, evidence, wrong


def _tool_evidence(tool: str, kind: str, answer: object, detail: str) -> dict[str, Any]:
    return {"tool": tool, "kind": kind, "answer": answer, "other": None, "detail": detail}


def free_form(state: State, run: Run) -> bool:
    """Whether this act call may take any form of code (see `free_last_attempt`)."""
    agent = run.agent
    return (
        agent.free_last_attempt
        and agent.max_attempts > 1
        and state.get("attempt", 1) >= agent.max_attempts
        and not state.get("chosen_tools")
    )


def first_messages(state: State, run: Run) -> list[dict[str, str]]:
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
    plan = state.get("plan") or ""
    previous = ""
    if state.get("critique") and state.get("previous_code") and not state.get("fast"):
        # Not the code itself: a small model shown its wrong code writes it out again.
        previous = prompts.render(
            "act",
            "previous",
            critique=state["critique"],
            function=_function_name(state["previous_code"]),
        )
        if free_form(state, run):
            previous += prompts.render("act", "last")
    hint = None if chosen else data_hint(state["task"]["task"])
    # Sections lose their edge newlines when read: each part ends its own line here.
    user = prompts.render(
        "act",
        "user",
        task=state["task"]["task"],
        data=_line(prompts.render("act", "data", expr=hint[0], value=hint[1]) if hint else ""),
        plan=_line(prompts.render("act", "plan", plan=plan) if plan else ""),
        tools=_line(tools),
        previous=_line(previous),
    )
    return [
        {"role": "system", "content": prompts.render("act", "system")},
        {"role": "user", "content": user},
    ]


def _function_name(code: str | None) -> str:
    match = code and re.search(r"^def (\w+)\(", code, re.MULTILINE)
    return match.group(1) if match else "that code"


def _line(part: str) -> str:
    return part + "\n" if part and not part.endswith("\n") else part
