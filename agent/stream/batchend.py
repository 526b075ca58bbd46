"""What a stream learns at a batch end, as records for batches.jsonl: the batch's traces
forged (`forge`), tools that failed in use refined (`repair`), the library consolidated
(`consolidate`), and the library's tools as the run's `tools.json` (`tool_snapshot`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from agent.stream.errors import StreamError
from memory.protocol import ToolLibrary
from toolforge.types import ForgeOutcome, Trace

if TYPE_CHECKING:
    from agent.deps import AgentDeps

#: `toolforge.forge_batch`'s signature
ForgeFn = Callable[..., list[ForgeOutcome]]


def forge(traces: list[Trace], deps: AgentDeps, forge_fn: ForgeFn) -> dict[str, Any]:
    """One `forge_batch` over the batch's traces, in stream order: each outcome, the
    tools each task created (new tools and versions; a merge only grew tests) and the
    forge's own model calls and tokens."""
    if not traces:
        return {"outcomes": [], "forge_calls": 0, "forge_tokens": 0}
    from agent.models import StepCaller, UsageCounter

    counter = UsageCounter()
    model = StepCaller(deps.model, counter) if deps.model is not None else None
    outcomes = forge_fn(
        traces,
        deps.own_library(),
        deps.sandbox,
        model=model,
        config=deps.settings.forge,
    )
    if len(outcomes) != len(traces):
        # forge_batch's contract: one outcome per trace, in order.
        raise StreamError(
            f"the forge returned {len(outcomes)} outcome(s) for {len(traces)} trace(s)"
        )
    created: dict[str, list[str]] = {}
    rows = []
    for trace, outcome in zip(traces, outcomes, strict=True):
        task_id = trace.task_id
        rows.append(
            {
                "task_id": task_id,
                "status": outcome.status,
                "tool": outcome.tool,
                "version": outcome.version,
                "reason": outcome.reason,
            }
        )
        if outcome.created and task_id:
            names = created.setdefault(str(task_id), [])
            names.extend(n for n in outcome.created if n not in names)
    return {
        "outcomes": rows,
        "created": created,
        "forge_calls": counter.n_calls,
        "forge_tokens": counter.total_tokens,
    }


def evidence(pieces: list[dict[str, Any]], deps: AgentDeps) -> dict[str, Any]:
    """The evidence the batch's answers gave about library tools, recorded in stream order
    (a piece recorded before, by a batch end that was killed, is not recorded twice)."""
    if not pieces:
        return {}
    from memory import Evidence

    deps.own_library().add_evidence([Evidence(**piece) for piece in pieces])
    kinds: dict[str, int] = {}
    for piece in pieces:
        kinds[piece["kind"]] = kinds.get(piece["kind"], 0) + 1
    return {"evidence": kinds}


def repair(deps: AgentDeps) -> dict[str, Any]:
    """Tools that failed in use since the last look go through `refine`: a fixed
    version is admitted only with the old tests and a new one that fails before and
    passes after; else the tool is quarantined when it keeps failing (memory's policy)."""
    library = deps.own_library()
    limit = deps.settings.forge.max_repairs_per_batch
    names = library.tools_to_repair()[:limit] if limit else []
    if not names:
        return {}
    from agent.models import StepCaller, UsageCounter
    from toolforge import refine

    counter = UsageCounter()
    model = StepCaller(deps.model, counter) if deps.model is not None else None
    out = []
    for name in names:
        outcome = refine(name, library, deps.sandbox, model, deps.settings.forge)
        library.note_repair_tried(name)
        out.append(
            {
                "tool": name,
                "status": outcome.status,
                "version": outcome.version,
                "reason": outcome.reason[:500],
            }
        )
    return {
        "repairs": out,
        "repair_calls": counter.n_calls,
        "repair_tokens": counter.total_tokens,
    }


def consolidate(library: ToolLibrary) -> dict[str, Any]:
    """Merge near-duplicate tips and failures, and prune tools that fail in use or go
    unused for their age (both reversible: nothing is deleted)."""
    changes = [*library.consolidate(dry_run=False), *library.prune(dry_run=False)]
    return {
        "n_changes": len(changes),
        "changes": [asdict(c) for c in changes],
    }


def tool_snapshot(library: ToolLibrary) -> list[dict[str, Any]]:
    tools = []
    for tool in library.list_tools(status=None):
        tools.append(
            {
                "name": tool.name,
                "version": tool.version,
                "status": tool.status,
                "signature": tool.signature,
                "docstring": tool.docstring,
                "n_uses": tool.n_uses,
                "n_success": tool.n_success,
                "n_fail": tool.n_fail,
                "reliability": tool.reliability,
                "trust": tool.trust,
                "n_support": tool.n_support,
                "n_against": tool.n_against,
            }
        )
    return tools
