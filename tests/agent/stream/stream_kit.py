"""Run folders written the way the runner writes them, for the stream tests.

A module of its own (not conftest.py): several test folders have a conftest, so
`from conftest import ...` would import whichever one pytest loaded first."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agent.stream.store import result_line
from agent.task import Task
from memory.episode import Episode


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
    task = Task(id=task_id, task="t", expected="x" if correct else "y", tags=[family])
    episode = Episode(
        task_id=task_id,
        task="t",
        status=status or ("solved" if correct else "failed"),  # type: ignore[arg-type]
        answer="x",
        correct=correct,
        attempts=1,
        n_calls=calls,
        tokens_in=tokens - tokens // 4,
        tokens_out=tokens // 4,
        seconds=0.5,
        tools_used=used or [],
    )
    return result_line(task, batch, episode, library_size=0)


def unexpected_errors(rows: list[dict[str, Any]]) -> dict[str, str]:
    """The tasks of `rows` that ended in an unexpected error, with the traceback their
    result line keeps: what a failed comparison of two runs shows, so a failure seen
    only in CI says its cause."""
    return {
        str(r["id"]): f"{r.get('reason')}\n{r.get('traceback') or ''}"
        for r in rows
        if r.get("status") == "error"
    }
