"""Figures over a run: what the results say about the library's evolution.

Pure functions of the result rows (stream order) and the batch records, so a report
can be rebuilt from a run's files at any time, even mid-run.

A task *succeeds* when it is correct against its label; a task without a label
succeeds when the agent's verifier said `solved`. That is the solve rate in every
feedback mode: with `--feedback none` the label never reaches the agent, it only
scores the run afterwards.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agent.stream.inputs import family_of


def succeeded(row: dict[str, Any]) -> bool:
    if row.get("correct") is not None:
        return bool(row["correct"])
    return row.get("status") == "solved"


def reused(row: dict[str, Any]) -> bool:
    """Solved with at least one library tool."""
    return succeeded(row) and bool(row.get("tools_used"))


def tokens(row: dict[str, Any]) -> int:
    return int(row.get("tokens_in") or 0) + int(row.get("tokens_out") or 0)


def rolling(values: Sequence[float], window: int) -> list[float]:
    """Mean of the last `window` values at each position (fewer at the start)."""
    out: list[float] = []
    total = 0.0
    for i, value in enumerate(values):
        total += value
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def default_window(n: int) -> int:
    return max(5, min(25, n // 8 or 1))


def series(
    rows: Sequence[dict[str, Any]],
    batches: Sequence[dict[str, Any]],
    window: int | None = None,
    start: int = 0,
) -> dict[str, list[float]]:
    """Per-task curves, x = position in the stream (1-based)."""
    window = window or default_window(len(rows))
    library = library_sizes(rows, batches, start)
    return {
        "x": [float(i + 1) for i in range(len(rows))],
        "solve_rate": rolling([float(succeeded(r)) for r in rows], window),
        "reuse_rate": rolling([float(reused(r)) for r in rows], window),
        "tokens": [float(tokens(r)) for r in rows],
        "tokens_rolling": rolling([float(tokens(r)) for r in rows], window),
        "seconds_rolling": rolling([float(r.get("seconds") or 0) for r in rows], window),
        "calls": [float(r.get("n_calls") or 0) for r in rows],
        "new_tools": [float(len(r.get("tools_created") or [])) for r in rows],
        "new_tools_rolling": rolling(
            [float(len(r.get("tools_created") or [])) for r in rows], window
        ),
        "library_size": [float(s) for s in library],
        "window": [float(window)],
    }


def library_sizes(
    rows: Sequence[dict[str, Any]], batches: Sequence[dict[str, Any]], start: int = 0
) -> list[int]:
    """The library size each task saw: the size after the previous batch was forged
    (`start` for the first batch). Tools admitted at a batch end show from the next
    batch on, which is when they could first be used."""
    after = {int(b["batch"]): int(b.get("library_size", 0)) for b in batches}
    sizes: list[int] = []
    for row in rows:
        batch = int(row.get("batch", 0))
        earlier = [size for index, size in after.items() if index < batch]
        if batch == 0 or not after:
            size = start
        elif batch - 1 in after:
            size = after[batch - 1]
        else:
            size = earlier[-1] if earlier else start
        sizes.append(size)
    return sizes


def library_size_end(batches: Sequence[dict[str, Any]], start: int = 0) -> int:
    """The size after the last forged batch."""
    last = max(batches, key=lambda b: int(b["batch"]), default=None)
    return int(last.get("library_size", start)) if last else start


def half_figures(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """First half of the stream against the second: the learning curve in two numbers."""
    mid = len(rows) // 2
    first, second = figures(rows[:mid]), figures(rows[mid:])
    ratio = _ratio(second["tokens_per_success"], first["tokens_per_success"])
    return {"first": first, "second": second, "tokens_per_success_ratio": ratio}


def figures(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    n = len(rows)
    n_success = sum(succeeded(r) for r in rows)
    total_tokens = sum(tokens(r) for r in rows)
    calls = sum(int(r.get("n_calls") or 0) for r in rows)
    return {
        "n": n,
        "n_success": n_success,
        "solve_rate": _ratio(n_success, n),
        "reuse_rate": _ratio(sum(reused(r) for r in rows), n),
        "tokens": total_tokens,
        "tokens_per_task": _ratio(total_tokens, n),
        "tokens_per_success": _ratio(total_tokens, n_success),
        "calls_per_task": _ratio(calls, n),
        "calls_per_success": _ratio(calls, n_success),
        "seconds_per_task": _ratio(sum(float(r.get("seconds") or 0) for r in rows), n),
        "seconds_per_success": _ratio(sum(float(r.get("seconds") or 0) for r in rows), n_success),
    }


def family_costs(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per family: the cost of its first task against the mean of the later ones."""
    by_family: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_family.setdefault(family_of(row["id"], row.get("tags")), []).append(row)
    out = {}
    for family, items in sorted(by_family.items()):
        first, later = items[0], items[1:]
        out[family] = {
            "n": len(items),
            "first_tokens": tokens(first),
            "first_calls": int(first.get("n_calls") or 0),
            "later_tokens": _ratio(sum(tokens(r) for r in later), len(later)),
            "later_calls": _ratio(sum(int(r.get("n_calls") or 0) for r in later), len(later)),
            "first_seconds": float(first.get("seconds") or 0),
            "later_seconds": _ratio(sum(float(r.get("seconds") or 0) for r in later), len(later)),
            "solve_rate": _ratio(sum(succeeded(r) for r in items), len(items)),
        }
    return out


