"""What the packages above use of the library, by role.

The seam between the packages above and `memory`: code outside memory is typed against
the role it plays, not against `Library`, so a library held elsewhere (a Ray worker's
snapshot, a service, a test double) fits where it has that role's methods with these
types.

- `ToolSearch`: finding tools, tips and failures for a task, and reading a tool's code.
- `EpisodeSink`: where a finished task's episode, and its tools' uses, are recorded.
- `Solving` = both: all that solving one task uses (the graph). A Ray worker's
  `SnapshotLibrary` is one: it searches a snapshot and keeps what a task writes in an
  outbox for the driver.
- `ForgeWrites`: what the forge reads beyond search (examples, failures, its marks) and
  writes (tools, versions, merges, rejections, evidence).
- `Upkeep`: what a stream's runner does between batches and around a run.
- `ToolLibrary`: every role: the library itself (`memory.Library`), which only the
  process that owns it holds; `isinstance(x, ToolLibrary)` tells it from a snapshot.

The command line's browsing and curation use `Library` itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol, runtime_checkable

from memory.config import MemoryConfig
from memory.episode import Episode
from memory.snapshot import LibrarySnapshot
from memory.types import (
    Change,
    Evidence,
    FailureHit,
    Learned,
    Provenance,
    TestsGrowth,
    TipHit,
    ToolDraft,
    ToolHit,
    ToolInfo,
    UsageEvent,
)


@runtime_checkable
class ToolSearch(Protocol):
    @property
    def config(self) -> MemoryConfig:
        """The library's policy (quarantine thresholds, ranking, trust)."""
        ...

    def get_tool(self, name: str, version: int | None = None) -> ToolInfo | None: ...
    def list_tools(self, status: str | None = "active") -> list[ToolInfo]: ...
    def tool_names(self) -> list[str]: ...
    def tool_sources(self, names: Iterable[str]) -> dict[str, str]: ...
    def tools_stamp(self) -> tuple[int, float, float, int]: ...
    def search_tools(
        self, query: str, k: int = 5, *, views: Sequence[str] = ("description", "tasks")
    ) -> list[ToolHit]: ...
    def search_tips(self, query: str, k: int = 3) -> list[TipHit]: ...
    def search_failures(self, query: str, k: int = 3) -> list[FailureHit]: ...


@runtime_checkable
class EpisodeSink(Protocol):
    def record_episode(self, ep: Episode, learned: Learned) -> str: ...
    def get_episode(self, episode_id: str) -> Episode | None: ...
    def record_usage(self, events: list[UsageEvent], *, solved: bool | None = None) -> None: ...


@runtime_checkable
class Solving(ToolSearch, EpisodeSink, Protocol):
    """All that solving one task uses of the library."""


@runtime_checkable
class ForgeWrites(ToolSearch, Protocol):
    # what the forge reads beyond search
    def tool_failures(self, name: str) -> list[UsageEvent]: ...
    def callers(self, name: str) -> list[str]: ...
    def solved_examples(
        self, text: str, k: int = 3, *, recent: int = 500, exclude: Iterable[str] = ()
    ) -> list[tuple[str, Any]]: ...
    def recent_tasks(
        self, text: str, k: int = 5, *, recent: int = 500, exclude: Iterable[str] = ()
    ) -> list[str]: ...
    def forge_marks(self, episode_ids: Iterable[str]) -> dict[str, dict[str, Any]]: ...
    def episodes_with_tools(self, episode_ids: Iterable[str]) -> set[str]: ...

    # what it writes
    def add_tool(self, draft: ToolDraft) -> ToolInfo: ...
    def add_version(self, name: str, draft: ToolDraft) -> ToolInfo: ...
    def merge_into(
        self, name: str, provenance: Provenance, grow: TestsGrowth | None = None
    ) -> ToolInfo: ...
    def set_status(self, name: str, status: str, reason: str) -> ToolInfo: ...
    def record_rejection(
        self, name: str, reason: str, source: str, provenance: Provenance
    ) -> None: ...
    def mark_forged(self, outcomes: dict[str, dict[str, Any]]) -> None: ...
    def add_evidence(self, items: Iterable[Evidence], *, count: bool = True) -> None: ...


@runtime_checkable
class Upkeep(Protocol):
    def tools_to_repair(self) -> list[str]: ...
    def note_repair_tried(self, name: str) -> None: ...
    def consolidate(self, dry_run: bool = False) -> list[Change]: ...
    def prune(
        self,
        dry_run: bool = False,
        *,
        min_uses: int | None = None,
        max_fail_rate: float | None = None,
        grace_episodes: int | None = None,
        log_scale: float | None = None,
    ) -> list[Change]: ...
    def start_run(self, run_id: str, meta: dict[str, Any]) -> None: ...
    def finish_run(self, run_id: str, summary: dict[str, Any]) -> None: ...
    def health(self) -> dict[str, Any]: ...
    def snapshot(self) -> LibrarySnapshot: ...
    def close(self) -> None: ...


@runtime_checkable
class ToolLibrary(Solving, ForgeWrites, Upkeep, Protocol):
    """The library itself: every role."""
