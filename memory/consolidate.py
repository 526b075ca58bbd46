"""Consolidation (tips, failures) and pruning (tools): plan first, then apply in one transaction.

Nothing is deleted: merged tips and failures keep their rows (status `merged`, pointing at
the record they joined), pruned tools become `quarantined` or `archived`, and every
change can be undone (`tools restore`, `memory tips restore`, `memory failures restore`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from memory import db
from memory.config import MemoryConfig
from memory.episodes import EpisodeStore
from memory.errors import LibraryError
from memory.notes import NoteStore
from memory.rows import content_hash
from memory.store import Store
from memory.tools import ToolStore
from memory.types import Change
from memory.vectors import VectorCache


def _check_thresholds(min_uses: int, max_fail_rate: float, grace: int, scale: float) -> None:
    # Checked here, not only by the CLI: min_uses 0 would divide by zero uses, grace 0
    # take log10(0), and a negative bound would quarantine or archive every tool.
    bad = []
    if min_uses < 1:
        bad.append(f"--min-uses must be at least 1, not {min_uses}")
    if not 0 <= max_fail_rate <= 1:
        bad.append(f"--max-fail-rate must be between 0 and 1, not {max_fail_rate}")
    if grace < 1:
        bad.append(f"--grace must be at least 1 episode, not {grace}")
    if not scale >= 0:  # also catches NaN
        bad.append(f"--log-scale must be 0 or more, not {scale}")
    if bad:
        raise LibraryError("; ".join(bad) + " (omit an option to use the configured threshold)")


class Upkeep:
    """Plans and applies consolidation and pruning over the library's parts."""

    def __init__(
        self,
        config: MemoryConfig,
        store: Store,
        vectors: VectorCache,
        tools: ToolStore,
        notes: NoteStore,
        episodes: EpisodeStore,
    ) -> None:
        self.config = config
        self.store = store
        self.vectors = vectors
        self.tools = tools
        self.notes = notes
        self.episodes = episodes

    def plan_consolidation(self) -> list[Change]:
        return self._plan_tips() + self._plan_failures()

    def _plan_tips(self) -> list[Change]:
        cfg = self.config
        tips = self.notes.list_tips("active")
        if not tips:
            return []
        vecs_by_hash = self.vectors.vectors({content_hash(t.text): t.text for t in tips})
        mat = np.stack([vecs_by_hash[content_hash(t.text)] for t in tips]).astype(np.float32)
        n = len(tips)
        parent = list(range(n))

        def find(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        best_pair: dict[int, float] = {}
        for start in range(0, n, 1024):  # blocks keep the similarity matrix small
            sims = mat[start : start + 1024] @ mat.T
            rows, cols = np.nonzero(sims >= cfg.tip_merge_similarity)
            for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
                i = start + r
                if i < c:
                    parent[find(i)] = find(c)
                    best_pair[i] = max(best_pair.get(i, 0.0), float(sims[r, c]))
                    best_pair[c] = max(best_pair.get(c, 0.0), float(sims[r, c]))
        clusters: dict[int, list[int]] = {}
        for i in range(n):
            clusters.setdefault(find(i), []).append(i)
        changes: list[Change] = []
        merged: set[int] = set()
        for members in clusters.values():
            if len(members) < 2:
                continue
            centroid = mat[members].mean(axis=0)

            # The clearer text is kept: most support, then most helpful, then the most
            # central wording, then the shorter one.
            def rank(i: int, centroid: np.ndarray = centroid) -> tuple[float, float, float, int]:
                t = tips[i]
                return (
                    -t.support,
                    -(t.n_helped + 1) / (t.n_shown + 2),
                    -float(mat[i] @ centroid),
                    len(t.text),
                )

            rep = min(members, key=rank)
            for i in members:
                if i != rep:
                    merged.add(i)
                    changes.append(
                        Change(
                            "tip",
                            tips[i].id,
                            "merge",
                            f"near-duplicate (cosine {best_pair.get(i, 0):.2f}) of: {tips[rep].text[:60]}",
                            into=tips[rep].id,
                        )
                    )
        for i, t in enumerate(tips):
            if i in merged or t.n_shown < cfg.tip_min_shown:
                continue
            rate = t.n_helped / t.n_shown
            if rate < cfg.tip_min_help_rate:
                changes.append(
                    Change(
                        "tip",
                        t.id,
                        "archive",
                        f"helped {t.n_helped} of {t.n_shown} tasks it was shown for",
                    )
                )
        return changes

    def _plan_failures(self) -> list[Change]:
        by_sig: dict[str, list] = {}
        for f in self.notes.list_failures("active"):
            by_sig.setdefault(f.signature, []).append(f)
        changes = []
        for members in by_sig.values():
            if len(members) < 2:
                continue
            rep = max(members, key=lambda f: (f.count, bool(f.lesson.strip()), -f.created_at))
            for f in members:
                if f.id != rep.id:
                    changes.append(
                        Change(
                            "failure",
                            f.id,
                            "merge",
                            f"same signature ({f.error_type}, tool {f.tool or '-'})",
                            into=rep.id,
                        )
                    )
        return changes

    def plan_prune(
        self,
        *,
        min_uses: int | None = None,
        max_fail_rate: float | None = None,
        grace_episodes: int | None = None,
        log_scale: float | None = None,
    ) -> list[Change]:
        """Which active tools to quarantine (unreliable in use) or archive (rarely used)."""
        cfg = self.config
        min_uses = cfg.quarantine_min_uses if min_uses is None else min_uses
        max_fail_rate = cfg.quarantine_fail_rate if max_fail_rate is None else max_fail_rate
        grace = cfg.archive_grace_episodes if grace_episodes is None else grace_episodes
        scale = cfg.archive_log_scale if log_scale is None else log_scale
        _check_thresholds(min_uses, max_fail_rate, grace, scale)

        active = self.tools.list_tools("active")
        # The episodes stored since each tool was made (and last used): their times read
        # once from the created_at index, from the oldest tool on.
        since = self.episodes.counter_since([t.created_at for t in active])
        changes = []
        for tool in active:
            if tool.n_uses >= min_uses and tool.n_fail / tool.n_uses >= max_fail_rate:
                changes.append(
                    Change(
                        "tool",
                        tool.name,
                        "quarantine",
                        f"version {tool.version} failed {tool.n_fail} of {tool.n_uses} uses",
                    )
                )
                continue
            exposure = since(tool.created_at)
            idle = since(tool.last_used_at or tool.created_at)
            if exposure < grace or idle < grace:
                continue
            # TroVE-style trimming: the bar rises with the log of the episodes a tool has seen.
            needed = scale * math.log10(exposure)
            if tool.total_uses < needed:
                changes.append(
                    Change(
                        "tool",
                        tool.name,
                        "archive",
                        f"used {tool.total_uses} times in {exposure} episodes since added "
                        f"(needs {needed:.1f}); idle for {idle}",
                    )
                )
        return changes

    def apply(self, changes: list[Change]) -> None:
        """Apply planned changes in one transaction (all or none)."""
        if not changes:
            return
        self.store.check_writable()
        with self.store.write() as (s, log):
            for ch in changes:
                if ch.kind == "tool":
                    self.tools.set_status_in(
                        s,
                        log,
                        ch.ref,
                        "quarantined" if ch.action == "quarantine" else "archived",
                        f"prune: {ch.reason}",
                    )
                elif ch.kind == "tip":
                    tip = s.get(db.Tip, ch.ref)
                    if tip is None or tip.status != "active":
                        continue  # changed since the plan (another process): leave it
                    if ch.action == "merge" and ch.into:
                        rep = s.get(db.Tip, ch.into)
                        if rep is None or rep.status != "active":
                            continue
                        rep.support += tip.support
                        tip.status, tip.merged_into = "merged", rep.id
                        s.add(rep)
                        log.append(("tip", rep.id))
                    else:
                        tip.status = "archived"
                    s.add(tip)
                    log.append(("tip", tip.id))
                elif ch.kind == "failure":
                    f = s.get(db.Failure, ch.ref)
                    cluster = s.get(db.Failure, ch.into) if ch.into else None
                    if (
                        f is None
                        or cluster is None
                        or f.status != "active"
                        or cluster.status != "active"
                    ):
                        continue
                    cluster.count += f.count
                    f.status, f.merged_into = "merged", cluster.id
                    s.add(cluster)
                    s.add(f)
                    log.extend([("failure", cluster.id), ("failure", f.id)])

    def restore_note(self, kind: str, note_id: str) -> None:
        """Bring a merged or archived tip (or merged failure) back; support/count move back."""
        self.store.check_writable()
        model: Any = db.Tip if kind == "tip" else db.Failure
        with self.store.write() as (s, log):
            row: Any = s.get(model, note_id)
            if row is None:
                raise LibraryError(
                    f"no {kind} with id {note_id!r}: `evoagent memory {kind}s list --status all` shows ids"
                )
            if row.status == "active":
                raise LibraryError(f"{kind} {note_id} is already active")
            if row.status == "merged" and row.merged_into:
                rep: Any = s.get(model, row.merged_into)
                if rep is not None:
                    if kind == "tip":
                        rep.support = max(1, rep.support - row.support)
                    else:
                        rep.count = max(1, rep.count - row.count)
                    s.add(rep)
                    log.append((kind, rep.id))
            row.status, row.merged_into = "active", None
            s.add(row)
            log.append((kind, row.id))
