"""Test doubles of the forge tests (a module name no other test package uses)."""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult


class QueueModel(BaseChatModel):
    """A chat model that answers with queued replies and remembers every call."""

    replies: list[str]
    calls: list[dict[str, Any]] = []

    @property
    def _llm_type(self) -> str:
        return "queue"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if not self.replies:
            raise AssertionError("the test model ran out of replies")
        self.calls.append(
            {
                "messages": [m.content for m in messages],
                "tags": list(run_manager.tags) if run_manager else [],
                "metadata": dict(run_manager.metadata) if run_manager else {},
            }
        )
        text = self.replies.pop(0)
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])


def reply(source: str, tests: str) -> str:
    """A distill/refine reply in the documented format."""
    return f"Here is the tool.\n\n```python\n{source}```\n\n```python\n{tests}```\n"
