"""Starting and resuming a run: check what it needs (model, library, sandbox, a Ray
cluster) before its folder exists, then hand it to the `Runner` (runner.py)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from agent.config import Settings
from agent.deps import DEFAULT_MODEL
from agent.stream.batchend import ForgeFn
from agent.stream.errors import StreamError
from agent.stream.inputs import task_to_dict
from agent.stream.options import Resume, RunOptions, saved_model, with_options
from agent.stream.runner import ProgressCallback, Runner, RunOutcome, SolveFn
from agent.stream.store import RunStore, new_run_id
from agent.task import Task

if TYPE_CHECKING:
    from agent.deps import AgentDeps
    from agent.stream.ray_exec import RayExecutor


@dataclass
class RunHooks:
    """What a caller may hand a run in place of what it would open or call itself: its
    deps (tests, benchmarks: a given model or sandbox; the caller closes them), the live
    display, and the solve and forge functions (the runner's own logic, tested without a
    model or a sandbox)."""

    deps: AgentDeps | None = None
    on_progress: ProgressCallback | None = None
    solve_fn: SolveFn | None = None
    forge_fn: ForgeFn | None = None


def start_run(
    tasks: Sequence[Task],
    settings: Settings,
    options: RunOptions,
    *,
    run_id: str | None = None,
    meta: dict[str, Any] | None = None,
    hooks: RunHooks | None = None,
) -> RunOutcome:
    """Start a new run of `tasks` and run it to its end (or a stop). `meta` adds to what
    the run's meta.json records (the stream's path as `stream`, a benchmark's labels)."""
    hooks = hooks or RunHooks()
    run_id = run_id or new_run_id()
    settings = with_options(settings, options)
    record = {
        "run_id": run_id,
        "stream": "",
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
        **(meta or {}),
    }
    # Open the model, library and sandbox first: a missing model, a stopped Docker engine
    # or a Ray cluster that is not there is reported before any run folder exists.
    preflight(options)
    with _opened(settings, hooks.deps) as deps, _executor(settings, options) as remote:
        store = RunStore.create(settings.home, run_id, record, [task_to_dict(t) for t in tasks])
        store.lock()
        runner = Runner(
            store, options, deps, resuming=False, remote=remote, on_progress=hooks.on_progress
        )
        return runner.run(hooks.solve_fn, hooks.forge_fn)


def resume_run(
    run_id: str,
    settings: Settings,
    *,
    changes: Resume | None = None,
    hooks: RunHooks | None = None,
) -> RunOutcome:
    """Continue run `run_id` where it stopped, with the options it was started with (a
    resume may change only what `Resume` holds).

    The run's saved model and base URL win over `settings` (env, config.toml): a run's
    figures must come from one model. `changes.model`/`base_url` are the ones a person
    named on the command line: naming another than the run's is an error, not a switch."""
    hooks = hooks or RunHooks()
    changes = changes or Resume()
    store = RunStore.open(settings.home, run_id)
    store.lock()  # before reading its state: two resumes of one run, only one proceeds
    try:
        meta = store.meta()
        options = _resumable(store, meta, changes)
        preflight(options)
        settings = saved_model(run_id, meta, settings, changes.model, changes.base_url)
        settings = with_options(settings, options)
    except BaseException:
        store.unlock()
        raise
    try:
        with _opened(settings, hooks.deps) as deps, _executor(settings, options) as remote:
            store.repair()
            runner = Runner(
                store, options, deps, resuming=True, remote=remote, on_progress=hooks.on_progress
            )
            return runner.run(hooks.solve_fn, hooks.forge_fn)
    finally:
        store.unlock()  # the runner unlocks at its end; here for what failed before it


def _resumable(store: RunStore, meta: dict[str, Any], changes: Resume) -> RunOptions:
    """The options a run resumes with; an error when it cannot be resumed."""
    run_id = store.run_id
    info = store.info()
    if info.status == "running" and meta.get("pid") != os.getpid():
        raise StreamError(
            f"run {run_id} is still running (pid {meta.get('pid')}): wait for it, or stop it first"
        )
    if info.status == "finished":
        raise StreamError(f"run {run_id} is already finished: see `evoagent runs show {run_id}`")
    saved = dict(meta.get("options") or {})
    if changes.workers is not None:
        saved["workers"] = changes.workers
    if changes.ray_address is not None:
        if saved.get("executor", "threads") != "ray":
            raise StreamError(f"run {run_id} ran on threads: resume it without --ray")
        saved["ray_address"] = changes.ray_address
    return RunOptions(**saved)


@contextmanager
def _opened(settings: Settings, given: AgentDeps | None) -> Iterator[AgentDeps]:
    """The deps a run uses: the caller's (with this run's feedback and learn mode; the
    caller closes them), or opened from settings and closed at the run's end."""
    if given is not None:
        given.settings = given.settings.model_copy(
            update={"agent": settings.agent, "model": settings.model, "base_url": settings.base_url}
        )
        yield given
        return
    from agent.deps import AgentDeps

    with AgentDeps.from_settings(settings) as deps:
        yield deps


@contextmanager
def _executor(settings: Settings, options: RunOptions) -> Iterator[RayExecutor | None]:
    """The Ray executor a run with `--ray` needs (None: tasks run on threads here); the
    runner closes it at its end, this for a failure before it starts."""
    if options.executor != "ray":
        yield None
        return
    from agent.stream.ray_exec import RayExecutor

    remote = RayExecutor(settings, options.workers, options.ray_address)
    try:
        yield remote
    except BaseException:
        remote.close()
        raise


def preflight(options: RunOptions) -> None:
    """With `--ray`: Ray installed and a cluster answering at its address (Ray's own
    connect retries for minutes), before anything else opens."""
    if options.executor == "ray":
        from agent.stream.ray_exec import check_reachable, import_ray

        if not import_ray().is_initialized():  # a caller (a test, a notebook) joined one
            check_reachable(options.ray_address)
