"""A library's read side as plain data, for workers that must not open the library.

The driver of a distributed run (`evoagent run --ray`) owns the library; each batch it
takes a `LibrarySnapshot` (the active tools with their sources, their ranking data, the
active tips and failures, and the vectors retrieval ranks over) and ships it to its
workers. A worker searches it with `SnapshotLibrary`, which ranks exactly as `Library`
does (the same `rank_tools`/`rank_notes` over the same vectors and metadata), and keeps
what a task would write (its episode and what it taught) in an outbox the driver records.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from memory.config import MemoryConfig
from memory.embed import Embedder, embedder_id
from memory.errors import LibraryError, UnknownToolError
from memory.index import KINDS, NumpyIndex
from memory.rank import NoteMeta, ToolMeta, rank_notes, rank_tools
from memory.types import (
    EpisodeRecord,
    FailureHit,
    FailureInfo,
    Learned,
    TipHit,
    TipInfo,
    ToolHit,
    ToolInfo,
    UsageEvent,
)

if TYPE_CHECKING:
    from memory.library import Library


@dataclass
class LibrarySnapshot:
    """What a worker needs to solve tasks against the library as it is now."""

    config: MemoryConfig
    model_key: str  # the embedder the vectors come from; a worker must embed queries alike
    dim: int
    stamp: tuple[int, float, float, int]
    #: the active tools (their `tests` left out: solving never reads them, the forge does)
    tools: dict[str, ToolInfo]
    tool_meta: dict[str, ToolMeta]
    tips: dict[str, TipInfo]
    failures: dict[str, FailureInfo]
    note_meta: dict[str, dict[str, NoteMeta]]
    #: per index kind: (ids, content hashes, float32 matrix of unit vectors, one row per id)
    vectors: dict[str, tuple[list[str], list[str], np.ndarray]]

    @property
    def n_tools(self) -> int:
        return len(self.tools)


def take_snapshot(library: Library) -> LibrarySnapshot:
    """The active part of `library`, as of now (the driver calls this at a batch start)."""
    sync = library._search
    with library._lock:
        sync.sync()
        sync.ensure_index()
        tools = {t.name: replace(t, tests="") for t in library.list_tools("active")}
        tips = {t.id: t for t in library.list_tips("active")}
        failures = {f.id: f for f in library.list_failures("active")}
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
        dim = int(library.embedder.dim)
        for kind in KINDS:
            entries = {i: h for i, h in sync.indexed[kind].items() if keep[kind](i)}
            cached = library._vectors.vectors(dict.fromkeys(entries.values()), compute=False)
            ids = [i for i, h in entries.items() if h in cached]
            hashes = [entries[i] for i in ids]
            mat = (
                np.stack([cached[h] for h in hashes]).astype(np.float32)
                if ids
                else np.zeros((0, dim), np.float32)
            )
            vectors[kind] = (ids, hashes, mat)
    return LibrarySnapshot(
        config=library.config,
        model_key=library.model_key,
        dim=dim,
        stamp=library.tools_stamp(),
        tools=tools,
        tool_meta=tool_meta,
        tips=tips,
        failures=failures,
        note_meta=note_meta,
        vectors=vectors,
    )


class _SnapshotSync:
    """The part of `IndexSync` that ranking reads, over a snapshot."""

    def __init__(self, snap: LibrarySnapshot) -> None:
        self.lock = threading.RLock()
        self._snap = snap
        self._index = NumpyIndex(snap.dim)
        self.indexed: dict[str, dict[str, str]] = {}
        for kind in KINDS:
            ids, hashes, mat = snap.vectors.get(kind, ([], [], np.zeros((0, snap.dim))))
            if ids:
                self._index.upsert(kind, ids, mat, hashes)
            self.indexed[kind] = dict(zip(ids, hashes, strict=True))

    def ensure_index(self) -> NumpyIndex:
        return self._index

    def tool_meta(self) -> dict[str, ToolMeta]:
        return self._snap.tool_meta

    def note_meta(self, kind: str) -> dict[str, NoteMeta]:
        return self._snap.note_meta.get(kind, {})


@dataclass
class Outbox:
    """What tasks solved against a snapshot would have written, for the driver to record."""

    episodes: list[tuple[EpisodeRecord, Learned]] = field(default_factory=list)
    usage: list[tuple[list[UsageEvent], bool | None]] = field(default_factory=list)


class SnapshotLibrary:
    """A read-only `ToolLibrary` over a `LibrarySnapshot`; writes a task makes go to its
    outbox. Anything else a task should never do here (admit a tool, consolidate) is an
    error, not a silent no-op."""

    def __init__(self, snap: LibrarySnapshot, embedder: Embedder) -> None:
        if embedder_id(embedder) != snap.model_key:
            raise LibraryError(
                f"this worker embeds with {embedder_id(embedder)}, the library with "
                f"{snap.model_key}: give the worker the same memory.embedder setting"
            )
        self.snapshot = snap
        self.embedder = embedder
        self.outbox = Outbox()
        self._sync = _SnapshotSync(snap)
        self._queries: dict[str, np.ndarray] = {}

    @property
    def config(self) -> MemoryConfig:
        return self.snapshot.config

    # -- tools ---------------------------------------------------------------

    def get_tool(self, name: str, version: int | None = None) -> ToolInfo | None:
        tool = self.snapshot.tools.get(name)
        if tool is None or (version is not None and version != tool.version):
            return None
        return tool

    def list_tools(self, status: str | None = "active") -> list[ToolInfo]:
        if status not in (None, "all", "active"):
            return []
        return sorted(self.snapshot.tools.values(), key=lambda t: t.name)

    def tool_names(self) -> list[str]:
        return sorted(self.snapshot.tools)

    def tool_sources(self, names: Iterable[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for name in dict.fromkeys(names):
            if name not in self.snapshot.tools:
                raise UnknownToolError(name, self.snapshot.tools)
            out[name] = self.snapshot.tools[name].source
        return out

    def tools_stamp(self) -> tuple[int, float, float, int]:
        return self.snapshot.stamp

    def _query(self, text: str) -> np.ndarray:
        vec = self._queries.get(text)
        if vec is None:
            vec = np.asarray(self.embedder.embed([text])[0], dtype=np.float32)
            self._queries[text] = vec
        return vec

    def search_tools(self, query: str, k: int = 5, **_: Any) -> list[ToolHit]:
        if k <= 0 or not query.strip():
            return []
        scored = rank_tools(self._sync, self.config, self._query(query), k, ["tools", "tasks"])  # type: ignore[arg-type]
        return [
            ToolHit(
                tool=self.snapshot.tools[name],
                score=score,
                similarity=sim,
                view="description" if view == "tools" else "tasks",
            )
            for score, sim, name, view in scored
        ]

    def search_tips(self, query: str, k: int = 3) -> list[TipHit]:
        if k <= 0 or not query.strip():
            return []
        ranked = rank_notes(self._sync, self.config, "tips", self._query(query), k)  # type: ignore[arg-type]
        return [TipHit(self.snapshot.tips[i], score, sim) for score, sim, i in ranked]

    def search_failures(self, query: str, k: int = 3) -> list[FailureHit]:
        if k <= 0 or not query.strip():
            return []
        ranked = rank_notes(self._sync, self.config, "failures", self._query(query), k)  # type: ignore[arg-type]
        return [FailureHit(self.snapshot.failures[i], score, sim) for score, sim, i in ranked]

    def solved_examples(self, text: str, k: int = 3, **_: Any) -> list[tuple[str, Any]]:
        return []  # episodes stay with the driver (only its forge asks for them)

    # -- what a task writes ----------------------------------------------------

    def record_usage(self, events: list[UsageEvent], *, solved: bool | None = None) -> None:
        self.outbox.usage.append((list(events), solved))

    def record_episode(self, ep: EpisodeRecord, learned: Learned) -> str:
        if not ep.id:
            raise LibraryError("an episode recorded on a worker needs its id")
        self.outbox.episodes.append((ep, learned))
        return ep.id

    def get_episode(self, episode_id: str) -> EpisodeRecord | None:
        for ep, _ in self.outbox.episodes:
            if ep.id == episode_id:
                return ep
        return None

    def take_outbox(self) -> Outbox:
        out, self.outbox = self.outbox, Outbox()
        return out

    def close(self) -> None:
        pass

    def __getattr__(self, name: str) -> Any:
        # Admissions, consolidation, pruning: the driver's work, never a worker's.
        raise AttributeError(
            f"a worker's library snapshot is read-only: {name} belongs to the driver"
        )
