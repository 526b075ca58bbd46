"""The real provider path (langchain-openai against a 127.0.0.1 server), record then
replay offline, and a real `solve` process killed with SIGKILL then resumed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from agent.models import get_model
from agent.solve import solve_task
from agent.task import Task
from tests.agent.fakes.openai_server import FakeOpenAIServer, closed_port
from tests.agent.graph_kit import ANSWER, CREATE_CODE, TASK, check_reply, make_deps, write_script

REPO = Path(__file__).resolve().parents[2]


def responder(request: dict[str, Any]) -> str:
    """A tiny 'model': answers each step by the system prompt it is sent."""
    system = request["messages"][0]["content"]
    if "You are the planner" in system:
        return "TOOLS: none\nPLAN: write sort_words and call it"
    if "You write Python code" in system:
        return CREATE_CODE
    if "You compute the answer to ONE task" in system:
        return check_reply(ANSWER)
    if "TIP:" in request["messages"][-1]["content"]:
        return "TIP: none"
    return "LESSON: read the task twice"


def test_a_task_is_solved_through_an_openai_compatible_server(home: Path, any_sandbox: Any) -> None:
    with FakeOpenAIServer(responder) as server:
        model = get_model("openai:test-model", base_url=server.base_url, max_retries=0)
        deps = make_deps(home, model, any_sandbox)
        result = solve_task(Task(id="p1", task=TASK, expected=ANSWER), deps, forge="off")
        deps.close()
    assert result.status == "solved" and result.answer == ANSWER and result.correct is True
    assert result.n_calls == len(server.requests) == 3
    # tokens are the provider's figures (the fake adds 1000 to each prompt)
    assert result.tokens_in > 3000


@pytest.mark.parametrize("failure", ["http500", "refused"])
def test_a_failing_endpoint_is_status_error_not_a_traceback(
    failure: str, home: Path, any_sandbox: Any
) -> None:
    if failure == "http500":
        with FakeOpenAIServer(responder, status=500) as server:
            model = get_model("openai:test-model", base_url=server.base_url, max_retries=0)
            deps = make_deps(home, model, any_sandbox)
            result = solve_task(Task(id="p1", task=TASK), deps, forge="off")
    else:
        url = f"http://127.0.0.1:{closed_port()}/v1"
        model = get_model("openai:test-model", base_url=url, max_retries=0)
        deps = make_deps(home, model, any_sandbox)
        result = solve_task(Task(id="p1", task=TASK), deps, forge="off")
    deps.close()
    assert result.status == "error"
    assert "model call failed at step plan" in result.reason
    assert (
        ("500" in result.reason) if failure == "http500" else ("connect" in result.reason.lower())
    )


def test_record_then_replay_reproduces_the_episode_offline(
    tmp_path: Path, any_sandbox: Any
) -> None:
    cassette = tmp_path / "episode.jsonl"
    with FakeOpenAIServer(responder) as server:
        model = get_model(
            "openai:test-model", base_url=server.base_url, max_retries=0, record=cassette
        )
        deps = make_deps(tmp_path / "home-a", model, any_sandbox)
        recorded = solve_task(Task(id="r1", task=TASK, expected=ANSWER), deps, forge="now")
        deps.close()
    # The server is gone: only the cassette can answer now, on a fresh home.
    deps = make_deps(tmp_path / "home-b", get_model(f"replay:{cassette}"), any_sandbox)
    replayed = solve_task(Task(id="r1", task=TASK, expected=ANSWER), deps, forge="now")
    deps.close()
    for field in (
        "status",
        "answer",
        "correct",
        "attempts",
        "n_calls",
        "tokens_in",
        "tokens_out",
        "tools_used",
        "tools_created",
        "history",
    ):
        assert getattr(replayed, field) == getattr(recorded, field), field
    assert recorded.status == "solved"


def _cli(home: Path, *args: str) -> list[str]:
    return [
        sys.executable,
        str(REPO / "tests/agent/graph_kit.py"),
        "--home",
        str(home),
        "solve",
        *args,
    ]


@pytest.mark.slow
def test_a_killed_solve_resumes_without_repeating_steps(tmp_path: Path, sandbox_image: str) -> None:
    home = tmp_path / "home"
    script = write_script(
        tmp_path / "slow.yaml",
        [
            {"step": "plan", "reply": "TOOLS: none\nPLAN: write sort_words and call it\n"},
            {"step": "act", "reply": CREATE_CODE},
            {"step": "check", "reply": check_reply(ANSWER)},
        ],
        latency_s=1.5,
    )
    # hash embeddings: the real MiniLM is not what this test is about, and loads in seconds
    env = {
        **os.environ,
        "EVOAGENT_SANDBOX__IMAGE": sandbox_image,
        "EVOAGENT_MEMORY__EMBEDDER": "hash",
    }
    proc = subprocess.Popen(
        _cli(
            home,
            TASK,
            "--model",
            f"scripted:{script}",
            "--forge",
            "off",
            "--record",
            str(tmp_path / "first.jsonl"),
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )
    assert proc.stderr is not None
    task_id = None
    deadline = time.monotonic() + 120
    for line in proc.stderr:
        if "resume with: evoagent solve --resume" in line:
            task_id = line.rsplit("--resume", 1)[1].strip().rstrip(")")
        if line.lstrip().startswith("act step 1"):
            break  # act is done and checkpointed; the check's slow call is in flight
        assert time.monotonic() < deadline, "the solve never reached act"
    time.sleep(0.5)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL and task_id
    first = [
        json.loads(line)["step"] for line in (tmp_path / "first.jsonl").read_text().splitlines()
    ]
    assert first == ["plan", "act"]  # the check was cut off mid-call

    resumed = subprocess.run(
        _cli(home, "--resume", task_id, "--json", "--record", str(tmp_path / "second.jsonl")),
        capture_output=True,
        text=True,
        env={**env, "EVOAGENT_MODEL": f"scripted:{script}"},
        cwd=REPO,
        timeout=120,
    )
    assert resumed.returncode == 0, resumed.stderr
    episode = json.loads(resumed.stdout)
    assert episode["status"] == "solved" and episode["answer"] == ANSWER
    second = [
        json.loads(line)["step"] for line in (tmp_path / "second.jsonl").read_text().splitlines()
    ]
    assert second == ["check"]  # plan and act were not repeated
    by_step = {step: figures["n_calls"] for step, figures in episode["usage_by_step"].items()}
    assert by_step == {"plan": 1, "act": 1, "check": 1}
