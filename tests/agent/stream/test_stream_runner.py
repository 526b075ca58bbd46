"""The runner's own logic — batches, the library a batch sees, resume, error limits,
worker-count independence — with the real Library (hash embeddings) and small real
implementations of the two seams it calls: `solve_task` and `forge_batch`.

`solve` solves a task cheaply when its family's tool is in the library (and uses it),
else expensively with a trace; `forge` admits one tool per family and merges repeats,
through the real `Library`. The graph, the model and the sandbox are exercised by the
end-to-end tests (test_stream_e2e.py).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from agent.config import load_settings
from agent.deps import AgentDeps
from agent.stream.errors import StreamError
from agent.stream.launch import RunHooks, resume_run, start_run
from agent.stream.options import Resume, RunOptions
from agent.stream.store import RunStore
from agent.task import Task
from memory import Library, MemoryConfig, Provenance, ToolDraft
from memory.episode import Episode
from toolforge.types import ForgeOutcome, Trace


def Deps(library: Any, settings: Any, model: Any = None, sandbox: Any = None) -> AgentDeps:
    """The runner's deps around a real library, with no model or sandbox unless given."""
    return AgentDeps(model=model, library=library, sandbox=sandbox, settings=settings)


class Crash(BaseException):
    """Stands in for a kill: not an Exception, so nothing catches it as a task error."""


class Stack:
    """solve/forge with call logs, shared by the worker threads."""

    def __init__(self, crash_after: int | None = None, fail: set[str] | None = None) -> None:
        self.calls: list[tuple[str, str, bool]] = []  # (task id, forge mode, resume)
        self.forged: list[list[str]] = []
        self.crash_after = crash_after
        self.fail = fail or set()
        self.lock = threading.Lock()

    def solve(self, task: Task, deps: Deps, forge: str, resume: bool, run_id: str) -> Episode:
        with self.lock:
            self.calls.append((task.id, forge, resume))
            n = len(self.calls)
        if self.crash_after is not None and n > self.crash_after:
            raise Crash
        if task.id in self.fail:
            raise ConnectionError("endpoint refused the connection")
        family = task.tags[0]
        tool = f"solve_{family}"
        have = tool in {t.name for t in deps.library.list_tools()}
        traces = (
            []
            if have or forge != "defer"
            else [Trace(task=task.task, task_id=task.id, code=f"def {tool}(): ...")]
        )
        return Episode(
            task_id=task.id,
            task=task.task,
            status="solved",
            answer="x",
            correct=task.expected == "x",
            feedback=deps.settings.agent.feedback,
            attempts=1,
            n_calls=2 if have else 4,
            tokens_in=80 if have else 900,
            tokens_out=20 if have else 300,
            seconds=0.01,
            tools_used=[tool] if have else [],
            traces=traces,
        )

    def forge(
        self, traces: list[Trace], library: Any, sandbox: Any, model: Any, config: Any
    ) -> list[ForgeOutcome]:
        self.forged.append([t.task_id for t in traces])
        out = []
        for trace in traces:
            name = "solve_" + trace.task_id.rpartition("-")[0]
            prov = Provenance(task=trace.task, task_id=trace.task_id)
            if library.get_tool(name) is None:
                source = f'def {name}(text: str) -> str:\n    """Solve a {name} task."""\n    return text\n'
                library.add_tool(
                    ToolDraft(
                        name,
                        source,
                        "def test_x():\n    pass\n",
                        f"{name}(text: str) -> str",
                        "Solve.",
                        prov,
                    )
                )
                out.append(ForgeOutcome("admitted", name, 1, "new"))
            else:
                library.merge_into(name, prov)
                out.append(ForgeOutcome("merged", name, None, "same behaviour"))
        return out


def _tasks(n_per_family: int = 4) -> list[Task]:
    # Interleaved families, one label wrong per family so the solve rate is not trivial.
    return [
        Task(id=f"{fam}-{i}", task=f"{fam} task {i}", expected="x" if i != 2 else "y", tags=[fam])
        for i in range(n_per_family)
        for fam in ("alpha", "beta", "gamma")
    ]


