"""`UsageCounter`: a LangChain callback that counts model calls per step and in total.

Attach it to a call (`invoke_step(..., counter=c)`, or `config={"callbacks": [c]}`) or
to a model (`model.with_config(callbacks=[c])`); it reads the step from the call's
metadata or tags (see `steps.py`). Tokens come from the provider's `usage_metadata`
(or its `llm_output["token_usage"]`); without either they are estimated from text with
`estimate_tokens`, the same estimate the scripted and replay models report.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGeneration, LLMResult

from agent.models.steps import estimate_tokens, prompt_text, step_from

UNKNOWN_STEP = "unknown"
"""The bucket of calls made without a step (a caller that forgot the convention)."""


def _zero() -> dict[str, Any]:
    return {"n_calls": 0, "n_errors": 0, "tokens_in": 0, "tokens_out": 0, "seconds": 0.0}


class UsageCounter(BaseCallbackHandler):
    """Counts calls, errors, input/output tokens and seconds, per step and in total.

    Thread-safe: the stream runner's workers share models. A handler attached twice to
    one call (once on the model, once in the call's config) counts it once, because
    LangChain gives both deliveries the same run id.
    """

    # Counting must never break a call, so errors inside the handler are only logged.
    raise_error = False

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._pending: dict[UUID, tuple[str, float, str]] = {}
        self._total = _zero()
        self._by_step: dict[str, dict[str, Any]] = {}

    # -- callback hooks -------------------------------------------------------------

    def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[BaseMessage]],
        *,
        run_id: UUID,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: object,
    ) -> None:
        text = prompt_text(messages[0]) if messages else ""
        self._start(run_id, tags, metadata, text)

    def on_llm_start(
        self,
        serialized: dict[str, Any],
        prompts: list[str],
        *,
        run_id: UUID,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: object,
    ) -> None:
        self._start(run_id, tags, metadata, "\n".join(prompts[:1]))

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: object) -> None:
        with self._lock:
            pending = self._pending.pop(run_id, None)
        if pending is None:  # a second delivery of the same call, or a start we missed
            return
        step, started, prompt = pending
        tokens_in, tokens_out = _tokens(response, prompt)
        self._add(step, time.perf_counter() - started, tokens_in, tokens_out, error=False)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: object) -> None:
        with self._lock:
            pending = self._pending.pop(run_id, None)
        if pending is None:
            return
        step, started, _ = pending
        # A failed call consumed time but (as far as we can know) no billed tokens.
        self._add(step, time.perf_counter() - started, 0, 0, error=True)

    # -- figures --------------------------------------------------------------------

    @property
    def n_calls(self) -> int:
        with self._lock:
            return int(self._total["n_calls"])

    @property
    def n_errors(self) -> int:
        with self._lock:
            return int(self._total["n_errors"])

    @property
    def tokens_in(self) -> int:
        with self._lock:
            return int(self._total["tokens_in"])

    @property
    def tokens_out(self) -> int:
        with self._lock:
            return int(self._total["tokens_out"])

    @property
    def total_tokens(self) -> int:
        with self._lock:
            return int(self._total["tokens_in"] + self._total["tokens_out"])

    @property
    def seconds(self) -> float:
        with self._lock:
            return float(self._total["seconds"])

    @property
    def by_step(self) -> dict[str, dict[str, Any]]:
        """A copy: `{step: {n_calls, n_errors, tokens_in, tokens_out, seconds}}`."""
        with self._lock:
            return copy.deepcopy(self._by_step)

    def snapshot(self) -> dict[str, Any]:
        """All figures at once (consistent with each other): totals plus `by_step`."""
        with self._lock:
            out = dict(self._total)
            out["by_step"] = copy.deepcopy(self._by_step)
            return out

    def reset(self) -> None:
        """Forget every figure (calls in flight are still counted when they end)."""
        with self._lock:
            self._total = _zero()
            self._by_step = {}

    # -- internals ------------------------------------------------------------------

    def _start(
        self,
        run_id: UUID,
        tags: Sequence[str] | None,
        metadata: Mapping[str, Any] | None,
        prompt: str,
    ) -> None:
        step = step_from(tags, metadata) or UNKNOWN_STEP
        with self._lock:
            self._pending.setdefault(run_id, (step, time.perf_counter(), prompt))

    def _add(
        self, step: str, seconds: float, tokens_in: int, tokens_out: int, *, error: bool
    ) -> None:
        with self._lock:
            bucket = self._by_step.setdefault(step, _zero())
            for figures in (self._total, bucket):
                figures["n_calls"] += 1
                figures["n_errors"] += int(error)
                figures["tokens_in"] += tokens_in
                figures["tokens_out"] += tokens_out
                figures["seconds"] += seconds

    def __repr__(self) -> str:
        snap = self.snapshot()
        return (
            f"UsageCounter(n_calls={snap['n_calls']}, tokens_in={snap['tokens_in']}, "
            f"tokens_out={snap['tokens_out']}, seconds={snap['seconds']:.3f})"
        )


def _tokens(response: LLMResult, prompt: str) -> tuple[int, int]:
    """(input, output) tokens of a finished call: reported if possible, else estimated.

    A call that sampled several replies (`n`): the call's own total where the provider
    reports one (an OpenAI-compatible server repeats it on every reply), else each
    reply's own figures summed (the local engine counts the shared prompt on the first
    reply only), else the prompt once and every reply estimated."""
    generations = response.generations[0] if response.generations else []
    token_usage = (response.llm_output or {}).get("token_usage") or {}
    reported = isinstance(token_usage, Mapping) and (
        "prompt_tokens" in token_usage or "completion_tokens" in token_usage
    )
    if reported and len(generations) > 1:
        return int(token_usage.get("prompt_tokens") or 0), int(
            token_usage.get("completion_tokens") or 0
        )
    usages = [
        getattr(g.message, "usage_metadata", None) if isinstance(g, ChatGeneration) else None
        for g in generations
    ]
    if usages and all(usages):
        return (
            sum(int(u.get("input_tokens", 0)) for u in usages if u),
            sum(int(u.get("output_tokens", 0)) for u in usages if u),
        )
    if reported:
        return int(token_usage.get("prompt_tokens") or 0), int(
            token_usage.get("completion_tokens") or 0
        )
    return estimate_tokens(prompt), sum(estimate_tokens(g.text) for g in generations)
