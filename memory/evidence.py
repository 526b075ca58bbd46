"""`EvidenceStore`: what speaks for and against each tool version, and who vouches.

Trust is evidence, never approval. Each row is one comparison made on the trusted side
(a label, an independent route's answer, a property of the task's form, a person's
verdict) about one version of one tool on one task. A version's counters hold the
distinct tasks with evidence for and against it, so a tool that answers the same task a
hundred times earns one confirmation, not a hundred; `trust_level` (memory/types.py)
turns them, and a person's pin, into what the agent may do with the tool.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any, Protocol

from sqlmodel import Session, col, select

from memory import db
from memory.errors import LibraryError
from memory.rows import content_hash, dumps, loads
from memory.store import Store
from memory.types import (
    EVIDENCE_AGAINST,
    EVIDENCE_FOR,
    EVIDENCE_KINDS,
    Evidence,
    ToolInfo,
    trust_level,
)


class KnownTools(Protocol):
    """The tools evidence may be about (memory/tools.py's `ToolStore`)."""

    def require(self, name: str) -> None: ...

    def info_or_raise(self, name: str) -> ToolInfo: ...


#: characters of a task's text kept with a piece of evidence
TASK_CAP = 2000


class EvidenceStore:
    def __init__(self, store: Store, tools: KnownTools, trust_support: int) -> None:
        self._store = store
        self._tools = tools
        self._trust_support = trust_support

    def add(self, items: Iterable[Evidence], *, count: bool = True) -> None:
        """Record evidence in one transaction (pieces about unknown tools are refused);
        `count=False`: as history only (see `evidence_in`)."""
        self._store.check_writable()
        items = list(items)
        for e in items:
            check_kind(e.kind)
            self._tools.require(e.tool)
        if not items:
            return
        with self._store.write() as (s, changes):
            evidence_in(s, changes, items, time.time(), self._trust_support, count=count)

    def evidence_list(
        self, name: str, version: int | None = None, *, limit: int = 500
    ) -> list[Evidence]:
        """A tool's evidence, newest first: of one version, or of all (None)."""
        self._tools.require(name)
        with Session(self._store.read_engine) as s:
            q = select(db.ToolEvidence).where(db.ToolEvidence.tool_name == name)
            if version is not None:
                q = q.where(db.ToolEvidence.version == version)
            rows = s.exec(q.order_by(col(db.ToolEvidence.id).desc()).limit(limit)).all()
        return [evidence_of(r) for r in rows]

    def set_pinned(self, name: str, pinned: bool, reason: str) -> ToolInfo:
        """A person vouches for a tool (pinned: it answers with no model call whatever its
        evidence), or takes that back (its evidence decides again)."""
        self._store.check_writable()
        self._tools.require(name)
        now = time.time()
        with self._store.write() as (s, changes):
            tool = s.get(db.Tool, name)
            assert tool is not None
            if bool(tool.pinned) != pinned:
                tool.pinned = pinned
                tool.updated_at = now
                s.add(tool)
                s.add(
                    db.ToolEventRow(
                        tool_name=name,
                        kind="pin" if pinned else "unpin",
                        version=tool.current_version,
                        detail=reason,
                        created_at=now,
                    )
                )
                changes.append(("tool", name))
        return self._tools.info_or_raise(name)


def evidence_in(
    s: Session,
    changes: list[tuple[str, str]],
    items: Iterable[Evidence],
    now: float,
    need: int,
    *,
    count: bool = True,
) -> None:
    """Record evidence inside the caller's transaction; pieces about tools or versions
    that do not exist (any more) are skipped: an episode's outcome does not depend on
    the library's bookkeeping. `need`: the confirmations that make a version trusted;
    `count=False` keeps the pieces as history without moving trust (evidence imported
    from a bundle made elsewhere)."""
    for e in items:
        check_kind(e.kind)
        tool = s.get(db.Tool, e.tool)
        if tool is None:
            continue
        version = e.version or tool.current_version
        row = s.exec(
            select(db.ToolVersion).where(
                db.ToolVersion.tool_name == e.tool, db.ToolVersion.version == version
            )
        ).first()
        if row is None:
            continue
        if e.episode_id and _recorded(s, e.tool, version, e.kind, e.episode_id):
            continue  # a batch end run again after a kill: recorded already
        task = (e.task or "").strip()
        task_hash = content_hash(task) if task else ""
        side = _side(e.kind)
        before = trust_level(bool(tool.pinned), row.n_support, row.n_against, need)
        if count and side and not (task_hash and _seen(s, e.tool, version, task_hash, side)):
            if side == "for":
                row.n_support += 1
            else:
                row.n_against += 1
            s.add(row)
        s.add(
            db.ToolEvidence(
                tool_name=e.tool,
                version=version,
                kind=e.kind,
                task=task[:TASK_CAP],
                task_hash=task_hash,
                task_id=e.task_id,
                episode_id=e.episode_id,
                answer_json=dumps(e.answer),
                other_json=dumps(e.other),
                detail=e.detail[:2000],
                created_at=e.created_at or now,
            )
        )
        s.flush()
        after = trust_level(bool(tool.pinned), row.n_support, row.n_against, need)
        if after != before and version == tool.current_version:
            # What a tool may do changed: whoever lists tools (an MCP server) re-reads.
            tool.updated_at = now
            s.add(tool)
            s.add(
                db.ToolEventRow(
                    tool_name=e.tool,
                    kind="trust",
                    version=version,
                    detail=f"{before} -> {after} ({e.kind})",
                    created_at=now,
                )
            )
        changes.append(("tool", e.tool))


def check_kind(kind: str) -> None:
    if kind not in EVIDENCE_KINDS:
        raise LibraryError(
            f"unknown kind of evidence {kind!r}: use one of {', '.join(EVIDENCE_KINDS)}"
        )


def _side(kind: str) -> str:
    if kind in EVIDENCE_FOR:
        return "for"
    if kind in EVIDENCE_AGAINST:
        return "against"
    return ""


def _seen(s: Session, tool: str, version: int, task_hash: str, side: str) -> bool:
    """Whether this task already counted for (or against) this version."""
    kinds = EVIDENCE_FOR if side == "for" else EVIDENCE_AGAINST
    return _exists(
        s,
        tool,
        version,
        db.ToolEvidence.task_hash == task_hash,
        col(db.ToolEvidence.kind).in_(kinds),
    )


def _recorded(s: Session, tool: str, version: int, kind: str, episode_id: str) -> bool:
    """Whether this episode already gave this kind of evidence about this version."""
    return _exists(
        s, tool, version, db.ToolEvidence.kind == kind, db.ToolEvidence.episode_id == episode_id
    )


def _exists(s: Session, tool: str, version: int, *where: Any) -> bool:
    """Whether a piece of evidence about this version meets every condition of `where`."""
    found = s.exec(
        select(db.ToolEvidence.id)
        .where(db.ToolEvidence.tool_name == tool, db.ToolEvidence.version == version, *where)
        .limit(1)
    ).first()
    return found is not None


def evidence_of(r: db.ToolEvidence) -> Evidence:
    return Evidence(
        tool=r.tool_name,
        kind=r.kind,
        task=r.task,
        task_id=r.task_id,
        episode_id=r.episode_id,
        answer=loads(r.answer_json),
        other=loads(r.other_json),
        detail=r.detail,
        version=r.version,
        created_at=r.created_at,
    )
