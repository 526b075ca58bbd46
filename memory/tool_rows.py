"""Tool records <-> rows: drafts checked and stored as versions, `ToolInfo` built from
the tool and version rows (with its reliability), and many new tools in one insert.

Plain functions without state: the callers hold the sessions and engines.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy import insert as sql_insert
from sqlmodel import Session, select

from memory import db
from memory.config import MemoryConfig
from memory.errors import LibraryError
from memory.rows import content_hash, dumps, loads, task_ref
from memory.types import Provenance, ToolDraft, ToolInfo, trust_level

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
        properties_json=dumps(list(draft.properties), cap=None) or "[]",
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
                "pinned": False,
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


def properties_of(raw: str | None) -> tuple[dict[str, Any], ...]:
    """A version's stored properties (a list of dicts; anything else reads as none)."""
    try:
        value = loads(raw or "[]")
    except ValueError:
        return ()
    if not isinstance(value, list):
        return ()
    return tuple(p for p in value if isinstance(p, dict))


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
        n_support=row.n_support,
        n_against=row.n_against,
        pinned=bool(tool.pinned),
        trust=trust_level(bool(tool.pinned), row.n_support, row.n_against, cfg.trust_support),
        properties=properties_of(row.properties_json),
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
            "t.n_uses, t.pinned, v.version, v.source, v.tests, v.signature, v.docstring, "
            "v.verification_log, v.created_at, v.n_uses, v.n_success, v.n_fail, v.n_support, "
            "v.n_against, v.properties_json "
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
    for (name, status, reason, current, last, total, pinned, version, source, tests, sig,
         doc, vlog, created, uses, ok, bad, support, against, props) in rows:  # fmt: skip
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
            n_support=support,
            n_against=against,
            pinned=bool(pinned),
            trust=trust_level(bool(pinned), support, against, cfg.trust_support),
            properties=properties_of(props),
        )
    return out
