"""What every node shares: the per-call `Run` context and `Turn`, one node's model calls.

A `Turn` checks the task's token and time budget before each call, sends the call
with its step name through `agent.models.invoke_step`, and returns the node's update
with its usage increment (measured on the run's `UsageCounter`) and its seconds.
Limits reached and endpoint failures are `Stop` exceptions carrying the task status.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agent.state import USAGE_KEYS, State

if TYPE_CHECKING:
    from agent.config import AgentConfig
    from agent.deps import AgentDeps


class Stop(Exception):
    """The task ends now with `status` (a limit, or the model endpoint failing)."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass
class Run:
    """One `solve_task` call: its dependencies and what must not be checkpointed."""

    deps: AgentDeps
    counter: Any
    forge: str
    on_event: Callable[[dict[str, Any]], None] | None
    task_id: str

    @property
    def agent(self) -> AgentConfig:
        return self.deps.settings.agent

    def emit(self, event: str, **data: object) -> None:
        if self.on_event is not None:
            self.on_event({"task_id": self.task_id, "event": event, **data})


def usage_delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """The usage between two `UsageCounter.snapshot()`s, in the state's shape."""
    total = {key: after.get(key, 0) - before.get(key, 0) for key in USAGE_KEYS}
    by_step: dict[str, dict[str, Any]] = {}
    old_steps = before.get("by_step") or {}
    for step, figures in (after.get("by_step") or {}).items():
        old = old_steps.get(step) or {}
        diff = {key: figures.get(key, 0) - old.get(key, 0) for key in USAGE_KEYS}
        if diff["n_calls"]:
            by_step[step] = diff
    return {"total": total, "by_step": by_step}


def to_messages(messages: list[dict[str, str]]) -> list[Any]:
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

    kinds = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}
    return [kinds[m["role"]](content=m["content"]) for m in messages]


class Turn:
    """One node's run: its model calls (budget-checked) and its state increment."""

    def __init__(self, run: Run, state: State, step: str) -> None:
        self.run = run
        self.state = state
        self.step = step
        self.started = time.monotonic()
        self.before = run.counter.snapshot()

    def elapsed_task(self) -> float:
        return float(self.state.get("seconds") or 0.0) + (time.monotonic() - self.started)

    def tokens_task(self) -> int:
        done = (self.state.get("usage") or {}).get("total") or {}
        now = self.run.counter.snapshot()
        return int(
            done.get("tokens_in", 0)
            + done.get("tokens_out", 0)
            + (now["tokens_in"] - self.before["tokens_in"])
            + (now["tokens_out"] - self.before["tokens_out"])
        )

    def check_budget(self) -> None:
        limits = self.run.agent
        tokens = self.tokens_task()
        if tokens >= limits.max_tokens:
            raise Stop(
                "budget_exhausted",
                f"token budget reached: {tokens} of {limits.max_tokens} tokens used",
            )
        seconds = self.elapsed_task()
        if seconds >= limits.max_seconds:
            raise Stop(
                "budget_exhausted",
                f"time budget reached: {seconds:.1f} of {limits.max_seconds:g} seconds used",
            )

    def ask(
        self,
        messages: list[dict[str, str]],
        grammar: str | None = None,
        temperature: float | None = None,
        *,
        step: str | None = None,
    ) -> str:
        """The model's reply text to `messages` (role/content dicts); `grammar` is the
        step's reply format (a local model decodes under it); `temperature` samples (a
        retry's, so that it can differ from the reply that failed); `step` names the call
        when it is not the node's own step (verify's independent route: `check`)."""
        from agent.models import invoke_step, is_model_failure
        from agent.models.steps import content_text
        from agent.nodes.parse import MAX_TOKENS

        step = step or self.step
        self.check_budget()
        try:
            reply = invoke_step(
                self.run.deps.model,
                step,
                to_messages(messages),
                counter=self.run.counter,
                grammar=grammar,
                max_tokens=MAX_TOKENS.get(step),
                temperature=temperature,
            )
        except Exception as exc:
            if is_model_failure(exc):
                raise Stop("error", f"model call failed at step {step}: {exc}") from exc
            raise
        return content_text(reply)

    def ask_n(
        self, messages: list[dict[str, str]], grammar: str | None, n: int, temperature: float
    ) -> list[str]:
        """`n` sampled replies to `messages` in one call where the model can (step
        `explore`; see `agent.models.invoke_step_n`), budget-checked like `ask`."""
        from agent.models import invoke_step_n, is_model_failure
        from agent.nodes.parse import MAX_TOKENS

        self.check_budget()
        try:
            return invoke_step_n(
                self.run.deps.model,
                "explore",
                messages,
                n,
                self.run.counter,
                grammar=grammar,
                max_tokens=MAX_TOKENS.get("act"),
                temperature=temperature,
            )
        except Exception as exc:
            if is_model_failure(exc):
                raise Stop("error", f"model call failed at step explore: {exc}") from exc
            raise

    def usage(self) -> dict[str, Any]:
        return usage_delta(self.before, self.run.counter.snapshot())

    def done(self, **update: object) -> dict[str, Any]:
        """The node's state update plus its usage and seconds increments."""
        update["usage"] = self.usage()
        update["seconds"] = time.monotonic() - self.started
        return update


def history_entry(state: State, kind: str, **data: object) -> dict[str, Any]:
    return {"attempt": state.get("attempt", 0), "step": state.get("step", 0), "kind": kind, **data}
