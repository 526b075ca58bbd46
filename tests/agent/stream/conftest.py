"""Fixtures of the stream tests: a CLI app with the root's settings callback, and
run folders written the way the runner writes them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer


def stream_app() -> typer.Typer:
    """`agent.cli.app` once the stream commands are registered there; until then a small
    app with the same group class and root callback, so the commands run the same way."""
    from agent import cli

    names = {c.name for c in cli.app.registered_commands}
    if {"run", "report"} <= names:
        return cli.app
    from agent.commands.run import report_command, run_command, runs_app

    app = typer.Typer(cls=cli._Group, no_args_is_help=True)
    app.callback()(cli.main)
    app.command("run")(run_command)
    app.add_typer(runs_app, name="runs")
    app.command("report")(report_command)
    return app


@pytest.fixture
def cli() -> typer.Typer:
    return stream_app()


def write_rows(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def result_row(
    task_id: str,
    *,
    batch: int,
    correct: bool,
    tokens: int,
    calls: int,
    used: list[str] | None = None,
    status: str | None = None,
) -> dict[str, Any]:
    """A results.jsonl line as the runner writes it."""
    family = task_id.rpartition("-")[0]
    return {
        "id": task_id,
        "family": family,
        "tags": [family],
        "batch": batch,
        "status": status or ("solved" if correct else "failed"),
        "answer": "x",
        "expected": "x" if correct else "y",
        "correct": correct,
        "attempts": 1,
        "n_calls": calls,
        "tokens_in": tokens - tokens // 4,
        "tokens_out": tokens // 4,
        "seconds": 0.5,
        "tools_used": used or [],
        "tools_created": [],
        "feedback": "none",
        "reason": "",
    }
