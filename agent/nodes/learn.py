"""learn: the episode is stored; a success goes to toolforge and may yield a tip; a
failure becomes a failure record with its lesson.

Order matters: model calls first (forge's distill, the tip or lesson: step `reflect`),
then the writes, so the stored episode counts every call the task cost.

- `learn=False` (`--no-learn`, the frozen-library baseline): only the episode is
  stored; no usage events, task links, tools, tips or failures, and no `reflect` call,
  so the library the next task sees is unchanged except for its episode log.
- forge `now`: `toolforge.forge` on the solved trace, synchronously; `defer`: the trace
  is returned in `EpisodeResult.traces` for the runner's `forge_batch`; `off`: neither.
- A tip is asked only when the success came after a mistake (a second attempt or a
  second act step): a first-time success taught nothing the tool does not already say.
- A lesson is asked for `failed` tasks only: `budget_exhausted` has no budget left for
  it and `error` (endpoint down, sandbox down) says nothing about the task.
- An `unverified` task (answered, but no independent route agreed) teaches no tool: its
  failure note keeps both answers, so the next task of its kind sees the disagreement.
- Evidence about library tools (verify's and act's comparisons) is stored with the
  episode, in the same transaction.
"""

from __future__ import annotations

import ast
from typing import Any

from agent import prompts
from agent.nodes.common import Run, Stop, Turn
from agent.nodes.parse import line_grammar, parse_line
from agent.nodes.verify import answer_key, score
from agent.state import State, add_float, add_usage
from agent.task import Task
from memory import pyparse
from sandbox.base import ToolCall
from toolforge.replies import ask_until_parsed
from toolforge.types import Trace

# A reflection is a nicety: one format reminder, then we go without it.
REFLECT_TRIES = 2
MAX_TRACE_CALLS = 50
MAX_TRACE_STDOUT = 4000


def learn(state: State, run: Run) -> dict[str, Any]:
    turn = Turn(run, state, "reflect")
    task = Task.from_dict(state["task"])
    status = state.get("status") or "error"
    stored = run.deps.library.get_episode(state["episode_id"])
    if stored is not None:
        # Killed after its write but before its checkpoint: done already (the episode and
        # all it taught were written in one transaction), and redoing it would forge and
        # store twice. Deferred traces were stored with it, so the batch still forges them.
        saved = stored.trace if isinstance(stored.trace, dict) else {}
        return turn.done(
            status=stored.status,
            tools_created=list(stored.tools_created),
            traces=list(saved.get("traces") or []),
            deferred_evidence=list(saved.get("evidence") or []),
        )
    update: dict[str, Any] = {"status": status}
    if task.has_label and state.get("correct_for") != answer_key(state.get("answer")):
        # The final answer was never verified (a limit hit after act): score it now.
        if state.get("answer") is not None:
            # The answer the task reports (the last usable one of any attempt).
            update["correct"], _ = score(task, state.get("answer"), run)
        else:
            update["correct"] = False
    final_calls = (state.get("exec") or {}).get("tool_calls") or []
    final_tools = list(
        dict.fromkeys(call["tool"] for call in final_calls if call.get("error_type") is None)
    )
    # An MCP server's tools count as reuse for the forge, but the library keeps no record
    # of tools it does not hold.
    external = {c["tool"] for c in final_calls if c.get("source", "library") != "library"}
    library_tools = [name for name in final_tools if name not in external]
    learning = run.agent.learn
    tools_created: list[str] = []
    traces: list[dict[str, Any]] = []
    tip = lesson = None
    if status == "solved" and learning:
        trace = make_trace(state, final_tools)
        forge_mode = state.get("forge") or run.forge  # a resumed task keeps its start's mode
        if forge_mode != "off" and reuses_only(trace):
            # The answer only called library tools: nothing new to forge, and a distill
            # call per reuse would eat the saving reuse is for. Its calls are usage events.
            run.emit(
                "forge",
                status="skipped",
                tool=None,
                reason="the solution only calls existing tools",
            )
        elif forge_mode == "now":
            tools_created = forge_now(trace, run)
        elif forge_mode == "defer":
            traces.append(trace.to_dict())
        if state.get("attempt", 1) > 1 or state.get("step", 1) > 1:
            tip = reflect(turn, "tip", "TIP", state)
    elif status == "failed" and learning:
        lesson = reflect(turn, "lesson", "LESSON", state)
    elif status == "unverified" and learning:
        lesson = disagreement_lesson(state)
    update.update(tools_created=tools_created, traces=traces, tip=tip, lesson=lesson)
    if learning and (state.get("forge") or run.forge) == "defer":
        # A stream's batch: every task of it must see the tools' trust as it was at the
        # batch start, so the evidence is recorded at the batch end (with the forge).
        update["deferred_evidence"] = episode_evidence(state)
    update = turn.done(**update)
    store(state, run, update, library_tools)
    run.emit(
        "learn",
        status=status,
        tools_created=tools_created,
        tip=tip,
        lesson=lesson,
        deferred=len(traces),
    )
    return update


