"""Starting and resuming a run: check what it needs (model, library, sandbox, a Ray
cluster) before its folder exists, then hand it to the `Runner` (runner.py)."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from agent.config import Settings
from agent.solve import DEFAULT_MODEL
from agent.stream.batchend import ForgeFn
from agent.stream.errors import StreamError
from agent.stream.inputs import task_to_dict
from agent.stream.options import RunOptions, RunOutcome, deps_for, saved_model, with_options
from agent.stream.runner import ProgressCallback, Runner, SolveFn
from agent.stream.store import RunStore, new_run_id
from agent.task import Task

if TYPE_CHECKING:
    from agent.solve import AgentDeps
    from agent.stream.ray_exec import RayExecutor


def start_run(
    tasks: Sequence[Task],
    settings: Settings,
    options: RunOptions,
    *,
    stream: str = "",
    run_id: str | None = None,
    deps: AgentDeps | None = None,
    on_progress: ProgressCallback | None = None,
    extra_meta: dict[str, Any] | None = None,
    solve_fn: SolveFn | None = None,
    forge_fn: ForgeFn | None = None,
) -> RunOutcome:
    """Start a new run of `tasks` and run it to its end (or a stop)."""
    run_id = run_id or new_run_id()
    settings = with_options(settings, options)
    meta = {
        "run_id": run_id,
        "stream": stream,
        "n_tasks": len(tasks),
        # The model that runs, also when none was configured (the local default).
        "model": settings.model or DEFAULT_MODEL,
        # Kept so a resume reaches the same server, not the provider's default endpoint.
        "base_url": settings.base_url,
        "feedback": options.feedback,
        "learn": options.learn,
        "options": asdict(options),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "status": "starting",
        **(extra_meta or {}),
    }
    # Open the model, library and sandbox first: a missing model, a stopped Docker engine
    # or a Ray cluster that is not there is reported before any run folder exists.
    preflight(options)
    deps, own = deps_for(settings, deps)
    remote = None
    try:
        remote = open_executor(settings, options)
        store = RunStore.create(settings.home, run_id, meta, [task_to_dict(t) for t in tasks])
        store.lock()
    except BaseException:
        _close(remote, deps if own else None)
        raise
    runner = Runner(store, settings, options, deps, own, on_progress, resuming=False, remote=remote)
    return runner.run(solve_fn, forge_fn)


def resume_run(
    run_id: str,
    settings: Settings,
    *,
    workers: int | None = None,
    model: str | None = None,
    base_url: str | None = None,
    ray_address: str | None = None,
    deps: AgentDeps | None = None,
    on_progress: ProgressCallback | None = None,
    solve_fn: SolveFn | None = None,
    forge_fn: ForgeFn | None = None,
) -> RunOutcome:
    """Continue run `run_id` where it stopped, with the options it was started with
    (only the number of workers may change).

    The run's saved model and base URL win over `settings` (env, config.toml): a run's
    figures must come from one model. `model`/`base_url` are the ones a person named on
    the command line: naming another than the run's is an error, not a switch."""
    store = RunStore.open(settings.home, run_id)
    store.lock()  # before reading its state: two resumes of one run, only one proceeds
    meta = store.meta()
    info = store.info()
    if info.status == "running" and meta.get("pid") != os.getpid():
        store.unlock()
        raise StreamError(
            f"run {run_id} is still running (pid {meta.get('pid')}): wait for it, or stop it first"
        )
    if info.status == "finished":
        store.unlock()
        raise StreamError(f"run {run_id} is already finished: see `evoagent runs show {run_id}`")
    saved = dict(meta.get("options") or {})
    if workers is not None:
        saved["workers"] = workers
    if ray_address is not None:
        if saved.get("executor", "threads") != "ray":
            store.unlock()
            raise StreamError(f"run {run_id} ran on threads: resume it without --ray")
        saved["ray_address"] = ray_address
    options = RunOptions(**saved)
    try:
        preflight(options)
        settings = saved_model(run_id, meta, settings, model, base_url)
        settings = with_options(settings, options)
        deps, own = deps_for(settings, deps)
    except BaseException:
        store.unlock()
        raise
    try:
        remote = open_executor(settings, options)
    except BaseException:
        store.unlock()
        _close(None, deps if own else None)
        raise
    store.repair()
    runner = Runner(store, settings, options, deps, own, on_progress, resuming=True, remote=remote)
    return runner.run(solve_fn, forge_fn)


def preflight(options: RunOptions) -> None:
    """With `--ray`: Ray installed and a cluster answering at its address (Ray's own
    connect retries for minutes), before anything else opens."""
    if options.executor == "ray":
        from agent.stream.ray_exec import check_reachable, import_ray

        if not import_ray().is_initialized():  # a caller (a test, a notebook) joined one
            check_reachable(options.ray_address)


def open_executor(settings: Settings, options: RunOptions) -> RayExecutor | None:
    """The Ray executor a run with `--ray` needs (None: tasks run on threads here)."""
    if options.executor != "ray":
        return None
    from agent.stream.ray_exec import RayExecutor

    return RayExecutor(settings, options.workers, options.ray_address)


def _close(remote: RayExecutor | None, deps: AgentDeps | None) -> None:
    try:
        if remote is not None:
            remote.close()
    finally:
        if deps is not None:
            deps.close()
