"""Test doubles of the forge tests (a module name no other test package uses)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class QueueModel:
    """A `StepModel` (toolforge/types.py) that answers with queued replies and remembers
    every call: its step, its messages' texts, the reply's grammar and token cap."""

    replies: list[str]
    calls: list[dict[str, Any]] = field(default_factory=list)

    def ask(
        self,
        step: str,
        messages: list[dict[str, str]],
        *,
        grammar: str | None = None,
        max_tokens: int | None = None,
    ) -> str:
        if not self.replies:
            raise AssertionError("the test model ran out of replies")
        self.calls.append(
            {
                "step": step,
                "messages": [m["content"] for m in messages],
                "grammar": grammar,
                "max_tokens": max_tokens,
            }
        )
        return self.replies.pop(0)


def reply(source: str, tests: str) -> str:
    """A distill/refine reply in the documented format."""
    return f"Here is the tool.\n\n```python\n{source}```\n\n```python\n{tests}```\n"
