"""Ranking: similarity from the index, then reliability, helpfulness, support and recency.

Status filtering happens here, in Python, over the metadata `IndexSync` caches: a
metadata-filtered Chroma query is 25-45x slower than an unfiltered top-N. When filtering
leaves fewer than k, the candidate count grows until it does or the index is exhausted.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from memory.config import MemoryConfig
from memory.errors import LibraryError
from memory.index import VectorIndex
from memory.sync import NoteMeta, ToolMeta
from memory.tool_rows import reliability


class RankSource(Protocol):
    """What ranking reads: the index, the ids each kind holds, and the metadata caches
    (`IndexSync` on the library; a Ray worker's snapshot holds its own)."""

    lock: threading.RLock
    indexed: dict[str, dict[str, str]]

    def ensure_index(self) -> VectorIndex: ...
    def tool_meta(self) -> dict[str, ToolMeta]: ...
    def note_meta(self, kind: str) -> dict[str, NoteMeta]: ...


def view_kinds(views: Sequence[str]) -> list[str]:
    """The index kinds of retrieval views: `description` (the tool's) and `tasks` (the
    past tasks linked to it)."""
    unknown = set(views) - {"description", "tasks"}
    if unknown or not views:
        raise LibraryError(
            f"unknown retrieval view(s) {sorted(unknown)}: use description and/or tasks"
        )
    return ["tools" if v == "description" else "tasks" for v in views]


def rank_tools(
    sync: RankSource, cfg: MemoryConfig, qv: np.ndarray, k: int, views: Sequence[str]
) -> list[tuple[float, float, str, str]]:
    """The k best active tools as (score, similarity, name, index kind of the best view).

    A tool's similarity is the best over `views` ("tools": its description, "tasks": the
    past tasks linked to it; several tasks can point at one tool, hence twice the candidates).
    """
    index = sync.ensure_index()
    with sync.lock:
        metas = sync.tool_meta()
        sims: dict[str, dict[str, float]] = {}
        n = max(cfg.candidates, 4 * k)
        while True:
            sims = {}
            for view in views:
                for id_, sim in index.query(view, qv, n if view == "tools" else 2 * n):
                    name = id_ if view == "tools" else id_.rsplit(":", 1)[0]
                    best = sims.setdefault(name, {})
                    best[view] = max(best.get(view, -1.0), sim)
            active = [name for name in sims if (m := metas.get(name)) and m.status == "active"]
            exhausted = all(n >= len(sync.indexed[v]) * (1 if v == "tools" else 0.5) for v in views)
            if len(active) >= k or exhausted:
                break
            n *= 4
        now = time.time()
        scored: list[tuple[float, float, str, str]] = []
        for name in active:
            view, sim = max(sims[name].items(), key=lambda kv: kv[1])
            scored.append((tool_score(cfg, metas[name], sim, now), sim, name, view))
    scored.sort(key=lambda t: (-t[0], t[2]))
    return scored[:k]


def rank_notes(
    sync: RankSource, cfg: MemoryConfig, kind: str, qv: np.ndarray, k: int
) -> list[tuple[float, float, str]]:
    """The k best active tips or failures (`kind`) as (score, similarity, id)."""
    index = sync.ensure_index()
    with sync.lock:
        metas = sync.note_meta(kind)
        n = max(cfg.candidates, 4 * k)
        while True:
            cands = [
                (i, sim)
                for i, sim in index.query(kind, qv, n)
                if (m := metas.get(i)) and m.status == "active"
            ]
            if len(cands) >= k or n >= len(sync.indexed[kind]):
                break
            n *= 4
        now = time.time()
        out = []
        for id_, sim in cands:
            m = metas[id_]
            score = (
                sim
                + 0.02 * math.log1p(m.support)
                + cfg.weight_recency * recency(cfg, m.created_at, now)
            )
            if kind == "tips":
                helped = (m.n_helped + 1) / (m.n_shown + 2)  # Beta(1, 1): unseen tips at 0.5
                score += cfg.weight_reliability * (helped - 0.5)
            out.append((score, sim, id_))
    out.sort(key=lambda t: (-t[0], t[2]))
    return out[:k]


def tool_score(cfg: MemoryConfig, meta: ToolMeta, sim: float, now: float) -> float:
    rel = reliability(meta.v_success, meta.v_success + meta.v_fail, cfg)
    return (
        sim
        + cfg.weight_reliability * (rel - 0.5)
        + cfg.weight_recency * recency(cfg, meta.last_used_at or meta.created_at, now)
    )


def recency(cfg: MemoryConfig, at: float, now: float) -> float:
    """1 now, halving every `recency_half_life_days`."""
    days = max(0.0, now - at) / 86400.0
    return float(0.5 ** (days / cfg.recency_half_life_days))
