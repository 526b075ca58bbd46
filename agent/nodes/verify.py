"""verify: is the attempt's answer right, and on what evidence?

- No usable answer (the code raised, timed out, set no `answer`, broke its tool's
  properties, or no reply parsed): the attempt fails at once, without a model call.
- `feedback == "labels"` and the task has a label or checker: the checker decides.
- Otherwise evidence decides, never the model's approval of its own answer:
  - a fast-path answer of a *trusted* (or pinned) tool stands with no model call, except
    for a share `audit_rate` of its uses, audited like any other answer;
  - any other answer must agree with an independent route (`agent/routes.py`: the model
    answering in words under the task's form, by default), asked once per task (step
    `check`). Agreement: solved. Disagreement: the attempt fails and plan tries again
    (without the tool, when a tool answered); after the last attempt the task ends
    `unverified` with its answer: answered, but nothing backs it. Of exploration's other
    programs, only those whose answer a second program also reached are tried against
    the route (`corroborated`). An answer that agrees only after the route refuted every
    other answer the task allows (True/False, listed options) was found by elimination:
    the task ends `unverified` at once (`routes.by_elimination`).

Whatever decides, the answer is also scored against the label when the task has one
(`correct`), so a run without feedback can still be measured. Each comparison that
involved a library tool's answer becomes evidence for or against that tool (`evidence`
in the state, stored by learn).
"""

from __future__ import annotations

import json
from typing import Any, cast

from agent.checkers import checker_for, normalize
from agent.nodes.common import Run, Stop, Turn, history_entry
from agent.routes import CHECK_STEP, RouteAnswer, agree, ask_route, audit_due, by_elimination
from agent.state import State
from agent.task import Task
from memory.episode import ToolUse


def verify(state: State, run: Run) -> dict[str, Any]:
    from sandbox.base import SandboxError

    turn = Turn(run, state, "verify")
    task = Task.from_dict(state["task"])
    update: dict[str, Any] = {}
    tool = state.get("answer_tool")
    try:
        ok, reason, by = judged(state, run, turn, task, update)
        candidates = list(state.get("candidates") or [])
        if by == "agreement":
            candidates = corroborated(candidates)
        while not ok and candidates and by in ("checker", "agreement"):
            # Exploration's other programs (agent/nodes/explore.py), each judged the same
            # way: against the label, or against the route's answer already asked.
            state = _next_candidate(state, candidates.pop(0), update)
            ok, reason, by = judged(state, run, turn, task, update)
            update["candidates"] = candidates
    except Stop as stop:
        return turn.done(**update, status=stop.status, reason=stop.reason)
    except SandboxError as exc:
        return turn.done(**update, status="error", reason=f"sandbox failed: {exc}")
    attempt = state.get("attempt", 1)
    run.emit(
        "verify", attempt=attempt, verdict="correct" if ok else "incorrect", reason=reason, by=by
    )
    update["verdict"] = "correct" if ok else "incorrect"
    update["verified_by"] = by if ok else ""
    update["history"] = [
        history_entry(state, "verify", verdict=update["verdict"], by=by, reason=reason)
    ]
    if ok:
        update.update(status="solved", reason=reason, critique=None)
        return turn.done(**update)
    if by == "elimination":
        # No later attempt can confirm it either: answered, unverified, now.
        update.update(status="unverified", reason=f"answered, but {reason}")
        return turn.done(**update)
    if state.get("fast") and tool and by in ("checker", "agreement"):
        # A library tool's answer that did not hold up: a failed use of the tool (its
        # repair needs the input and both answers).
        update["wrong_tools"] = [
            ToolUse.did_not_hold(
                tool,
                task.task,
                state.get("answer"),
                "WrongAnswer" if by == "checker" else "Disagreement",
                expected=task.expected if by == "checker" else update.get("other"),
            ).to_dict()
        ]
    update.pop("other", None)
    update["critique"] = (
        f"Answer: {answer_text(state.get('answer'))}\nProblem: {reason}"
        if state.get("has_answer")
        else f"Problem: {reason}"
    )
    if attempt >= run.agent.max_attempts:
        # Without labels an answer nothing confirmed is not known to be wrong: it is
        # reported as answered but unverified (with the last usable answer of any
        # attempt), and never learned from.
        labels_decide = state.get("feedback") == "labels" and task.has_label
        unverified = not labels_decide and state.get("answer") is not None
        update.update(
            status="unverified" if unverified else "failed",
            reason=(
                f"answered, but no independent route confirmed it after {attempt} attempt(s)"
                if unverified
                else f"no correct answer after {attempt} attempt(s); last: {reason}"
            ),
        )
    return turn.done(**update)


