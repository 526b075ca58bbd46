"""`evoagent sandbox build | status | run | check` through the real root command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]
HELLO = str(ROOT / "examples/smoke/hello.py")
TOOLS = str(ROOT / "examples/smoke/tools")


def invoke(*args: str) -> tuple[int, str]:
    from agent.cli import app

    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


@pytest.mark.docker
def test_run_the_smoke_example(sandbox_image: str) -> None:
    code, out = invoke("sandbox", "run", HELLO, "--tools", TOOLS)
    assert code == 0, out
    assert "sorted: Apple bicycle syndrome therefrom" in out
    assert "tool sort_words" in out
    assert "answer: 'Apple bicycle syndrome therefrom'" in out


@pytest.mark.docker
def test_run_json_is_the_whole_result(sandbox_image: str) -> None:
    code, out = invoke("sandbox", "run", HELLO, "--tools", TOOLS, "--json")
    assert code == 0, out
    data = json.loads(out)
    assert data["answer"] == "Apple bicycle syndrome therefrom"
    assert data["tool_calls"][0]["tool"] == "sort_words"


@pytest.mark.docker
def test_failing_code_exits_non_zero(sandbox_image: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("raise ValueError('nope')\n")
    code, out = invoke("sandbox", "run", str(bad))
    assert code == 1
    assert "ValueError: nope" in out


@pytest.mark.docker
def test_status_json(sandbox_image: str) -> None:
    code, out = invoke("sandbox", "status", "--json")
    assert code == 0, out
    data = json.loads(out)
    assert data["docker"]["reachable"] is True
    assert data["image"] == sandbox_image and data["image_present"] is True
    assert data["orphans"] == 0


@pytest.mark.docker
def test_build_when_present_is_a_no_op(sandbox_image: str) -> None:
    code, out = invoke("sandbox", "build")
    assert code == 0, out
    assert "present and current" in out


@pytest.mark.docker
def test_check_passes_every_security_check(sandbox_image: str) -> None:
    code, out = invoke("sandbox", "check", "--json")
    assert code == 0, out
    checks = json.loads(out)
    names = [c["name"] for c in checks]
    for name in (
        "network",
        "read-only root",
        "pids",
        "memory",
        "timeout",
        "output cap",
        "user",
        "capabilities",
        "seccomp",
        "result channel",
    ):
        assert name in names
    assert all(c["ok"] for c in checks), checks


@pytest.mark.slow
def test_check_fails_for_the_local_backend() -> None:
    """The local backend is not isolation, and the self-test says so with a non-zero exit."""
    code, out = invoke("-c", "sandbox.backend=local", "sandbox", "check", "--json")
    assert code == 1
    checks = {c["name"]: c["ok"] for c in json.loads(out)}
    assert checks["network"] is False
    assert checks["timeout"] is True and checks["output cap"] is True


@pytest.mark.slow
def test_run_with_the_local_backend() -> None:
    code, out = invoke("-c", "sandbox.backend=local", "sandbox", "run", HELLO, "--tools", TOOLS)
    assert code == 0, out
    assert "local sandbox" in out


@pytest.mark.docker
def test_doctor_shows_seccomp_and_the_result_channel(sandbox_image: str) -> None:
    from agent.config import load_settings
    from agent.doctor import check_isolation

    check = check_isolation(load_settings())
    assert check.ok, check.detail
    assert "seccomp on" in check.detail and "reachable" in check.detail
