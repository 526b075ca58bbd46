"""Solving one task: the front door the CLI and the stream runner share.

```python
deps = AgentDeps.from_settings(settings)            # model, library, sandbox, checkpointer
result = solve_task(Task(id="t1", task="..."), deps, forge="now")
```
`solve_task` builds the graph for this one call (the per-call usage counter and
event callback are closed over, never checkpointed), runs it on the thread
`[run_id:]task_id` of `<home>/checkpoints.db`, and turns the final state into an
`EpisodeResult`. It never raises for what the model or the task's code did: those
end as a status. It raises `AgentError` for a person's mistake (a model that is not
there, a bad checker).
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from agent.config import Settings
from agent.errors import AgentError
from agent.task import Task
from agent.types import Feedback, ForgeMode, TaskStatus
from memory.protocol import ToolLibrary
from toolforge.types import Trace

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel
    from langgraph.checkpoint.base import BaseCheckpointSaver

    from agent.mcp_client import McpTools
    from memory import EpisodeRecord
    from sandbox.base import Sandbox


class Closable(Protocol):
    def close(self) -> None: ...


EventCallback = Callable[[dict[str, Any]], None]
CHECKPOINTS_FILE = "checkpoints.db"

#: the model used when none is configured: the local default (`evoagent models pull`)
DEFAULT_MODEL = "local"


@dataclass
class EpisodeResult:
    """The outcome of one task. `traces` are toolforge `Trace`s of a solved task
    (filled when `forge="defer"`, for the runner to `forge_batch`)."""

    task_id: str
    status: TaskStatus
    answer: Any
    correct: bool | None
    attempts: int
    n_calls: int
    tokens_in: int
    tokens_out: int
    seconds: float
    tools_used: list[str]
    tools_created: list[str]
    feedback: Feedback
    reason: str
    traces: list[Trace] = field(default_factory=list)
    # Additions beyond the seam.
    episode_id: str | None = None
    usage_by_step: dict[str, dict[str, Any]] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    #: what backs a solved answer: checker | agreement | trusted tool ("" otherwise)
    verified_by: str = ""
    #: the library tool whose answer the task's answer is (the fast path's, or a call of
    #: it on the task's text), read from the supervisor's records
    answer_tool: str | None = None
    #: evidence about library tools left for the stream's batch end (`forge="defer"`)
    evidence: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # traces too: asdict recurses into them

    def to_record(self, task: str, run_id: str | None) -> EpisodeRecord:
        """The library's episode row of this outcome (the trace keeps the history)."""
        from memory import EpisodeRecord

        return EpisodeRecord(
            task_id=self.task_id,
            task=task,
            status=self.status,
            answer=self.answer,
            correct=self.correct,
            attempts=self.attempts,
            n_calls=self.n_calls,
            tokens_in=self.tokens_in,
            tokens_out=self.tokens_out,
            seconds=self.seconds,
            tools_used=list(self.tools_used),
            tools_created=list(self.tools_created),
            feedback=self.feedback,
            run_id=run_id,
            id=self.episode_id,
            trace={
                "history": self.history,
                "reason": self.reason,
                "traces": [t.to_dict() for t in self.traces],
                "verified_by": self.verified_by,
                "answer_tool": self.answer_tool,
                "evidence": self.evidence,
            },
        )

    @classmethod
    def from_record(cls, rec: EpisodeRecord) -> EpisodeResult:
        """The outcome a stored episode recorded (a task finished before a kill)."""
        trace = rec.trace if isinstance(rec.trace, dict) else {}
        return cls(
            task_id=rec.task_id,
            status=rec.status,  # type: ignore[arg-type]
            answer=rec.answer,
            correct=rec.correct,
            attempts=rec.attempts,
            n_calls=rec.n_calls,
            tokens_in=rec.tokens_in,
            tokens_out=rec.tokens_out,
            seconds=rec.seconds,
            tools_used=list(rec.tools_used),
            tools_created=list(rec.tools_created),
            feedback=rec.feedback,  # type: ignore[arg-type]
            reason=str(trace.get("reason") or ""),
            traces=[Trace.from_dict(t) for t in trace.get("traces") or []],
            episode_id=rec.id,
            history=list(trace.get("history") or []),
            verified_by=str(trace.get("verified_by") or ""),
            answer_tool=trace.get("answer_tool"),
            evidence=list(trace.get("evidence") or []),
        )