def disagreement_lesson(state: State) -> str:
    """The lesson of an answer no independent route confirmed: both answers, so that the
    next task of this kind sees that at most one of them is right."""
    check = state.get("check") or {}
    other = check.get("answer")
    mine = state.get("answer")
    if other is None:
        return (
            f"The code answered {mine!r}, and no independent answer could be had to confirm "
            "it: read again what the task asks"
        )
    return (
        f"The code answered {mine!r}, but answering directly gave {other!r}: at most one is "
        "right; read again what the task asks before computing"
    )


def make_trace(state: State, tools_used: list[str]) -> Trace:
    exec_result = state.get("exec") or {}
    return Trace(
        task=state["task"]["task"],
        task_id=state["task"]["id"],
        code=state.get("code") or "",
        answer=state.get("answer"),
        verdict="correct",
        verified_by=state.get("verified_by") or "",
        # Capped: the trace is stored with the episode and in the run's folder.
        tool_calls=[
            ToolCall.from_dict(c) for c in (exec_result.get("tool_calls") or [])[:MAX_TRACE_CALLS]
        ],
        tools_used=tools_used,
        episode_id=state.get("episode_id"),
        stdout=(exec_result.get("stdout") or "")[:MAX_TRACE_STDOUT],
    )


def reuses_only(trace: Trace) -> bool:
    """The solved code called library tools and defines no function or class of its own."""
    if not trace.tools_used:
        return False
    try:
        body = pyparse.parse(trace.code).body
    except SyntaxError:
        return False
    return not any(
        isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) for n in body
    )


def forge_now(trace: Trace, run: Run) -> list[str]:
    from toolforge import forge

    # forge's own model calls (distill) are counted on this task's counter.
    model = run.deps.model.with_config(callbacks=[run.counter])
    outcome = forge(
        trace,
        run.deps.library,
        run.deps.sandbox,
        model=model,
        config=run.deps.settings.forge,
    )
    run.emit("forge", status=outcome.status, tool=outcome.tool, reason=outcome.reason)
    created = [
        a.tool for a in getattr(outcome, "accepted", []) if a.status in ("admitted", "versioned")
    ]
    if not created and outcome.status in ("admitted", "versioned") and outcome.tool:
        created = [outcome.tool]
    return list(dict.fromkeys(created))


def reflect(turn: Turn, kind: str, key: str, state: State) -> str | None:
    """A one-line tip or lesson from the model; None if it has none or cannot say one."""
    first_problem = next(
        (
            h.get("reason") or h.get("error") or h.get("observation")
            for h in state.get("history") or []
            if h.get("verdict") == "incorrect" or h.get("error")
        ),
        None,
    )
    problem = first_problem or state.get("problem") or state.get("reason") or "unknown"
    messages = [
        {"role": "system", "content": prompts.render("reflect", "system")},
        {
            "role": "user",
            "content": prompts.render(
                "reflect",
                kind,
                task=state["task"]["task"],
                code=state.get("code") or "",
                problem=problem,
            ),
        },
    ]
    grammar = line_grammar(key)
    try:
        return ask_until_parsed(
            lambda m: turn.ask(m, grammar),
            messages,
            lambda reply: parse_line(reply, key),
            lambda reply, problem: [
                {"role": "assistant", "content": reply},
                {
                    "role": "user",
                    "content": prompts.render(
                        "reflect", "format", problem=problem, prefix=f"{key}:"
                    ),
                },
            ],
            tries=REFLECT_TRIES,
        ).value
    except Stop:
        return None  # out of budget or the endpoint is down: the task's status stands