def corroborated(candidates: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The explored programs' answers (one per distinct answer) that two or more programs
    reached. Without labels a later answer is judged against the route's answer the
    first one failed: with k programs that is k chances at a coincidence (a 1.5B model's
    programs and its route share their mistakes), so one program's agreement is not
    evidence; two programs and the route reaching one answer are."""
    return [c for c in candidates if int(c.get("programs") or 1) >= 2]


def _next_candidate(state: State, candidate: dict[str, Any], update: dict[str, Any]) -> State:
    """The state with `candidate`'s program and answer in place of the attempt's (in
    `update` too, so the task ends with the program that held), and the route's answer
    the last judgement asked for kept."""
    switched = {
        "code": candidate["code"],
        "exec": candidate["exec"],
        "answer": candidate["answer"],
        "has_answer": True,
        "answer_tool": None,
    }
    update.update(switched)
    update.pop("other", None)
    state = cast(State, {**state, **switched})
    if update.get("check"):
        state["check"] = update["check"]
    return state


def judged(
    state: State, run: Run, turn: Turn, task: Task, update: dict[str, Any]
) -> tuple[bool, str, str]:
    """(holds, why, by what) for the attempt's answer, in order of evidence: none to
    judge; the label (`labels` feedback); a trusted tool; an independent route. What it
    learns on the way (scored against the label, evidence, the route's answer) goes into
    `update`."""
    if not state.get("has_answer"):
        if task.has_label:
            update.update(correct=False, correct_for=None)
        return False, state.get("problem") or "the code produced no answer", "execution"
    answer = state.get("answer")
    label_reason = ""
    if task.has_label:
        correct, label_reason = score(task, answer, run)
        update.update(correct=correct, correct_for=answer_key(answer))
    if state.get("feedback") == "labels" and task.has_label:
        ok = bool(update["correct"])
        if tool := state.get("answer_tool"):
            kind = "label_match" if ok else "label_mismatch"
            update["evidence"] = [_evidence(state, tool, kind, task.expected, label_reason)]
        return ok, label_reason, "checker"
    if trusted := trusted_answer(state, run):
        return True, trusted, "trusted tool"
    ok, reason, by, more = confirm(state, run, turn, task)
    update.update(more)
    return ok, reason, by


def trusted_answer(state: State, run: Run) -> str:
    """Why the answer stands with no model call ("" when it may not): a fast-path tool whose
    evidence made it trusted (or a person pinned) computed it cleanly (its properties held
    in act), and this use is not one of the audited ones."""
    name = state.get("answer_tool")
    if not state.get("fast") or not name:
        return ""
    tool = next((t for t in state.get("offered_tools") or [] if t["name"] == name), None)
    if tool is None or tool.get("trust") not in ("trusted", "pinned"):
        return ""
    if audit_due(run.agent.audit_rate, name, state["task"]["task"]):
        return ""
    return (
        f"{name} computed it; it is {tool['trust']} "
        f"({tool.get('n_support', 0)} confirmations, none against)"
    )


def confirm(
    state: State, run: Run, turn: Turn, task: Task
) -> tuple[bool, str, str, dict[str, Any]]:
    """The answer against the task's independent route (asked once per task): (agreed,
    reason, by, state update)."""
    update: dict[str, Any] = {}
    saved = state.get("check")
    if saved:
        route = RouteAnswer.from_dict(saved)
    else:
        route = ask_route(
            run.agent.check_route,
            task.task,
            lambda messages, grammar: turn.ask(messages, grammar, step=CHECK_STEP),
            run.deps.sandbox,
            run.deps.settings.sandbox.timeout_s,
        )
        if route.ok:
            # Kept for the task's later attempts; a route that gave no answer is asked again.
            update["check"] = route.to_dict()
        run.emit("check", route=route.route, answer=route.answer, problem=route.problem or None)
    answer = state.get("answer")
    tool = state.get("answer_tool")
    if not route.ok:
        return (
            False,
            f"no independent route could confirm it ({route.problem})",
            "agreement",
            update,
        )
    if agree(task, answer, route.answer):
        if by_elimination(task.task, list(state.get("refuted") or []), answer):
            return (
                False,
                "it agrees with the independent route only after the route refuted the "
                "task's other possible answers: agreement found by elimination is no evidence",
                "elimination",
                update,
            )
        if tool:
            update["evidence"] = [
                _evidence(state, tool, "agreement", route.answer, f"route {route.route}")
            ]
        return (
            True,
            f"an independent route ({route.route}) reached the same answer",
            "agreement",
            update,
        )
    if tool:
        update["evidence"] = [
            _evidence(state, tool, "disagreement", route.answer, f"route {route.route}")
        ]
    update["other"] = route.answer
    update["refuted"] = [normalize(answer)]
    # The other answer is not shown to the code route: a later agreement must stay independent.
    return False, "an independent route reached a different answer", "agreement", update


def _evidence(state: State, tool: str, kind: str, other: object, detail: str) -> dict[str, Any]:
    return {
        "tool": tool,
        "kind": kind,
        "answer": state.get("answer"),
        "other": other,
        "detail": detail,
    }


def score(task: Task, answer: object, run: Run) -> tuple[bool, str]:
    """Whether `answer` passes the task's checker, and why."""
    checker = checker_for(task)
    assert checker is not None, "score() needs a task with a label or a checker"
    result = checker.check(answer, task.expected, run.deps.sandbox)
    return result.ok, result.reason


def answer_text(answer: object) -> str:
    """A string as it is (so a scripted rule can match it), anything else as JSON."""
    return answer if isinstance(answer, str) else json.dumps(answer, default=str)


def answer_key(answer: object) -> str:
    return json.dumps(answer, sort_keys=True, default=str)
