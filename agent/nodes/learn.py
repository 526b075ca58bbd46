"""learn: a success goes to toolforge and may yield a tip; a failure yields a lesson.
The node only decides (its model calls, step `reflect`, and the forge); `lessons` turns
the final state into what the library records with the episode, and `agent.solve`
writes both in one transaction after the graph ends, so the stored episode counts every
call the task cost.

- `learn=False` (`--no-learn`, the frozen-library baseline): only the episode is
  stored; no usage events, task links, tools, tips or failures, and no `reflect` call,
  so the library the next task sees is unchanged except for its episode log.
- forge `now`: `toolforge.forge` on the solved trace, synchronously; `defer`: the trace
  is kept in `Episode.traces` for the runner's `forge_batch`; `off`: neither.
- A tip is asked only when the success came after a mistake (a second attempt or a
  second act step): a first-time success taught nothing the tool does not already say.
- A lesson is asked for `failed` tasks only: `budget_exhausted` has no budget left for
  it and `error` (endpoint down, sandbox down) says nothing about the task.
- An `unverified` task (answered, but no independent route agreed) teaches no tool: its
  failure note keeps both answers, so the next task of its kind sees the disagreement.
- Evidence about library tools (verify's and act's comparisons) is stored with the
  episode, in the same transaction (in a stream's batch, at the batch end).
"""

from __future__ import annotations

import ast
from typing import Any

from agent import prompts
from agent.models.calls import ask_until_parsed
from agent.nodes.common import Run, Stop, Turn
from agent.nodes.parse import line_grammar, parse_line
from agent.nodes.verify import answer_key, score
from agent.state import State
from agent.task import Task
from memory import Evidence, FailureNote, Learned, UsageEvent, pyparse
from memory.episode import ToolUse, Trace

# A reflection is a nicety: one format reminder, then we go without it.
REFLECT_TRIES = 2
MAX_TRACE_CALLS = 50
MAX_TRACE_STDOUT = 4000


def learn(state: State, run: Run) -> dict[str, Any]:
    turn = Turn(run, state, "reflect")
    task = Task.from_dict(state["task"])
    status = state.get("status") or "error"
    update: dict[str, Any] = {"status": status}
    if task.has_label and state.get("correct_for") != answer_key(state.get("answer")):
        # The final answer was never verified (a limit hit after act): score it now.
        if state.get("answer") is not None:
            # The answer the task reports (the last usable one of any attempt).
            update["correct"], _ = score(task, state.get("answer"), run)
        else:
            update["correct"] = False
    learning = run.agent.learn
    tools_created: list[str] = []
    traces: list[dict[str, Any]] = []
    tip = lesson = None
    if status == "solved" and learning:
        trace = make_trace(state)
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


def final_calls(state: State) -> list[ToolUse]:
    """The calls of the run whose answer the task reports."""
    calls = (state.get("exec") or {}).get("tool_calls") or []
    return [ToolUse.from_dict(c) for c in calls[:MAX_TRACE_CALLS]]


def make_trace(state: State) -> Trace:
    exec_result = state.get("exec") or {}
    calls = final_calls(state)
    return Trace(
        task=state["task"]["task"],
        task_id=state["task"]["id"],
        code=state.get("code") or "",
        answer=state.get("answer"),
        verdict="correct",
        verified_by=state.get("verified_by") or "",
        # Capped: the trace is stored with the episode and in the run's folder.
        tool_calls=calls,
        # An MCP server's tools count as reuse for the forge.
        tools_used=list(dict.fromkeys(c.tool for c in calls if c.ok)),
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
    from agent.models import StepCaller
    from toolforge import forge

    # forge's own model calls (distill) are counted on this task's counter.
    model = StepCaller(run.deps.model, run.counter)
    outcome = forge(
        trace,
        run.deps.own_library(),
        run.deps.sandbox,
        model=model,
        config=run.deps.settings.forge,
    )
    run.emit("forge", status=outcome.status, tool=outcome.tool, reason=outcome.reason)
    return outcome.created


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


def lessons(state: State) -> Learned:
    """What a finished task taught the library, from its final state: its tools' uses
    (wrong answers among them), the tools its answer used, the tip or lesson learn drew,
    and the evidence its comparisons gave (left to the batch end in a stream's batch)."""
    episode_id, status = state["episode_id"], state.get("status") or "error"
    uses = [ToolUse.from_dict(e) for e in state.get("tool_events") or []]
    # Fast-path answers that did not hold up: failed uses, for the tools' repair.
    uses += [ToolUse.from_dict(w) for w in state.get("wrong_tools") or []]
    # The library keeps no record of an MCP server's tools.
    events = [UsageEvent.of(use, episode_id) for use in uses if use.server is None]
    note = None
    if lesson := state.get("lesson"):
        error_type, message, tool = failure_facts(state)
        note = FailureNote(error_type, message, lesson, tool)
    deferred = state.get("forge") == "defer"
    evidence = [] if deferred else [Evidence(**e) for e in episode_evidence(state)]
    links = [c.tool for c in final_calls(state) if c.ok and c.server is None]
    return Learned(
        usage=events,
        # A success needs a solved task; a call that raised is a failure either way.
        solved=status == "solved",
        evidence=evidence,
        links=list(dict.fromkeys(links)) if status == "solved" else [],
        tip_ids=list(state.get("tip_ids") or []),
        # Tips shown to a task that then failed lose rank (memory's consolidation).
        helped={"solved": True, "failed": False}.get(status),
        tip=state.get("tip"),
        failure=note,
    )


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
