"""What a task is solved with that cannot live in a checkpoint: `AgentDeps` (the model,
the library, the sandbox, the settings, the checkpointer, an MCP server's tools), and how
they are opened from settings (`AgentDeps.from_settings`, `open_model`, the local model's
defaults, the `<home>/checkpoints.db` saver)."""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from agent.config import Settings
from agent.errors import AgentError
from memory.protocol import Solving, ToolLibrary

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel
    from langgraph.checkpoint.base import BaseCheckpointSaver

    from agent.mcp_client import McpTools
    from sandbox.base import Sandbox

CHECKPOINTS_FILE = "checkpoints.db"

#: the model used when none is configured: the local default (`evoagent models pull`)
DEFAULT_MODEL = "local"


class Closable(Protocol):
    def close(self) -> None: ...


class ExplorePool:
    """Samples a stream may still draw (`limit` 0: no limit), shared by its workers."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.spent = 0
        self._lock = threading.Lock()

    def take(self, wanted: int, least: int = 1) -> int:
        """Up to `wanted` samples, as many as the pool has left; 0 (and nothing spent)
        when that is fewer than `least`."""
        with self._lock:
            granted = wanted if not self.limit else min(wanted, self.limit - self.spent)
            if granted < least:
                return 0
            self.spent += granted
            return granted


@dataclass
class AgentDeps:
    """What the graph needs that cannot live in a checkpoint. Thread-safe to share
    between worker threads: each `solve_task` call counts its own usage. `library` is what
    solving uses of it: the library itself where this process owns it, a snapshot on a
    Ray worker (`own_library` tells them apart)."""

    model: BaseChatModel
    library: Solving
    sandbox: Sandbox
    settings: Settings
    checkpointer: BaseCheckpointSaver[str] | None = None
    #: the tools of the run's --mcp servers (None: none given)
    external: McpTools | None = None
    _owned: list[Closable] = field(default_factory=list, repr=False)
    _explore: ExplorePool | None = field(default=None, repr=False)
    _explore_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        model: BaseChatModel | None = None,
        *,
        record: str | Path | None = None,
    ) -> AgentDeps:
        """Open everything `settings` names. `model` overrides `settings.model`;
        `record` writes every call of the model built from settings to that cassette."""
        if model is None:
            model, settings = open_model(settings, record=record)
        from memory import Library
        from sandbox import get_sandbox

        settings.home.mkdir(parents=True, exist_ok=True)
        library = Library.open(settings.home, config=settings.memory)
        try:
            sandbox = get_sandbox(settings.sandbox)
        except BaseException:
            library.close()
            raise
        external = None
        if settings.mcp:
            from agent.mcp_client import McpTools

            try:
                external = McpTools.open(settings.mcp, timeout_s=settings.sandbox.timeout_s)
            except BaseException:
                sandbox.close()
                library.close()
                raise
        checkpointer, conn = open_checkpointer(settings.home)
        return cls(
            model=model,
            library=library,
            sandbox=sandbox,
            settings=settings,
            checkpointer=checkpointer,
            external=external,
            _owned=[conn, *([external] if external else []), sandbox, library],
        )

    def exploration(self) -> ExplorePool:
        """The samples exploration may still draw in this process (`explore_per_stream`),
        shared by every task these dependencies solve."""

        with self._explore_lock:
            if self._explore is None:
                self._explore = ExplorePool(self.settings.agent.explore_per_stream)
            return self._explore

    def own_library(self) -> ToolLibrary:
        """The library itself, for what only the process that owns it does (admit tools,
        upkeep, runs); an error on a worker that solves against a snapshot."""
        if not isinstance(self.library, ToolLibrary):
            raise AgentError(
                "this process solves against a snapshot of the library: admitting tools "
                "and upkeep are the driver's (forge 'defer', not 'now')"
            )
        return self.library

    def close(self) -> None:
        """Close what `from_settings` opened (not what the caller passed in)."""
        while self._owned:
            self._owned.pop(0).close()

    def __enter__(self) -> AgentDeps:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_model(
    settings: Settings, *, record: str | Path | None = None
) -> tuple[BaseChatModel, Settings]:
    """The model `settings` names, loaded now, and the settings to run it with (a local
    model resolves the `auto` settings for a small model)."""
    from agent.models import get_model

    # A call may not outlive the task's time budget: a stuck endpoint is an error, not a hang.
    model = get_model(
        settings.model or DEFAULT_MODEL,
        base_url=settings.base_url,
        record=record,
        timeout_s=settings.agent.model_timeout_s or settings.agent.max_seconds,
        max_retries=settings.agent.model_max_retries,
        local=settings.local,
        server_grammar=settings.server_grammar,
    )
    load = getattr(model, "engine", None)
    if callable(load):
        # A local model loads now: a broken file is one error before any work,
        # not a failed task; and the first task does not pay for the load.
        load()
        settings = local_defaults(settings)
    return model, settings


def local_defaults(settings: Settings) -> Settings:
    """Settings left on `auto` resolved for a small local model, where every model call
    costs seconds and an unrelated tool distracts: no plan call when no tool is offered,
    only tools similar to the task offered, several programs sampled together for a task
    no tool covers (the engine decodes them for little more than one), and a forge that takes the solution's own
    function as the candidate before it asks the model for one."""
    agent, forge = settings.agent, settings.forge
    if agent.plan_without_tools == "auto":
        agent = agent.model_copy(update={"plan_without_tools": "never"})
    if agent.explore == "auto":
        agent = agent.model_copy(update={"explore": "always"})
    if agent.tool_min_similarity is None:
        agent = agent.model_copy(update={"tool_min_similarity": 0.35})
    if forge.candidates == "auto":
        forge = forge.model_copy(update={"candidates": "extract-then-distill"})
    return settings.model_copy(update={"agent": agent, "forge": forge})


def open_checkpointer(home: Path) -> tuple[Any, sqlite3.Connection]:
    """A `SqliteSaver` on `<home>/checkpoints.db`, shareable between threads."""
    from langgraph.checkpoint.sqlite import SqliteSaver

    conn = sqlite3.connect(str(Path(home) / CHECKPOINTS_FILE), check_same_thread=False)
    # WAL lets a stream's worker threads and a second process read while one writes.
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA busy_timeout=30000")
    saver = SqliteSaver(conn)
    saver.setup()
    return saver, conn
