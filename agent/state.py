"""The graph's state: everything a checkpoint must hold to resume a task mid-way.

Only plain JSON-like values live here (dicts, lists, strings, numbers): the model,
the sandbox and the library are injected into the nodes (see `agent.nodes.common.Run`)
and never checkpointed. Each node returns the fields it changed; `usage`, `seconds`,
`tool_events` and `tools_used` accumulate through reducers so a node returns its
own increment only.
"""

from __future__ import annotations

from typing import Annotated, Any, TypedDict, cast

from agent.types import Feedback, ForgeMode
from memory.episode import STATUSES, Episode, Status, Trace

USAGE_KEYS = ("n_calls", "n_errors", "tokens_in", "tokens_out", "seconds")


def add_usage(old: dict[str, Any] | None, new: dict[str, Any] | None) -> dict[str, Any]:
    """Merge usage increments: {"total": {...}, "by_step": {step: {...}}} (UsageCounter's keys)."""
    out: dict[str, Any] = {"total": dict(empty_usage()), "by_step": {}}
    for part in (old, new):
        if not part:
            continue
        _add_into(out["total"], part.get("total") or {})
        for step, numbers in (part.get("by_step") or {}).items():
            _add_into(out["by_step"].setdefault(step, dict(empty_usage())), numbers)
    return out


def _add_into(into: dict[str, Any], numbers: dict[str, Any]) -> None:
    for key in USAGE_KEYS:
        into[key] = into.get(key, 0) + (numbers.get(key) or 0)


def empty_usage() -> dict[str, Any]:
    return {"n_calls": 0, "n_errors": 0, "tokens_in": 0, "tokens_out": 0, "seconds": 0.0}


def add_float(old: float | None, new: float | None) -> float:
    return (old or 0.0) + (new or 0.0)


def add_int(old: int | None, new: int | None) -> int:
    return (old or 0) + (new or 0)


def extend(old: list[Any] | None, new: list[Any] | None) -> list[Any]:
    return [*(old or []), *(new or [])]


def union(old: list[str] | None, new: list[str] | None) -> list[str]:
    out = list(old or [])
    out.extend(name for name in (new or []) if name not in out)
    return out


class State(TypedDict, total=False):
    # the task, and the id under which this episode is stored
    task: dict[str, Any]
    episode_id: str
    run_id: str | None
    feedback: Feedback
    forge: ForgeMode
    # recall: what the library offered
    offered_tools: list[dict[str, Any]]
    tips: list[str]
    tip_ids: list[str]
    failures: list[str]
    # the current attempt
    attempt: int
    step: int
    plan: str
    chosen_tools: list[str]
    # the fast path: a library tool called on the task without the model (see plan)
    fast: bool
    tried_tools: Annotated[list[str], union]
    act_messages: list[dict[str, str]]
    code: str | None
    previous_code: str | None
    exec: dict[str, Any] | None
    answer: Any
    has_answer: bool
    problem: str | None
    # the library tool whose answer is the attempt's answer (the fast path's, or a call on
    # the task's text that returned it), and the independent route's answer (once per task)
    answer_tool: str | None
    check: dict[str, Any] | None
    # the answers (normalized) the route disagreed with in this task's attempts
    refuted: Annotated[list[str], union]
    # exploration (agent/nodes/explore.py): the other usable programs of the sampled ones,
    # in order ({code, answer, exec}), that verify tries when the answer does not hold;
    # and the samples drawn for the task so far
    candidates: list[dict[str, Any]]
    explored: Annotated[int, add_int]
    # verify
    verdict: str | None
    verified_by: str
    critique: str | None
    correct: bool | None
    correct_for: str | None
    history: Annotated[list[dict[str, Any]], extend]
    # the end (a memory.episode.Status once set)
    status: str | None
    reason: str
    tools_created: list[str]
    traces: list[dict[str, Any]]
    lesson: str | None
    tip: str | None
    # accumulated across nodes (and across a resume)
    usage: Annotated[dict[str, Any], add_usage]
    seconds: Annotated[float, add_float]
    tool_events: Annotated[list[dict[str, Any]], extend]
    # fast-path answers the task's checker judged wrong: failed uses of those tools
    wrong_tools: Annotated[list[dict[str, Any]], extend]
    # comparisons made on this side about library tools' answers (learn stores them, or,
    # in a stream's batch, hands them to the batch end: deferred_evidence)
    evidence: Annotated[list[dict[str, Any]], extend]
    deferred_evidence: list[dict[str, Any]]
    tools_used: Annotated[list[str], union]


def episode_of(state: dict[str, Any]) -> Episode:
    """The episode a final state makes (see memory/episode.py)."""
    total = (state.get("usage") or {}).get("total") or {}
    task = state["task"]
    labelled = task.get("expected") is not None or bool(task.get("checker"))
    status = state.get("status") or "error"
    if status not in STATUSES:
        raise ValueError(f"a task cannot end with status {status!r}")
    return Episode(
        task_id=task["id"],
        task=task["task"],
        status=cast(Status, status),
        answer=state.get("answer"),
        correct=state.get("correct") if labelled else None,
        feedback=state.get("feedback") or "none",
        attempts=int(state.get("attempt", 0)),
        n_calls=int(total.get("n_calls", 0)),
        tokens_in=int(total.get("tokens_in", 0)),
        tokens_out=int(total.get("tokens_out", 0)),
        seconds=round(float(state.get("seconds") or 0.0), 3),
        usage_by_step=(state.get("usage") or {}).get("by_step") or {},
        tools_used=list(state.get("tools_used") or []),
        tools_created=list(state.get("tools_created") or []),
        reason=state.get("reason") or "",
        verified_by=(state.get("verified_by") or "") if status == "solved" else "",
        answer_tool=state.get("answer_tool"),
        explored=int(state.get("explored") or 0),
        run_id=state.get("run_id"),
        id=state.get("episode_id"),
        history=list(state.get("history") or []),
        traces=[Trace.from_dict(t) for t in state.get("traces") or []],
        evidence=list(state.get("deferred_evidence") or []),
    )