def store(state: State, run: Run, update: dict[str, Any], final_tools: list[str]) -> None:
    """The episode and what it taught, in one transaction (see `Library.record_episode`)."""
    from agent.solve import episode_result

    task = state["task"]
    # The state as the graph will end it: this node's update applied through the reducers.
    final: dict[str, Any] = {
        **state,
        **update,
        "usage": add_usage(state.get("usage"), update["usage"]),
        "seconds": add_float(state.get("seconds"), update["seconds"]),
        "tools_used": state.get("tools_used") or [],
        "history": state.get("history") or [],
        "traces": update.get("traces") or [],
    }
    if not Task.from_dict(task).has_label:
        final["correct"] = None
    record = episode_result(final).to_record(task["task"], state.get("run_id"))
    learned = what_was_learned(state, update, final_tools) if run.agent.learn else None
    from memory import Learned

    run.deps.library.record_episode(record, learned or Learned())


def episode_evidence(state: State) -> list[dict[str, Any]]:
    """The evidence the episode's comparisons gave about library tools, as plain data."""
    task = state["task"]
    return [
        {
            "tool": e["tool"],
            "kind": e["kind"],
            "task": task["task"],
            "task_id": task["id"],
            "episode_id": state["episode_id"],
            "answer": e.get("answer"),
            "other": e.get("other"),
            "detail": str(e.get("detail") or ""),
        }
        for e in state.get("evidence") or []
    ]


def what_was_learned(state: State, update: dict[str, Any], final_tools: list[str]) -> Any:
    from memory import Evidence, FailureNote, Learned, UsageEvent

    episode_id, status = state["episode_id"], update["status"]
    events = [
        UsageEvent(
            tool=e["tool"],
            ok=bool(e["ok"]),
            episode_id=episode_id,
            args=e.get("args"),
            kwargs=e.get("kwargs"),
            result=e.get("result"),
            error_type=e.get("error_type"),
            error_message=e.get("error_message"),
            seconds=float(e.get("seconds") or 0.0),
        )
        for e in state.get("tool_events") or []
        if e.get("source", "library") == "library"
    ]
    events += [
        UsageEvent(
            tool=w["tool"],
            ok=False,
            episode_id=episode_id,
            args=w.get("args"),
            result=w.get("answer"),
            error_type=w.get("error_type") or "WrongAnswer",
            error_message=wrong_message(w),
            expected=w.get("expected"),
        )
        for w in state.get("wrong_tools") or []
    ]
    note = None
    if update.get("lesson"):
        error_type, message, tool = failure_facts(state)
        note = FailureNote(error_type, message, update["lesson"], tool)
    deferred = "deferred_evidence" in update
    evidence = [] if deferred else [Evidence(**e) for e in episode_evidence(state)]
    return Learned(
        usage=events,
        # A success needs a solved task; a call that raised is a failure either way.
        solved=status == "solved",
        evidence=evidence,
        links=final_tools if status == "solved" else [],
        tip_ids=list(state.get("tip_ids") or []),
        # Tips shown to a task that then failed lose rank (memory's consolidation).
        helped={"solved": True, "failed": False}.get(status),
        tip=update.get("tip"),
        failure=note,
    )


def wrong_message(wrong: dict[str, Any]) -> str:
    """What a failed use of a tool's answer was, for its repair to read."""
    kind = wrong.get("error_type") or "WrongAnswer"
    answer = wrong.get("answer")
    if kind == "WrongAnswer":
        return f"returned {answer!r}; the task's label is {wrong.get('expected')!r}"
    if kind == "Disagreement":
        return (
            f"returned {answer!r}; an independent route answering the same task gave "
            f"{wrong.get('expected')!r}"
        )
    return f"returned {answer!r}: {wrong.get('message') or kind}"


def failure_facts(state: State) -> tuple[str, str, str | None]:
    """(error_type, message, tool) of a failed task, from its last run."""
    if state.get("status") == "unverified" or (
        (state.get("check") or {}).get("answer") is not None and not state.get("verified_by")
    ):
        other = (state.get("check") or {}).get("answer")
        return (
            "Disagreement",
            f"the code answered {state.get('answer')!r}; directly: {other!r}",
            None,
        )
    exec_result = state.get("exec") or {}
    failed_calls = [c for c in exec_result.get("tool_calls") or [] if c.get("error_type")]
    tool = failed_calls[-1]["tool"] if failed_calls else None
    if exec_result.get("timed_out"):
        return "Timeout", "the code was killed at the sandbox's time limit", tool
    if exec_result.get("error_type"):
        return exec_result["error_type"], str(exec_result.get("error_message") or ""), tool
    return "WrongAnswer", str(state.get("reason") or "judged incorrect"), tool