def evidence_figures(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """What backs the answers, and how often it was right (scored against the labels
    where the run has them): the share of tasks called solved and unverified, the
    precision of `solved`, of answers a library tool gave with no model call and of all
    tool answers; the reuse figures of EvolveTool-Bench (reuse rate, correct and
    incorrect reuse, reuse precision); the calls the independent route cost, and the
    part of them that audited a library tool's use."""
    n = len(rows)
    labelled = [r for r in rows if r.get("correct") is not None]
    solved = [r for r in labelled if r.get("status") == "solved"]
    zero = [r for r in solved if r.get("answer_tool") and not int(r.get("n_calls") or 0)]
    tool_answers = [r for r in solved if r.get("answer_tool")]
    reusing = [r for r in labelled if r.get("tools_used") and r.get("answer") is not None]
    right_reuse = sum(1 for r in reusing if r.get("correct"))
    return {
        "share_solved": _ratio(sum(r.get("status") == "solved" for r in rows), n),
        "share_unverified": _ratio(sum(r.get("status") == "unverified" for r in rows), n),
        "solved_precision": _ratio(sum(bool(r.get("correct")) for r in solved), len(solved)),
        "zero_call_answers": len(zero),
        "zero_call_precision": _ratio(sum(bool(r.get("correct")) for r in zero), len(zero)),
        "tool_answers": len(tool_answers),
        "tool_answer_precision": _ratio(
            sum(bool(r.get("correct")) for r in tool_answers), len(tool_answers)
        ),
        "reuse_rate": _ratio(sum(bool(r.get("tools_used")) for r in rows), n),
        "correct_reuse": _ratio(right_reuse, len(labelled)),
        "incorrect_reuse": _ratio(len(reusing) - right_reuse, len(labelled)),
        "reuse_precision": _ratio(right_reuse, len(reusing)),
        "check_calls_per_task": _ratio(sum(int(r.get("check_calls") or 0) for r in rows), n),
        # the route's calls on tasks a library tool took part in: its uses audited
        "audit_calls_per_task": _ratio(
            sum(int(r.get("check_calls") or 0) for r in rows if r.get("tools_used")), n
        ),
        "by": {
            by: sum(1 for r in rows if r.get("verified_by") == by)
            for by in ("checker", "agreement", "trusted tool")
        },
    }


def summarize(
    rows: Sequence[dict[str, Any]],
    batches: Sequence[dict[str, Any]],
    meta: dict[str, Any] | None = None,
    health: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything `runs show` and the report print about a run (`health`: the library's
    at the run's end, memory/health.py)."""
    meta = meta or {}
    status_counts: dict[str, int] = {}
    for row in rows:
        status_counts[row.get("status", "?")] = status_counts.get(row.get("status", "?"), 0) + 1
    # The learning's own model calls: distilling tools and repairing them at batch ends.
    forge_tokens = sum(
        int(b.get("forge_tokens") or 0) + int(b.get("repair_tokens") or 0) for b in batches
    )
    forge_calls = sum(
        int(b.get("forge_calls") or 0) + int(b.get("repair_calls") or 0) for b in batches
    )
    repairs = [r for b in batches for r in b.get("repairs") or []]
    overall = figures(rows)
    tools_created = sorted({name for r in rows for name in r.get("tools_created") or []})
    use_counts: dict[str, int] = {}
    for row in rows:
        for name in row.get("tools_used") or []:
            use_counts[name] = use_counts.get(name, 0) + 1
    start = int(meta.get("library_size_start") or 0)
    return {
        "run_id": meta.get("run_id"),
        "status": meta.get("status"),
        "feedback": meta.get("feedback"),
        "learn": meta.get("learn"),
        "model": meta.get("model"),
        # Where the tasks ran: this machine's threads, or Ray actors on that many nodes.
        "executor": meta.get("executor") or (meta.get("options") or {}).get("executor", "threads"),
        "workers": (meta.get("options") or {}).get("workers"),
        "nodes": len(meta.get("nodes") or []) or 1,
        "n_tasks": meta.get("n_tasks", len(rows)),
        "n_done": len(rows),
        "statuses": status_counts,
        **{k: v for k, v in overall.items() if k != "n"},
        "forge_tokens": forge_tokens,
        "forge_calls": forge_calls,
        # The honest learning cost: what the forge's model calls added at batch ends.
        "tokens_per_success_with_forge": _ratio(
            overall["tokens"] + forge_tokens, overall["n_success"]
        ),
        "tools_created": tools_created,
        "n_tools_created": len(tools_created),
        "repairs": {
            "tried": len(repairs),
            "versioned": sum(1 for r in repairs if r.get("status") == "versioned"),
            "quarantined": sum(1 for r in repairs if "quarantined" in str(r.get("reason"))),
        },
        "tools_used": dict(sorted(use_counts.items(), key=lambda kv: (-kv[1], kv[0]))),
        "library_size_start": start,
        "library_size": library_size_end(batches, start),
        "halves": half_figures(rows),
        "families": family_costs(rows),
        "evidence": evidence_figures(rows),
        "library_health": dict(health or {}),
        "elapsed_s": meta.get("elapsed_s"),
    }


def _ratio(a: float | None, b: float | None) -> float | None:
    """a / b, or None when either is unknown (no task solved yet) or b is 0."""
    return round(a / b, 4) if a is not None and b else None
