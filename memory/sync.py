"""`IndexSync`: the vector index and the ranking caches, kept in step with SQL.

SQL is the source of truth; the index (Chroma for the owner, numpy for a guest) and the
status/usage caches ranking reads are derived from it. Every write appends the ids it
changed to the `change` log, and `sync()` replays the log since the last replay before each
search, so writes by other processes (a person's `tools quarantine` while a stream runs)
are seen without reloading everything.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine

from memory.config import MemoryConfig
from memory.errors import LibraryError
from memory.index import KINDS, ChromaIndex, NumpyIndex, VectorIndex
from memory.rows import failure_text
from memory.store import Store
from memory.types import tool_description
from memory.vectors import VectorCache

# What the index should hold per kind (id -> content hash), and the column its ids are in.
_DESIRED_SQL = {
    "tools": "SELECT t.name, v.desc_hash FROM tool t JOIN tool_version v "
    "ON v.tool_name = t.name AND v.version = t.current_version",
    "tasks": "SELECT id, text_hash FROM tool_task",
    "tips": "SELECT id, text_hash FROM tip",
    "failures": "SELECT id, text_hash FROM failure",
}
_KEY = {"tools": "t.name", "tasks": "id", "tips": "id", "failures": "id"}
# change-log kind -> index kind
_VIEWS = (("tool", "tools"), ("task", "tasks"), ("tip", "tips"), ("failure", "failures"))


@dataclass
class ToolMeta:
    """What ranking needs about a tool, cached in memory and refreshed from the change log."""

    status: str
    created_at: float
    last_used_at: float | None
    v_success: int
    v_fail: int


@dataclass
class NoteMeta:
    """Ranking data of a tip or failure."""

    status: str
    created_at: float
    support: int
    n_shown: int = 0
    n_helped: int = 0


class IndexSync:
    def __init__(
        self,
        read_engine: Engine,
        vectors: VectorCache,
        index_path: Path,
        *,
        owner: bool,
        lock: threading.RLock,
    ) -> None:
        self._read_engine = read_engine
        self._vectors = vectors
        self.index_path = index_path
        self.owner = owner
        # Shared with the Library: searches, syncs and close never interleave.
        self.lock = lock
        self.index: VectorIndex | None = None
        self.indexed: dict[str, dict[str, str]] = {k: {} for k in KINDS}
        self._tools: dict[str, ToolMeta] | None = None
        self._notes: dict[str, dict[str, NoteMeta]] = {}
        self.closed = False
        # Caches and the guest index load lazily from the current state, so older changes
        # need no replay.
        self.seen_seq = self.max_seq()

    def open_chroma(self) -> None:
        """Owner: open Chroma and repair drift (ids on one side only, stale content)."""
        with self.lock:
            index = ChromaIndex(self.index_path, self._vectors.model_key)
            self.index = index
            self.seen_seq = self.max_seq()
            for kind in KINDS:
                self.indexed[kind] = index.entries(kind)
                self._reconcile(kind, self._desired(kind), full=True)

    def ensure_index(self) -> VectorIndex:
        """The index, loading the guest's numpy copy from the SQL cache on first use."""
        with self.lock:
            if self.closed:
                raise LibraryError("the library is closed: open it again")
            if self.index is None:
                seq = self.max_seq()
                self.index = NumpyIndex(self._vectors.embedder.dim)
                for kind in KINDS:
                    self._reconcile(kind, self._desired(kind), full=True)
                self.seen_seq = max(self.seen_seq, seq)
            return self.index

    def close(self) -> None:
        """Close the index; an owner syncs first, leaving it current for the next owner."""
        try:
            if self.owner and self.index is not None:
                self.sync()
        finally:
            self.closed = True
            if self.index is not None:
                self.index.close()
                self.index = None

    def max_seq(self) -> int:
        with self._read_engine.connect() as c:
            return int(c.exec_driver_sql("SELECT coalesce(max(seq), 0) FROM change").scalar_one())

    def sync(self) -> None:
        """Replay the change log since the last sync: refresh caches and the index."""
        with self.lock:
            if self.closed:
                return
            with self._read_engine.connect() as c:
                rows = c.exec_driver_sql(
                    "SELECT seq, kind, ref FROM change WHERE seq > ? ORDER BY seq",
                    (self.seen_seq,),
                ).all()
            if not rows:
                return
            if any(kind == "gc" and int(ref) > self.seen_seq for _seq, kind, ref in rows):
                # `memory gc` dropped log entries this process had not replayed yet:
                # compare everything with SQL instead.
                self._resync_all()
                self.seen_seq = int(rows[-1][0])
                return
            refs: dict[str, set[str]] = {}
            for _seq, kind, ref in rows:
                refs.setdefault(kind, set()).add(ref)
            if self._tools is not None and "tool" in refs:
                self._refresh_tools(refs["tool"])
            for kind, table in (("tip", "tips"), ("failure", "failures")):
                if kind in refs and table in self._notes:
                    self._refresh_notes(table, refs[kind])
            if self.index is not None:
                for kind, view in _VIEWS:
                    if kind in refs:
                        self._reconcile(
                            view, self._desired(view, refs[kind]), full=False, refs=refs[kind]
                        )
            self.seen_seq = int(rows[-1][0])

    def _resync_all(self) -> None:
        self._tools = None
        self._notes = {}
        if self.index is not None:
            for kind in KINDS:
                self._reconcile(kind, self._desired(kind), full=True)

    def rebuild(self) -> dict[str, int]:
        """Empty and refill every kind from SQL. Returns entries per kind."""
        index = self.ensure_index()
        with self.lock:
            for kind in KINDS:
                index.reset(kind)
                self.indexed[kind] = {}
                self._reconcile(kind, self._desired(kind), full=True)
            return {kind: index.count(kind) for kind in KINDS}

    def drift(self) -> dict[str, dict[str, int]]:
        """Entries on one side only (or stale) per kind, comparing the index with SQL
        (after replaying pending changes: those are not drift)."""
        index = self.ensure_index()
        self.sync()
        out: dict[str, dict[str, int]] = {}
        for kind in KINDS:
            want, have = self._desired(kind), index.entries(kind)
            out[kind] = {
                "missing": sum(1 for i in want if i not in have),
                "extra": sum(1 for i in have if i not in want),
                "stale": sum(1 for i, h in want.items() if i in have and have[i] != h),
            }
        return out

    # ---------------------------------------------------------------- reconciling

    def _desired(self, kind: str, refs: Iterable[str] | None = None) -> dict[str, str]:
        """What the index should hold for `kind` (id -> content hash), from SQL."""
        sql = _DESIRED_SQL[kind]
        with self._read_engine.connect() as c:
            if refs is None:
                return {str(i): str(h) for i, h in c.exec_driver_sql(sql).all()}
            out: dict[str, str] = {}
            ids = list(refs)
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                joiner = " AND " if " WHERE " in sql else " WHERE "
                q = f"{sql}{joiner}{_KEY[kind]} IN ({','.join('?' * len(chunk))})"
                out.update({str(i): str(h) for i, h in c.exec_driver_sql(q, tuple(chunk)).all()})
            return out

    def _texts(self, kind: str, ids: Sequence[str]) -> dict[str, str]:
        """The text each id embeds (only needed when its vector is not cached)."""
        out: dict[str, str] = {}
        with self._read_engine.connect() as c:
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                if kind == "tools":
                    rows = c.exec_driver_sql(
                        "SELECT t.name, v.signature, v.docstring FROM tool t JOIN tool_version v ON "
                        f"v.tool_name = t.name AND v.version = t.current_version WHERE t.name IN ({marks})",
                        tuple(chunk),
                    ).all()
                    out.update({n: tool_description(n, sig, doc) for n, sig, doc in rows})
                elif kind == "failures":
                    rows = c.exec_driver_sql(
                        f"SELECT id, task, error_type, message, lesson FROM failure WHERE id IN ({marks})",
                        tuple(chunk),
                    ).all()
                    out.update({i: failure_text(t, e, m, ls) for i, t, e, m, ls in rows})
                else:
                    table, col = ("tool_task", "task") if kind == "tasks" else ("tip", "text")
                    rows = c.exec_driver_sql(
                        f"SELECT id, {col} FROM {table} WHERE id IN ({marks})", tuple(chunk)
                    ).all()
                    out.update(dict(rows))
        return out

    def _reconcile(
        self, kind: str, desired: dict[str, str], *, full: bool, refs: Iterable[str] = ()
    ) -> None:
        assert self.index is not None
        indexed = self.indexed[kind]
        todo = [i for i, h in desired.items() if indexed.get(i) != h]
        gone = (
            [i for i in indexed if i not in desired]
            if full
            else [i for i in refs if i in indexed and i not in desired]
        )
        if gone:
            self.index.delete(kind, gone)
            for i in gone:
                indexed.pop(i, None)
        if not todo:
            return
        hashes = [desired[i] for i in todo]
        cached = self._vectors.vectors(dict.fromkeys(hashes), compute=False)
        lacking = [i for i in todo if desired[i] not in cached]
        if lacking:
            texts = self._texts(kind, lacking)
            cached.update(self._vectors.vectors({desired[i]: texts.get(i) for i in lacking}))
        vecs = np.stack([cached[h] for h in hashes]).astype(np.float32)
        self.index.upsert(kind, todo, vecs, hashes)
        for i, h in zip(todo, hashes, strict=True):
            indexed[i] = h

    # ---------------------------------------------------------------- ranking caches

    def tool_meta(self) -> dict[str, ToolMeta]:
        if self._tools is None:
            self._tools = {}
            self._refresh_tools(None)
        return self._tools

    def _refresh_tools(self, names: set[str] | None) -> None:
        assert self._tools is not None
        sql = (
            "SELECT t.name, t.status, t.created_at, t.last_used_at, v.n_success, v.n_fail FROM tool t "
            "JOIN tool_version v ON v.tool_name = t.name AND v.version = t.current_version"
        )
        rows = _select(self._read_engine, sql, "t.name", names)
        for n in names or ():
            self._tools.pop(n, None)
        for name, status, created, last, ok, bad in rows:
            self._tools[name] = ToolMeta(status, created, last, ok, bad)

    def note_meta(self, kind: str) -> dict[str, NoteMeta]:
        if kind not in self._notes:
            self._notes[kind] = {}
            self._refresh_notes(kind, None)
        return self._notes[kind]

    def _refresh_notes(self, kind: str, ids: set[str] | None) -> None:
        sql = (
            "SELECT id, status, created_at, support, n_shown, n_helped FROM tip"
            if kind == "tips"
            else "SELECT id, status, created_at, count, 0, 0 FROM failure"
        )
        metas = self._notes[kind]
        for id_, status, created, support, shown, helped in _select(
            self._read_engine, sql, "id", ids
        ):
            metas[id_] = NoteMeta(status, created, support, shown, helped)


def _select(engine: Engine, sql: str, column: str, keys: set[str] | None) -> list[Any]:
    """The rows of `sql`: all of them (None), or those whose `column` is one of `keys`
    (asked 500 at a time: SQLite bounds the parameters of one statement)."""
    with engine.connect() as c:
        if keys is None:
            return list(c.exec_driver_sql(sql).all())
        wanted = list(keys)
        rows: list[Any] = []
        for start in range(0, len(wanted), 500):
            part = wanted[start : start + 500]
            marks = ",".join("?" * len(part))
            rows += c.exec_driver_sql(f"{sql} WHERE {column} IN ({marks})", tuple(part)).all()
        return rows


class IndexedPart:
    """A part of the library whose records the index serves (tools, notes): it writes
    through the store, embeds through the vector cache, and keeps the index in step."""

    def __init__(
        self, store: Store, vectors: VectorCache, search: IndexSync, config: MemoryConfig
    ) -> None:
        self._store = store
        self._vectors = vectors
        self._search = search
        self.config = config
