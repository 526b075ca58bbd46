"""verify: is the attempt's answer right?

- No usable answer (the code raised, timed out, set no `answer`, or no reply parsed):
  the attempt fails at once, without a model call.
- `feedback == "labels"` and the task has a label or checker: the checker decides.
- A fast-path answer of a tool with enough verified successes and no failure
  (`trust_verified_tools`): accepted without a model call.
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
from agent.nodes.parse import VERIFY_GRAMMAR, parse_verdict
from agent.state import State
from agent.task import Task
from toolforge.replies import ask_until_parsed


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
            trusted = trusted_tool(state, run)
            if state.get("feedback") == "labels" and task.has_label:
                ok, reason, by = bool(update["correct"]), label_reason, "checker"
            elif trusted:
                ok, reason, by = True, trusted, "trusted tool"
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
        if by == "checker" and state.get("fast") and state.get("chosen_tools"):
            # A library tool's answer, wrong against the label: a failed use of it (its
            # repair needs the input and what was expected).
            update["wrong_tools"] = [
                {
                    "tool": state["chosen_tools"][0],
                    "args": [task.task],
                    "answer": state.get("answer"),
                    "expected": task.expected,
                }
            ]
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


def trusted_tool(state: State, run: Run) -> str:
    """Why the critic may be skipped ("" when it may not): a fast-path tool computed the
    answer cleanly, and its record holds enough successes verified against labels and no
    failure in use. A model's critique adds little there, and costs a call."""
    need = run.agent.trust_verified_tools
    if not need or not state.get("fast") or not state.get("chosen_tools"):
        return ""
    name = state["chosen_tools"][0]
    tool = next((t for t in state.get("offered_tools") or [] if t["name"] == name), None)
    if tool is None or tool.get("n_fail", 1) or tool.get("n_verified", 0) < need:
        return ""
    return f"{name} computed it; it has {tool['n_verified']} verified successes and no failure"


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
    asked = ask_until_parsed(
        lambda m: turn.ask(m, VERIFY_GRAMMAR),
        messages,
        parse_verdict,
        lambda reply, problem: [
            {"role": "assistant", "content": reply},
            {"role": "user", "content": prompts.render("verify", "format", problem=problem)},
        ],
        tries=turn.run.agent.max_steps,
    )
    if asked.value is None:
        return False, f"the critic's replies could not be parsed ({asked.problem})"
    return asked.value