@dataclass
class AgentDeps:
    """What the graph needs that cannot live in a checkpoint. Thread-safe to share
    between worker threads: each `solve_task` call counts its own usage."""

    model: BaseChatModel
    library: ToolLibrary
    sandbox: Sandbox
    settings: Settings
    checkpointer: BaseCheckpointSaver[str] | None = None
    #: the tools of the run's --mcp servers (None: none given)
    external: McpTools | None = None
    _owned: list[Closable] = field(default_factory=list, repr=False)

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
    only tools similar to the task offered, and a forge that takes the solution's own
    function as the candidate before it asks the model for one."""
    agent, forge = settings.agent, settings.forge
    if agent.plan_without_tools == "auto":
        agent = agent.model_copy(update={"plan_without_tools": "never"})
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


def thread_id(task_id: str, run_id: str | None = None) -> str:
    return f"{run_id}:{task_id}" if run_id else task_id


def load_checkpointed_task(home: Path, tid: str) -> Task | None:
    """The task of a checkpointed thread (for `evoagent solve --resume ID`), or None."""
    if not (Path(home) / CHECKPOINTS_FILE).is_file():
        return None
    saver, conn = open_checkpointer(home)
    try:
        saved = saver.get_tuple({"configurable": {"thread_id": tid}})
    finally:
        conn.close()
    if saved is None:
        return None
    data = saved.checkpoint.get("channel_values", {}).get("task")
    return Task.from_dict(data) if data else None


def solve_task(
    task: Task,
    deps: AgentDeps,
    forge: ForgeMode = "now",
    resume: bool = False,
    on_event: EventCallback | None = None,
    *,
    run_id: str | None = None,
    episode_id: str | None = None,
) -> EpisodeResult:
    """Solve `task` with the graph; see the module docstring.

    `resume=True` continues the thread from its last checkpoint (finished steps are
    not repeated; the task keeps the forge and feedback modes it started with); with no
    checkpoint it starts afresh. `resume=False` discards any earlier state of the
    thread. `episode_id` names the episode (a distributed run's driver picks it, so a task
    re-run after a kill is recognised); by default a fresh one.
    `on_event(dict)` gets progress events (see README). Raises `AgentError`
    for a bad checker spec, before any work.
    """
    from agent.checkers import checker_for
    from agent.graph import build_graph
    from agent.models import UsageCounter
    from agent.nodes.common import Run

    if forge not in ("now", "defer", "off"):
        raise AgentError(f"forge must be 'now', 'defer' or 'off', not {forge!r}")
    checker_for(task)  # a bad spec is the caller's mistake: say so now, not in verify
    tid = thread_id(task.id, run_id)
    run = Run(
        deps=deps,
        counter=UsageCounter(),
        forge=forge,
        on_event=on_event,
        task_id=task.id,
    )
    graph = build_graph(run, checkpointer=deps.checkpointer)
    config: dict[str, Any] = {
        "configurable": {"thread_id": tid},
        "recursion_limit": _recursion(deps),
    }
    started = time.monotonic()
    initial: dict[str, Any] | None = {
        "task": task.to_dict(),
        "episode_id": episode_id or f"ep-{uuid.uuid4().hex[:16]}",
        "run_id": run_id,
        "feedback": deps.settings.agent.feedback,
        "forge": forge,
    }
    if deps.checkpointer is not None:
        saved = graph.get_state(config)
        if resume and saved.values:
            initial = None  # continue from the last checkpoint
            run.emit("resume", next=list(saved.next))
        elif saved.values:
            deps.checkpointer.delete_thread(tid)
    if initial is None and not graph.get_state(config).next:
        final = graph.get_state(config).values  # already finished: nothing to redo
    else:
        # "sync": each step's checkpoint is written before the next step starts, so a
        # hard kill loses at most the step in flight (the default "async" can lose more).
        durability = {"durability": "sync"} if deps.checkpointer is not None else {}
        final = graph.invoke(initial, config, **durability)
    result = episode_result(final)
    if result.seconds == 0.0:
        result.seconds = time.monotonic() - started
    return result


def _recursion(deps: AgentDeps) -> int:
    # Every node runs at most once per act step; the limits in AgentConfig end the task
    # long before this bound, which only guards against a wiring bug.
    agent = deps.settings.agent
    return 10 + agent.max_attempts * (agent.max_steps + 4)


def episode_result(state: dict[str, Any]) -> EpisodeResult:
    """The final graph state as an `EpisodeResult`."""
    total = (state.get("usage") or {}).get("total") or {}
    traces = [Trace.from_dict(t) for t in state.get("traces") or []]
    return EpisodeResult(
        task_id=state["task"]["id"],
        status=state.get("status") or "error",
        answer=state.get("answer"),
        correct=state.get("correct"),
        attempts=state.get("attempt", 0),
        n_calls=int(total.get("n_calls", 0)),
        tokens_in=int(total.get("tokens_in", 0)),
        tokens_out=int(total.get("tokens_out", 0)),
        seconds=round(float(state.get("seconds") or 0.0), 3),
        tools_used=list(state.get("tools_used") or []),
        tools_created=list(state.get("tools_created") or []),
        feedback=state.get("feedback") or "none",
        reason=state.get("reason") or "",
        traces=traces,
        episode_id=state.get("episode_id"),
        usage_by_step=(state.get("usage") or {}).get("by_step") or {},
        history=list(state.get("history") or []),
        verified_by=(state.get("verified_by") or "") if state.get("status") == "solved" else "",
        answer_tool=state.get("answer_tool"),
        evidence=list(state.get("deferred_evidence") or []),
    )
