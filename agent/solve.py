"""Solving one task: the front door the CLI and the stream runner share.

```python
deps = AgentDeps.from_settings(settings)            # model, library, sandbox, checkpointer
episode = solve_task(Task(id="t1", task="..."), deps, forge="now")
```
`solve_task` builds the graph for this one call (the per-call usage counter and event
callback are closed over, never checkpointed), runs it on the thread `[run_id:]task_id`
of `<home>/checkpoints.db`, and stores the `Episode` its final state becomes, with what
it taught, in one transaction: the only place an episode is written. It never raises for
what the model or the task's code did: those end as a status. It raises `AgentError` for
a person's mistake (a model that is not there, a bad checker).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.deps import CHECKPOINTS_FILE, AgentDeps, open_checkpointer
from agent.errors import AgentError
from agent.task import Task
from agent.types import ForgeMode
from memory.episode import Episode

EventCallback = Callable[[dict[str, Any]], None]


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
) -> Episode:
    """Solve `task` with the graph and store its episode; see the module docstring.

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
    from agent.nodes.learn import lessons
    from agent.state import episode_of
    from memory import Learned

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
        # A thread to continue says what runs next, or ended with a status; one that does
        # neither (a kill that came while its first step was being written) holds no
        # progress: the task starts afresh rather than end as an empty `error`.
        progress = bool(saved.next) or bool((saved.values or {}).get("status"))
        if resume and saved.values and progress:
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
    episode = episode_of(final)
    if episode.seconds == 0.0:
        episode.seconds = round(time.monotonic() - started, 3)
    assert episode.id is not None
    if deps.library.get_episode(episode.id) is None:
        # The episode's row is the marker that its learning is done: written with all it
        # taught in one transaction (a task resumed after a kill that came between the
        # graph's end and this write stores it now; one that came after, finds it).
        learned = lessons(final) if deps.settings.agent.learn else Learned()
        deps.library.record_episode(episode, learned)
    return episode


def _recursion(deps: AgentDeps) -> int:
    # Every node runs at most once per act step; the limits in AgentConfig end the task
    # long before this bound, which only guards against a wiring bug.
    agent = deps.settings.agent
    return 10 + agent.max_attempts * (agent.max_steps + 4)
