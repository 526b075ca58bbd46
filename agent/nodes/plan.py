"""plan: pick library tools (or none: new code) and a short plan.

Two ways need no model call (a call costs ~10 s on a small local model):
- the fast path: a library tool that takes the task's text and solved tasks like this
  one (past-tasks view, `fast_path_similarity`, `fast_path_min_reliability`) is chosen
  at once; act then calls it on TASK, also without the model. A tool tried this way and
  judged wrong is not tried again in this task.
- no tool offered: nothing to choose, act writes new code.
Otherwise the model chooses; a reply that does not parse goes back with the exact format
(bounded by `max_steps`); if none parses, the attempt fails without running anything.
"""

from __future__ import annotations

import re
from typing import Any

from agent import prompts
from agent.models.calls import ask_until_parsed
from agent.nodes.common import Run, Stop, Turn, history_entry
from agent.nodes.parse import parse_plan, plan_grammar
from agent.state import State

#: A tool made to take a whole task's text: the act prompt and the forge's `distill_task`
#: both write `def name(task: str) -> str`. A tool of another input (`expression: str`)
#: is not called on the raw text: it would fail on every task, and be blamed for it.
TASK_SIGNATURE = re.compile(r"^\w+\(task: str\) -> str$")


def fast_tool(state: State, run: Run) -> dict[str, Any] | None:
    """The library tool to call on the task without the model, if one fits: it takes the
    task's text, solved tasks like this one, and no evidence stands against its current
    version (a doubted tool goes back to the planner's choice until a fix is confirmed).
    Whether its answer then stands without a model call is verify's decision (trust)."""
    agent = run.agent
    if not agent.fast_path:
        return None
    tried = set(state.get("tried_tools") or [])
    for tool in state.get("offered_tools") or []:
        if (
            tool.get("view") == "tasks"
            and tool.get("similarity", 0) >= agent.fast_path_similarity
            and tool["reliability"] >= agent.fast_path_min_reliability
            and TASK_SIGNATURE.match(tool["signature"])
            and tool.get("trust") != "doubted"
            and tool["name"] not in tried
        ):
            return tool
    return None


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
        "fast": False,
        # What the last attempt ran: act shows it beside the critique.
        "previous_code": state.get("code") or state.get("previous_code"),
        "act_messages": [],
        "code": None,
        "exec": None,
        "has_answer": False,
        "verdict": None,
        "problem": None,
        "candidates": [],
    }
    fast = fast_tool(state, run)
    if fast is not None:
        name = fast["name"]
        text = f"call {name}(TASK): it solved tasks like this one"
        run.emit("plan", attempt=attempt, tools=[name], plan=text, fast=True)
        return turn.done(
            **{**fresh, "plan": text, "chosen_tools": [name], "fast": True},
            tried_tools=[name],
            history=[
                history_entry(state, "plan", attempt=attempt, tools=[name], plan=text, fast=True)
            ],
        )
    if not offered and run.agent.plan_without_tools == "never":
        # Nothing to choose from: the plan call would only restate the task.
        run.emit("plan", attempt=attempt, tools=[], plan="")
        return turn.done(
            **fresh, history=[history_entry(state, "plan", attempt=attempt, tools=[], plan="")]
        )
    grammar = plan_grammar(offered)
    try:
        asked = ask_until_parsed(
            lambda m: turn.ask(m, grammar),
            messages,
            lambda reply: parse_plan(reply, offered),
            lambda reply, problem: [
                {"role": "assistant", "content": reply},
                {
                    "role": "user",
                    "content": prompts.render(
                        "plan", "format", problem=problem, offered=", ".join(offered) or "none"
                    ),
                },
            ],
            tries=run.agent.max_steps,
            on_problem=lambda problem: run.emit("plan", attempt=attempt, format_error=problem),
        )
    except Stop as stop:
        return turn.done(**fresh, status=stop.status, reason=stop.reason)
    if (parsed := asked.value) is not None:
        run.emit("plan", attempt=attempt, tools=parsed.tools, plan=parsed.plan)
        return turn.done(
            **{**fresh, "plan": parsed.plan, "chosen_tools": parsed.tools},
            history=[
                history_entry(state, "plan", attempt=attempt, tools=parsed.tools, plan=parsed.plan)
            ],
        )
    reason = f"the planner's replies could not be parsed ({asked.problem})"
    return turn.done(
        **{**fresh, "problem": reason},
        history=[history_entry(state, "plan", attempt=attempt, error=reason)],
    )


def _standing(tool: dict[str, Any]) -> str:
    if tool.get("source") == "mcp":
        return "from an MCP server"
    return f"reliability {tool['reliability']:.2f}, {tool.get('trust', 'probation')}"


def plan_prompt(state: State) -> str:
    tools = state.get("offered_tools") or []
    tool_lines = "\n".join(
        f"- {t['name']}: {t['signature']} ({_standing(t)})\n  "
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
