"""verify: is the attempt's answer right?

- No usable answer (the code raised, timed out, set no `answer`, or no reply parsed):
  the attempt fails at once, without a model call.
- `feedback == "labels"` and the task has a label or checker: the checker decides.
- Otherwise the model critiques (step `verify`): `VERDICT: correct|incorrect` + `REASON:`.

Whatever decides, the answer is also scored against the label when the task has one
(`correct`), so a run without feedback can still be measured.
"""

from __future__ import annotations

import json
from typing import Any

from agent import prompts
from agent.checkers import checker_for
from agent.nodes.common import Run, Stop, Turn, history_entry
from agent.nodes.parse import VERIFY_GRAMMAR, FormatError, parse_verdict
from agent.state import State
from agent.task import Task


def verify(state: State, run: Run) -> dict[str, Any]:
    from sandbox.base import SandboxError

    turn = Turn(run, state, "verify")
    task = Task.from_dict(state["task"])
    update: dict[str, Any] = {}
    try:
        if not state.get("has_answer"):
            ok, reason, by = (
                False,
                state.get("problem") or "the code produced no answer",
                "execution",
            )
            if task.has_label:
                update.update(correct=False, correct_for=None)
        else:
            answer = state.get("answer")
            label_reason = ""
            if task.has_label:
                correct, label_reason = score(task, answer, run)
                update.update(correct=correct, correct_for=answer_key(answer))
            if state.get("feedback") == "labels" and task.has_label:
                ok, reason, by = bool(update["correct"]), label_reason, "checker"
            else:
                ok, reason = critique(state, turn)
                by = "critic"
    except Stop as stop:
        return turn.done(**update, status=stop.status, reason=stop.reason)
    except SandboxError as exc:
        return turn.done(**update, status="error", reason=f"sandbox failed: {exc}")
    attempt = state.get("attempt", 1)
    run.emit(
        "verify", attempt=attempt, verdict="correct" if ok else "incorrect", reason=reason, by=by
    )
    update["verdict"] = "correct" if ok else "incorrect"
    update["history"] = [
        history_entry(state, "verify", verdict=update["verdict"], by=by, reason=reason)
    ]
    if ok:
        update.update(status="solved", reason=reason, critique=None)
    else:
        update["critique"] = (
            f"Answer: {answer_text(state.get('answer'))}\nProblem: {reason}"
            if state.get("has_answer")
            else f"Problem: {reason}"
        )
        if attempt >= run.agent.max_attempts:
            update.update(
                status="failed",
                reason=f"no correct answer after {attempt} attempt(s); last: {reason}",
            )
    return turn.done(**update)


def score(task: Task, answer: Any, run: Run) -> tuple[bool, str]:
    """Whether `answer` passes the task's checker, and why."""
    checker = checker_for(task)
    assert checker is not None, "score() needs a task with a label or a checker"
    result = checker.check(answer, task.expected, run.deps.sandbox)
    return result.ok, result.reason


def answer_text(answer: Any) -> str:
    """A string as it is (so a scripted rule can match it), anything else as JSON."""
    return answer if isinstance(answer, str) else json.dumps(answer, default=str)


def answer_key(answer: Any) -> str:
    return json.dumps(answer, sort_keys=True, default=str)


def critique(state: State, turn: Turn) -> tuple[bool, str]:
    exec_result = state.get("exec") or {}
    from sandbox.base import ExecResult

    observation = ExecResult.from_dict(exec_result).observation() if exec_result else ""
    messages = [
        {"role": "system", "content": prompts.render("verify", "system")},
        {
            "role": "user",
            "content": prompts.render(
                "verify",
                "user",
                task=state["task"]["task"],
                code=state.get("code") or "",
                observation=observation,
                answer=answer_text(state.get("answer")),
            ),
        },
    ]
    problem = ""
    for _ in range(turn.run.agent.max_steps):
        reply = turn.ask(messages, VERIFY_GRAMMAR)
        try:
            return parse_verdict(reply)
        except FormatError as exc:
            problem = str(exc)
            messages += [
                {"role": "assistant", "content": reply},
                {"role": "user", "content": prompts.render("verify", "format", problem=problem)},
            ]
    return False, f"the critic's replies could not be parsed ({problem})"
