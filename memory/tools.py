"""`ToolStore`: tools, their versions, provenance, usage, status and linked tasks.

A name is a tool's identity: a new version (or re-adding a quarantined or archived name)
makes the tool active again, since a fix answers whatever got it pruned. `Library` is the
front door; the docstrings of what this does for a caller are there.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import text
from sqlmodel import Session, select

from memory import db
from memory.errors import LibraryError, UnknownToolError
from memory.evidence import evidence_in
from memory.rank import rank_tools, view_kinds
from memory.rows import content_hash, task_ref
from memory.sync import IndexedPart
from memory.tool_rows import (
    current_version_row,
    insert_new_tools,
    provenance_row,
    tool_info,
    tool_infos,
    validate_draft,
    version_row,
)
from memory.types import (
    TOOL_STATUSES,
    Provenance,
    TestsGrowth,
    ToolDraft,
    ToolEvent,
    ToolHit,
    ToolInfo,
    tool_description,
)


class ToolStore(IndexedPart):
    """Tools and their versions: written with their embeddings, searched through the index."""

    # ---------------------------------------------------------------- writes

    def add_tool(self, draft: ToolDraft) -> ToolInfo:
        self._store.check_writable()
        validate_draft(draft)
        existing = self._tool_row(draft.name)
        if existing is not None and existing.status == "active":
            raise LibraryError(
                f"an active tool named {draft.name!r} already exists (version "
                f"{existing.current_version}): add a version of it or choose another name"
            )
        if existing is not None:
            return self._store_version(draft.name, draft, kind="added", reactivate=True)
        now = time.time()
        desc = tool_description(draft.name, draft.signature, draft.docstring)
        task = draft.provenance.task.strip()
        self._vectors.cache([desc, task] if task else [desc])
        with self._store.write() as (s, changes):
            s.add(db.Tool(name=draft.name, current_version=1, created_at=now, updated_at=now))
            s.flush()
            s.add(version_row(draft, 1, desc, now, draft.provenance.parent_version))
            s.add(provenance_row(draft.name, 1, "added", draft.provenance, now))
            s.add(db.ToolEventRow(tool_name=draft.name, kind="added", version=1, created_at=now))
            changes.append(("tool", draft.name))
            if task:
                link_in(s, changes, draft.name, task, now)
            if draft.evidence:
                s.flush()
                evidence_in(s, changes, draft.evidence, now, self.config.trust_support)
        return self.info_or_raise(draft.name)

    def add_tools(self, drafts: Sequence[ToolDraft]) -> int:
        self._store.check_writable()
        for d in drafts:
            validate_draft(d)
        names = [d.name for d in drafts]
        if len(set(names)) != len(names):
            raise LibraryError("add_tools got the same name twice: names must be unique")
        taken = set(self.tool_names()) & set(names)
        if taken:
            raise LibraryError(
                f"tools already exist: {', '.join(sorted(taken)[:5])}: add versions instead"
            )
        now = time.time()
        descs = [tool_description(d.name, d.signature, d.docstring) for d in drafts]
        tasks = [d.provenance.task.strip() for d in drafts]
        self._vectors.cache(descs + [t for t in tasks if t])
        with self._store.write() as (s, changes):
            refs = insert_new_tools(s.connection(), drafts, descs, tasks, now)
            changes.extend(("tool", n) for n in names)
            changes.extend(("task", ref) for ref in refs)
        return len(drafts)

    def add_version(self, name: str, draft: ToolDraft) -> ToolInfo:
        self._store.check_writable()
        validate_draft(draft)
        if draft.name != name:
            raise LibraryError(
                f"the draft is named {draft.name!r}, not {name!r}: a version keeps its tool's name"
            )
        self.require(name)
        return self._store_version(name, draft, kind="versioned", reactivate=True)

    def _store_version(self, name: str, draft: ToolDraft, kind: str, reactivate: bool) -> ToolInfo:
        now = time.time()
        desc = tool_description(name, draft.signature, draft.docstring)
        task = draft.provenance.task.strip()
        self._vectors.cache([desc, task] if task else [desc])
        with self._store.write() as (s, changes):
            tool = s.get(db.Tool, name)
            if tool is None:
                raise self.unknown(name)
            last = s.execute(
                text("SELECT max(version) FROM tool_version WHERE tool_name = :n"), {"n": name}
            ).scalar()
            version = int(last or 0) + 1
            parent = draft.provenance.parent_version or tool.current_version
            s.add(version_row(draft, version, desc, now, parent))
            s.add(provenance_row(name, version, kind, draft.provenance, now))
            tool.current_version = version
            tool.updated_at = now
            detail = f"parent v{parent}"
            if reactivate and tool.status != "active":
                detail += f"; {tool.status} -> active"
                tool.status, tool.status_reason = "active", f"new version {version}"
            s.add(tool)
            s.add(
                db.ToolEventRow(
                    tool_name=name, kind=kind, version=version, detail=detail, created_at=now
                )
            )
            changes.append(("tool", name))
            if task:
                link_in(s, changes, name, task, now)
            if draft.evidence:
                s.flush()
                evidence_in(s, changes, draft.evidence, now, self.config.trust_support)
        return self.info_or_raise(name)

    def merge_into(self, name: str, provenance: Provenance, grow: TestsGrowth | None) -> ToolInfo:
        self._store.check_writable()
        self.require(name)
        now = time.time()
        task = provenance.task.strip()
        if task:
            self._vectors.cache([task])
        with self._store.write() as (s, changes):
            tool = s.get(db.Tool, name)
            if tool is None:
                raise self.unknown(name)
            row = current_version_row(s, name, tool.current_version)
            merged, added = grow(row.tests) if grow is not None else (row.tests, [])
            if added:
                row.tests = merged
                s.add(row)
            s.add(provenance_row(name, tool.current_version, "merged", provenance, now))
            detail = f"+{len(added)} tests ({', '.join(added)})" if added else "no new tests"
            s.add(
                db.ToolEventRow(
                    tool_name=name,
                    kind="merged",
                    version=tool.current_version,
                    detail=detail,
                    created_at=now,
                )
            )
            tool.updated_at = now
            s.add(tool)
            changes.append(("tool", name))
            if task:
                link_in(s, changes, name, task, now)
        return self.info_or_raise(name)

    def set_status(self, name: str, status: str, reason: str) -> ToolInfo:
        self._store.check_writable()
        if status not in TOOL_STATUSES:
            raise LibraryError(f"unknown status {status!r}: use one of {', '.join(TOOL_STATUSES)}")
        self.require(name)
        with self._store.write() as (s, changes):
            self.set_status_in(s, changes, name, status, reason)
        return self.info_or_raise(name)

    def set_status_in(
        self, s: Session, changes: list[tuple[str, str]], name: str, status: str, reason: str
    ) -> None:
        tool = s.get(db.Tool, name)
        if tool is None:
            raise self.unknown(name)
        now = time.time()
        old = tool.status
        tool.status, tool.status_reason, tool.updated_at = status, reason, now
        s.add(tool)
        s.add(
            db.ToolEventRow(
                tool_name=name,
                kind=status,
                version=tool.current_version,
                detail=f"{old} -> {status}: {reason}",
                created_at=now,
            )
        )
        changes.append(("tool", name))

    def restore(self, name: str, reason: str = "restored") -> ToolInfo:
        info = self.info_or_raise(name)
        if info.status == "active":
            raise LibraryError(f"tool {name!r} is already active")
        return self.set_status(name, "active", reason)

    def record_rejection(self, name: str, reason: str, source: str, provenance: Provenance) -> None:
        self._store.check_writable()
        with self._store.write() as (s, _changes):
            s.add(
                db.Rejection(
                    tool_name=name,
                    reason=reason,
                    source=source,
                    task=provenance.task,
                    task_id=provenance.task_id,
                    episode_id=provenance.episode_id,
                    created_at=time.time(),
                )
            )

    # ---------------------------------------------------------------- reads

    def get_tool(self, name: str, version: int | None = None) -> ToolInfo | None:
        with Session(self._store.read_engine) as s:
            tool = s.get(db.Tool, name)
            if tool is None:
                return None
            ver = version or tool.current_version
            row = s.exec(
                select(db.ToolVersion).where(
                    db.ToolVersion.tool_name == name, db.ToolVersion.version == ver
                )
            ).first()
            if row is None:
                return None
            provs = s.exec(
                select(db.ToolProvenance)
                .where(db.ToolProvenance.tool_name == name, db.ToolProvenance.version == ver)
                .order_by(db.ToolProvenance.id)  # type: ignore[arg-type]
            ).all()
            return tool_info(tool, row, list(provs), self.config)

    def list_tools(self, status: str | None = "active") -> list[ToolInfo]:
        if status not in (None, "all", *TOOL_STATUSES):
            raise LibraryError(
                f"unknown status {status!r}: use one of {', '.join(TOOL_STATUSES)} or all"
            )
        engine = self._store.read_engine
        with engine.connect() as c:
            if status in (None, "all"):
                names = [n for (n,) in c.exec_driver_sql("SELECT name FROM tool ORDER BY name")]
            else:
                names = [
                    n
                    for (n,) in c.exec_driver_sql(
                        "SELECT name FROM tool WHERE status = ? ORDER BY name", (status,)
                    )
                ]
        # Plain queries in chunks (the ORM took 1 s for 10,000 tools; SQLite caps the
        # parameters of one statement).
        infos: dict[str, ToolInfo] = {}
        for start in range(0, len(names), 5000):
            infos.update(tool_infos(engine, names[start : start + 5000], self.config))
        return [infos[n] for n in names if n in infos]

    def tool_versions(self, name: str) -> list[ToolInfo]:
        self.require(name)
        with Session(self._store.read_engine) as s:
            nums = s.exec(
                select(db.ToolVersion.version)
                .where(db.ToolVersion.tool_name == name)
                .order_by(db.ToolVersion.version)  # type: ignore[arg-type]
            ).all()
        return [info for v in nums if (info := self.get_tool(name, v)) is not None]

    def tool_history(self, name: str) -> list[ToolEvent]:
        self.require(name)
        with Session(self._store.read_engine) as s:
            rows = s.exec(
                select(db.ToolEventRow)
                .where(db.ToolEventRow.tool_name == name)
                .order_by(db.ToolEventRow.id)  # type: ignore[arg-type]
            ).all()
        return [ToolEvent(r.tool_name, r.kind, r.version, r.detail, r.created_at) for r in rows]

    def tool_tasks(self, name: str) -> list[str]:
        with Session(self._store.read_engine) as s:
            return list(s.exec(select(db.ToolTask.task).where(db.ToolTask.tool_name == name)).all())

    def tools_stamp(self) -> tuple[int, float, float, int]:
        # Usage moves none of these columns: a stream's calls do not look like tool changes.
        with self._store.read_engine.connect() as c:
            row = c.exec_driver_sql(
                "SELECT count(*), total(current_version), coalesce(max(updated_at), 0),"
                " total(status = 'active') FROM tool"
            ).one()
        return (int(row[0]), float(row[1]), float(row[2]), int(row[3]))

    def tool_names(self) -> list[str]:
        with Session(self._store.read_engine) as s:
            return list(s.exec(select(db.Tool.name).order_by(db.Tool.name)).all())

    def search_tools(
        self, query: str, k: int = 5, *, views: Sequence[str] = ("description", "tasks")
    ) -> list[ToolHit]:
        if k <= 0 or not query.strip():
            return []
        kinds = view_kinds(views)
        self._search.sync()
        qv = self._vectors.query(query)
        scored = rank_tools(self._search, self.config, qv, k, kinds)
        infos = tool_infos(self._store.read_engine, [name for _, _, name, _ in scored], self.config)
        return [
            ToolHit(
                tool=infos[name],
                score=score,
                similarity=sim,
                view="description" if view == "tools" else "tasks",
            )
            for score, sim, name, view in scored
            # another process may have changed the status since the cache was read
            if name in infos and infos[name].status == "active"
        ]

    def tool_sources(self, names: Iterable[str]) -> dict[str, str]:
        wanted = list(dict.fromkeys(names))
        if not wanted:
            return {}
        found = self.known_sources(wanted)
        missing = [n for n in wanted if n not in found]
        if missing:
            raise self.unknown(missing[0])
        return with_callees({n: found[n] for n in wanted}, self.known_sources)

    def known_sources(self, names: Sequence[str]) -> dict[str, str]:
        """The current source of each of `names` the library has (whatever its status)."""
        return dict(self._current_sources(db.Tool.name.in_(names)))  # type: ignore[attr-defined]

    def callees(self, name: str) -> list[str]:
        """The library tools the current version of `name` imports (`from tools import`)."""
        source = self.tool_sources([name])[name]
        names = self.tool_names()
        return [n for n in imported_tools(source) if n in names and n != name]

    def callers(self, name: str) -> list[str]:
        """The tools whose current version imports `name` (found by its text in SQL, then
        confirmed by reading the import)."""
        self.require(name)
        rows = self._current_sources(
            db.ToolVersion.source.contains(name),  # type: ignore[attr-defined]
            db.ToolVersion.source.contains("from tools import"),  # type: ignore[attr-defined]
        )
        return sorted(n for n, src in rows if n != name and name in imported_tools(src))

    def _current_sources(self, *where: Any) -> list[tuple[str, str]]:
        """(name, source) of the current version of the tools that meet `where`."""
        with Session(self._store.read_engine) as s:
            rows = s.exec(
                select(db.Tool.name, db.ToolVersion.source).where(
                    db.ToolVersion.tool_name == db.Tool.name,
                    db.ToolVersion.version == db.Tool.current_version,
                    *where,
                )
            ).all()
        return [(str(n), str(src)) for n, src in rows]

    def rejections(self, name: str | None = None) -> list[dict[str, Any]]:
        with Session(self._store.read_engine) as s:
            q = select(db.Rejection).order_by(db.Rejection.id)  # type: ignore[arg-type]
            if name is not None:
                q = q.where(db.Rejection.tool_name == name)
            return [r.model_dump() for r in s.exec(q).all()]

    # ---------------------------------------------------------------- lookups

    def _tool_row(self, name: str) -> db.Tool | None:
        with Session(self._store.read_engine) as s:
            return s.get(db.Tool, name)

    def require(self, name: str) -> None:
        if self._tool_row(name) is None:
            raise self.unknown(name)

    def unknown(self, name: str) -> UnknownToolError:
        return UnknownToolError(name, self.tool_names())

    def info_or_raise(self, name: str) -> ToolInfo:
        info = self.get_tool(name)
        if info is None:
            raise self.unknown(name)
        return info


def link_in(s: Session, changes: list[tuple[str, str]], name: str, task: str, now: float) -> None:
    ref = task_ref(name, task)
    if s.get(db.ToolTask, ref) is None:
        s.add(
            db.ToolTask(
                id=ref, tool_name=name, task=task, text_hash=content_hash(task), created_at=now
            )
        )
        changes.append(("task", ref))


def with_callees(
    sources: dict[str, str], lookup: Callable[[list[str]], dict[str, str]]
) -> dict[str, str]:
    """`sources` and the current sources of the library tools they import, transitively:
    what a sandbox run needs to call them (a tool that calls another one gets it shipped
    whatever its status, so it runs as it was tested). A callee `lookup` does not know is
    left out: calling it fails on record, in the sandbox."""
    out = dict(sources)
    todo = [n for src in out.values() for n in imported_tools(src) if n not in out]
    while todo:
        found = lookup(list(dict.fromkeys(todo)))
        out.update(found)
        todo = [n for src in found.values() for n in imported_tools(src) if n not in out]
    return out


def imported_tools(source: str) -> list[str]:
    """The names a tool's source imports from the library (`from tools import a, b`)."""
    import ast

    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "tools":
            names += [alias.name for alias in node.names if alias.name not in names]
    return names
