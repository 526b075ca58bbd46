"""The graph: recall → plan → act ⇄ act → verify → (plan again | learn) → END.

The nodes live in `agent/nodes/`; this file only wires them. Routers read the state:
a node that hits a limit or an endpoint failure sets `status`, and every router
then goes straight to `learn`, which stores the episode and ends the task.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from agent import nodes
from agent.nodes.common import Run
from agent.state import State


def route_after_plan(state: State) -> str:
    if state.get("status"):
        return "learn"
    # No parsable plan: nothing to run, verify fails the attempt without a model call.
    return "verify" if state.get("problem") else "act"


def route_after_act(state: State, max_steps: int) -> str:
    if state.get("status"):
        return "learn"
    if state.get("has_answer") or state.get("step", 0) >= max_steps:
        return "verify"
    return "act"  # the observation (error, no answer, bad format) goes back to the model


def route_after_verify(state: State) -> str:
    return "learn" if state.get("status") else "plan"


def build_graph(run: Run, checkpointer: Any = None) -> Any:
    """The compiled graph for one `solve_task` call (`run` is bound into every node)."""
    from langgraph.graph import END, START, StateGraph

    graph = StateGraph(State)
    graph.add_node("recall", partial(nodes.recall, run=run))
    graph.add_node("plan", partial(nodes.plan, run=run))
    graph.add_node("act", partial(nodes.act, run=run))
    graph.add_node("verify", partial(nodes.verify, run=run))
    graph.add_node("learn", partial(nodes.learn, run=run))

    graph.add_edge(START, "recall")
    graph.add_edge("recall", "plan")
    graph.add_conditional_edges("plan", route_after_plan, ["act", "verify", "learn"])
    graph.add_conditional_edges(
        "act",
        partial(route_after_act, max_steps=run.agent.max_steps),
        ["act", "verify", "learn"],
    )
    graph.add_conditional_edges("verify", route_after_verify, ["plan", "learn"])
    graph.add_edge("learn", END)
    return graph.compile(checkpointer=checkpointer, name="evoagent")
