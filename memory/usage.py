"""`ToolUsage`: how tools fare in use, the tasks they served, what a repair should see.

Counts are outcomes, not calls (one per tool and episode); every call stays on record as
a usage event for `tools show`, the failure policy (`prune`) and `refine`.
"""

from __future__ import annotations

import time

from sqlmodel import Session, col, select

from memory import db
from memory.rows import usage_event, usage_row
from memory.store import Store
from memory.tool_rows import current_version_row
from memory.tools import ToolStore, link_in
from memory.types import UsageEvent
from memory.vectors import VectorCache


class ToolUsage:
    def __init__(self, store: Store, vectors: VectorCache, tools: ToolStore) -> None:
        self._store = store
        self._vectors = vectors
        self._tools = tools

    def record_usage(self, events: list[UsageEvent], *, solved: bool | None = None) -> None:
        self._store.check_writable()
        if not events:
            return
        with self._store.write() as (s, changes):
            missing = [e.tool for e in events if s.get(db.Tool, e.tool) is None]
            if missing:
                raise self._tools.unknown(missing[0])
            self.usage_in(s, changes, events, solved, time.time())

    def usage_in(
        self,
        s: Session,
        changes: list[tuple[str, str]],
        events: list[UsageEvent],
        solved: bool | None,
        now: float,
    ) -> None:
        """Record usage inside the caller's transaction (events of tools that exist)."""
        tools: dict[str, db.Tool] = {}
        for name in dict.fromkeys(e.tool for e in events):
            tool = s.get(db.Tool, name)
            if tool is not None:
                tools[name] = tool
        events = [e for e in events if e.tool in tools]
        versions = {n: current_version_row(s, n, t.current_version) for n, t in tools.items()}
        for e in events:
            s.add(usage_row(e, tools[e.tool].current_version, now))
        # An outside caller (an MCP client, another agent) is on record and keeps the tool
        # from looking unused, but moves no count: it can neither vouch for a tool (the fast
        # path trusts counts) nor sink one (prune and repair read failures) with its inputs.
        for e in events:
            if e.source != "agent":
                tools[e.tool].last_used_at = now
        events = [e for e in events if e.source == "agent"]
        # Counts are outcomes, not calls: one per tool and episode (code that calls a tool
        # a thousand times, or feeds it garbage to make it raise, moves them by one).
        groups: dict[tuple[str, str | int], list[UsageEvent]] = {}
        for k, e in enumerate(events):
            groups.setdefault((e.tool, e.episode_id or k), []).append(e)
        for (name, _), group in groups.items():
            failed = any(not e.ok for e in group)
            # A success needs the episode's outcome, when there is one: a tool that ran
            # cleanly in a task that then failed proved nothing.
            succeeded = not failed and solved is not False
            for row in (tools[name], versions[name]):
                row.n_uses += 1
                row.n_success += 1 if succeeded else 0
                row.n_fail += 1 if failed else 0
            tools[name].last_used_at = now
        for name in tools:
            s.add(tools[name])
            s.add(versions[name])
            changes.append(("tool", name))

    def tool_failures(self, name: str) -> list[UsageEvent]:
        self._tools.require(name)
        with Session(self._store.read_engine) as s:
            tool = s.get(db.Tool, name)
            assert tool is not None
            rows = s.exec(
                select(db.UsageRow)
                .where(
                    db.UsageRow.tool_name == name,
                    db.UsageRow.tool_version == tool.current_version,
                    db.UsageRow.ok == False,  # noqa: E712 - SQL expression
                    db.UsageRow.source == "agent",
                )
                .order_by(db.UsageRow.id)  # type: ignore[arg-type]
            ).all()
        return [usage_event(r) for r in rows]

    def tools_to_repair(self) -> list[str]:
        """Active tools whose current version failed in use after the last repair that
        looked at it (each failure is shown to `refine` once)."""
        with self._store.read_engine.connect() as c:
            rows = c.exec_driver_sql(
                "SELECT t.name FROM tool t WHERE t.status = 'active' AND EXISTS ("
                " SELECT 1 FROM usage_event u WHERE u.tool_name = t.name"
                " AND u.tool_version = t.current_version AND u.ok = 0 AND u.source = 'agent'"
                " AND u.id > coalesce((SELECT max(CAST(e.detail AS INTEGER)) FROM tool_event e"
                "  WHERE e.tool_name = t.name AND e.kind = 'repair-tried'"
                "  AND e.version = t.current_version), 0))"
                " ORDER BY t.name"
            ).all()
        return [str(r[0]) for r in rows]

    def note_repair_tried(self, name: str) -> None:
        """Remember that a repair looked at every failure of `name`'s current version so far."""
        self._store.check_writable()
        with self._store.write() as (s, changes):
            tool = s.get(db.Tool, name)
            if tool is None:
                raise self._tools.unknown(name)
            last = s.exec(
                select(db.UsageRow.id)
                .where(db.UsageRow.tool_name == name)
                .order_by(col(db.UsageRow.id).desc())
                .limit(1)
            ).first()
            s.add(
                db.ToolEventRow(
                    tool_name=name,
                    kind="repair-tried",
                    version=tool.current_version,
                    detail=str(last or 0),  # the last usage record the repair saw
                    created_at=time.time(),
                )
            )
            changes.append(("tool", name))

    def usage_by_day(self, name: str, days: int = 90) -> list[tuple[str, int, int]]:
        """(UTC day, uses that went right, uses that failed) of the tool's last `days`
        days with any use, oldest first: one indexed aggregate, however many uses."""
        self._tools.require(name)
        with self._store.read_engine.connect() as c:
            rows = c.exec_driver_sql(
                "SELECT date(created_at, 'unixepoch') AS day, SUM(ok), SUM(1 - ok) "
                "FROM usage_event WHERE tool_name = ? GROUP BY day ORDER BY day DESC LIMIT ?",
                (name, days),
            ).all()
        return [(str(d), int(ok or 0), int(bad or 0)) for d, ok, bad in reversed(rows)]

    def usage(self, name: str, limit: int = 20) -> list[UsageEvent]:
        self._tools.require(name)
        with Session(self._store.read_engine) as s:
            rows = s.exec(
                select(db.UsageRow)
                .where(db.UsageRow.tool_name == name)
                .order_by(col(db.UsageRow.id).desc())
                .limit(limit)
            ).all()
        return [usage_event(r) for r in rows]

    def link_task(self, name: str, task: str) -> None:
        self._store.check_writable()
        self._tools.require(name)
        task = task.strip()
        if not task:
            return
        self._vectors.cache([task])
        with self._store.write() as (s, changes):
            link_in(s, changes, name, task, time.time())

    def links_in(
        self, s: Session, changes: list[tuple[str, str]], names: list[str], task: str, now: float
    ) -> None:
        """Task links inside the caller's transaction (names that exist; the task's
        embedding must be cached already)."""
        task = task.strip()
        for name in dict.fromkeys(names):
            if task and s.get(db.Tool, name) is not None:
                link_in(s, changes, name, task, now)
