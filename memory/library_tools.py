"""The tools part of the `Library` front door: every tool operation, documented here.

`Library` inherits it; the work is done by `memory.tools.ToolStore` and, for use and
repair, `memory.usage.ToolUsage`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from memory.tools import ToolStore
from memory.types import (
    Provenance,
    ToolDraft,
    ToolEvent,
    ToolHit,
    ToolInfo,
    UsageEvent,
)
from memory.usage import ToolUsage


class ToolsFront:
    """Tool writes and reads of the library (the store it delegates to: `_tools`)."""

    _tools: ToolStore
    _usage: ToolUsage

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

    def merge_into(self, name: str, tests: str, provenance: Provenance) -> ToolInfo:
        """An equivalent candidate was found: its tests (new `test_*` names only) join the
        current version's tests and its provenance is recorded; no new version."""
        return self._tools.merge_into(name, tests, provenance)

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
        """Current source per name, for `Sandbox.run(tools=...)`."""
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

    def usage(self, name: str, limit: int = 20) -> list[UsageEvent]:
        """The latest uses of a tool, newest first."""
        return self._usage.usage(name, limit)
