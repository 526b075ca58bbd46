"""A task: what the agent is asked, and optionally how to check the answer.

`expected` is the label; `checker` is a spec string (see `agent.checkers`:
`exact`, `normalized`, `numeric:1e-6`, `regex:^\\d+$`, `python:FILE_OR_SOURCE`).
A task with a label but no checker is checked `normalized`.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from agent.errors import AgentError


@dataclass
class Task:
    id: str
    task: str
    expected: Any = None
    checker: str | None = None
    tags: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not str(self.id).strip():
            raise AgentError("a task needs a non-empty id")
        if not isinstance(self.task, str) or not self.task.strip():
            raise AgentError(f"task {self.id!r} has no text: give the task to solve")

    @property
    def has_label(self) -> bool:
        """Whether the answer can be scored: a label, or a checker that needs none."""
        return self.expected is not None or self.checker is not None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Task:
        return cls(
            id=str(data["id"]),
            task=data["task"],
            expected=data.get("expected"),
            checker=data.get("checker"),
            tags=list(data.get("tags") or []),
        )

    @classmethod
    def new(cls, text: str, *, expected: object = None, checker: str | None = None) -> Task:
        """A one-off task (`evoagent solve`) with a fresh id: `solve-<time>-<hash>`."""
        digest = hashlib.sha1(text.encode()).hexdigest()[:6]
        stamp = time.strftime("%Y%m%d-%H%M%S")
        return cls(
            id=f"solve-{stamp}-{digest}{secrets.token_hex(2)}",
            task=text,
            expected=expected,
            checker=checker,
        )
