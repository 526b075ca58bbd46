"""`evoagent solve`: user mistakes are one line and exit 1; the status is the exit code;
the answer goes to stdout and `--json` prints the whole episode."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.agent.graph_kit import ANSWER, CREATE_CODE, TASK, check_reply, solve_app, write_script

runner = CliRunner()

RULES = [
    {"step": "plan", "reply": "TOOLS: none\nPLAN: sort the words\n"},
    {"step": "act", "reply": CREATE_CODE},
    {"step": "check", "reply": check_reply(ANSWER)},
]


def invoke(*args: str) -> Any:
    # hash embeddings: loading the real MiniLM takes seconds and is not what these test
    return runner.invoke(solve_app(), ["-c", "memory.embedder=hash", "solve", *args])


def test_no_model_configured_uses_the_local_default_and_says_how_to_get_it(
    tmp_path: Path,
) -> None:
    """With no model configured the local default runs; when its weights are not there,
    one line names the command that fetches them."""
    result = runner.invoke(
        solve_app(),
        ["-c", "memory.embedder=hash", "-c", f"local.models_dir={tmp_path}", "solve", TASK],
    )
    assert result.exit_code == 1
    assert "qwen2.5-coder-1.5b is not downloaded" in result.output
    assert "evoagent models pull qwen2.5-coder-1.5b" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "scripted:x.yaml"], "give the task to solve"),
        (["--model", "scripted:x.yaml", TASK, "--checker", "fuzzy"], "unknown checker"),
        (["--model", "scripted:x.yaml", TASK, "--checker", "exact"], "--expect"),
        (["--model", "scripted:x.yaml", TASK, "--feedback", "sometimes"], "--feedback"),
        (["--model", "scripted:x.yaml", TASK, "--sandbox", "vm"], "--sandbox"),
        (["--model", "scripted:x.yaml", "--resume", "nope"], "no checkpoint for task id 'nope'"),
        (["--model", "scripted:x.yaml", TASK, "--resume", "nope"], "give no TASK"),
        (["--model", "scripted:missing.yaml", TASK], "missing.yaml"),
    ],
)
def test_user_mistakes_are_one_line(args: list[str], message: str) -> None:
    result = invoke(*args)
    assert result.exit_code == 1, result.output
    assert message in result.output
    assert "Traceback" not in result.output


@pytest.mark.docker
def test_solve_prints_the_answer_and_exits_0(
    home: Path, tmp_path: Path, sandbox_image: str
) -> None:
    script = write_script(tmp_path / "m.yaml", RULES)
    result = invoke(TASK, "--model", f"scripted:{script}", "--expect", ANSWER, "--forge", "off")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == ANSWER
    assert "solved" in result.stderr and "verify" in result.stderr
    assert "resume with: evoagent solve --resume solve-" in result.stderr


@pytest.mark.docker
def test_json_and_failed_exit_code(home: Path, tmp_path: Path, sandbox_image: str) -> None:
    script = write_script(tmp_path / "m.yaml", RULES)
    result = invoke(
        TASK,
        "--model",
        f"scripted:{script}",
        "--expect",
        "pear",
        "--checker",
        "exact",
        "--feedback",
        "labels",
        "--json",
        "--forge",
        "off",
    )
    assert result.exit_code == 3, result.output  # failed: the checker said no every attempt
    episode = json.loads(result.stdout)
    assert episode["status"] == "failed" and episode["correct"] is False
    assert episode["feedback"] == "labels" and episode["answer"] == ANSWER
    assert episode["usage_by_step"].get("check") is None


@pytest.mark.docker
def test_base_url_reaches_the_server_and_its_failure_is_exit_5(
    home: Path, sandbox_image: str
) -> None:
    from tests.agent.fakes.openai_server import FakeOpenAIServer
    from tests.agent.test_solve_provider import responder

    with FakeOpenAIServer(responder) as server:
        args = [
            TASK,
            "--model",
            "openai:test-model",
            "--base-url",
            server.base_url,
            "--forge",
            "off",
        ]
        ok = invoke(*args)
        assert ok.exit_code == 0, ok.output
        assert ok.stdout.strip() == ANSWER and len(server.requests) == 3
        server.status = 500
        failed = invoke(*args, "--json")
    assert failed.exit_code == 5, failed.output
    episode = json.loads(failed.stdout)
    assert episode["status"] == "error" and "500" in episode["reason"]


def test_docker_down_is_exit_5_with_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-daemon.sock")
    rules = write_script(tmp_path / "m.yaml", RULES)
    result = invoke(TASK, "--model", f"scripted:{rules}")
    assert result.exit_code == 5, result.output  # the documented code of a sandbox error
    assert "Docker is not reachable" in result.output and "evoagent doctor" in result.output
    assert "Traceback" not in result.output
