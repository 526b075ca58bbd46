"""Episodes (and what each taught, in one transaction), forge marks and runs.

An episode's row is the marker that its learning is done: `record` writes the tools'
usage, task links, tip and failure of the episode in the same transaction as the row.
Forge marks say the forge dealt with an episode's trace, so a batch end run again
replays its outcome instead of forging twice.
"""

from __future__ import annotations

import bisect
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from sqlmodel import Session, col, select

from memory import db
from memory.episode import Episode
from memory.errors import LibraryError
from memory.evidence import evidence_in
from memory.notes import NoteStore
from memory.rows import dumps, episode_of, episode_row, failure_text, loads
from memory.shapes import shape_similarity
from memory.store import Store
from memory.types import Learned
from memory.usage import ToolUsage
from memory.vectors import VectorCache


class EpisodeStore:
    def __init__(
        self,
        store: Store,
        vectors: VectorCache,
        usage: ToolUsage,
        notes: NoteStore,
        trust_support: int,
    ) -> None:
        self.trust_support = trust_support
        self.store = store
        self.vectors = vectors
        self.usage = usage
        self.notes = notes

    def record_episode(self, ep: Episode, learned: Learned) -> str:
        """Store an episode and what it taught in ONE transaction; returns its id.

        The episode's row is the marker that its learning is done: a process killed at
        any point either wrote all of it or none, so a resumed task redoes nothing twice.
        Usage of tools that do not exist (any more) and links to them are skipped, never
        an error: the task's outcome does not depend on the library's bookkeeping."""
        self.store.check_writable()
        ep_id = ep.id or uuid.uuid4().hex
        note = learned.failure
        # Embeddings first (a cache: harmless if the transaction below never happens).
        texts = [
            t for t in (ep.task.strip() if learned.links else "", (learned.tip or "").strip()) if t
        ]
        if note is not None:
            texts.append(failure_text(ep.task, note.error_type, note.message, note.lesson))
        if texts:
            self.vectors.cache(texts)
        now = time.time()
        with self.store.write() as (s, changes):
            if learned.usage:
                self.usage.usage_in(s, changes, learned.usage, learned.solved, now)
            if learned.evidence:
                evidence_in(s, changes, learned.evidence, now, self.trust_support)
            if learned.links:
                self.usage.links_in(s, changes, learned.links, ep.task, now)
            if learned.tip_ids and learned.helped is not None:
                self.notes.tip_outcome_in(s, changes, learned.tip_ids, learned.helped)
            if learned.tip and learned.tip.strip():
                self.notes.tip_in(s, changes, learned.tip.strip(), ep.task, ep_id, now)
            if note is not None:
                self.notes.failure_in(s, changes, ep.task, note, ep_id, now)
            old = s.get(db.Episode, ep_id)
            row = episode_row(ep, ep_id, old.created_at if old else now)
            if old is not None:
                s.delete(old)
                s.flush()
            s.add(row)
        return ep_id

    def forge_marks(self, episode_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Outcomes the forge stored for these episodes' traces (see `mark_forged`)."""
        ids = [i for i in dict.fromkeys(episode_ids) if i]
        if not ids:
            return {}
        with Session(self.store.read_engine) as s:
            rows = s.exec(select(db.ForgeMark).where(col(db.ForgeMark.episode_id).in_(ids))).all()
            return {r.episode_id: loads(r.outcome_json) for r in rows}

    def mark_forged(self, outcomes: dict[str, dict[str, Any]]) -> None:
        """Remember that the forge dealt with these episodes' traces, and how (one
        transaction): a batch end that is run again replays the outcome. The tools an
        outcome created (its `created`) become its episode's tools_created: a stream's
        tasks are stored before their batch end forges."""
        self.store.check_writable()
        if not outcomes:
            return
        now = time.time()
        with self.store.write() as (s, _changes):
            for episode_id, outcome in outcomes.items():
                s.merge(
                    db.ForgeMark(
                        episode_id=episode_id,
                        outcome_json=dumps(outcome, cap=None) or "{}",
                        created_at=now,
                    )
                )
                episode = s.get(db.Episode, episode_id)
                created = outcome.get("created")
                if episode is not None and isinstance(created, list) and created:
                    episode.tools_created_json = dumps([str(n) for n in created], cap=None) or "[]"
                    s.add(episode)

    def episodes_with_tools(self, episode_ids: Iterable[str]) -> set[str]:
        """Those of these episodes whose traces already left a tool's provenance or a
        rejection in the library (forged, but killed before `mark_forged`)."""
        ids = [i for i in dict.fromkeys(episode_ids) if i]
        if not ids:
            return set()
        with Session(self.store.read_engine) as s:
            found = list(
                s.exec(
                    select(db.ToolProvenance.episode_id).where(
                        col(db.ToolProvenance.episode_id).in_(ids)
                    )
                ).all()
            )
            found += s.exec(
                select(db.Rejection.episode_id).where(col(db.Rejection.episode_id).in_(ids))
            ).all()
        return {str(i) for i in found if i}

    def solved_examples(
        self, text: str, k: int = 3, *, recent: int = 500, exclude: Iterable[str] = ()
    ) -> list[tuple[str, Any]]:
        """Up to k (task, answer) pairs of recent episodes that were solved right (correct
        against a label, or solved where there was none) and look like `text` (the same
        words and punctuation, numbers alike): examples of the same kind of task."""
        skip = set(exclude) | {text}
        with self.store.read_engine.connect() as c:
            rows = c.exec_driver_sql(
                # Only an episode checked against its label counts its label: with
                # feedback none the label is for scoring, never for learning.
                "SELECT task, answer_json FROM episode WHERE status = 'solved' "
                "AND (feedback != 'labels' OR correct IS NULL OR correct = 1) "
                "ORDER BY created_at DESC LIMIT ?",
                (recent,),
            ).all()
        scored = sorted(
            (
                (shape_similarity(text, task), task, answer)
                for task, answer in rows
                if task not in skip
            ),
            key=lambda item: -item[0],
        )
        out: list[tuple[str, Any]] = []
        for score, task, answer in scored:
            if score < 0.45 or len(out) >= k:
                break
            if all(task != t for t, _ in out):
                out.append((task, loads(answer)))
        return out

    def recent_tasks(
        self, text: str, k: int = 5, *, recent: int = 500, exclude: Iterable[str] = ()
    ) -> list[str]:
        """Up to k task texts of recent episodes (whatever their outcome) that look like
        `text`: other tasks of the same kind, most alike first (real inputs a new tool
        must handle before it is admitted)."""
        skip = set(exclude) | {text}
        with self.store.read_engine.connect() as c:
            rows = c.exec_driver_sql(
                "SELECT DISTINCT task FROM episode ORDER BY created_at DESC LIMIT ?", (recent,)
            ).all()
        scored = sorted(
            ((shape_similarity(text, task), task) for (task,) in rows if task not in skip),
            key=lambda item: -item[0],
        )
        return [task for score, task in scored if score >= 0.45][:k]

    def counter_since(self, times: list[float]) -> Callable[[float], int]:
        """`since` for many times at once: one ordered scan of the created_at index for
        the earliest of `times`, then a binary search per call (pruning asks two counts
        per tool: 20,000 queries on a library of 10,000 tools, 3 s, were one)."""
        start = min(times, default=0.0)
        with self.store.read_engine.connect() as c:
            stamps = [
                float(t)
                for (t,) in c.exec_driver_sql(
                    "SELECT created_at FROM episode WHERE created_at > ? ORDER BY created_at",
                    (start,),
                )
            ]

        def since(t: float) -> int:
            return len(stamps) - bisect.bisect_right(stamps, t)

        return since

    def episodes_of_task(self, task_id: str) -> list[Episode]:
        """Every stored episode of a task id, oldest first."""
        with Session(self.store.read_engine) as s:
            rows = s.exec(
                select(db.Episode)
                .where(db.Episode.task_id == task_id)
                .order_by(col(db.Episode.created_at))
            ).all()
        return [episode_of(r) for r in rows]

    def tasks_using(self, tool: str, *, limit: int = 10) -> list[str]:
        """Ids of recent tasks whose episodes used `tool`, newest first."""
        pattern = f'%"{tool}"%'
        with self.store.read_engine.connect() as c:
            rows = c.exec_driver_sql(
                "SELECT DISTINCT task_id FROM episode WHERE tools_used_json LIKE ? "
                "ORDER BY created_at DESC LIMIT ?",
                (pattern, limit),
            ).all()
        return [str(r[0]) for r in rows]

    def get_episode(self, episode_id: str) -> Episode | None:
        with Session(self.store.read_engine) as s:
            row = s.get(db.Episode, episode_id)
        if row is None:
            return None
        return episode_of(row)

    def start_run(self, run_id: str, meta: dict[str, Any]) -> None:
        self.store.check_writable()
        with self.store.write() as (s, _changes):
            row = s.get(db.Run, run_id) or db.Run(id=run_id, started_at=time.time())
            row.meta_json = dumps(meta, cap=None) or "{}"
            s.add(row)

    def finish_run(self, run_id: str, summary: dict[str, Any]) -> None:
        self.store.check_writable()
        with self.store.write() as (s, _changes):
            row = s.get(db.Run, run_id)
            if row is None:
                raise LibraryError(f"no run {run_id!r} was started in this library")
            row.summary_json = dumps(summary, cap=None)
            row.finished_at = time.time()
            s.add(row)

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        with Session(self.store.read_engine) as s:
            row = s.get(db.Run, run_id)
        if row is None:
            return None
        return {
            "id": row.id,
            "meta": loads(row.meta_json),
            "summary": loads(row.summary_json),
            "started_at": row.started_at,
            "finished_at": row.finished_at,
        }
