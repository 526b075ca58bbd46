"""Must hold: bad input gets a clear error and no traceback — code that does not compile,
a missing tool module, Docker down, image missing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from sandbox import SandboxConfig, SandboxUnavailable, docker_status, get_sandbox
from sandbox.base import ImageMissing

ROOT = Path(__file__).resolve().parents[2]
NO_DOCKER = "unix:///nonexistent/evoagent-test/docker.sock"


@pytest.mark.docker
def test_code_that_does_not_compile_is_reported_in_the_result(docker_sandbox: Any) -> None:
    res = docker_sandbox.run("def broken(:\n    return 1\n")
    assert res.error_type == "SyntaxError" and not res.ok
    assert "line 1" in (res.error_message or "")
    assert "ERROR SyntaxError" in res.observation()


@pytest.mark.docker
def test_missing_tool_module_is_reported_in_the_result(docker_sandbox: Any) -> None:
    res = docker_sandbox.run(
        "from tools import sort_words\n",
        tools={"count_words": "def count_words(t):\n    return 0\n"},
    )
    assert res.error_type == "ImportError"
    assert "no tool module named 'sort_words'" in (res.error_message or "")
    assert "available: count_words" in (res.error_message or "")


@pytest.mark.docker
def test_runtime_error_comes_back_with_its_traceback(docker_sandbox: Any) -> None:
    res = docker_sandbox.run("x = 1\ny = x / 0\n")
    assert res.error_type == "ZeroDivisionError"
    assert 'File "<code>", line 2' in (res.traceback or "")
    assert "runner.py" not in (res.traceback or "")


def test_docker_down_is_sandbox_unavailable_with_what_to_do(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DOCKER_HOST", NO_DOCKER)
    with pytest.raises(SandboxUnavailable) as err:
        get_sandbox(SandboxConfig())
    message = str(err.value)
    assert NO_DOCKER in message and "not reachable" in message
    assert "docker-bootstrap.sh" in message and "-c sandbox.backend=local" in message
    ok, status = docker_status()
    assert not ok and NO_DOCKER in status


def test_docker_down_on_the_command_line_is_one_line_no_traceback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from agent.cli import app

    monkeypatch.setenv("DOCKER_HOST", NO_DOCKER)
    result = CliRunner().invoke(
        app,
        [
            "sandbox",
            "run",
            str(ROOT / "examples/smoke/hello.py"),
            "--tools",
            str(ROOT / "examples/smoke/tools"),
        ],
    )
    assert result.exit_code == 1
    # The root turns a SandboxError into its one-line user error (shown on stderr, or
    # left as the ClickException under CliRunner): never the SandboxUnavailable itself.
    shown = result.output + (str(result.exception) if result.exception else "")
    assert "Docker is not reachable" in shown and "docker-bootstrap.sh" in shown
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, SandboxUnavailable)


@pytest.mark.docker
def test_image_missing_is_image_missing_with_what_to_do(sandbox_image: str) -> None:
    with pytest.raises(ImageMissing, match="run `evoagent sandbox build`"):
        get_sandbox(SandboxConfig(image="evoagent-sandbox:does-not-exist"))


@pytest.mark.docker
def test_ensure_image_does_not_guess_for_a_foreign_image_name() -> None:
    from sandbox.image import ensure_image

    with pytest.raises(ImageMissing, match=r"unset sandbox\.image"):
        ensure_image(SandboxConfig(image="someone-else/image:1"))


def test_run_of_a_missing_file_is_a_usage_error() -> None:
    from agent.cli import app

    result = CliRunner().invoke(app, ["sandbox", "run", "does-not-exist.py"])
    assert result.exit_code == 2
    assert "does not exist" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("as_json", [False, True])
def test_status_exits_non_zero_when_docker_is_unreachable(
    monkeypatch: pytest.MonkeyPatch, as_json: bool
) -> None:
    from agent.cli import app

    monkeypatch.setenv("DOCKER_HOST", NO_DOCKER)
    args = ["sandbox", "status", *(["--json"] if as_json else [])]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    assert NO_DOCKER in result.output and "Traceback" not in result.output
    if as_json:
        assert json.loads(result.output)["docker"]["reachable"] is False
