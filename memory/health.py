"""Library health from the records (the names of EvolveTool-Bench, arXiv 2604.00392).

What a library is worth beyond the tasks it solved: are its tools right on the evidence
they met, used at all, doing the same job twice, and does a new version break what the
old one got right? Computed from the SQL records only (tool versions, evidence, usage).
A run's reuse figures (reuse rate, correct and incorrect reuse, reuse precision) need
its results and labels: `agent/stream/metrics.py` computes them beside these.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine

from memory.types import EVIDENCE_AGAINST, EVIDENCE_FOR

#: shared inputs on which two tools must have answered alike to count as one job done twice
MIN_SHARED_INPUTS = 2


def library_health(engine: Engine) -> dict[str, Any]:
    """`library_precision`: share of tools with evidence on their current version that
    have none against it; `utilisation`: share of active tools used at least once;
    `redundancy`: pairs of active tools that answered at least MIN_SHARED_INPUTS same
    inputs, all alike (and that count over all pairs); `regression_rate`: share of later
    versions with evidence against them on a task their previous version had right."""
    with engine.connect() as c:
        tools = c.exec_driver_sql(
            "SELECT t.name, t.status, t.n_uses, v.n_support, v.n_against FROM tool t "
            "JOIN tool_version v ON v.tool_name = t.name AND v.version = t.current_version"
        ).all()
        usage = c.exec_driver_sql(
            "SELECT u.tool_name, u.args_json, u.kwargs_json, u.result_json FROM usage_event u "
            "JOIN tool t ON t.name = u.tool_name AND t.status = 'active' "
            "WHERE u.ok = 1 ORDER BY u.id DESC LIMIT 20000"
        ).all()
        evidence = c.exec_driver_sql(
            "SELECT tool_name, version, kind, task_hash FROM tool_evidence WHERE task_hash != ''"
        ).all()
    active = [t for t in tools if t[1] == "active"]
    with_evidence = [t for t in tools if (t[3] or 0) + (t[4] or 0) > 0]
    right = [t for t in with_evidence if not t[4]]
    pairs, n_pairs = _redundant_pairs(usage, [t[0] for t in active])
    regressions, versions = _regressions(evidence)
    return {
        "n_tools": len(tools),
        "n_active": len(active),
        "library_precision": _share(len(right), len(with_evidence)),
        "tools_with_evidence": len(with_evidence),
        "utilisation": _share(sum(1 for t in active if t[2] > 0), len(active)),
        "redundancy": _share(len(pairs), n_pairs),
        "redundant_pairs": pairs[:20],
        "regression_rate": _share(regressions, versions),
        "later_versions_with_evidence": versions,
    }


def _share(n: int, d: int) -> float | None:
    return round(n / d, 3) if d else None


def _redundant_pairs(usage: Sequence[Any], active: list[str]) -> tuple[list[list[str]], int]:
    """Pairs of tools that gave the same result on every input both were called with
    (at least MIN_SHARED_INPUTS of them)."""
    results: dict[str, dict[str, str | None]] = {}
    for tool, args, kwargs, result in usage:
        key = json.dumps([args, kwargs])
        results.setdefault(tool, {}).setdefault(key, result)
    out = []
    for a, b in itertools.combinations(sorted(results), 2):
        shared = results[a].keys() & results[b].keys()
        if len(shared) >= MIN_SHARED_INPUTS and all(results[a][k] == results[b][k] for k in shared):
            out.append([a, b])
    n = len(active)
    return out, n * (n - 1) // 2


def _regressions(evidence: Sequence[Any]) -> tuple[int, int]:
    """(later versions refuted on a task their previous version had right, later versions
    with any evidence)."""
    right: dict[tuple[str, int], set[str]] = {}
    wrong: dict[tuple[str, int], set[str]] = {}
    for tool, version, kind, task in evidence:
        if kind in EVIDENCE_FOR:
            right.setdefault((tool, version), set()).add(task)
        elif kind in EVIDENCE_AGAINST:
            wrong.setdefault((tool, version), set()).add(task)
    later = {key for key in right.keys() | wrong.keys() if key[1] > 1}
    regressed = sum(
        1
        for tool, version in later
        if wrong.get((tool, version), set()) & right.get((tool, version - 1), set())
    )
    return regressed, len(later)