@pytest.fixture
def library(home: Path) -> Any:
    lib = Library.open(home, config=MemoryConfig(embedder="hash"))
    yield lib
    lib.close()


def _resume(home: Path, library: Any, stack: Stack) -> Any:
    settings = load_settings(home=home)
    return resume_run(
        "r1",
        settings,
        hooks=RunHooks(
            deps=Deps(library=library, settings=settings),
            solve_fn=stack.solve,
            forge_fn=stack.forge,
        ),
    )


def _run(home: Path, library: Any, stack: Stack, **options: Any) -> Any:
    settings = load_settings(home=home)
    deps = Deps(library=library, settings=settings)
    run_id = options.pop("run_id", "r1")
    return start_run(
        _tasks(),
        settings,
        RunOptions(**options),
        run_id=run_id,
        meta={"stream": "s.jsonl"},
        hooks=RunHooks(deps=deps, solve_fn=stack.solve, forge_fn=stack.forge),
    )


def _comparable(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [
        (
            r["id"],
            r["status"],
            r["answer"],
            r["correct"],
            r["n_calls"],
            r["tokens_in"],
            r["tokens_out"],
            r["tools_used"],
            r["tools_created"],
            r["batch"],
        )
        for r in rows
    ]


def test_a_batch_sees_the_library_of_its_start_and_forges_once_at_its_end(
    home: Path, library: Any
) -> None:
    stack = Stack()
    outcome = _run(home, library, stack, batch=4, workers=2)
    assert outcome.status == "finished"
    # 12 tasks in batches of 4: alpha, beta, gamma, alpha | beta, gamma, alpha, beta | ...
    assert [c[1] for c in stack.calls] == ["defer"] * 12
    assert stack.forged == [
        ["alpha-0", "beta-0", "gamma-0", "alpha-1"]
    ]  # later batches: tools used, no traces
    rows = {r["id"]: r for r in outcome.results}
    assert rows["alpha-1"]["tools_used"] == []  # same batch as alpha-0: the tool did not exist yet
    assert rows["beta-1"]["tools_used"] == ["solve_beta"]
    assert rows["alpha-0"]["tools_created"] == ["solve_alpha"]
    assert rows["alpha-1"]["tools_created"] == []  # merged into alpha-0's tool: not a new one
    assert sorted(t.name for t in library.list_tools()) == [
        "solve_alpha",
        "solve_beta",
        "solve_gamma",
    ]
    s = outcome.summary
    assert s["n_tools_created"] == 3 and s["library_size"] == 3 and s["library_size_start"] == 0
    assert s["halves"]["second"]["tokens_per_success"] < s["halves"]["first"]["tokens_per_success"]
    assert s["statuses"] == {"solved": 12} and s["solve_rate"] == 0.75  # labels score every mode
    store = RunStore.open(home, "r1")
    assert [b["library_size"] for b in store.batches()] == [3, 3, 3]
    assert library.get_run("r1")["summary"]["n_done"] == 12  # the run summary in the database


def test_one_worker_and_four_workers_give_the_same_results(tmp_path: Path) -> None:
    results = []
    for workers in (1, 4):
        home = tmp_path / f"home{workers}"
        lib = Library.open(home, config=MemoryConfig(embedder="hash"))
        try:
            outcome = _run(home, lib, Stack(), batch=4, workers=workers)
            results.append((_comparable(outcome.results), sorted(t.name for t in lib.list_tools())))
        finally:
            lib.close()
    assert results[0] == results[1]


def test_no_learn_freezes_the_library(home: Path, library: Any) -> None:
    stack = Stack()
    outcome = _run(home, library, stack, batch=4, learn=False)
    assert {c[1] for c in stack.calls} == {"off"}
    assert stack.forged == [] and library.list_tools() == []
    assert outcome.summary["learn"] is False and outcome.summary["reuse_rate"] == 0


def test_a_crashed_run_resumes_without_losing_or_repeating_a_task(home: Path, library: Any) -> None:
    crashing = Stack(crash_after=6)
    with pytest.raises(Crash):
        _run(home, library, crashing, batch=4, workers=1)
    store = RunStore.open(home, "r1")
    assert store.info().status == "interrupted"
    finished = [r["id"] for r in store.raw_results()]
    assert finished == [t.id for t in _tasks()[:6]]
    assert [b["batch"] for b in store.batches()] == [0]
    healthy = Stack()
    outcome = _resume(home, library, healthy)
    assert outcome.status == "finished"
    # Only the unfinished tasks ran again, each once, continuing from their checkpoints.
    assert [c[0] for c in healthy.calls] == [t.id for t in _tasks()[6:]]
    assert all(c[2] for c in healthy.calls)
    assert sorted(r["id"] for r in outcome.results) == sorted(t.id for t in _tasks())
    lines = (store.dir / "results.jsonl").read_text().splitlines()
    assert len(lines) == 12
    # And the results equal those of a run never interrupted.
    other = home.parent / "clean"
    lib2 = Library.open(other, config=MemoryConfig(embedder="hash"))
    try:
        clean = _run(other, lib2, Stack(), batch=4, workers=1)
    finally:
        lib2.close()
    assert _comparable(outcome.results) == _comparable(clean.results)
    with pytest.raises(StreamError, match="already finished"):
        _resume(home, library, Stack())


def test_consecutive_errors_stop_the_run_and_resume_retries_them(home: Path, library: Any) -> None:
    failing = Stack(fail={t.id for t in _tasks()[5:]})
    outcome = _run(home, library, failing, batch=4, workers=1, max_consecutive_errors=2)
    assert outcome.status == "stopped"
    assert "2 consecutive errors" in outcome.message and "endpoint refused" in outcome.message
    assert "--resume r1" in outcome.message
    rows = {r["id"]: r for r in outcome.results}
    assert [rows[t.id]["status"] for t in _tasks()[:7]] == ["solved"] * 5 + ["error"] * 2
    assert "ConnectionError: endpoint refused" in rows["gamma-1"]["reason"]
    assert len(rows) == 7  # the rest of the batch was not started
    healthy = Stack()
    resumed = _resume(home, library, healthy)
    assert resumed.status == "finished"
    # The two errors of the unforged batch ran again, afresh; nothing finished ran twice.
    assert [(c[0], c[2]) for c in healthy.calls][:3] == [
        ("gamma-1", False),
        ("alpha-2", False),
        ("beta-2", True),
    ]
    assert {r["status"] for r in resumed.results} == {"solved"}
    assert len(resumed.results) == 12


def test_errors_below_the_limit_do_not_stop_the_stream(home: Path, library: Any) -> None:
    outcome = _run(
        home, library, Stack(fail={"beta-0", "gamma-3"}), batch=4, max_consecutive_errors=2
    )
    assert outcome.status == "finished"
    assert outcome.summary["statuses"] == {"solved": 10, "error": 2}
    errored = [r for r in RunStore.open(home, "r1").results() if r["status"] == "error"]
    # An unexpected exception keeps its traceback in the result line, for the bug report.
    assert all("ConnectionError: endpoint refused" in r["traceback"] for r in errored)


def test_progress_is_reported_per_task_and_batch(home: Path, library: Any) -> None:
    seen: list[Any] = []
    settings = load_settings(home=home)
    stack = Stack()
    start_run(
        _tasks(),
        settings,
        RunOptions(batch=6),
        run_id="r1",
        hooks=RunHooks(
            deps=Deps(library=library, settings=settings),
            solve_fn=stack.solve,
            forge_fn=stack.forge,
            on_progress=seen.append,
        ),
    )
    phases = [p.phase for p in seen]
    assert phases.count("task") == 12 and phases.count("forge") == 2 and phases[-1] == "done"
    last_task = [p for p in seen if p.phase == "task"][-1]
    assert last_task.n_done == 12 and last_task.library_size == 3
    assert 0 < last_task.figures["tokens_per_task"] < 1200


def test_options_are_checked(home: Path) -> None:
    with pytest.raises(StreamError, match="--workers"):
        RunOptions(workers=0)
    with pytest.raises(StreamError, match="--feedback"):
        RunOptions(feedback="sometimes")


def test_resume_reaches_the_server_the_run_started_with(home: Path, library: Any) -> None:
    server = "http://127.0.0.1:9/v1"
    failing = Stack(fail={t.id for t in _tasks()})
    settings = load_settings(home=home, model="openai:x", base_url=server)
    stopped = start_run(
        _tasks(),
        settings,
        RunOptions(max_consecutive_errors=2),
        run_id="r1",
        hooks=RunHooks(
            deps=Deps(library=library, settings=settings),
            solve_fn=failing.solve,
            forge_fn=failing.forge,
        ),
    )
    assert stopped.status == "stopped"
    seen: list[tuple[str | None, str | None]] = []
    healthy = Stack()

    def solve(task: Task, deps: Deps, **kw: Any) -> Episode:
        seen.append((deps.settings.model, deps.settings.base_url))
        return healthy.solve(task, deps, **kw)

    # `evoagent run --resume r1` with no --model/--base-url: the run's own, not a default
    plain = load_settings(home=home)
    resumed = resume_run(
        "r1",
        plain,
        hooks=RunHooks(
            deps=Deps(library=library, settings=plain), solve_fn=solve, forge_fn=healthy.forge
        ),
    )
    assert resumed.status == "finished"
    assert set(seen) == {("openai:x", server)}


def _stopped_run(home: Path, library: Any, settings: Any) -> None:
    failing = Stack(fail={t.id for t in _tasks()})
    stopped = start_run(
        _tasks(),
        settings,
        RunOptions(max_consecutive_errors=2),
        run_id="r1",
        hooks=RunHooks(
            deps=Deps(library=library, settings=settings),
            solve_fn=failing.solve,
            forge_fn=failing.forge,
        ),
    )
    assert stopped.status == "stopped"


def test_resume_keeps_the_runs_model_over_env_and_config(
    home: Path, library: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = "http://127.0.0.1:9/v1"
    _stopped_run(home, library, load_settings(home=home, model="openai:x", base_url=server))
    # Since the run started, the environment names another model and another server.
    monkeypatch.setenv("EVOAGENT_MODEL", "openai:other")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:8/v1")
    current = load_settings(home=home)
    assert (current.model, current.base_url) == ("openai:other", "http://127.0.0.1:8/v1")
    seen: list[tuple[str | None, str | None]] = []
    healthy = Stack()

    def solve(task: Task, deps: Deps, **kw: Any) -> Episode:
        seen.append((deps.settings.model, deps.settings.base_url))
        return healthy.solve(task, deps, **kw)

    resumed = resume_run(
        "r1",
        current,
        hooks=RunHooks(
            deps=Deps(library=library, settings=current), solve_fn=solve, forge_fn=healthy.forge
        ),
    )
    assert resumed.status == "finished"
    assert set(seen) == {("openai:x", server)}


def test_resume_with_another_explicit_model_is_an_error_naming_both(
    home: Path, library: Any
) -> None:
    settings = load_settings(home=home, model="openai:x")
    _stopped_run(home, library, settings)
    deps = Deps(library=library, settings=settings)
    with pytest.raises(StreamError) as caught:
        resume_run("r1", settings, changes=Resume(model="openai:y"), hooks=RunHooks(deps=deps))
    message = str(caught.value)
    assert "run r1 was started with model openai:x" in message and "openai:y" in message
    assert "resume it without --model" in message
    with pytest.raises(StreamError, match="resume it without --base-url"):
        resume_run(
            "r1",
            settings,
            changes=Resume(base_url="http://127.0.0.1:7/v1"),
            hooks=RunHooks(deps=deps),
        )
    # Naming the run's own model is no change: the resume goes ahead.
    healthy = Stack()
    resumed = resume_run(
        "r1",
        settings,
        changes=Resume(model="openai:x"),
        hooks=RunHooks(deps=deps, solve_fn=healthy.solve, forge_fn=healthy.forge),
    )
    assert resumed.status == "finished"


def test_a_second_resume_of_a_running_run_is_refused_at_once(home: Path, library: Any) -> None:
    with pytest.raises(Crash):
        _run(home, library, Stack(crash_after=3), batch=4, workers=1)
    started, release = threading.Event(), threading.Event()

    class Blocking(Stack):
        def solve(self, *args: Any, **kwargs: Any) -> Episode:
            started.set()
            release.wait(10)
            return super().solve(*args, **kwargs)

    first: list[Any] = []
    thread = threading.Thread(target=lambda: first.append(_resume(home, library, Blocking())))
    thread.start()
    try:
        assert started.wait(10)
        with pytest.raises(StreamError, match="being run by another process"):
            _resume(home, library, Stack())
    finally:
        release.set()
        thread.join(30)
    assert first and first[0].status == "finished"


def test_repair_drops_a_broken_line_anywhere_in_a_file(home: Path, library: Any) -> None:
    _run(home, library, Stack(), batch=4, workers=1)
    store = RunStore.open(home, "r1")
    path = store.dir / "results.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    # A full disk cut one line short; later appends went on after it.
    path.write_text("".join([lines[0], lines[1][:20] + "\n", *lines[2:], '{"id": "torn']))
    assert len(store.raw_results()) == 11  # a reader skips the broken line, never fails
    store.repair()
    assert [json.loads(x)["id"] for x in path.read_text().splitlines()] == [
        json.loads(x)["id"] for x in [lines[0], *lines[2:]]
    ]


SHOUTS = {
    "alpha": ("Return the text in capitals, with an exclamation mark.", "text.upper() + '!'"),
    "beta": ("Return the text in small letters, with a question mark.", "text.lower() + '?'"),
    "gamma": ("Return the text reversed, character by character.", "text[::-1]"),
}


def test_a_kill_between_the_forge_and_the_batch_record_forges_nothing_twice(
    home: Path, library: Any, any_sandbox: Any
) -> None:
    """The forge wrote to the library, then the process died before the batch was on
    record: the resumed batch end replays the forge's outcomes instead of redoing them."""
    from toolforge import Trace as ForgeTrace
    from toolforge import forge_batch

    class Real(Stack):
        def solve(self, task: Task, deps: Deps, forge: str, resume: bool, run_id: str) -> Episode:
            result = super().solve(task, deps, forge, resume, run_id)
            fam = task.tags[0]
            doc, expr = SHOUTS[fam]
            result.traces = [
                ForgeTrace(
                    task=task.task,
                    task_id=task.id,
                    episode_id=f"ep-{task.id}",
                    code=(
                        f"def shout_{fam}(text: str) -> str:\n"
                        f'    """{doc}"""\n'
                        f"    return {expr}\n\n"
                        f"answer = shout_{fam}({task.task!r})\n"
                    ),
                    answer=eval(expr, {"text": task.task}),
                )
                for _ in result.traces
            ]
            return result

    def forge_then_die(traces: Any, lib: Any, sandbox: Any, **kw: Any) -> Any:
        forge_batch(traces, lib, sandbox, **kw)
        raise Crash  # after the library was written, before the batch record

    settings = load_settings(home=home)
    deps = Deps(library=library, settings=settings, sandbox=any_sandbox)
    with pytest.raises(Crash):
        start_run(
            _tasks(1),
            settings,
            RunOptions(batch=3),
            run_id="r1",
            hooks=RunHooks(deps=deps, solve_fn=Real().solve, forge_fn=forge_then_die),
        )
    provenance = {t.name: len(t.provenance) for t in library.list_tools()}
    assert sorted(provenance) == ["shout_alpha", "shout_beta", "shout_gamma"]
    outcome = resume_run(
        "r1", settings, hooks=RunHooks(deps=deps, solve_fn=Real().solve, forge_fn=forge_batch)
    )
    assert outcome.status == "finished"
    # Nothing merged twice, no new tool: the library is as the killed forge left it.
    assert {t.name: len(t.provenance) for t in library.list_tools()} == provenance
    [batch] = RunStore.open(home, "r1").batches()
    assert sorted(o["status"] for o in batch["outcomes"]) == ["admitted"] * 3
