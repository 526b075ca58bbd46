"""End to end on the demo stream: each sandbox backend (local in `make test-fast`, the
real Docker sandbox marked `docker`), real MiniLM embeddings, real Chroma, the real graph
and toolforge, driven by the demo's scripted model.

To keep CI short these run on `examples/bbh/stream-small.jsonl`: 10 tasks per family
(50 tasks, `make_stream.py --per-family 10`), in 2 batches of 25, so the first half of
the stream is the learning phase and the second half runs on the library it built.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from agent.stream.inputs import family_of
from tests.agent.stream.conftest import run_env
from tests.agent.stream.stream_kit import unexpected_errors

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]
BBH = ROOT / "examples" / "bbh"
SMALL = BBH / "stream-small.jsonl"
MODEL = BBH / "model.yaml"
BATCH = "25"
FAMILIES = {
    "boolean_expressions",
    "dyck_languages",
    "multistep_arithmetic_two",
    "object_counting",
    "word_sorting",
}
# What must be equal between two runs of the same stream (not timings).
SAME = (
    "id",
    "status",
    "answer",
    "correct",
    "attempts",
    "n_calls",
    "tokens_in",
    "tokens_out",
    "tools_used",
    "tools_created",
    "batch",
)


@pytest.fixture(scope="session", params=["local", pytest.param("docker", marks=pytest.mark.docker)])
def e2e_env(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """The environment every run here gets, on each sandbox backend (session fixtures run
    before the per-test `home` fixture, so they set it themselves)."""
    if request.param == "docker":
        with run_env(request.getfixturevalue("sandbox_image")) as env:
            yield env
    else:
        with run_env(None, extra={"EVOAGENT_SANDBOX__BACKEND": "local"}) as env:
            yield env


def _run(home: Path, *args: str) -> dict[str, Any]:
    from agent.cli import app as stream_app

    out = CliRunner().invoke(
        stream_app,
        [
            "--home",
            str(home),
            "run",
            str(SMALL),
            "--model",
            f"scripted:{MODEL}",
            "--batch",
            BATCH,
            "--json",
            *args,
        ],
    )
    assert out.exit_code == 0, out.output
    return json.loads(out.stdout)


def _rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    from agent.stream.store import RunStore

    home = Path(summary["dir"]).parents[1]
    return RunStore.open(home, summary["run_id"]).results()


@pytest.fixture(scope="session")
def learning(e2e_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _run(tmp_path_factory.mktemp("learn4"), "--workers", "4", "--run-id", "learn4")


@pytest.fixture(scope="session")
def learning_one_worker(
    e2e_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    return _run(tmp_path_factory.mktemp("learn1"), "--workers", "1", "--run-id", "learn1")


def test_the_library_gets_one_tool_per_family_and_tasks_get_cheaper(
    learning: dict[str, Any],
) -> None:
    rows = _rows(learning)
    assert len(rows) == 50
    tools = json.loads((Path(learning["dir"]) / "tools.json").read_text())
    active = [t["name"] for t in tools if t["status"] == "active"]
    assert len(active) == len(set(active)) == 5, active
    # One tool per family: every task that used a tool used its family's one tool.
    used_by_family: dict[str, set[str]] = {}
    for row in rows:
        used_by_family.setdefault(family_of(row["id"], row["tags"]), set()).update(
            row["tools_used"]
        )
    assert set(used_by_family) == FAMILIES
    assert all(len(names) == 1 for names in used_by_family.values()), used_by_family
    assert set().union(*used_by_family.values()) == set(active)
    assert learning["n_tools_created"] == 5
    halves = learning["halves"]
    first, second = halves["first"], halves["second"]
    assert second["solve_rate"] >= first["solve_rate"]
    assert second["tokens_per_success"] <= 0.4 * first["tokens_per_success"], halves
    assert learning["solve_rate"] >= 0.9
    # The second half solved its tasks with the library, almost always.
    assert second["reuse_rate"] >= 0.9


def test_one_and_four_workers_give_the_same_results(
    learning: dict[str, Any], learning_one_worker: dict[str, Any]
) -> None:
    four = [{k: r[k] for k in SAME} for r in _rows(learning)]
    one = [{k: r[k] for k in SAME} for r in _rows(learning_one_worker)]
    assert one == four
    tools = [
        sorted(
            (t["name"], t["version"])
            for t in json.loads((Path(s["dir"]) / "tools.json").read_text())
        )
        for s in (learning, learning_one_worker)
    ]
    assert tools[0] == tools[1]


def test_no_learn_costs_more_and_the_report_shows_both(
    learning: dict[str, Any], e2e_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    from agent.cli import app as stream_app

    home = Path(learning["dir"]).parents[1]
    # The baseline starts from an empty library of its own, like the learning run.
    baseline = _run(
        tmp_path_factory.mktemp("frozen"), "--workers", "4", "--run-id", "base", "--no-learn"
    )
    assert baseline["learn"] is False and baseline["n_tools_created"] == 0
    assert baseline["reuse_rate"] == 0 and baseline["library_size"] == 0  # frozen: nothing added
    assert baseline["tokens_per_success"] > learning["tokens_per_success"]
    # Once the library has its tools, a task takes fewer model calls than without it.
    assert learning["halves"]["second"]["calls_per_success"] < baseline["calls_per_success"]
    out_dir = tmp_path_factory.mktemp("report")
    # Put the baseline next to the learning run so one report can show both.
    import shutil

    shutil.copytree(Path(baseline["dir"]), home / "runs" / "base")
    result = CliRunner().invoke(
        stream_app,
        [
            "--home",
            str(home),
            "report",
            "learn4",
            "--baseline",
            "base",
            "--out",
            str(out_dir / "r.html"),
        ],
    )
    assert result.exit_code == 0, result.output
    page = (out_dir / "r.html").read_text()
    assert "learn4 (learning, feedback none)" in page and "base (no-learn, feedback none)" in page
    assert page.count("data:image/png;base64,") == 6
    assert len(list(out_dir.glob("r-*.png"))) == 6


def _load_make_model() -> Any:
    spec = importlib.util.spec_from_file_location("make_model", BBH / "make_model.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_model"] = module  # dataclasses look their module up while defining
    spec.loader.exec_module(module)
    return module


def test_a_sigkilled_run_resumes_losing_no_task_and_doing_none_twice(
    e2e_env: dict[str, str], tmp_path: Path
) -> None:
    tasks = [json.loads(line) for line in SMALL.read_text().splitlines()][:15]
    stream = tmp_path / "stream.jsonl"
    stream.write_text("".join(json.dumps(t) + "\n" for t in tasks))
    make_model = _load_make_model()
    slow = tmp_path / "slow.yaml"
    # A model that takes 0.3 s per call, so the kill lands mid-stream, mid-batch.
    make_model.write(make_model.build(tasks, latency_s=0.3), slow)
    home = tmp_path / "home"
    launcher = "import sys; from agent.cli import app; app(sys.argv[1:])"
    base = [sys.executable, "-c", launcher, "--home", str(home), "run"]
    options = ["--batch", "5", "--workers", "2", "--quiet"]
    env = {**os.environ, **e2e_env}
    proc = subprocess.Popen(
        [*base, str(stream), "--model", f"scripted:{slow}", "--run-id", "killed", *options],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    results = home / "runs" / "killed" / "results.jsonl"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if results.exists() and len(results.read_text().splitlines()) >= 7:
            break
        if proc.poll() is not None:
            pytest.fail(f"the run ended before the kill: {proc.stderr.read().decode()[-2000:]}")
        time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail("the run did not finish 7 tasks in time")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_at_kill = [
        json.loads(line)["id"] for line in results.read_text().splitlines() if line.endswith("}")
    ]
    assert 7 <= len(done_at_kill) < 15
    status = subprocess.run(
        [*base, "--resume", "killed", "--quiet"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert status.returncode == 0, status.stderr[-3000:]
    lines = [json.loads(line) for line in results.read_text().splitlines()]
    ids = [r["id"] for r in lines]
    # No task lost, none done twice: every task has exactly one result line, and the ones
    # finished before the kill were not run again.
    assert sorted(ids) == sorted(t["id"] for t in tasks)
    assert ids[: len(done_at_kill)] == done_at_kill
    with sqlite3.connect(home / "library.db") as db:
        episodes = dict(
            db.execute(
                "SELECT task_id, COUNT(*) FROM episode WHERE run_id = 'killed' GROUP BY task_id"
            ).fetchall()
        )
    assert episodes == {t["id"]: 1 for t in tasks}, (
        [(r["id"], r["status"], r.get("reason")) for r in lines],
        done_at_kill,
        status.stderr[-3000:],
    )
    # And the results are those of a run that was never interrupted.
    clean_home = tmp_path / "clean"
    clean = subprocess.run(
        [
            *base[:-3],
            "--home",
            str(clean_home),
            "run",
            str(stream),
            "--model",
            f"scripted:{MODEL}",
            "--run-id",
            "clean",
            *options,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert clean.returncode == 0, clean.stderr[-3000:]
    from agent.stream.store import RunStore

    resumed_rows = list(RunStore.open(home, "killed").results())
    reference_rows = list(RunStore.open(clean_home, "clean").results())
    resumed = [{k: r[k] for k in SAME} for r in resumed_rows]
    reference = [{k: r[k] for k in SAME} for r in reference_rows]
    assert resumed == reference, (
        unexpected_errors(resumed_rows),
        unexpected_errors(reference_rows),
        status.stderr[-3000:],
    )


STEP_BY_SYSTEM = {
    "You are the planner": "plan",
    "You write Python code": "act",
    "You compute the answer to ONE task": "check",
    "You help an agent learn": "reflect",
    "You turn a solved task": "distill",
    "A tool in our library raised": "refine",
}


def test_a_failing_endpoint_errors_tasks_stops_the_run_and_resume_finishes_it(
    e2e_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through langchain-openai and an OpenAI-compatible server on 127.0.0.1 that answers
    with the demo's script: first it fails every call (HTTP 500), then it recovers."""
    from agent.config import load_settings
    from agent.deps import AgentDeps
    from agent.models import get_model
    from agent.models.scripted import load_script
    from agent.stream import RunHooks, RunOptions, resume_run, start_run
    from agent.task import Task
    from tests.agent.fakes.openai_server import FakeOpenAIServer, prompt_of

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key")
    script = load_script(MODEL)

    def responder(request: dict[str, Any]) -> str:
        text = prompt_of(request)
        step = next(s for marker, s in STEP_BY_SYSTEM.items() if marker in text)
        return script.reply_for(text, step)

    tasks = [Task.from_dict(json.loads(line)) for line in SMALL.read_text().splitlines()][:6]
    settings = load_settings(home=tmp_path / "home", model="openai:test-model")
    with FakeOpenAIServer(responder, status=500) as server:
        model = get_model("openai:test-model", base_url=server.base_url, max_retries=0)
        deps = AgentDeps.from_settings(settings, model=model)
        try:
            options = RunOptions(batch=3, max_consecutive_errors=2)
            stopped = start_run(tasks, settings, options, run_id="flaky", hooks=RunHooks(deps=deps))
            assert stopped.status == "stopped"
            assert "stopped after 2 consecutive errors" in stopped.message
            assert "--resume flaky" in stopped.message
            assert [r["status"] for r in stopped.results] == ["error", "error"]
            assert all("500" in r["reason"] for r in stopped.results)
            server.status = 200  # the endpoint is back
            finished = resume_run("flaky", settings, hooks=RunHooks(deps=deps))
        finally:
            deps.close()
    assert finished.status == "finished"
    assert [r["id"] for r in finished.results] == [t.id for t in tasks]
    assert {r["status"] for r in finished.results} == {"solved"}
    assert all(r["correct"] for r in finished.results)
