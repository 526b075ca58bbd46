"""`evoagent doctor`: each check finds its problem and says how to fix it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.cli import app
from agent.config import load_settings
from agent.doctor import check_docker, check_home, check_library, check_model

EXAMPLE_MODEL = Path(__file__).resolve().parents[2] / "examples" / "scripted" / "hello.yaml"


def test_home_check_fails_when_home_is_a_file(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    check = check_home(load_settings(home=blocker / "home"))
    assert not check.ok
    assert "--home" in check.fix


def test_model_check_without_a_model_checks_the_local_default() -> None:
    # The autouse fixture points local.models_dir at an empty folder.
    check = check_model(load_settings())
    assert not check.ok
    assert "is not downloaded" in check.detail and "evoagent models pull" in check.detail


def test_model_check_reports_a_broken_spec(tmp_path: Path) -> None:
    check = check_model(load_settings(model=f"scripted:{tmp_path / 'missing.yaml'}"))
    assert not check.ok
    assert "missing.yaml" in check.detail


def test_docker_check_when_daemon_is_unreachable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-daemon.sock")
    check = check_docker(load_settings())
    assert not check.ok
    assert "docker-bootstrap" in check.fix


def test_doctor_all_green_with_local_backend_and_scripted_model() -> None:
    result = CliRunner().invoke(
        app,
        [
            "-c",
            "sandbox.backend=local",
            "-c",
            "memory.embedder=hash",
            "doctor",
            "--json",
            "--model",
            f"scripted:{EXAMPLE_MODEL}",
        ],
    )
    checks = {c["name"]: c for c in json.loads(result.stdout)}
    assert result.exit_code == 0, checks
    assert set(checks) == {
        "docker",
        "sandbox image",
        "isolation",
        "home",
        "library",
        "embeddings",
        "model",
    }
    assert "NOT isolated" in checks["isolation"]["detail"]


def test_doctor_exits_nonzero_and_lists_fixes_when_a_check_fails() -> None:
    result = CliRunner().invoke(
        app, ["-c", "sandbox.backend=local", "-c", "memory.embedder=hash", "doctor", "--json"]
    )
    assert result.exit_code == 1
    failed = [c for c in json.loads(result.stdout) if not c["ok"]]
    assert [c["name"] for c in failed] == ["model"]


def test_library_check_finds_a_corrupt_library(home: Path) -> None:
    assert check_library(load_settings()).ok  # no library yet: fine
    (home / "library.db").write_bytes(b"\x13\x37" * 50)
    check = check_library(load_settings())
    assert not check.ok
    assert "not a readable SQLite database" in check.detail and "aside" in check.fix


def test_library_check_passes_on_a_real_library(home: Path) -> None:
    from memory import HashEmbedder, Library, MemoryConfig

    Library.open(home, MemoryConfig(embedder="hash"), HashEmbedder()).close()
    check = check_library(load_settings())
    assert check.ok and "integrity ok" in check.detail
