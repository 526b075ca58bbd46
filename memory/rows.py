"""Records <-> rows: the dataclasses handed out built from SQL rows and back, plus the
text keys rows are stored under (content hashes, failure signatures, task refs) and the
test-merging of `Library.merge_into`.

Plain functions without state: the callers hold the sessions and engines.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy import insert as sql_insert
from sqlmodel import Session, select

from memory import db
from memory.config import MemoryConfig
from memory.errors import LibraryError
from memory.types import (
    EpisodeRecord,
    FailureInfo,
    Provenance,
    TipInfo,
    ToolDraft,
    ToolInfo,
    UsageEvent,
)

JSON_CAP = 4000  # characters kept of a recorded argument or result

# -------------------------------------------------------------------- keys


def content_hash(text_: str) -> str:
    return hashlib.sha1(text_.encode("utf-8")).hexdigest()


def failure_text(task: str, error_type: str, message: str, lesson: str) -> str:
    return f"{task}\n{error_type}: {message}\n{lesson}"


_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_NUMBER = re.compile(r"\b0x[0-9a-f]+\b|\b\d+(\.\d+)?\b")


def failure_signature(error_type: str, message: str, tool: str | None) -> str:
    """Failures with equal signature are one cluster: literals and numbers do not count."""
    norm = _NUMBER.sub("<n>", _QUOTED.sub("<s>", message.lower()))
    norm = " ".join(norm.split())[:200]
    return content_hash(f"{error_type}|{norm}|{tool or ''}")[:16]


def task_ref(tool: str, task: str) -> str:
    return f"{tool}:{content_hash(task)[:16]}"


# -------------------------------------------------------------------- JSON columns


def dumps(value: Any, cap: int | None = JSON_CAP) -> str | None:
    if value is None:
        return None
    out = json.dumps(value, default=_jsonable, ensure_ascii=False)
    return out if cap is None or len(out) <= cap else json.dumps(out[:cap] + "...")


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    return repr(value)


def loads(raw: str | None) -> Any:
    return None if raw is None else json.loads(raw)


# -------------------------------------------------------------------- tools


def validate_draft(draft: ToolDraft) -> None:
    if not draft.name.isidentifier() or draft.name.startswith("_"):
        raise LibraryError(
            f"tool name {draft.name!r} is not a public Python identifier: use snake_case like sort_words"
        )
    if not draft.source.strip():
        raise LibraryError(f"tool {draft.name!r} has no source")


def version_row(
    draft: ToolDraft, version: int, desc: str, now: float, parent: int | None
) -> db.ToolVersion:
    return db.ToolVersion(
        tool_name=draft.name,
        version=version,
        source=draft.source,
        tests=draft.tests,
        signature=draft.signature,
        docstring=draft.docstring,
        verification_log=draft.verification_log,
        parent_version=parent,
        desc_hash=content_hash(desc),
        created_at=now,
    )


def provenance_row(
    name: str, version: int, kind: str, p: Provenance, now: float
) -> db.ToolProvenance:
    return db.ToolProvenance(
        tool_name=name,
        version=version,
        kind=kind,
        task=p.task,
        task_id=p.task_id,
        episode_id=p.episode_id,
        parent_version=p.parent_version,
        created_at=now,
    )


def current_version_row(s: Session, name: str, version: int) -> db.ToolVersion:
    row = s.exec(
        select(db.ToolVersion).where(
            db.ToolVersion.tool_name == name, db.ToolVersion.version == version
        )
    ).first()
    if row is None:
        raise LibraryError(
            f"tool {name!r} has no version {version}: the database is inconsistent; restore a backup"
        )
    return row


def insert_new_tools(
    conn: Connection,
    drafts: Sequence[ToolDraft],
    descs: Sequence[str],
    tasks: Sequence[str],
    now: float,
) -> list[str]:
    """Insert version 1 of many new tools, one executemany per table (imports and
    benchmarks add thousands at once). Returns the refs of the task links made."""
    conn.execute(
        sql_insert(db.Tool),
        [
            {
                "name": d.name,
                "status": "active",
                "status_reason": "",
                "current_version": 1,
                "created_at": now,
                "updated_at": now,
                "n_uses": 0,
                "n_success": 0,
                "n_fail": 0,
                "n_verified": 0,
            }
            for d in drafts
        ],
    )
    conn.execute(
        sql_insert(db.ToolVersion),
        [
            version_row(d, 1, desc, now, d.provenance.parent_version).model_dump(exclude={"id"})
            for d, desc in zip(drafts, descs, strict=True)
        ],
    )
    conn.execute(
        sql_insert(db.ToolProvenance),
        [
            provenance_row(d.name, 1, "added", d.provenance, now).model_dump(exclude={"id"})
            for d in drafts
        ],
    )
    conn.execute(
        sql_insert(db.ToolEventRow),
        [
            {
                "tool_name": d.name,
                "kind": "added",
                "version": 1,
                "detail": "bulk",
                "created_at": now,
            }
            for d in drafts
        ],
    )
    links = {task_ref(d.name, t): (d.name, t) for d, t in zip(drafts, tasks, strict=True) if t}
    if links:
        conn.execute(
            sql_insert(db.ToolTask),
            [
                {
                    "id": ref,
                    "tool_name": n,
                    "task": t,
                    "text_hash": content_hash(t),
                    "created_at": now,
                }
                for ref, (n, t) in links.items()
            ],
        )
    return list(links)


def reliability(n_success: int, n_uses: int, cfg: MemoryConfig) -> float:
    """Beta-prior success rate: a new tool starts above one that keeps failing."""
    return (n_success + cfg.prior_success) / (n_uses + cfg.prior_success + cfg.prior_fail)


def tool_info(
    tool: db.Tool, row: db.ToolVersion, provs: list[db.ToolProvenance], cfg: MemoryConfig
) -> ToolInfo:
    return ToolInfo(
        name=tool.name,
        version=row.version,
        status=tool.status,
        source=row.source,
        tests=row.tests,
        signature=row.signature,
        docstring=row.docstring,
        provenance=[Provenance(p.task, p.task_id, p.episode_id, p.parent_version) for p in provs],
        created_at=row.created_at,
        n_uses=row.n_uses,
        n_success=row.n_success,
        n_fail=row.n_fail,
        reliability=reliability(row.n_success, row.n_uses, cfg),
        current_version=tool.current_version,
        status_reason=tool.status_reason,
        last_used_at=tool.last_used_at,
        total_uses=tool.n_uses,
        verification_log=row.verification_log,
        n_verified=row.n_verified,
    )


def tool_infos(engine: Engine, names: list[str], cfg: MemoryConfig) -> dict[str, ToolInfo]:
    """Current ToolInfos of a few names in two plain queries (the search hot path: the
    ORM's per-row get() costs ~1 ms a query)."""
    if not names:
        return {}
    marks = ",".join("?" * len(names))
    with engine.connect() as c:
        rows = c.exec_driver_sql(
            "SELECT t.name, t.status, t.status_reason, t.current_version, t.last_used_at, "
            "t.n_uses, v.version, v.source, v.tests, v.signature, v.docstring, "
            "v.verification_log, v.created_at, v.n_uses, v.n_success, v.n_fail, v.n_verified "
            "FROM tool t "
            "JOIN tool_version v ON v.tool_name = t.name AND v.version = t.current_version "
            f"WHERE t.name IN ({marks})",
            tuple(names),
        ).all()
        provs: dict[str, list[Provenance]] = {}
        for name, task, task_id, ep, parent in c.exec_driver_sql(
            "SELECT p.tool_name, p.task, p.task_id, p.episode_id, p.parent_version "
            "FROM tool_provenance p JOIN tool t ON p.tool_name = t.name "
            f"AND p.version = t.current_version WHERE t.name IN ({marks}) ORDER BY p.id",
            tuple(names),
        ).all():
            provs.setdefault(name, []).append(Provenance(task, task_id, ep, parent))
    out = {}
    for (name, status, reason, current, last, total, version, source, tests, sig, doc,
         vlog, created, uses, ok, bad, verified) in rows:  # fmt: skip
        out[name] = ToolInfo(
            name=name,
            version=version,
            status=status,
            source=source,
            tests=tests,
            signature=sig,
            docstring=doc,
            provenance=provs.get(name, []),
            created_at=created,
            n_uses=uses,
            n_success=ok,
            n_fail=bad,
            reliability=reliability(ok, uses, cfg),
            current_version=current,
            status_reason=reason,
            last_used_at=last,
            total_uses=total,
            verification_log=vlog,
            n_verified=verified,
        )
    return out


def usage_row(e: UsageEvent, version: int, now: float) -> db.UsageRow:
    return db.UsageRow(
        tool_name=e.tool,
        tool_version=version,
        episode_id=e.episode_id,
        ok=bool(e.ok),
        args_json=dumps(e.args),
        kwargs_json=dumps(e.kwargs),
        result_json=dumps(e.result),
        error_type=e.error_type,
        error_message=(e.error_message or None) and e.error_message[:JSON_CAP],
        seconds=float(e.seconds),
        created_at=now,
    )


def usage_event(r: db.UsageRow) -> UsageEvent:
    return UsageEvent(
        tool=r.tool_name,
        ok=r.ok,
        episode_id=r.episode_id,
        args=loads(r.args_json),
        kwargs=loads(r.kwargs_json),
        result=loads(r.result_json),
        error_type=r.error_type,
        error_message=r.error_message,
        seconds=r.seconds,
    )


# -------------------------------------------------------------------- notes, episodes


def tip_info(t: db.Tip) -> TipInfo:
    return TipInfo(
        id=t.id,
        text=t.text,
        task=t.task,
        episode_id=t.episode_id,
        status=t.status,
        support=t.support,
        n_shown=t.n_shown,
        n_helped=t.n_helped,
        created_at=t.created_at,
        merged_into=t.merged_into,
    )


def failure_info(f: db.Failure) -> FailureInfo:
    return FailureInfo(
        id=f.id,
        task=f.task,
        error_type=f.error_type,
        message=f.message,
        lesson=f.lesson,
        tool=f.tool,
        episode_id=f.episode_id,
        signature=f.signature,
        status=f.status,
        count=f.count,
        created_at=f.created_at,
        merged_into=f.merged_into,
    )


#: caps of what one episode keeps, so the library does not grow with long answers or
#: long histories (a stream runs for weeks)
EPISODE_ANSWER_CAP = 16 * 1024
EPISODE_TRACE_CAP = 256 * 1024


def _trace_json(trace: Any) -> str | None:
    """The episode's trace, its history shortened from the front until it fits: the
    reason and the deferred forge traces (which a resumed batch still needs) are kept."""
    text = dumps(trace, cap=None)
    if text is None or len(text) <= EPISODE_TRACE_CAP or not isinstance(trace, dict):
        return text
    history = list(trace.get("history") or [])
    while history and text is not None and len(text) > EPISODE_TRACE_CAP:
        history = history[len(history) // 2 + 1 :]
        text = dumps({**trace, "history": history, "history_cut": True}, cap=None)
    return (
        text
        if text is None or len(text) <= EPISODE_TRACE_CAP * 2
        else dumps(trace, cap=EPISODE_TRACE_CAP)
    )


def episode_row(ep: EpisodeRecord, ep_id: str, created_at: float) -> db.Episode:
    return db.Episode(
        id=ep_id,
        task_id=ep.task_id,
        task=ep.task,
        status=ep.status,
        answer_json=dumps(ep.answer, cap=EPISODE_ANSWER_CAP),
        correct=ep.correct,
        attempts=ep.attempts,
        n_calls=ep.n_calls,
        tokens_in=ep.tokens_in,
        tokens_out=ep.tokens_out,
        seconds=ep.seconds,
        tools_used_json=json.dumps(list(ep.tools_used)),
        tools_created_json=json.dumps(list(ep.tools_created)),
        feedback=ep.feedback,
        run_id=ep.run_id,
        trace_json=_trace_json(ep.trace),
        created_at=created_at,
    )


def episode_record(row: db.Episode) -> EpisodeRecord:
    return EpisodeRecord(
        task_id=row.task_id,
        task=row.task,
        status=row.status,
        answer=loads(row.answer_json),
        correct=row.correct,
        attempts=row.attempts,
        n_calls=row.n_calls,
        tokens_in=row.tokens_in,
        tokens_out=row.tokens_out,
        seconds=row.seconds,
        tools_used=json.loads(row.tools_used_json),
        tools_created=json.loads(row.tools_created_json),
        feedback=row.feedback,
        run_id=row.run_id,
        id=row.id,
        trace=loads(row.trace_json),
    )
