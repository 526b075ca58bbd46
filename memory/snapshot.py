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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from memory.config import MemoryConfig
from memory.embed import Embedder, embedder_id
from memory.episode import Episode
from memory.errors import LibraryError, UnknownToolError
from memory.index import KINDS, NumpyIndex
from memory.rank import rank_notes, rank_tools, view_kinds
from memory.sync import NoteMeta, ToolMeta
from memory.tools import with_callees
from memory.types import (
    FailureHit,
    FailureInfo,
    Learned,
    TipHit,
    TipInfo,
    ToolHit,
    ToolInfo,
    UsageEvent,
)


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
    #: sources of the tools the active ones import that are not active themselves
    callee_sources: dict[str, str] = field(default_factory=dict)

    @property
    def n_tools(self) -> int:
        return len(self.tools)


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

    episodes: list[tuple[Episode, Learned]] = field(default_factory=list)
    usage: list[tuple[list[UsageEvent], bool | None]] = field(default_factory=list)


class SnapshotLibrary:
    """The `Solving` role over a `LibrarySnapshot`: search as the library would at the
    batch start, and what a task records kept in an outbox for the driver. It has no
    other role: admitting a tool or consolidating is the driver's work, and code that
    tries it here fails its type check (`isinstance(x, ToolLibrary)` is False)."""

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
        return with_callees(out, self._sources_of)

    def _sources_of(self, names: list[str]) -> dict[str, str]:
        tools, extra = self.snapshot.tools, self.snapshot.callee_sources
        return {
            n: tools[n].source if n in tools else extra[n]
            for n in names
            if n in tools or n in extra
        }

    def tools_stamp(self) -> tuple[int, float, float, int]:
        return self.snapshot.stamp

    def _query(self, text: str) -> np.ndarray:
        vec = self._queries.get(text)
        if vec is None:
            vec = np.asarray(self.embedder.embed([text])[0], dtype=np.float32)
            self._queries[text] = vec
        return vec

    def search_tools(
        self, query: str, k: int = 5, *, views: Sequence[str] = ("description", "tasks")
    ) -> list[ToolHit]:
        if k <= 0 or not query.strip():
            return []
        kinds = view_kinds(views)
        scored = rank_tools(self._sync, self.config, self._query(query), k, kinds)
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
        ranked = rank_notes(self._sync, self.config, "tips", self._query(query), k)
        return [TipHit(self.snapshot.tips[i], score, sim) for score, sim, i in ranked]

    def search_failures(self, query: str, k: int = 3) -> list[FailureHit]:
        if k <= 0 or not query.strip():
            return []
        ranked = rank_notes(self._sync, self.config, "failures", self._query(query), k)
        return [FailureHit(self.snapshot.failures[i], score, sim) for score, sim, i in ranked]

    # -- what a task writes ----------------------------------------------------

    def record_usage(self, events: list[UsageEvent], *, solved: bool | None = None) -> None:
        self.outbox.usage.append((list(events), solved))

    def record_episode(self, ep: Episode, learned: Learned) -> str:
        if not ep.id:
            raise LibraryError("an episode recorded on a worker needs its id")
        self.outbox.episodes.append((ep, learned))
        return ep.id

    def get_episode(self, episode_id: str) -> Episode | None:
        for ep, _ in self.outbox.episodes:
            if ep.id == episode_id:
                return ep
        return None

    def take_outbox(self) -> Outbox:
        out, self.outbox = self.outbox, Outbox()
        return out
