"""recall: the library's top tools, tips and failures for the task (no model call)."""

from __future__ import annotations

from typing import Any

from agent.nodes.common import Run, Turn
from agent.state import State


def recall(state: State, run: Run) -> dict[str, Any]:
    turn = Turn(run, state, "recall")
    library, limits = run.deps.library, run.agent
    text = state["task"]["task"]
    tools = [
        {
            "name": hit.tool.name,
            "signature": hit.tool.signature,
            "docstring": hit.tool.docstring,
            "reliability": round(float(hit.tool.reliability), 3),
            "score": round(float(hit.score), 3),
            "similarity": round(float(hit.similarity), 3),
            "view": hit.view,
            "n_fail": int(hit.tool.n_fail),
            "version": int(hit.tool.version),
            "trust": hit.tool.trust,
            "n_support": int(hit.tool.n_support),
            "properties": [dict(p) for p in hit.tool.properties],
        }
        for hit in (library.search_tools(text, k=limits.k_tools) if limits.k_tools else [])
        if hit.similarity >= (limits.tool_min_similarity or -1.0)
    ]
    external = run.deps.external
    if external is not None and limits.k_mcp_tools:
        # An external server's tools: no record here, so no reliability and no fast path.
        tools += external.offered(text, limits.k_mcp_tools)
    tip_hits = library.search_tips(text, k=limits.k_tips) if limits.k_tips else []
    tips = [hit.tip.text for hit in tip_hits]
    failures = [
        f"{hit.failure.lesson} (a similar task failed with {hit.failure.error_type}: "
        f"{hit.failure.message})"
        for hit in (library.search_failures(text, k=limits.k_failures) if limits.k_failures else [])
    ]
    run.emit("recall", tools=[t["name"] for t in tools], tips=len(tips), failures=len(failures))
    return turn.done(
        offered_tools=tools,
        tips=tips,
        tip_ids=[hit.tip.id for hit in tip_hits],
        failures=failures,
        attempt=0,
        step=0,
        answer=None,
        has_answer=False,
        correct=None,
        critique=None,
        status=None,
    )
