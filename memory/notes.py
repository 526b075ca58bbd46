"""`NoteStore`: tips and failures, the lessons kept in words next to the tools.

Both are searched like tools (their own index kinds, ranked in rank.py). Repeats do not
pile up: the same tip text adds support to the existing tip, and a failure whose signature
(error type, normalised message, tool) matches an active one joins that cluster.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable

from sqlmodel import Session, col, select

from memory import db
from memory.errors import LibraryError
from memory.rank import rank_notes
from memory.rows import content_hash, failure_info, failure_signature, failure_text, tip_info
from memory.sync import IndexedPart
from memory.types import FailureHit, FailureInfo, FailureNote, TipHit, TipInfo


class NoteStore(IndexedPart):
    """Tips and failures: written with their embeddings, searched through the index."""

    # ---------------------------------------------------------------- tips

    def add_tip(self, text: str, *, task: str, episode_id: str | None = None) -> TipInfo:
        self._store.check_writable()
        body = text.strip()
        if not body:
            raise LibraryError("a tip needs text")
        self._vectors.cache([body])
        with self._store.write() as (s, changes):
            return self.tip_in(s, changes, body, task, episode_id, time.time())

    def tip_in(
        self,
        s: Session,
        changes: list[tuple[str, str]],
        body: str,
        task: str,
        episode_id: str | None,
        now: float,
    ) -> TipInfo:
        """Store a tip inside the caller's transaction (its embedding cached already)."""
        h = content_hash(body)
        same = s.exec(
            select(db.Tip).where(db.Tip.text_hash == h, db.Tip.status == "active")
        ).first()
        if same is not None:
            same.support += 1
            same.updated_at = now
            tip = same
        else:
            tip = db.Tip(
                id=uuid.uuid4().hex[:16],
                text=body,
                task=task,
                episode_id=episode_id,
                text_hash=h,
                created_at=now,
                updated_at=now,
            )
        s.add(tip)
        s.flush()
        changes.append(("tip", tip.id))
        return tip_info(tip)

    def record_tip_outcome(self, tip_ids: Iterable[str], helped: bool) -> None:
        self._store.check_writable()
        ids = list(dict.fromkeys(tip_ids))
        if not ids:
            return
        with self._store.write() as (s, changes):
            for tip_id in ids:
                if s.get(db.Tip, tip_id) is None:
                    raise LibraryError(
                        f"no tip with id {tip_id!r}: `evoagent memory tips list` shows ids"
                    )
            self.tip_outcome_in(s, changes, ids, helped)

    def tip_outcome_in(
        self, s: Session, changes: list[tuple[str, str]], tip_ids: list[str], helped: bool
    ) -> None:
        """Count a showing of each tip (that still exists) inside the caller's transaction."""
        for tip_id in dict.fromkeys(tip_ids):
            tip = s.get(db.Tip, tip_id)
            if tip is None:
                continue
            tip.n_shown += 1
            tip.n_helped += 1 if helped else 0
            s.add(tip)
            changes.append(("tip", tip_id))

    def search_tips(self, query: str, k: int = 3) -> list[TipHit]:
        if k <= 0 or not query.strip():
            return []
        ranked = self._rank("tips", query, k)
        rows = self._store.rows(db.Tip, [id_ for _, _, id_ in ranked])
        return [TipHit(tip_info(rows[i]), score, sim) for score, sim, i in ranked if i in rows]

    def list_tips(self, status: str | None = "active") -> list[TipInfo]:
        with Session(self._store.read_engine) as s:
            q = select(db.Tip).order_by(col(db.Tip.created_at))
            if status not in (None, "all"):
                q = q.where(db.Tip.status == status)
            return [tip_info(t) for t in s.exec(q).all()]

    def get_tip(self, tip_id: str) -> TipInfo | None:
        with Session(self._store.read_engine) as s:
            tip = s.get(db.Tip, tip_id)
            return None if tip is None else tip_info(tip)

    # ---------------------------------------------------------------- failures

    def add_failure(
        self,
        *,
        task: str,
        error_type: str,
        message: str,
        lesson: str,
        tool: str | None = None,
        episode_id: str | None = None,
    ) -> FailureInfo:
        self._store.check_writable()
        self._vectors.cache([failure_text(task, error_type, message, lesson)])
        note = FailureNote(error_type, message, lesson, tool)
        with self._store.write() as (s, changes):
            return self.failure_in(s, changes, task, note, episode_id, time.time())

    def failure_in(
        self,
        s: Session,
        changes: list[tuple[str, str]],
        task: str,
        note: FailureNote,
        episode_id: str | None,
        now: float,
    ) -> FailureInfo:
        """Store a failure inside the caller's transaction (its embedding cached already)."""
        sig = failure_signature(note.error_type, note.message, note.tool)
        h = content_hash(failure_text(task, note.error_type, note.message, note.lesson))
        rep = s.exec(
            select(db.Failure).where(db.Failure.signature == sig, db.Failure.status == "active")
        ).first()
        row = db.Failure(
            id=uuid.uuid4().hex[:16],
            task=task,
            error_type=note.error_type,
            message=note.message,
            lesson=note.lesson,
            tool=note.tool,
            episode_id=episode_id,
            signature=sig,
            text_hash=h,
            created_at=now,
        )
        if rep is not None:
            row.status, row.merged_into = "merged", rep.id
            rep.count += 1
            if not rep.lesson.strip() and note.lesson.strip():
                rep.lesson = note.lesson  # a cluster without a lesson adopts the first one given
            s.add(rep)
            changes.append(("failure", rep.id))
        s.add(row)
        changes.append(("failure", row.id))
        return failure_info(row)

    def search_failures(self, query: str, k: int = 3) -> list[FailureHit]:
        if k <= 0 or not query.strip():
            return []
        ranked = self._rank("failures", query, k)
        rows = self._store.rows(db.Failure, [id_ for _, _, id_ in ranked])
        return [
            FailureHit(failure_info(rows[i]), score, sim) for score, sim, i in ranked if i in rows
        ]

    def list_failures(self, status: str | None = "active") -> list[FailureInfo]:
        with Session(self._store.read_engine) as s:
            q = select(db.Failure).order_by(col(db.Failure.created_at))
            if status not in (None, "all"):
                q = q.where(db.Failure.status == status)
            return [failure_info(f) for f in s.exec(q).all()]

    def _rank(self, kind: str, query: str, k: int) -> list[tuple[float, float, str]]:
        self._search.sync()
        return rank_notes(self._search, self.config, kind, self._vectors.query(query), k)
