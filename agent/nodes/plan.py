"""plan: the model picks library tools (or none: new code) and writes a short plan.

A reply that does not parse goes back with the exact format; the retries count
against the task's token/time budget and are bounded by `max_steps`. If no reply
parses, the attempt fails (verify reports why) without running anything.
"""

from __future__ import annotations

from typing import Any

from agent import prompts
from agent.nodes.common import Run, Stop, Turn, history_entry
from agent.nodes.parse import FormatError, parse_plan, plan_grammar
from agent.state import State


def plan(state: State, run: Run) -> dict[str, Any]:
    turn = Turn(run, state, "plan")
    attempt = state.get("attempt", 0) + 1
    offered = [tool["name"] for tool in state.get("offered_tools") or []]
    messages = [
        {"role": "system", "content": prompts.render("plan", "system")},
        {"role": "user", "content": plan_prompt(state)},
    ]
    fresh: dict[str, Any] = {
        "attempt": attempt,
        "step": 0,
        "plan": "",
        "chosen_tools": [],
        "act_messages": [],
        "code": None,
        "exec": None,
        "has_answer": False,
        "verdict": None,
        "problem": None,
    }
    problem = ""
    try:
        for _ in range(run.agent.max_steps):
            reply = turn.ask(messages, plan_grammar(offered))
            try:
                parsed = parse_plan(reply, offered)
            except FormatError as exc:
                problem = str(exc)
                run.emit("plan", attempt=attempt, format_error=problem)
                messages += [
                    {"role": "assistant", "content": reply},
                    {
                        "role": "user",
                        "content": prompts.render(
                            "plan", "format", problem=problem, offered=", ".join(offered) or "none"
                        ),
                    },
                ]
                continue
            run.emit("plan", attempt=attempt, tools=parsed.tools, plan=parsed.plan)
            return turn.done(
                **{**fresh, "plan": parsed.plan, "chosen_tools": parsed.tools},
                history=[
                    history_entry(
                        state, "plan", attempt=attempt, tools=parsed.tools, plan=parsed.plan
                    )
                ],
            )
    except Stop as stop:
        return turn.done(**fresh, status=stop.status, reason=stop.reason)
    reason = f"the planner's replies could not be parsed ({problem})"
    return turn.done(
        **{**fresh, "problem": reason},
        history=[history_entry(state, "plan", attempt=attempt, error=reason)],
    )


def plan_prompt(state: State) -> str:
    tools = state.get("offered_tools") or []
    tool_lines = "\n".join(
        f"- {t['name']}: {t['signature']} (reliability {t['reliability']:.2f})\n  "
        + " ".join(str(t["docstring"]).split())
        for t in tools
    )
    critique = ""
    if state.get("critique"):
        critique = (
            "\nYour previous attempt was judged incorrect:\n"
            f"{state['critique']}\nMake a different plan that fixes this.\n"
        )
    return prompts.render(
        "plan",
        "user",
        task=state["task"]["task"],
        tools=tool_lines or "none",
        tips="\n".join(f"- {tip}" for tip in state.get("tips") or []) or "none",
        failures="\n".join(f"- {f}" for f in state.get("failures") or []) or "none",
        critique=critique,
    )
