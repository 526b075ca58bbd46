"""`Library`: the facade over the records (SQL, the source of truth) and the vector index.

Every write commits to SQLite first (records, cached embeddings and a row in the `change`
log, in one transaction) and only then touches the index. Whoever holds the home's writer
lock owns the Chroma index; every other process is a guest that ranks with numpy over the
embeddings cached in SQL. Before each search a library replays the change log, so writes
made by other processes (a person's `tools quarantine` while a stream runs) are seen.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import fcntl
import hashlib
import json
import math
import os
import re
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
from sqlalchemy import insert as sql_insert
from sqlalchemy import text
from sqlmodel import Session, col, select

from memory import db
from memory.config import MemoryConfig
from memory.embed import Embedder, embedder_id, get_embedder
from memory.errors import LibraryError, UnknownToolError
from memory.index import KINDS, ChromaIndex, NumpyIndex, VectorIndex
from memory.types import (
    TOOL_STATUSES,
    Change,
    EpisodeRecord,
    FailureHit,
    FailureInfo,
    Provenance,
    TipHit,
    TipInfo,
    ToolDraft,
    ToolEvent,
    ToolHit,
    ToolInfo,
    UsageEvent,
    tool_description,
)

DB_FILE = "library.db"
INDEX_DIR = "chroma"
LOCK_FILE = "library.lock"
_JSON_CAP = 4000  # characters kept of a recorded argument or result
_QUERY_CACHE = 64  # recent query vectors kept (recall asks tools, tips, failures for one task)


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


def _dumps(value: Any, cap: int | None = _JSON_CAP) -> str | None:
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


def _loads(raw: str | None) -> Any:
    return None if raw is None else json.loads(raw)


@dataclass
class _ToolMeta:
    """What ranking needs about a tool, cached in memory and refreshed from the change log."""

    status: str
    created_at: float
    last_used_at: float | None
    v_success: int
    v_fail: int


@dataclass
class _NoteMeta:
    """Ranking data of a tip or failure."""

    status: str
    created_at: float
    support: int
    n_shown: int = 0
    n_helped: int = 0


class _WriterLock:
    """An advisory fcntl lock on `<home>/library.lock`: its holder owns the Chroma index.

    The kernel releases it when the process dies, so a killed stream never leaves a
    stale lock behind.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: IO[str] | None = None

    def try_acquire(self) -> bool:
        fh = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held open while locked
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            return False
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        self._fh = fh
        return True

    def holder(self) -> str:
        try:
            return self.path.read_text(encoding="utf-8").strip() or "?"
        except OSError:
            return "?"

    def release(self) -> None:
        if self._fh is not None:
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None


