"""The stream runner: parallel batch evolution over a task stream.

    for each batch of B tasks (fixed by stream order, never by the number of workers):
        run its unfinished tasks in W threads, each against the library as it was at
        the batch start (forge="defer": no tool is admitted mid-batch)
        as each task ends: append its result and its traces (fsync'd)
        at the batch end: ONE forge_batch over the batch's traces, in stream order
        (duplicates across the batch are merged), then consolidation every K tasks

Because batches are cut by stream order and the forge runs once per batch on traces
in stream order, the library after each batch is the same with 1 or 8 workers.

Resume: the run's folder has the stream as it was read, every finished result, and
the traces of finished tasks whose batch was not forged yet. Resuming skips finished
tasks, continues unfinished ones from their LangGraph checkpoint (thread id
`<run-id>:<task-id>`), and forges a batch once all its tasks are done, so a killed
run resumed does no task twice and loses none.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.stream import batchend, metrics
from agent.stream.batchend import ForgeFn
from agent.stream.options import RunOptions
from agent.stream.store import RunStore, error_line, result_line
from agent.task import Task
from toolforge.types import Trace

if TYPE_CHECKING:
    from agent.deps import AgentDeps
    from agent.stream.ray_exec import RayExecutor

log = logging.getLogger(__name__)
#: seconds between two rewrites of summary.json during a run
SUMMARY_EVERY_S = 60.0


@dataclass
class Progress:
    """What the live display shows; updated after every task and batch."""

    run_id: str
    n_tasks: int
    n_done: int
    last: dict[str, Any] | None
    figures: dict[str, Any]
    library_size: int
    batch: int
    n_batches: int
    phase: str  # "task" | "forge" | "batch" | "done"


@dataclass
class RunOutcome:
    run_id: str
    status: str  # finished | stopped | interrupted
    message: str
    summary: dict[str, Any]
    dir: Path
    results: list[dict[str, Any]] = field(default_factory=list)


ProgressCallback = Callable[[Progress], None]
SolveFn = Callable[..., Any]
"""`agent.solve.solve_task`'s signature; injectable so the runner's own logic (batches,
resume, error limits) can be tested without a model or a sandbox."""


class Runner:
    """One run of a stream: its store, options and deps (which its caller opens and
    closes); `resuming` continues a run's folder; `remote` solves on Ray actors."""

    def __init__(
        self,
        store: RunStore,
        options: RunOptions,
        deps: AgentDeps,
        *,
        resuming: bool,
        remote: RayExecutor | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> None:
        self.store = store
        self.options = options
        self.on_progress = on_progress
        self.resuming = resuming
        self.tasks = [Task.from_dict(t) for t in store.task_dicts()]
        self.batches = [
            self.tasks[i : i + options.batch] for i in range(0, len(self.tasks), options.batch)
        ]
        self.deps = deps
        self.library = deps.own_library()
        self._lock = threading.Lock()
        #: status of each finished task (the rows themselves stay on disk: a stream of a
        #: million tasks must not hold them all)
        self.done: dict[str, str] = {}
        window = metrics.default_window(len(self.tasks))
        self.recent: deque[dict[str, Any]] = deque(maxlen=window)
        #: traces and evidence of finished tasks whose batch has not ended yet, by task id
        self.pending: dict[str, dict[str, list[dict[str, Any]]]] = {}
        self.library_size = 0
        self.errors = 0  # consecutive `error` results, in the order tasks end
        #: result lines per task id (a task that ended in error is run again, as a new attempt)
        self.attempts: dict[str, int] = {}
        #: where tasks are solved when not on this process's threads (`--ray`)
        self.remote = remote
        self._summary_at = 0.0

    # -- the loop ---------------------------------------------------------------

    def run(self, solve_fn: SolveFn | None = None, forge_fn: ForgeFn | None = None) -> RunOutcome:
        if solve_fn is None:
            from agent.solve import solve_task

            solve_fn = solve_task
        if forge_fn is None and self.options.learn:
            from toolforge import forge_batch

            forge_fn = forge_batch
        self.solve_fn: SolveFn = solve_fn
        self.forge_fn: ForgeFn | None = forge_fn
        started = time.monotonic()
        meta = self.store.meta()
        elapsed_before = float(meta.get("elapsed_s") or 0.0)
        library = self.library
        # Anything that escapes the loop (Ctrl-C, a bug) leaves a resumable run.
        status = "interrupted"
        message = f"interrupted: resume with `evoagent run --resume {self.store.run_id}`"
        try:
            self.library_size = len(library.list_tools())
            changes: dict[str, Any] = {"status": "running", "pid": os.getpid()}
            if not self.resuming:
                changes["library_size_start"] = self.library_size
            else:
                changes["resumed"] = int(meta.get("resumed") or 0) + 1
            meta = self.store.update_meta(**changes)
            library.start_run(self.store.run_id, _db_meta(meta))
            # Read once, at the start: from here on the runner only appends.
            for row in self.store.raw_results():
                self.done[row["id"]] = row["status"]
                self.attempts[row["id"]] = self.attempts.get(row["id"], 0) + 1
                self.recent.append(row)
            forged = {b["batch"] for b in self.store.batches()}
            self.pending = self.store.traces(self.done) if self.options.learn else {}
            stop = None
            with ThreadPoolExecutor(
                self.options.workers, thread_name_prefix="evoagent-task"
            ) as pool:
                for index, batch in enumerate(self.batches):
                    if index in forged:
                        continue
                    if self.remote is not None:
                        self.remote.begin_batch(library)
                    stop = self._run_batch(pool, index, batch)
                    if stop:
                        break
                    self._end_batch(index, batch)
            status, message = ("stopped", stop) if stop else ("finished", "")
        finally:
            elapsed = elapsed_before + time.monotonic() - started
            ran: dict[str, Any] = {"executor": self.options.executor}
            if self.remote is not None:
                self.remote.close()
                ran["nodes"] = sorted(set(meta.get("nodes") or []) | self.remote.nodes)
            meta = self.store.update_meta(
                status=status, elapsed_s=round(elapsed, 3), message=message, **ran
            )
            summary = self._summary(meta)
            self.store.write_summary(summary)
            try:
                self.store.write_tools(batchend.tool_snapshot(library))
                self.store.write_health(library.health())
                library.finish_run(self.store.run_id, summary)
            finally:
                self.store.unlock()
        self._emit(phase="done", last=None, batch=len(self.batches))
        if status == "stopped":
            message += f"; fix the cause, then `evoagent run --resume {self.store.run_id}`"
        return RunOutcome(
            self.store.run_id, status, message, summary, self.store.dir, self.store.results()
        )

    def _run_batch(self, pool: ThreadPoolExecutor, index: int, batch: list[Task]) -> str | None:
        """Run the batch's unfinished tasks; return a stop message, or None when all ended.

        A task that ended in `error` in a batch not forged yet is run again: the error
        (an endpoint or the sandbox down) said nothing about the task, and its batch has
        not been learned from, so retrying it changes nothing else."""
        todo = [t for t in batch if self.done.get(t.id, "error") == "error"]
        todo.reverse()  # popped from the end: stream order
        # Submitted as workers free up (never queued ahead), so a stop leaves the rest
        # of the batch unstarted, the same whatever the timing.
        pending: set[Future[dict[str, Any]]] = set()
        stop: str | None = None
        while todo or pending:
            while todo and stop is None and len(pending) < self.options.workers:
                task = todo.pop()
                resume = self.resuming and task.id not in self.done
                pending.add(pool.submit(self._solve, task, index, resume))
            if not pending:
                break
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                row = future.result()
                self.errors = self.errors + 1 if row["status"] == "error" else 0
                limit = self.options.max_consecutive_errors
                if limit and self.errors >= limit and stop is None:
                    stop = (
                        f"stopped after {self.errors} consecutive errors; the last: "
                        f"{row['id']}: {row.get('reason') or 'no reason given'}"
                    )
        return stop

    def _solve(self, task: Task, batch: int, resume: bool) -> dict[str, Any]:
        """Solve one task and append its result. `resume`: continue it from its
        checkpoint (an interrupted task); a task that ended in error starts afresh, as
        its checkpoint holds the error, not progress."""
        forge = "defer" if self.options.learn else "off"
        try:
            if self.remote is not None:
                result = self.remote.solve(
                    task,
                    self.deps,
                    forge=forge,
                    run_id=self.store.run_id,
                    attempt=self.attempts.get(task.id, 0),
                )
            else:
                result = self.solve_fn(
                    task, self.deps, forge=forge, resume=resume, run_id=self.store.run_id
                )
            data = result_line(task, batch, result, self.library_size)
            traces = [t.to_dict() for t in result.traces] if self.options.learn else []
            evidence = list(result.evidence) if self.options.learn else []
        except Exception as exc:
            # solve_task turns model and sandbox failures into an `error` result itself, so
            # what lands here is unexpected: it ends this task only, and its traceback is kept
            # in the result line for the bug report instead of being lost.
            log.exception("task %s ended with an unexpected error", task.id)
            reason = f"{type(exc).__name__}: {exc}"
            data = error_line(task, batch, self.library_size, reason, traceback.format_exc())
            traces, evidence = [], []
        # Traces first: a result line promises its traces are on disk for the batch's forge.
        if traces or evidence:
            self.store.append_traces(task.id, batch, traces, evidence)
        self.store.append_result(data)
        # The result is durable: the task's checkpoints are no longer needed (they hold
        # every step's state; kept, they would grow with the stream for ever).
        self._forget_checkpoints(task.id)
        with self._lock:
            self.attempts[task.id] = self.attempts.get(task.id, 0) + 1
            self.done[task.id] = data["status"]
            self.recent.append(data)
            self.pending[task.id] = {"traces": traces, "evidence": evidence}
        self._emit(phase="task", last=data, batch=batch)
        return data

    def _forget_checkpoints(self, task_id: str) -> None:
        from agent.solve import thread_id

        checkpointer = self.deps.checkpointer
        if checkpointer is not None:
            checkpointer.delete_thread(thread_id(task_id, self.store.run_id))

    def _end_batch(self, index: int, batch: list[Task]) -> None:
        """Forge the batch's traces in stream order, then consolidate when it is time."""
        record: dict[str, Any] = {"batch": index, "task_ids": [t.id for t in batch], "created": {}}
        started = time.monotonic()
        if self.options.learn:
            self._emit(phase="forge", last=None, batch=index)
            pending = [self.pending.get(task.id) or {} for task in batch]
            record.update(
                batchend.evidence([e for p in pending for e in p.get("evidence", [])], self.deps)
            )
            traces = [Trace.from_dict(d) for p in pending for d in p.get("traces", [])]
            assert self.forge_fn is not None
            record.update(batchend.forge(traces, self.deps, self.forge_fn))
            record.update(batchend.repair(self.deps))
            every = self.options.consolidate_every
            done_before = index * self.options.batch
            done_after = done_before + len(batch)
            if every and done_after // every > done_before // every:
                record["consolidation"] = batchend.consolidate(self.library)
        self.library_size = len(self.library.list_tools())
        record["library_size"] = self.library_size
        record["seconds"] = round(time.monotonic() - started, 3)
        if self.remote is not None:
            record["snapshot"] = self.remote.snapshot
        # The lines first: once the batch is on record its end is not run again.
        self.store.amend_results(index, record.get("created") or {})
        self.store.append_batch(record)
        # The batch is on record: its traces are forged and no longer needed.
        self.store.clear_traces()
        for task in batch:
            self.pending.pop(task.id, None)
        # The summary re-reads the run's files: at most once a minute (and at the end), so
        # a long stream's batch ends do not grow with its length.
        if time.monotonic() - self._summary_at >= SUMMARY_EVERY_S:
            self._summary_at = time.monotonic()
            self.store.write_summary(self._summary(self.store.meta()))
        self._emit(phase="batch", last=None, batch=index)

    # -- figures and progress -----------------------------------------------------

    def _summary(self, meta: dict[str, Any]) -> dict[str, Any]:
        return metrics.summarize(
            self.store.results(), self.store.batches(), meta, self.store.health()
        )

    def _emit(self, *, phase: str, last: dict[str, Any] | None, batch: int) -> None:
        if self.on_progress is None:
            return
        with self._lock:
            recent = list(self.recent)
            n_done = len(self.done)
        self.on_progress(
            Progress(
                run_id=self.store.run_id,
                n_tasks=len(self.tasks),
                n_done=n_done,
                last=last,
                figures=metrics.figures(recent) | {"window": self.recent.maxlen},
                library_size=self.library_size,
                batch=batch,
                n_batches=len(self.batches),
                phase=phase,
            )
        )


def _db_meta(meta: dict[str, Any]) -> dict[str, Any]:
    """The run's meta as the library keeps it (not the pid of the process that ran it)."""
    return {k: v for k, v in meta.items() if k != "pid"}
