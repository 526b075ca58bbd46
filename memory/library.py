"""`Library`: the facade over the records (SQL, the source of truth) and the vector index.

Every write commits to SQLite first (records, cached embeddings and a row in the `change`
log, in one transaction) and only then touches the index. Whoever holds the home's writer
lock owns the Chroma index; every other process is a guest that ranks with numpy over the
embeddings cached in SQL. Before each search a library replays the change log, so writes
made by other processes (a person's `tools quarantine` while a stream runs) are seen.

This class is the one front door and documents every operation; the work is done by the
parts it holds: `Store` (engines, logged writes), `VectorCache` (embeddings), `IndexSync`
(index and caches from the change log), `ToolStore` (tools) and `ToolUsage` (their use
and repair), `EvidenceStore` (what backs a tool's answers), `NoteStore` (tips,
failures), `EpisodeStore` (episodes, forge marks, runs) and `Upkeep` (consolidation,
pruning). `snapshot` is what a Ray worker solves against (memory/snapshot.py).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from memory.config import MemoryConfig
from memory.consolidate import Upkeep
from memory.embed import Embedder, get_embedder
from memory.episode import Episode
from memory.episodes import EpisodeStore
from memory.errors import LibraryError
from memory.evidence import EvidenceStore
from memory.index import KINDS, VectorIndex
from memory.lock import WriterLock
from memory.migrations import migrate
from memory.notes import NoteStore
from memory.snapshot import LibrarySnapshot
from memory.store import Store
from memory.sync import IndexSync
from memory.tools import ToolStore, with_callees
from memory.types import (
    Change,
    Evidence,
    FailureHit,
    FailureInfo,
    Learned,
    Provenance,
    TestsGrowth,
    TipHit,
    TipInfo,
    ToolDraft,
    ToolEvent,
    ToolHit,
    ToolInfo,
    UsageEvent,
)
from memory.usage import ToolUsage
from memory.vectors import VectorCache

DB_FILE = "library.db"
INDEX_DIR = "chroma"
LOCK_FILE = "library.lock"


class Library:
    """The persistent library of tools, tips, failures, episodes and runs in one home."""

    def __init__(
        self,
        home: Path,
        config: MemoryConfig,
        embedder: Embedder,
        read_only: bool,
        owns_index: bool,
        lock: WriterLock | None,
    ) -> None:
        self.home = home
        self.config = config
        self.embedder = embedder
        self.read_only = read_only
        self.owns_index = owns_index
        #: the index is Chroma (else numpy over the SQL-cached vectors)
        self.chroma = False
        self._lock_file = lock
        # One lock for the query cache, the index, its caches and close: none interleave.
        self._lock = threading.RLock()
        self._store = Store(self.db_path, config.busy_timeout_s, read_only=read_only)
        self._read_engine = self._store.read_engine
        self._write_engine = self._store.write_engine
        self._vectors = VectorCache(
            embedder, self._read_engine, self._write_engine, read_only=read_only, lock=self._lock
        )
        self.model_key = self._vectors.model_key
        self._search = IndexSync(
            self._read_engine, self._vectors, self.index_path, owner=owns_index, lock=self._lock
        )
        self._tools = ToolStore(self._store, self._vectors, self._search, config)
        self._notes = NoteStore(self._store, self._vectors, self._search, config)
        self._usage = ToolUsage(self._store, self._vectors, self._tools)
        self._episodes = EpisodeStore(
            self._store, self._vectors, self._usage, self._notes, config.trust_support
        )
        self._evidence = EvidenceStore(self._store, self._tools, config.trust_support)
        self._upkeep = Upkeep(
            config, self._store, self._vectors, self._tools, self._notes, self._episodes
        )

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
        migrate(home / DB_FILE, config.busy_timeout_s, read_only=read_only)
        lock: WriterLock | None = None
        owns = False
        if not read_only and own_index is not False:
            lock = WriterLock(home / LOCK_FILE)
            owns = lock.try_acquire()
            if not owns and own_index:
                raise LibraryError(
                    f"another process (pid {lock.holder()}) owns the index of {home}: "
                    "stop it (e.g. the running task stream) and try again"
                )
            if not owns:
                lock = None
        lib = cls(home, config, embedder or get_embedder(config), read_only, owns, lock)
        if owns and (own_index or lib._wants_chroma()):
            try:
                lib._search.open_chroma()
                lib.chroma = True
            except BaseException:
                lib.close()
                raise
        return lib

    def _wants_chroma(self) -> bool:
        """Chroma for a large library; a small one ranks with numpy over the vectors cached
        in SQL (exact, and no 1-2 s of Chroma start-up for a single `solve`). The writes
        of a numpy owner reach Chroma through the change log, as a guest's do."""
        if self.config.index != "auto":
            return self.config.index == "chroma"
        with self._read_engine.connect() as c:
            n = c.exec_driver_sql(
                "SELECT (SELECT count(*) FROM tool) + (SELECT count(*) FROM tool_task) "
                "+ (SELECT count(*) FROM tip) + (SELECT count(*) FROM failure)"
            ).scalar_one()
        return int(n) >= self.config.index_numpy_below

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            if self._store.closed:
                return
            try:
                # Really closes Chroma's client: a process reopening later would otherwise
                # search its stale in-memory copy.
                self._search.close()
            finally:
                self._store.closed = True
            self._store.dispose()
            if self._lock_file is not None:
                self._lock_file.release()

    @property
    def db_path(self) -> Path:
        return self.home / DB_FILE

    @property
    def index_path(self) -> Path:
        return self.home / INDEX_DIR

    def sync(self) -> None:
        """Bring caches and the index up to date with SQL now (otherwise done lazily)."""
        self._search.sync()

    # ---------------------------------------------------------------- evidence and trust

    def add_evidence(self, items: Iterable[Evidence], *, count: bool = True) -> None:
        """Record evidence for or against tool versions (one transaction). Every piece is
        a comparison made on the trusted side; the kinds are in memory/types.py.
        `count=False` keeps the pieces as history without moving trust (imports)."""
        self._evidence.add(items, count=count)

    def tool_evidence(
        self, name: str, version: int | None = None, *, limit: int = 500
    ) -> list[Evidence]:
        """A tool's evidence, newest first: of one version, or of every version (None)."""
        return self._evidence.evidence_list(name, version, limit=limit)

    def pin(self, name: str, reason: str = "pinned by a person") -> ToolInfo:
        """A person vouches for the tool: it may answer with no model call whatever its
        evidence says (still audited now and then)."""
        return self._evidence.set_pinned(name, True, reason)

    def unpin(self, name: str, reason: str = "unpinned by a person") -> ToolInfo:
        """Take a pin back: the tool's evidence decides its trust again."""
        return self._evidence.set_pinned(name, False, reason)

    def verdict(self, name: str, task_id: str, right: bool) -> Evidence:
        """A person's verdict on the tool's answer to a task it was used on (the task's
        latest episode that used it): evidence for (`right`) or against it."""
        self.require_tool(name)
        episodes = self._episodes.episodes_of_task(task_id)
        used = [e for e in episodes if name in e.tools_used]
        if not used:
            known = self._episodes.tasks_using(name, limit=10)
            hint = f" (tasks it was used on: {', '.join(known)})" if known else ""
            raise LibraryError(
                f"no episode of task {task_id!r} used tool {name!r}{hint}: give the id of "
                "a task the tool answered (evoagent tools show NAME lists them)"
            )
        episode = used[-1]
        piece = Evidence(
            tool=name,
            kind="user_right" if right else "user_wrong",
            task=episode.task,
            task_id=task_id,
            episode_id=episode.id,
            answer=episode.answer,
            detail="a person's verdict",
        )
        self._evidence.add([piece])
        return piece

    # ---------------------------------------------------------------- tips

    def add_tip(self, text: str, *, task: str, episode_id: str | None = None) -> TipInfo:
        """Store a tip; the same text again adds support to the existing tip."""
        return self._notes.add_tip(text, task=task, episode_id=episode_id)

    def record_tip_outcome(self, tip_ids: Iterable[str], helped: bool) -> None:
        """Tips shown for a task, and whether the task then succeeded: tips that keep
        failing to help lose rank (and are archived by `consolidate`)."""
        self._notes.record_tip_outcome(tip_ids, helped)

    def search_tips(self, query: str, k: int = 3) -> list[TipHit]:
        """Active tips ranked by similarity, helpfulness, support and recency."""
        return self._notes.search_tips(query, k)

    def list_tips(self, status: str | None = "active") -> list[TipInfo]:
        """Tips with `status` (None or "all": every status), oldest first."""
        return self._notes.list_tips(status)

    def get_tip(self, tip_id: str) -> TipInfo | None:
        return self._notes.get_tip(tip_id)

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
        return self._notes.add_failure(
            task=task,
            error_type=error_type,
            message=message,
            lesson=lesson,
            tool=tool,
            episode_id=episode_id,
        )

    def search_failures(self, query: str, k: int = 3) -> list[FailureHit]:
        """Active failures ranked by similarity, cluster size and recency."""
        return self._notes.search_failures(query, k)

    def list_failures(self, status: str | None = "active") -> list[FailureInfo]:
        """Failures with `status` (None or "all": every status), oldest first."""
        return self._notes.list_failures(status)

    # ---------------------------------------------------------------- episodes and runs

    def add_episode(self, ep: Episode) -> str:
        """Store (or, for a resumed task, replace) an episode; returns its id."""
        return self.record_episode(ep, Learned())

    def record_episode(self, ep: Episode, learned: Learned) -> str:
        """Store an episode and what it taught in ONE transaction; returns its id.

        The episode's row is the marker that its learning is done: a process killed at
        any point either wrote all of it or none, so a resumed task redoes nothing twice.
        Usage of tools that do not exist (any more) and links to them are skipped, never
        an error: the task's outcome does not depend on the library's bookkeeping."""
        return self._episodes.record_episode(ep, learned)

    def gc(self, *, dry_run: bool = True, vacuum: bool = False) -> dict[str, int]:
        """Drop what nothing reads any more (old usage records, rejections, change-log
        entries, unreferenced embeddings; see memory/gc.py); counts per kind."""
        from memory.gc import collect

        with self._lock:
            return collect(self._store, self.config, dry_run=dry_run, vacuum=vacuum)

    # ---------------------------------------------------------------- forge marks

    def forge_marks(self, episode_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Outcomes the forge stored for these episodes' traces (see `mark_forged`)."""
        return self._episodes.forge_marks(episode_ids)

    def mark_forged(self, outcomes: dict[str, dict[str, Any]]) -> None:
        """Remember that the forge dealt with these episodes' traces, and how (one
        transaction): a batch end that is run again replays the outcome."""
        self._episodes.mark_forged(outcomes)

    def episodes_with_tools(self, episode_ids: Iterable[str]) -> set[str]:
        """Those of these episodes whose traces already left a tool's provenance or a
        rejection in the library (forged, but killed before `mark_forged`)."""
        return self._episodes.episodes_with_tools(episode_ids)

    def solved_examples(
        self, text: str, k: int = 3, *, recent: int = 500, exclude: Iterable[str] = ()
    ) -> list[tuple[str, Any]]:
        """Up to k (task, answer) pairs of recent episodes that were solved right (correct
        against a label, or solved where there was none) and look like `text`: examples
        of the same kind of task."""
        return self._episodes.solved_examples(text, k, recent=recent, exclude=exclude)

    def recent_tasks(
        self, text: str, k: int = 5, *, recent: int = 500, exclude: Iterable[str] = ()
    ) -> list[str]:
        """Up to k task texts of recent episodes, whatever their outcome, that look like
        `text` (the same kind of task): the real inputs a candidate tool must handle."""
        return self._episodes.recent_tasks(text, k, recent=recent, exclude=exclude)

    def get_episode(self, episode_id: str) -> Episode | None:
        return self._episodes.get_episode(episode_id)

    def start_run(self, run_id: str, meta: dict[str, Any]) -> None:
        self._episodes.start_run(run_id, meta)

    def finish_run(self, run_id: str, summary: dict[str, Any]) -> None:
        self._episodes.finish_run(run_id, summary)

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        return self._episodes.get_run(run_id)

    # ---------------------------------------------------------------- maintenance

    def consolidate(self, dry_run: bool = False) -> list[Change]:
        """Merge near-duplicate tips and same-signature failures; archive tips that keep
        failing to help. Returns the changes (made, or that would be made with dry_run)."""
        self._search.sync()
        changes = self._upkeep.plan_consolidation()
        if not dry_run:
            self._upkeep.apply(changes)
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
        changes = self._upkeep.plan_prune(
            min_uses=min_uses,
            max_fail_rate=max_fail_rate,
            grace_episodes=grace_episodes,
            log_scale=log_scale,
        )
        if not dry_run:
            self._upkeep.apply(changes)
        return changes

    def restore_tip(self, tip_id: str) -> TipInfo:
        """Bring a merged or archived tip back (a merged one takes its support back)."""
        self._upkeep.restore_note("tip", tip_id)
        info = self.get_tip(tip_id)
        assert info is not None
        return info

    def restore_failure(self, failure_id: str) -> FailureInfo:
        """Bring a merged failure back (its count leaves the cluster it joined)."""
        self._upkeep.restore_note("failure", failure_id)
        return next(f for f in self.list_failures("all") if f.id == failure_id)

    def health(self) -> dict[str, Any]:
        """Library health from the records: library precision, utilisation, redundancy,
        regression rate (memory/health.py)."""
        from memory.health import library_health

        return library_health(self._read_engine)

    def stats(self) -> dict[str, Any]:
        """Counts per record kind and status, sizes, and who owns the index."""
        out: dict[str, Any] = {"home": str(self.home)}
        out.update(self._store.counts())
        out["db_bytes"] = sum(
            p.stat().st_size for p in self.home.glob(DB_FILE + "*") if p.is_file()
        )
        out["index"] = {
            "owner": self.owns_index,
            "kind": "chroma"
            if self.chroma
            else (
                "numpy (a small library)"
                if self.owns_index
                else "numpy (guest; another process or none owns chroma)"
            ),
            "embedder": self.model_key,
        }
        return out

    def reindex(self) -> dict[str, int]:
        """Rebuild the index from SQL (the index owner only). Returns entries per kind."""
        self._store.check_writable()
        if not self.owns_index:
            raise LibraryError(
                "only the process that owns the index can rebuild it: stop the running "
                "task stream (it holds library.lock) and run `evoagent memory reindex` again"
            )
        return self._search.rebuild()

    def drift(self) -> dict[str, dict[str, int]]:
        """Entries on one side only (or stale) per kind, comparing the index with SQL
        (after replaying pending changes: those are not drift)."""
        return self._search.drift()

    # ---------------------------------------------------------------- internals (cli.py, tests)

    def _ensure_index(self) -> VectorIndex:
        """The index (Chroma for the owner; a guest loads its numpy copy on first use)."""
        return self._search.ensure_index()

    def require_tool(self, name: str) -> None:
        """Raise `UnknownToolError` (with close names) unless the tool exists."""
        self._tools.require(name)

    # ---------------------------------------------------------------- tools: writes

    def add_tool(self, draft: ToolDraft) -> ToolInfo:
        """Store a new tool as version 1. A quarantined or archived tool of the same name
        gets the draft as its next version and becomes active again (names are identities)."""
        return self._tools.add_tool(draft)

    def add_tools(self, drafts: Sequence[ToolDraft]) -> int:
        """Add many new tools in one transaction with batched embedding (imports, benchmarks).
        Every name must be new. Returns how many were added."""
        return self._tools.add_tools(drafts)

    def add_version(self, name: str, draft: ToolDraft) -> ToolInfo:
        """Store `draft` as the next version of `name`; it becomes current (and the tool
        active again: a new version answers whatever got the old one quarantined)."""
        return self._tools.add_version(name, draft)

    def merge_into(
        self, name: str, provenance: Provenance, grow: TestsGrowth | None = None
    ) -> ToolInfo:
        """An equivalent candidate was found: its tests (new `test_*` names only) join the
        current version's tests and its provenance is recorded; no new version."""
        return self._tools.merge_into(name, provenance, grow)

    def record_usage(self, events: list[UsageEvent], *, solved: bool | None = None) -> None:
        """Record calls of library tools (all or nothing: an unknown tool name rejects the batch).

        Every call is kept (`usage`, `tool_failures`), but the counts behind reliability and
        quarantine move once per tool and episode: a failure when one of its calls raised,
        a success when none did and the episode was `solved` (None: no episode outcome,
        as for a person's use)."""
        self._usage.record_usage(events, solved=solved)

    def tools_stamp(self) -> tuple[int, float, float, int]:
        """A cheap stamp of the tools' state (one aggregate row, whatever the library's
        size) that changes when any process adds, versions, merges into or changes the
        status of a tool, and not when tools are used: poll it to notice tool changes
        (an MCP server's list_changed)."""
        return self._tools.tools_stamp()

    def link_task(self, name: str, task: str) -> None:
        """Remember that `name` solved `task`: a similar new task then finds the tool."""
        self._usage.link_task(name, task)

    def set_status(self, name: str, status: str, reason: str) -> ToolInfo:
        """Make a tool active, quarantined or archived, recording why in its history."""
        return self._tools.set_status(name, status, reason)

    def restore(self, name: str, reason: str = "restored") -> ToolInfo:
        """Bring a quarantined or archived tool back to active."""
        return self._tools.restore(name, reason)

    def record_rejection(self, name: str, reason: str, source: str, provenance: Provenance) -> None:
        """Remember a candidate tool that was not admitted, and why."""
        self._tools.record_rejection(name, reason, source, provenance)

    # ---------------------------------------------------------------- tools: reads

    def get_tool(self, name: str, version: int | None = None) -> ToolInfo | None:
        """A tool at `version` (default: current), or None if there is no such tool or version."""
        return self._tools.get_tool(name, version)

    def list_tools(self, status: str | None = "active") -> list[ToolInfo]:
        """Current versions; `status=None` (or "all") lists every status."""
        return self._tools.list_tools(status)

    def tool_versions(self, name: str) -> list[ToolInfo]:
        """Every version of a tool, oldest first (history)."""
        return self._tools.tool_versions(name)

    def tool_history(self, name: str) -> list[ToolEvent]:
        """What happened to a tool (added, versioned, merged, status changes), oldest first."""
        return self._tools.tool_history(name)

    def tool_tasks(self, name: str) -> list[str]:
        """The past tasks linked to a tool (the second retrieval view)."""
        return self._tools.tool_tasks(name)

    def tool_names(self) -> list[str]:
        """Every tool name, any status, sorted."""
        return self._tools.tool_names()

    def search_tools(
        self, query: str, k: int = 5, *, views: Sequence[str] = ("description", "tasks")
    ) -> list[ToolHit]:
        """Active tools ranked by similarity (best of the description and past-task views),
        reliability in use (Beta prior) and recency. `views` narrows the views (benchmarks)."""
        return self._tools.search_tools(query, k, views=views)

    def tool_sources(self, names: Iterable[str]) -> dict[str, str]:
        """Current source per name, with the library tools they import (transitively): what
        `Sandbox.run(tools=...)` needs to call them."""
        return self._tools.tool_sources(names)

    def rejections(self, name: str | None = None) -> list[dict[str, Any]]:
        """Rejected candidates (of one name, or all), oldest first."""
        return self._tools.rejections(name)

    def tool_failures(self, name: str) -> list[UsageEvent]:
        """Failed uses of the current version (older versions' failures are addressed)."""
        return self._usage.tool_failures(name)

    def tools_to_repair(self) -> list[str]:
        """Active tools whose current version failed in use since a repair last looked."""
        return self._usage.tools_to_repair()

    def note_repair_tried(self, name: str) -> None:
        """A repair looked at `name`'s failures so far (whatever came of it)."""
        self._usage.note_repair_tried(name)

    def usage_stamp(self) -> int:
        """Changes whenever a use is recorded (the newest usage row's id): with
        `tools_stamp`, what a cache of tool figures keys on."""
        with self._read_engine.connect() as c:
            return int(c.exec_driver_sql("SELECT max(id) FROM usage_event").scalar() or 0)

    def episodes_stamp(self) -> tuple[int, float]:
        """Changes whenever an episode is stored: (how many, the newest's time)."""
        with self._read_engine.connect() as c:
            n, newest = c.exec_driver_sql("SELECT count(*), max(created_at) FROM episode").one()
        return int(n), float(newest or 0.0)

    def usage_by_day(self, name: str, days: int = 90) -> list[tuple[str, int, int]]:
        """(day, right, failed) uses of a tool per UTC day, oldest first."""
        return self._usage.usage_by_day(name, days)

    def callees(self, name: str) -> list[str]:
        """The library tools `name` calls (imports from `tools`)."""
        return self._tools.callees(name)

    def callers(self, name: str) -> list[str]:
        """The library tools that call `name`."""
        return self._tools.callers(name)

    def usage(self, name: str, limit: int = 20) -> list[UsageEvent]:
        """The latest uses of a tool, newest first."""
        return self._usage.usage(name, limit)

    # ---------------------------------------------------------------- snapshots

    def snapshot(self) -> LibrarySnapshot:
        """The active part of the library as of now, for Ray workers to solve against (the
        driver takes one at each batch start; see memory/snapshot.py)."""
        sync = self._search
        with self._lock:
            sync.sync()
            sync.ensure_index()
            tools = {t.name: replace(t, tests="") for t in self.list_tools("active")}
            tips = {t.id: t for t in self.list_tips("active")}
            failures = {f.id: f for f in self.list_failures("active")}
            tool_meta = {n: m for n, m in sync.tool_meta().items() if n in tools}
            note_meta = {
                "tips": {i: m for i, m in sync.note_meta("tips").items() if i in tips},
                "failures": {i: m for i, m in sync.note_meta("failures").items() if i in failures},
            }
            keep = {
                "tools": lambda i: i in tools,
                "tasks": lambda i: i.rsplit(":", 1)[0] in tools,
                "tips": lambda i: i in tips,
                "failures": lambda i: i in failures,
            }
            vectors: dict[str, tuple[list[str], list[str], np.ndarray]] = {}
            dim = int(self.embedder.dim)
            for kind in KINDS:
                entries = {i: h for i, h in sync.indexed[kind].items() if keep[kind](i)}
                cached = self._vectors.vectors(dict.fromkeys(entries.values()), compute=False)
                ids = [i for i, h in entries.items() if h in cached]
                hashes = [entries[i] for i in ids]
                mat = (
                    np.stack([cached[h] for h in hashes]).astype(np.float32)
                    if ids
                    else np.zeros((0, dim), np.float32)
                )
                vectors[kind] = (ids, hashes, mat)
        return LibrarySnapshot(
            config=self.config,
            model_key=self.model_key,
            dim=dim,
            stamp=self.tools_stamp(),
            tools=tools,
            tool_meta=tool_meta,
            tips=tips,
            failures=failures,
            note_meta=note_meta,
            vectors=vectors,
            callee_sources={
                n: src
                for n, src in with_callees(
                    {n: t.source for n, t in tools.items()}, self._tools.known_sources
                ).items()
                if n not in tools
            },
        )
