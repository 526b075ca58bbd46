"""The result row: one line of a run's results.jsonl, one definition.

A row is written once per finished task (`ResultRow.of_result`, or `ResultRow.of_error`
when solving raised) and read back as plain data by the store, the metrics and the
report, which take it with `.get` so rows of older runs still read.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from agent.solve import EpisodeResult
from agent.stream.inputs import family_of
from agent.task import Task
from agent.types import Feedback, TaskStatus


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S")


@dataclass
class ResultRow:
    id: str
    family: str
    tags: list[str]
    batch: int
    status: TaskStatus
    answer: Any
    expected: Any
    correct: bool | None
    attempts: int = 0
    n_calls: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    seconds: float = 0.0
    tools_used: list[str] = field(default_factory=list)
    tools_created: list[str] = field(default_factory=list)
    feedback: Feedback | None = None
    reason: str = ""
    episode_id: str | None = None
    finished_at: str = field(default_factory=_now)
    #: tools in the library when the task's batch started
    library_size_before: int | None = None
    #: an unexpected error's traceback, kept for the bug report
    traceback: str | None = None
    #: what backs a solved answer (checker | agreement | trusted tool), the library tool
    #: whose answer it is, and the calls the independent route (audits) cost
    verified_by: str = ""
    answer_tool: str | None = None
    check_calls: int = 0

    @classmethod
    def of_result(cls, task: Task, result: EpisodeResult, batch: int) -> ResultRow:
        return cls(
            id=task.id,
            family=family_of(task.id, task.tags),
            tags=list(task.tags),
            batch=batch,
            status=result.status,
            answer=result.answer,
            expected=task.expected,
            correct=result.correct,
            attempts=result.attempts,
            n_calls=result.n_calls,
            tokens_in=result.tokens_in,
            tokens_out=result.tokens_out,
            seconds=result.seconds,
            tools_used=list(result.tools_used),
            tools_created=list(result.tools_created),
            feedback=result.feedback,
            reason=result.reason,
            episode_id=result.episode_id,
            verified_by=result.verified_by,
            answer_tool=result.answer_tool,
            check_calls=int((result.usage_by_step.get("check") or {}).get("n_calls", 0)),
        )

    @classmethod
    def of_error(
        cls, task: Task, batch: int, reason: str, traceback: str | None = None
    ) -> ResultRow:
        """A task that raised: it ended in error and spent nothing on record."""
        return cls(
            id=task.id,
            family=family_of(task.id, task.tags),
            tags=list(task.tags),
            batch=batch,
            status="error",
            answer=None,
            expected=task.expected,
            correct=False if task.expected is not None else None,
            reason=reason,
            traceback=traceback,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
