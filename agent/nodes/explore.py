"""explore: for a task no library tool covers, several programs at the price of ~one.

A small model solves far more tasks in k tries than in one, and a task of a new kind is
where a right solution pays most: the forge turns it into a tool every later task of its
kind reuses. So when the plan chose no tool (nothing in the library covers the task), the
first act step samples `explore_k` programs in one call (`invoke_step_n`: the local
engine decodes them together), runs each in the sandbox and keeps those with a usable
answer as candidates, in order. The first is the step's answer; verify tries the others
when it does not hold (against the label, or the independent route's answer it already
has: no further model call). When none is usable, the first failing program and what
came out of it go back to the model: the usual next act step is its repair turn.

Spending is bounded: per task (`explore_per_task` samples) and per stream
(`explore_per_stream`, shared by the process's workers); a task a tool covers spends
nothing. What was spent is the episode's `explored` and the `explore` step's usage.
"""

from __future__ import annotations

from typing import Any

from agent import prompts
from agent.nodes.common import Run, Stop, Turn, history_entry
from agent.nodes.execute import Step, answer_problem, compact_exec, run_sandboxed
from agent.nodes.parse import FormatError, parse_code
from agent.state import State

EXPLORE_STEP = "explore"


def explorable(state: State, run: Run, step: int, chosen: list[str]) -> int:
    """How many programs this act step may sample (0: it writes one, as usual): the first
    step of an attempt with no tool chosen, within the task's budget."""
    agent = run.agent
    if agent.explore != "always" or step != 1 or chosen or state.get("fast"):
        return 0
    left = agent.explore_per_task - int(state.get("explored") or 0)
    k = min(agent.explore_k, left)
    return k if k >= 2 else 0


def explore(
    turn: Turn, state: State, run: Run, k: int, messages: list[dict[str, str]], grammar: str
) -> dict[str, Any] | None:
    """Sample `k` programs under the act step's `grammar`, run each, and return the act
    step's update (None: the stream's budget is spent, or no sample held code; the step
    then writes one program as usual)."""
    from sandbox.base import SandboxError

    k = run.deps.exploration().take(k, least=2)  # one sample is no exploration
    if not k:
        return None
    try:
        texts = turn.ask_n(messages, grammar, k, run.agent.explore_temperature)
    except Stop as stop:
        return turn.done(step=1, status=stop.status, reason=stop.reason, explored=k)
    tried = {h.get("code") for h in state.get("history") or [] if h.get("kind") == "act"}
    codes: list[str] = []
    for text in texts:
        try:
            code = parse_code(text)
        except FormatError:
            continue
        if code not in tried and code not in codes:
            codes.append(code)
    run.emit("explore", samples=k, programs=len(codes))
    if not codes:
        return None
    task_text = state["task"]["task"]
    usable: list[dict[str, Any]] = []
    failed: tuple[str, str] | None = None
    history = []
    for code in codes:
        try:
            res, _ = run_sandboxed(state, run, Step(1, code, [], False, messages))
        except SandboxError as exc:
            reason = f"sandbox failed: {exc}"
            return turn.done(step=1, code=code, status="error", reason=reason, explored=k)
        observation = res.observation()
        form = answer_problem(res, task_text, run.agent.answer_types)
        ok = res.ok and res.has_answer and form is None
        if form is not None:
            observation += f"\nNOT USABLE: {form}"
        history.append(
            history_entry(state, "act", step=1, code=code, observation=observation, explore=True)
        )
        same = next((c for c in usable if c["answer"] == res.answer), None) if ok else None
        if same is not None:
            same["programs"] += 1  # one answer reached by two programs: corroboration
        elif ok:
            usable.append(
                {"code": code, "answer": res.answer, "exec": compact_exec(res), "programs": 1}
            )
        elif failed is None:
            failed = (code, observation)
    run.emit("act", step=1, explored=k, usable=len(usable), programs=len(codes))
    update: dict[str, Any] = {"step": 1, "explored": k, "history": history}
    if usable:
        first, rest = usable[0], usable[1:]
        update.update(
            code=first["code"],
            exec=first["exec"],
            answer=first["answer"],
            has_answer=True,
            answer_tool=None,
            problem=None,
            candidates=rest,
            act_messages=messages,
        )
        return turn.done(**update)
    assert failed is not None
    code, observation = failed
    update.update(
        code=code,
        exec=None,
        has_answer=False,
        problem=observation,
        act_messages=repair_turn(messages, code, observation),
    )
    return turn.done(**update)


def repair_turn(
    messages: list[dict[str, str]], code: str, observation: str
) -> list[dict[str, str]]:
    """The conversation the next act step answers: the failed program, then what came
    out of it (its error, its output, why its answer is unusable)."""
    nudge = prompts.render("act", "retry")
    return [
        *messages,
        {"role": "assistant", "content": f"```python\n{code}\n```"},
        {
            "role": "user",
            "content": prompts.render("act", "observation", observation=observation, next=nudge),
        },
    ]