class Library:
    """The persistent library of tools, tips, failures, episodes and runs in one home."""

    def __init__(
        self,
        home: Path,
        config: MemoryConfig,
        embedder: Embedder,
        read_only: bool,
        owns_index: bool,
        lock: _WriterLock | None,
    ) -> None:
        self.home = home
        self.config = config
        self.embedder = embedder
        self.read_only = read_only
        self.owns_index = owns_index
        self.model_key = embedder_id(embedder)
        self._lock_file = lock
        self._lock = threading.RLock()
        self._read_engine = db.make_engine(self.db_path, config.busy_timeout_s, immediate=False)
        self._write_engine = db.make_engine(self.db_path, config.busy_timeout_s, immediate=True)
        self._index: VectorIndex | None = None
        self._indexed: dict[str, dict[str, str]] = {k: {} for k in KINDS}
        self._seen_seq = 0
        self._tools: dict[str, _ToolMeta] | None = None
        self._notes: dict[str, dict[str, _NoteMeta]] = {}
        self._queries: OrderedDict[str, np.ndarray] = OrderedDict()
        self._closed = False
        # Caches and the guest index load lazily from the current state, so older changes
        # need no replay.
        self._seen_seq = self._max_seq()

    # ---------------------------------------------------------------- opening

    @classmethod
    def open(
        cls,
        home: str | Path,
        config: MemoryConfig | None = None,
        embedder: Embedder | None = None,
        read_only: bool = False,
        *,
        own_index: bool | None = None,
    ) -> Library:
        """Open (creating if needed) the library in `home`.

        own_index: None takes the Chroma index if no other process holds it, False never
        does (a person's CLI while a stream runs), True requires it (reindex).
        """
        home = Path(home).expanduser()
        config = config or MemoryConfig()
        if not read_only:
            try:
                home.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise LibraryError(f"cannot create the data home {home}: {exc}") from exc
        elif not home.is_dir():
            raise LibraryError(f"no data home at {home}: check --home or $EVOAGENT_HOME")
        db.migrate(home / DB_FILE, config.busy_timeout_s, read_only=read_only)
        lock: _WriterLock | None = None
        owns = False
        if not read_only and own_index is not False:
            lock = _WriterLock(home / LOCK_FILE)
            owns = lock.try_acquire()
            if not owns and own_index:
                raise LibraryError(
                    f"another process (pid {lock.holder()}) owns the index of {home}: "
                    "stop it (e.g. the running task stream) and try again"
                )
            if not owns:
                lock = None
        lib = cls(home, config, embedder or get_embedder(config), read_only, owns, lock)
        if owns:
            try:
                lib._open_index()
            except BaseException:
                lib.close()
                raise
        return lib

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            try:
                if self.owns_index and self._index is not None:
                    self._sync()  # leave the index current for the next owner
            finally:
                self._closed = True
                if self._index is not None:
                    self._index.close()
                    self._index = None
            self._read_engine.dispose()
            self._write_engine.dispose()
            if self._lock_file is not None:
                self._lock_file.release()

    @property
    def db_path(self) -> Path:
        return self.home / DB_FILE

    @property
    def index_path(self) -> Path:
        return self.home / INDEX_DIR

    # ---------------------------------------------------------------- tools

    def add_tool(self, draft: ToolDraft) -> ToolInfo:
        """Store a new tool as version 1. A quarantined or archived tool of the same name
        gets the draft as its next version and becomes active again (names are identities)."""
        self._check_writable()
        _validate_draft(draft)
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
        self._cache_embeddings([desc, task] if task else [desc])
        with self._write() as (s, changes):
            s.add(db.Tool(name=draft.name, current_version=1, created_at=now, updated_at=now))
            s.flush()
            s.add(_version_row(draft, 1, desc, now, draft.provenance.parent_version))
            s.add(_provenance_row(draft.name, 1, "added", draft.provenance, now))
            s.add(db.ToolEventRow(tool_name=draft.name, kind="added", version=1, created_at=now))
            changes.append(("tool", draft.name))
            if task:
                self._link(s, changes, draft.name, task, now)
        return self._info_or_raise(draft.name)

    def add_tools(self, drafts: Sequence[ToolDraft]) -> int:
        """Add many new tools in one transaction with batched embedding (imports, benchmarks).
        Every name must be new. Returns how many were added."""
        self._check_writable()
        for d in drafts:
            _validate_draft(d)
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
        self._cache_embeddings(descs + [t for t in tasks if t])
        with self._write() as (s, changes):
            conn = s.connection()
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
                    }
                    for d in drafts
                ],
            )
            conn.execute(
                sql_insert(db.ToolVersion),
                [
                    _version_row(d, 1, desc, now, d.provenance.parent_version).model_dump(
                        exclude={"id"}
                    )
                    for d, desc in zip(drafts, descs, strict=True)
                ],
            )
            conn.execute(
                sql_insert(db.ToolProvenance),
                [
                    _provenance_row(d.name, 1, "added", d.provenance, now).model_dump(
                        exclude={"id"}
                    )
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
            links = {
                task_ref(d.name, t): (d.name, t) for d, t in zip(drafts, tasks, strict=True) if t
            }
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
            changes.extend(("tool", n) for n in names)
            changes.extend(("task", ref) for ref in links)
        return len(drafts)

    def sync(self) -> None:
        """Bring caches and the index up to date with SQL now (otherwise done lazily)."""
        self._sync()

    def add_version(self, name: str, draft: ToolDraft) -> ToolInfo:
        """Store `draft` as the next version of `name`; it becomes current (and the tool
        active again: a new version answers whatever got the old one quarantined)."""
        self._check_writable()
        _validate_draft(draft)
        if draft.name != name:
            raise LibraryError(
                f"the draft is named {draft.name!r}, not {name!r}: a version keeps its tool's name"
            )
        self._require(name)
        return self._store_version(name, draft, kind="versioned", reactivate=True)

    def _store_version(self, name: str, draft: ToolDraft, kind: str, reactivate: bool) -> ToolInfo:
        now = time.time()
        desc = tool_description(name, draft.signature, draft.docstring)
        task = draft.provenance.task.strip()
        self._cache_embeddings([desc, task] if task else [desc])
        with self._write() as (s, changes):
            tool = s.get(db.Tool, name)
            if tool is None:
                raise self._unknown(name)
            last = s.execute(
                text("SELECT max(version) FROM tool_version WHERE tool_name = :n"), {"n": name}
            ).scalar()
            version = int(last or 0) + 1
            parent = draft.provenance.parent_version or tool.current_version
            s.add(_version_row(draft, version, desc, now, parent))
            s.add(_provenance_row(name, version, kind, draft.provenance, now))
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
                self._link(s, changes, name, task, now)
        return self._info_or_raise(name)

    def merge_into(self, name: str, tests: str, provenance: Provenance) -> ToolInfo:
        """An equivalent candidate was found: its tests (new `test_*` names only) join the
        current version's tests and its provenance is recorded; no new version."""
        self._check_writable()
        self._require(name)
        now = time.time()
        task = provenance.task.strip()
        if task:
            self._cache_embeddings([task])
        with self._write() as (s, changes):
            tool = s.get(db.Tool, name)
            if tool is None:
                raise self._unknown(name)
            row = _current_version_row(s, name, tool.current_version)
            merged, added = merge_tests(row.tests, tests)
            if added:
                row.tests = merged
                s.add(row)
            s.add(_provenance_row(name, tool.current_version, "merged", provenance, now))
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
                self._link(s, changes, name, task, now)
        return self._info_or_raise(name)

    def get_tool(self, name: str, version: int | None = None) -> ToolInfo | None:
        with Session(self._read_engine) as s:
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
            return self._info(tool, row, list(provs))

    def list_tools(self, status: str | None = "active") -> list[ToolInfo]:
        """Current versions; `status=None` (or "all") lists every status."""
        if status not in (None, "all", *TOOL_STATUSES):
            raise LibraryError(
                f"unknown status {status!r}: use one of {', '.join(TOOL_STATUSES)} or all"
            )
        with Session(self._read_engine) as s:
            q = select(db.Tool, db.ToolVersion).where(
                db.ToolVersion.tool_name == db.Tool.name,
                db.ToolVersion.version == db.Tool.current_version,
            )
            if status not in (None, "all"):
                q = q.where(db.Tool.status == status)
            rows = s.exec(q.order_by(db.Tool.name)).all()
            provs: dict[tuple[str, int], list[db.ToolProvenance]] = {}
            for p in s.exec(select(db.ToolProvenance).order_by(db.ToolProvenance.id)).all():  # type: ignore[arg-type]
                provs.setdefault((p.tool_name, p.version), []).append(p)
            return [self._info(t, v, provs.get((t.name, v.version), [])) for t, v in rows]

    def tool_versions(self, name: str) -> list[ToolInfo]:
        """Every version of a tool, oldest first (history)."""
        self._require(name)
        with Session(self._read_engine) as s:
            nums = s.exec(
                select(db.ToolVersion.version)
                .where(db.ToolVersion.tool_name == name)
                .order_by(db.ToolVersion.version)  # type: ignore[arg-type]
            ).all()
        return [info for v in nums if (info := self.get_tool(name, v)) is not None]

    def tool_history(self, name: str) -> list[ToolEvent]:
        self._require(name)
        with Session(self._read_engine) as s:
            rows = s.exec(
                select(db.ToolEventRow)
                .where(db.ToolEventRow.tool_name == name)
                .order_by(db.ToolEventRow.id)  # type: ignore[arg-type]
            ).all()
        return [ToolEvent(r.tool_name, r.kind, r.version, r.detail, r.created_at) for r in rows]

    def tool_tasks(self, name: str) -> list[str]:
        """The past tasks linked to a tool (the second retrieval view)."""
        with Session(self._read_engine) as s:
            return list(s.exec(select(db.ToolTask.task).where(db.ToolTask.tool_name == name)).all())

    def tool_names(self) -> list[str]:
        with Session(self._read_engine) as s:
            return list(s.exec(select(db.Tool.name).order_by(db.Tool.name)).all())

    def search_tools(
        self, query: str, k: int = 5, *, views: Sequence[str] = ("description", "tasks")
    ) -> list[ToolHit]:
        """Active tools ranked by similarity (best of the description and past-task views),
        reliability in use (Beta prior) and recency. `views` narrows the views (benchmarks)."""
        if k <= 0 or not query.strip():
            return []
        unknown = set(views) - {"description", "tasks"}
        if unknown or not views:
            raise LibraryError(
                f"unknown retrieval view(s) {sorted(unknown)}: use description and/or tasks"
            )
        kinds = ["tools" if v == "description" else "tasks" for v in views]
        return self._rank_tools(query, k, views=kinds)

    def _rank_tools(self, query: str, k: int, views: Sequence[str]) -> list[ToolHit]:
        self._sync()
        qv = self._query_vector(query)
        index = self._ensure_index()
        with self._lock:
            metas = self._tool_meta()
            sims: dict[str, dict[str, float]] = {}
            n = max(self.config.candidates, 4 * k)
            while True:
                sims = {}
                for view in views:
                    for id_, sim in index.query(view, qv, n if view == "tools" else 2 * n):
                        name = id_ if view == "tools" else id_.rsplit(":", 1)[0]
                        best = sims.setdefault(name, {})
                        best[view] = max(best.get(view, -1.0), sim)
                active = [name for name in sims if (m := metas.get(name)) and m.status == "active"]
                exhausted = all(
                    n >= len(self._indexed[v]) * (1 if v == "tools" else 0.5) for v in views
                )
                if len(active) >= k or exhausted:
                    break
                n *= 4
            now = time.time()
            scored: list[tuple[float, float, str, str]] = []
            for name in active:
                view, sim = max(sims[name].items(), key=lambda kv: kv[1])
                scored.append((self._tool_score(metas[name], sim, now), sim, name, view))
        scored.sort(key=lambda t: (-t[0], t[2]))
        infos = self._infos([name for _, _, name, _ in scored[:k]])
        return [
            ToolHit(
                tool=infos[name],
                score=score,
                similarity=sim,
                view="description" if view == "tools" else "tasks",
            )
            for score, sim, name, view in scored[:k]
            # another process may have changed the status since the cache was read
            if name in infos and infos[name].status == "active"
        ]

    def _tool_score(self, meta: _ToolMeta, sim: float, now: float) -> float:
        cfg = self.config
        rel = (meta.v_success + cfg.prior_success) / (
            meta.v_success + meta.v_fail + cfg.prior_success + cfg.prior_fail
        )
        return (
            sim
            + cfg.weight_reliability * (rel - 0.5)
            + cfg.weight_recency * self._recency(meta.last_used_at or meta.created_at, now)
        )

    def _recency(self, at: float, now: float) -> float:
        days = max(0.0, now - at) / 86400.0
        return float(0.5 ** (days / self.config.recency_half_life_days))

    def tool_sources(self, names: Iterable[str]) -> dict[str, str]:
        """Current source per name, for `Sandbox.run(tools=...)`."""
        wanted = list(dict.fromkeys(names))
        if not wanted:
            return {}
        with Session(self._read_engine) as s:
            rows = s.exec(
                select(db.Tool.name, db.ToolVersion.source).where(
                    db.ToolVersion.tool_name == db.Tool.name,
                    db.ToolVersion.version == db.Tool.current_version,
                    db.Tool.name.in_(wanted),  # type: ignore[attr-defined]
                )
            ).all()
        found = dict(rows)
        missing = [n for n in wanted if n not in found]
        if missing:
            raise self._unknown(missing[0])
        return {n: found[n] for n in wanted}

    def record_usage(self, events: list[UsageEvent]) -> None:
        """Record calls of library tools (all or nothing: an unknown tool name rejects the batch)."""
        self._check_writable()
        if not events:
            return
        now = time.time()
        with self._write() as (s, changes):
            tools: dict[str, db.Tool] = {}
            for name in dict.fromkeys(e.tool for e in events):
                tool = s.get(db.Tool, name)
                if tool is None:
                    raise self._unknown(name)
                tools[name] = tool
            versions = {n: _current_version_row(s, n, t.current_version) for n, t in tools.items()}
            for e in events:
                tool, ver = tools[e.tool], versions[e.tool]
                s.add(
                    db.UsageRow(
                        tool_name=e.tool,
                        tool_version=tool.current_version,
                        episode_id=e.episode_id,
                        ok=bool(e.ok),
                        args_json=_dumps(e.args),
                        kwargs_json=_dumps(e.kwargs),
                        result_json=_dumps(e.result),
                        error_type=e.error_type,
                        error_message=(e.error_message or None) and e.error_message[:_JSON_CAP],
                        seconds=float(e.seconds),
                        created_at=now,
                    )
                )
                for row in (tool, ver):
                    row.n_uses += 1
                    row.n_success += 1 if e.ok else 0
                    row.n_fail += 0 if e.ok else 1
                tool.last_used_at = now
            for name in tools:
                s.add(tools[name])
                s.add(versions[name])
                changes.append(("tool", name))

    def link_task(self, name: str, task: str) -> None:
        """Remember that `name` solved `task`: a similar new task then finds the tool."""
        self._check_writable()
        self._require(name)
        task = task.strip()
        if not task:
            return
        self._cache_embeddings([task])
        with self._write() as (s, changes):
            self._link(s, changes, name, task, time.time())

    def _link(
        self, s: Session, changes: list[tuple[str, str]], name: str, task: str, now: float
    ) -> None:
        ref = task_ref(name, task)
        if s.get(db.ToolTask, ref) is None:
            s.add(
                db.ToolTask(
                    id=ref, tool_name=name, task=task, text_hash=content_hash(task), created_at=now
                )
            )
            changes.append(("task", ref))

    def set_status(self, name: str, status: str, reason: str) -> ToolInfo:
        self._check_writable()
        if status not in TOOL_STATUSES:
            raise LibraryError(f"unknown status {status!r}: use one of {', '.join(TOOL_STATUSES)}")
        self._require(name)
        with self._write() as (s, changes):
            self._set_status(s, changes, name, status, reason)
        return self._info_or_raise(name)

    def _set_status(
        self, s: Session, changes: list[tuple[str, str]], name: str, status: str, reason: str
    ) -> None:
        tool = s.get(db.Tool, name)
        if tool is None:
            raise self._unknown(name)
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

    def record_rejection(self, name: str, reason: str, source: str, provenance: Provenance) -> None:
        self._check_writable()
        with self._write() as (s, _changes):
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

    def rejections(self, name: str | None = None) -> list[dict[str, Any]]:
        with Session(self._read_engine) as s:
            q = select(db.Rejection).order_by(db.Rejection.id)  # type: ignore[arg-type]
            if name is not None:
                q = q.where(db.Rejection.tool_name == name)
            return [r.model_dump() for r in s.exec(q).all()]

    def tool_failures(self, name: str) -> list[UsageEvent]:
        """Failed uses of the current version (older versions' failures are addressed)."""
        self._require(name)
        with Session(self._read_engine) as s:
            tool = s.get(db.Tool, name)
            assert tool is not None
            rows = s.exec(
                select(db.UsageRow)
                .where(
                    db.UsageRow.tool_name == name,
                    db.UsageRow.tool_version == tool.current_version,
                    db.UsageRow.ok == False,  # noqa: E712 - SQL expression
                )
                .order_by(db.UsageRow.id)  # type: ignore[arg-type]
            ).all()
        return [_usage_event(r) for r in rows]

    def usage(self, name: str, limit: int = 20) -> list[UsageEvent]:
        """The latest uses of a tool, newest first."""
        self._require(name)
        with Session(self._read_engine) as s:
            rows = s.exec(
                select(db.UsageRow)
                .where(db.UsageRow.tool_name == name)
                .order_by(col(db.UsageRow.id).desc())
                .limit(limit)
            ).all()
        return [_usage_event(r) for r in rows]

    # ---------------------------------------------------------------- tips

    def add_tip(self, text: str, *, task: str, episode_id: str | None = None) -> TipInfo:
        """Store a tip; the same text again adds support to the existing tip."""
        self._check_writable()
        body = text.strip()
        if not body:
            raise LibraryError("a tip needs text")
        h = content_hash(body)
        self._cache_embeddings([body])
        now = time.time()
        with self._write() as (s, changes):
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
            info = _tip_info(tip)
        return info

    def record_tip_outcome(self, tip_ids: Iterable[str], helped: bool) -> None:
        """Tips shown for a task, and whether the task then succeeded: tips that keep
        failing to help lose rank (and are archived by `consolidate`)."""
        self._check_writable()
        ids = list(dict.fromkeys(tip_ids))
        if not ids:
            return
        with self._write() as (s, changes):
            for tip_id in ids:
                tip = s.get(db.Tip, tip_id)
                if tip is None:
                    raise LibraryError(
                        f"no tip with id {tip_id!r}: `evoagent memory tips list` shows ids"
                    )
                tip.n_shown += 1
                tip.n_helped += 1 if helped else 0
                s.add(tip)
                changes.append(("tip", tip_id))

    def search_tips(self, query: str, k: int = 3) -> list[TipHit]:
        if k <= 0 or not query.strip():
            return []
        ranked = self._rank_notes("tips", query, k)
        rows = self._rows(db.Tip, [id_ for _, _, id_ in ranked])
        return [TipHit(_tip_info(rows[i]), score, sim) for score, sim, i in ranked if i in rows]

    def list_tips(self, status: str | None = "active") -> list[TipInfo]:
        with Session(self._read_engine) as s:
            q = select(db.Tip).order_by(col(db.Tip.created_at))
            if status not in (None, "all"):
                q = q.where(db.Tip.status == status)
            return [_tip_info(t) for t in s.exec(q).all()]

    def get_tip(self, tip_id: str) -> TipInfo | None:
        with Session(self._read_engine) as s:
            tip = s.get(db.Tip, tip_id)
            return None if tip is None else _tip_info(tip)

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
        """Store a failure. One with the signature of an active failure (error type,
        normalised message, tool) joins that cluster: its count grows, its lesson stays."""
        self._check_writable()
        sig = failure_signature(error_type, message, tool)
        body = failure_text(task, error_type, message, lesson)
        h = content_hash(body)
        self._cache_embeddings([body])
        now = time.time()
        with self._write() as (s, changes):
            rep = s.exec(
                select(db.Failure).where(db.Failure.signature == sig, db.Failure.status == "active")
            ).first()
            row = db.Failure(
                id=uuid.uuid4().hex[:16],
                task=task,
                error_type=error_type,
                message=message,
                lesson=lesson,
                tool=tool,
                episode_id=episode_id,
                signature=sig,
                text_hash=h,
                created_at=now,
            )
            if rep is not None:
                row.status, row.merged_into = "merged", rep.id
                rep.count += 1
                if not rep.lesson.strip() and lesson.strip():
                    rep.lesson = lesson  # a cluster without a lesson adopts the first one given
                s.add(rep)
                changes.append(("failure", rep.id))
            s.add(row)
            changes.append(("failure", row.id))
            info = _failure_info(row)
        return info

    def search_failures(self, query: str, k: int = 3) -> list[FailureHit]:
        if k <= 0 or not query.strip():
            return []
        ranked = self._rank_notes("failures", query, k)
        rows = self._rows(db.Failure, [id_ for _, _, id_ in ranked])
        return [
            FailureHit(_failure_info(rows[i]), score, sim) for score, sim, i in ranked if i in rows
        ]

    def list_failures(self, status: str | None = "active") -> list[FailureInfo]:
        with Session(self._read_engine) as s:
            q = select(db.Failure).order_by(col(db.Failure.created_at))
            if status not in (None, "all"):
                q = q.where(db.Failure.status == status)
            return [_failure_info(f) for f in s.exec(q).all()]

    def _rank_notes(self, kind: str, query: str, k: int) -> list[tuple[float, float, str]]:
        self._sync()
        qv = self._query_vector(query)
        index = self._ensure_index()
        cfg = self.config
        with self._lock:
            metas = self._note_meta(kind)
            n = max(cfg.candidates, 4 * k)
            while True:
                cands = [
                    (i, sim)
                    for i, sim in index.query(kind, qv, n)
                    if (m := metas.get(i)) and m.status == "active"
                ]
                if len(cands) >= k or n >= len(self._indexed[kind]):
                    break
                n *= 4
            now = time.time()
            out = []
            for id_, sim in cands:
                m = metas[id_]
                score = (
                    sim
                    + 0.02 * math.log1p(m.support)
                    + cfg.weight_recency * self._recency(m.created_at, now)
                )
                if kind == "tips":
                    helped = (m.n_helped + 1) / (m.n_shown + 2)  # Beta(1, 1): unseen tips at 0.5
                    score += cfg.weight_reliability * (helped - 0.5)
                out.append((score, sim, id_))
        out.sort(key=lambda t: (-t[0], t[2]))
        return out[:k]

    # ---------------------------------------------------------------- episodes and runs

    def add_episode(self, ep: EpisodeRecord) -> str:
        """Store (or, for a resumed task, replace) an episode; returns its id."""
        self._check_writable()
        ep_id = ep.id or uuid.uuid4().hex
        with self._write() as (s, _changes):
            old = s.get(db.Episode, ep_id)
            row = db.Episode(
                id=ep_id,
                task_id=ep.task_id,
                task=ep.task,
                status=ep.status,
                answer_json=_dumps(ep.answer, cap=None),
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
                trace_json=_dumps(ep.trace, cap=None),
                created_at=old.created_at if old else time.time(),
            )
            if old is not None:
                s.delete(old)
                s.flush()
            s.add(row)
        return ep_id

    def get_episode(self, episode_id: str) -> EpisodeRecord | None:
        with Session(self._read_engine) as s:
            row = s.get(db.Episode, episode_id)
        if row is None:
            return None
        return EpisodeRecord(
            task_id=row.task_id,
            task=row.task,
            status=row.status,
            answer=_loads(row.answer_json),
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
            trace=_loads(row.trace_json),
        )

    def start_run(self, run_id: str, meta: dict[str, Any]) -> None:
        self._check_writable()
        with self._write() as (s, _changes):
            row = s.get(db.Run, run_id) or db.Run(id=run_id, started_at=time.time())
            row.meta_json = _dumps(meta, cap=None) or "{}"
            s.add(row)

    def finish_run(self, run_id: str, summary: dict[str, Any]) -> None:
        self._check_writable()
        with self._write() as (s, _changes):
            row = s.get(db.Run, run_id)
            if row is None:
                raise LibraryError(f"no run {run_id!r} was started in this library")
            row.summary_json = _dumps(summary, cap=None)
            row.finished_at = time.time()
            s.add(row)

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        with Session(self._read_engine) as s:
            row = s.get(db.Run, run_id)
        if row is None:
            return None
        return {
            "id": row.id,
            "meta": _loads(row.meta_json),
            "summary": _loads(row.summary_json),
            "started_at": row.started_at,
            "finished_at": row.finished_at,
        }

    # ---------------------------------------------------------------- maintenance

    def consolidate(self, dry_run: bool = False) -> list[Change]:
        """Merge near-duplicate tips and same-signature failures; archive tips that keep
        failing to help. Returns the changes (made, or that would be made with dry_run)."""
        from memory.consolidate import apply_changes, plan_consolidation

        self._sync()
        changes = plan_consolidation(self)
        if not dry_run:
            apply_changes(self, changes)
        return changes

    def prune(
        self,
        dry_run: bool = False,
        *,
        min_uses: int | None = None,
        max_fail_rate: float | None = None,
        grace_episodes: int | None = None,
        log_scale: float | None = None,
    ) -> list[Change]:
        """Quarantine tools that fail in use, archive tools rarely used for their age
        (thresholds default to the config). Reversible with `restore`."""
        from memory.consolidate import apply_changes, plan_prune

        changes = plan_prune(
            self,
            min_uses=min_uses,
            max_fail_rate=max_fail_rate,
            grace_episodes=grace_episodes,
            log_scale=log_scale,
        )
        if not dry_run:
            apply_changes(self, changes)
        return changes

    def restore(self, name: str, reason: str = "restored") -> ToolInfo:
        """Bring a quarantined or archived tool back to active."""
        info = self._info_or_raise(name)
        if info.status == "active":
            raise LibraryError(f"tool {name!r} is already active")
        return self.set_status(name, "active", reason)

    def restore_tip(self, tip_id: str) -> TipInfo:
        from memory.consolidate import restore_note

        restore_note(self, "tip", tip_id)
        info = self.get_tip(tip_id)
        assert info is not None
        return info

    def restore_failure(self, failure_id: str) -> FailureInfo:
        from memory.consolidate import restore_note

        restore_note(self, "failure", failure_id)
        return next(f for f in self.list_failures("all") if f.id == failure_id)

    def stats(self) -> dict[str, Any]:
        """Counts per record kind and status, sizes, and who owns the index."""
        out: dict[str, Any] = {"home": str(self.home)}
        with self._read_engine.connect() as c:
            for table in ("tool", "tip", "failure"):
                rows = c.exec_driver_sql(
                    f"SELECT status, count(*) FROM {table} GROUP BY status"
                ).all()
                out[f"{table}s"] = {str(st): int(n) for st, n in rows}
            for table in (
                "tool_version",
                "tool_task",
                "usage_event",
                "rejection",
                "episode",
                "run",
                "embedding",
            ):
                out[f"{table}s"] = int(
                    c.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar_one()
                )
            out["schema_version"] = int(
                c.exec_driver_sql("SELECT max(version) FROM schema_migrations").scalar_one()
            )
        out["db_bytes"] = sum(
            p.stat().st_size for p in self.home.glob(DB_FILE + "*") if p.is_file()
        )
        out["index"] = {
            "owner": self.owns_index,
            "kind": "chroma"
            if self.owns_index
            else "numpy (guest; another process or none owns chroma)",
            "embedder": self.model_key,
        }
        return out

    def reindex(self) -> dict[str, int]:
        """Rebuild the index from SQL (the index owner only). Returns entries per kind."""
        self._check_writable()
        if not self.owns_index:
            raise LibraryError(
                "only the process that owns the index can rebuild it: stop the running "
                "task stream (it holds library.lock) and run `evoagent memory reindex` again"
            )
        index = self._ensure_index()
        with self._lock:
            for kind in KINDS:
                index.reset(kind)
                self._indexed[kind] = {}
                self._reconcile(kind, self._desired(kind), full=True)
            return {kind: index.count(kind) for kind in KINDS}

    def drift(self) -> dict[str, dict[str, int]]:
        """Entries on one side only (or stale) per kind, comparing the index with SQL
        (after replaying pending changes: those are not drift)."""
        index = self._ensure_index()
        self._sync()
        out: dict[str, dict[str, int]] = {}
        for kind in KINDS:
            want, have = self._desired(kind), index.entries(kind)
            out[kind] = {
                "missing": sum(1 for i in want if i not in have),
                "extra": sum(1 for i in have if i not in want),
                "stale": sum(1 for i, h in want.items() if i in have and have[i] != h),
            }
        return out

    # ---------------------------------------------------------------- internals: writes

    def _check_writable(self) -> None:
        if self._closed:
            raise LibraryError("the library is closed: open it again")
        if self.read_only:
            raise LibraryError(
                "the library was opened read-only: open it without read_only to change it"
            )

    @contextlib.contextmanager
    def _write(self) -> Iterator[tuple[Session, list[tuple[str, str]]]]:
        """One write transaction (BEGIN IMMEDIATE) that also logs its changes.

        The index catches up from the log before the next search (or at close): SQL
        first, then index, and one batched upsert instead of one per write (a Chroma
        upsert costs 5-50 ms, most of it flushing to disk).
        """
        changes: list[tuple[str, str]] = []
        with Session(self._write_engine, expire_on_commit=False) as s, s.begin():
            yield s, changes
            now = time.time()
            for kind, ref in dict.fromkeys(changes):
                s.add(db.ChangeRow(kind=kind, ref=ref, created_at=now))

    def _cache_embeddings(self, texts: Sequence[str]) -> None:
        """Embed texts not yet cached for this embedder and store their vectors (own
        transaction, before the record's: a failing embedder leaves nothing half-written)."""
        self._vectors({content_hash(t): t for t in texts})

    def _vectors(
        self, texts_by_hash: dict[str, str | None], compute: bool = True
    ) -> dict[str, np.ndarray]:
        """Vectors by content hash: from the SQL cache, else (if compute) embedded and cached."""
        out: dict[str, np.ndarray] = {}
        hashes = list(texts_by_hash)
        with self._read_engine.connect() as c:
            if len(hashes) > 5000:  # a full load: one scan beats thousands of IN lookups
                rows = c.exec_driver_sql(
                    "SELECT text_hash, vector FROM embedding WHERE model = ?", (self.model_key,)
                ).all()
                wanted = set(hashes)
                rows = [r for r in rows if r[0] in wanted]
            else:
                rows = []
                for start in range(0, len(hashes), 500):
                    chunk = hashes[start : start + 500]
                    marks = ",".join("?" * len(chunk))
                    rows += c.exec_driver_sql(
                        f"SELECT text_hash, vector FROM embedding WHERE model = ? AND text_hash IN ({marks})",
                        (self.model_key, *chunk),
                    ).all()
        for h, blob in rows:
            out[h] = np.frombuffer(blob, dtype=np.float32)
        missing = [h for h in hashes if h not in out]
        if not missing or not compute:
            return out
        texts = [texts_by_hash[h] for h in missing]
        if any(t is None for t in texts):
            raise LibraryError(
                "an index entry has no cached embedding and no text: run `evoagent memory reindex`"
            )
        vecs = np.asarray(self.embedder.embed([t or "" for t in texts]), dtype=np.float32)
        if vecs.ndim != 2 or vecs.shape[0] != len(missing):
            raise LibraryError(
                f"the embedder {self.model_key} returned {vecs.shape} for {len(missing)} texts"
            )
        for h, v in zip(missing, vecs, strict=True):
            out[h] = v
        if not self.read_only:
            with self._write_engine.begin() as c:
                c.exec_driver_sql(
                    "INSERT OR IGNORE INTO embedding (model, text_hash, dim, vector) VALUES (?, ?, ?, ?)",
                    [
                        (self.model_key, h, int(v.shape[0]), v.astype(np.float32).tobytes())
                        for h, v in zip(missing, vecs, strict=True)
                    ],
                )
        return out

    def _query_vector(self, query: str) -> np.ndarray:
        with self._lock:
            cached = self._queries.get(query)
            if cached is not None:
                self._queries.move_to_end(query)
                return cached
        vec = np.asarray(self.embedder.embed([query])[0], dtype=np.float32)
        with self._lock:
            self._queries[query] = vec
            while len(self._queries) > _QUERY_CACHE:
                self._queries.popitem(last=False)
        return vec

    # ---------------------------------------------------------------- internals: index sync

    def _open_index(self) -> None:
        """Owner: open Chroma and repair drift (ids on one side only, stale content)."""
        with self._lock:
            index = ChromaIndex(self.index_path, self.model_key)
            self._index = index
            self._seen_seq = self._max_seq()
            for kind in KINDS:
                self._indexed[kind] = index.entries(kind)
                self._reconcile(kind, self._desired(kind), full=True)

    def _ensure_index(self) -> VectorIndex:
        """The index, loading the guest's numpy copy from the SQL cache on first use."""
        with self._lock:
            if self._closed:
                raise LibraryError("the library is closed: open it again")
            if self._index is None:
                seq = self._max_seq()
                self._index = NumpyIndex(self.embedder.dim)
                for kind in KINDS:
                    self._reconcile(kind, self._desired(kind), full=True)
                self._seen_seq = max(self._seen_seq, seq)
            return self._index

    def _max_seq(self) -> int:
        with self._read_engine.connect() as c:
            return int(c.exec_driver_sql("SELECT coalesce(max(seq), 0) FROM change").scalar_one())

    def _sync(self) -> None:
        """Replay the change log since the last sync: refresh caches and the index."""
        with self._lock:
            if self._closed:
                return
            with self._read_engine.connect() as c:
                rows = c.exec_driver_sql(
                    "SELECT seq, kind, ref FROM change WHERE seq > ? ORDER BY seq",
                    (self._seen_seq,),
                ).all()
            if not rows:
                return
            refs: dict[str, set[str]] = {}
            for _seq, kind, ref in rows:
                refs.setdefault(kind, set()).add(ref)
            if self._tools is not None and "tool" in refs:
                self._refresh_tools(refs["tool"])
            for kind, table in (("tip", "tips"), ("failure", "failures")):
                if kind in refs and table in self._notes:
                    self._refresh_notes(table, refs[kind])
            if self._index is not None:
                for kind, view in (
                    ("tool", "tools"),
                    ("task", "tasks"),
                    ("tip", "tips"),
                    ("failure", "failures"),
                ):
                    if kind in refs:
                        self._reconcile(
                            view, self._desired(view, refs[kind]), full=False, refs=refs[kind]
                        )
            self._seen_seq = int(rows[-1][0])

    _DESIRED_SQL = {
        "tools": "SELECT t.name, v.desc_hash FROM tool t JOIN tool_version v "
        "ON v.tool_name = t.name AND v.version = t.current_version",
        "tasks": "SELECT id, text_hash FROM tool_task",
        "tips": "SELECT id, text_hash FROM tip",
        "failures": "SELECT id, text_hash FROM failure",
    }
    _KEY = {"tools": "t.name", "tasks": "id", "tips": "id", "failures": "id"}

    def _desired(self, kind: str, refs: Iterable[str] | None = None) -> dict[str, str]:
        """What the index should hold for `kind` (id -> content hash), from SQL."""
        sql = self._DESIRED_SQL[kind]
        with self._read_engine.connect() as c:
            if refs is None:
                return {str(i): str(h) for i, h in c.exec_driver_sql(sql).all()}
            out: dict[str, str] = {}
            ids = list(refs)
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                joiner = " AND " if " WHERE " in sql else " WHERE "
                q = f"{sql}{joiner}{self._KEY[kind]} IN ({','.join('?' * len(chunk))})"
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
        assert self._index is not None
        indexed = self._indexed[kind]
        todo = [i for i, h in desired.items() if indexed.get(i) != h]
        gone = (
            [i for i in indexed if i not in desired]
            if full
            else [i for i in refs if i in indexed and i not in desired]
        )
        if gone:
            self._index.delete(kind, gone)
            for i in gone:
                indexed.pop(i, None)
        if not todo:
            return
        hashes = [desired[i] for i in todo]
        cached = self._vectors(dict.fromkeys(hashes), compute=False)
        lacking = [i for i in todo if desired[i] not in cached]
        if lacking:
            texts = self._texts(kind, lacking)
            cached.update(self._vectors({desired[i]: texts.get(i) for i in lacking}))
        vecs = np.stack([cached[h] for h in hashes]).astype(np.float32)
        self._index.upsert(kind, todo, vecs, hashes)
        for i, h in zip(todo, hashes, strict=True):
            indexed[i] = h

    # ---------------------------------------------------------------- internals: caches

    def _tool_meta(self) -> dict[str, _ToolMeta]:
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
        with self._read_engine.connect() as c:
            if names is None:
                rows = c.exec_driver_sql(sql).all()
            else:
                ids = list(names)
                rows = []
                for start in range(0, len(ids), 500):
                    chunk = ids[start : start + 500]
                    rows += c.exec_driver_sql(
                        f"{sql} WHERE t.name IN ({','.join('?' * len(chunk))})", tuple(chunk)
                    ).all()
                for n in ids:
                    self._tools.pop(n, None)
        for name, status, created, last, ok, bad in rows:
            self._tools[name] = _ToolMeta(status, created, last, ok, bad)

    def _note_meta(self, kind: str) -> dict[str, _NoteMeta]:
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
        with self._read_engine.connect() as c:
            if ids is None:
                rows = c.exec_driver_sql(sql).all()
            else:
                chunk = list(ids)
                rows = []
                for start in range(0, len(chunk), 500):
                    part = chunk[start : start + 500]
                    rows += c.exec_driver_sql(
                        f"{sql} WHERE id IN ({','.join('?' * len(part))})", tuple(part)
                    ).all()
        for id_, status, created, support, shown, helped in rows:
            metas[id_] = _NoteMeta(status, created, support, shown, helped)

    # ---------------------------------------------------------------- internals: rows

    def _tool_row(self, name: str) -> db.Tool | None:
        with Session(self._read_engine) as s:
            return s.get(db.Tool, name)

    def _require(self, name: str) -> None:
        if self._tool_row(name) is None:
            raise self._unknown(name)

    def _unknown(self, name: str) -> UnknownToolError:
        return UnknownToolError(name, self.tool_names())

    def _info_or_raise(self, name: str) -> ToolInfo:
        info = self.get_tool(name)
        if info is None:
            raise self._unknown(name)
        return info

    def _infos(self, names: list[str]) -> dict[str, ToolInfo]:
        """Current ToolInfos of a few names in two plain queries (the search hot path: the
        ORM's per-row get() costs ~1 ms a query)."""
        if not names:
            return {}
        marks = ",".join("?" * len(names))
        cfg = self.config
        with self._read_engine.connect() as c:
            rows = c.exec_driver_sql(
                "SELECT t.name, t.status, t.status_reason, t.current_version, t.last_used_at, "
                "t.n_uses, v.version, v.source, v.tests, v.signature, v.docstring, "
                "v.verification_log, v.created_at, v.n_uses, v.n_success, v.n_fail FROM tool t "
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
             vlog, created, uses, ok, bad) in rows:  # fmt: skip
            rel = (ok + cfg.prior_success) / (uses + cfg.prior_success + cfg.prior_fail)
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
                reliability=rel,
                current_version=current,
                status_reason=reason,
                last_used_at=last,
                total_uses=total,
                verification_log=vlog,
            )
        return out

    def _rows(self, model: type[Any], ids: list[str]) -> dict[str, Any]:
        with Session(self._read_engine) as s:
            return {i: row for i in ids if (row := s.get(model, i)) is not None}

    def _info(self, tool: db.Tool, row: db.ToolVersion, provs: list[db.ToolProvenance]) -> ToolInfo:
        cfg = self.config
        rel = (row.n_success + cfg.prior_success) / (
            row.n_uses + cfg.prior_success + cfg.prior_fail
        )
        return ToolInfo(
            name=tool.name,
            version=row.version,
            status=tool.status,
            source=row.source,
            tests=row.tests,
            signature=row.signature,
            docstring=row.docstring,
            provenance=[
                Provenance(p.task, p.task_id, p.episode_id, p.parent_version) for p in provs
            ],
            created_at=row.created_at,
            n_uses=row.n_uses,
            n_success=row.n_success,
            n_fail=row.n_fail,
            reliability=rel,
            current_version=tool.current_version,
            status_reason=tool.status_reason,
            last_used_at=tool.last_used_at,
            total_uses=tool.n_uses,
            verification_log=row.verification_log,
        )


# -------------------------------------------------------------------- helpers


def _validate_draft(draft: ToolDraft) -> None:
    if not draft.name.isidentifier() or draft.name.startswith("_"):
        raise LibraryError(
            f"tool name {draft.name!r} is not a public Python identifier: use snake_case like sort_words"
        )
    if not draft.source.strip():
        raise LibraryError(f"tool {draft.name!r} has no source")


def _version_row(
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


def _provenance_row(
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


def _current_version_row(s: Session, name: str, version: int) -> db.ToolVersion:
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


def _usage_event(r: db.UsageRow) -> UsageEvent:
    return UsageEvent(
        tool=r.tool_name,
        ok=r.ok,
        episode_id=r.episode_id,
        args=_loads(r.args_json),
        kwargs=_loads(r.kwargs_json),
        result=_loads(r.result_json),
        error_type=r.error_type,
        error_message=r.error_message,
        seconds=r.seconds,
    )


def _tip_info(t: db.Tip) -> TipInfo:
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


def _failure_info(f: db.Failure) -> FailureInfo:
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


def merge_tests(current: str, new: str) -> tuple[str, list[str]]:
    """`current` plus the `test_*` functions of `new` whose names it lacks (with the
    top-level imports they need). Returns the merged source and the added names."""
    try:
        cur_tree, new_tree = ast.parse(current or ""), ast.parse(new or "")
    except SyntaxError as exc:
        raise LibraryError(
            f"tests do not parse ({exc.msg}, line {exc.lineno}): fix them first"
        ) from exc
    have = {n.name for n in cur_tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
    lines = (new or "").splitlines()
    have_imports = {
        ast.unparse(n) for n in cur_tree.body if isinstance(n, ast.Import | ast.ImportFrom)
    }
    imports: list[str] = []
    blocks: list[str] = []
    added: list[str] = []
    for node in new_tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            src = ast.unparse(node)
            if src not in have_imports:
                imports.append(src)
                have_imports.add(src)
        elif (
            isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            and node.name.startswith("test_")
            and node.name not in have
        ):
            start = min([d.lineno for d in node.decorator_list] + [node.lineno]) - 1
            blocks.append("\n".join(lines[start : node.end_lineno]))
            added.append(node.name)
            have.add(node.name)
    if not added:
        return current, []
    merged = current.rstrip("\n")
    if imports:
        merged = "\n".join(imports) + "\n" + merged
    merged += "\n\n\n" + "\n\n\n".join(blocks) + "\n"
    return merged, added
