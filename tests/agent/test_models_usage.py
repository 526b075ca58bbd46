"""UsageCounter: calls, tokens and seconds per step and in total, however it is attached."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from agent.models import (
    ModelCallError,
    ScriptedModel,
    UsageCounter,
    get_model,
    invoke_step,
    step_config,
)
from tests.agent.fakes.openai_server import PROMPT_TOKEN_OFFSET, FakeOpenAIServer


def est(text: str) -> int:
    return math.ceil(len(text) / 4)


class NoUsageModel(BaseChatModel):
    """A chat model that reports no usage at all, like some local servers."""

    reply: str = "forty-two"

    @property
    def _llm_type(self) -> str:
        return "no-usage"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=self.reply))])


@pytest.fixture
def scripted() -> ScriptedModel:
    return ScriptedModel.from_rules(
        [{"step": "act", "when": "boom", "reply": "x"}, {"when": "fail", "reply": "y"}],
        default="a reply of some length",
    )


def test_counts_per_step_and_in_total(scripted: ScriptedModel) -> None:
    counter = UsageCounter()
    prompts = [("plan", "plan this task"), ("act", "write code"), ("act", "write more code")]
    for step, prompt in prompts:
        invoke_step(scripted, step, prompt, counter)
    reply_tokens = est("a reply of some length")
    snap = counter.snapshot()
    assert snap["n_calls"] == counter.n_calls == 3
    assert snap["n_errors"] == 0
    assert snap["tokens_in"] == counter.tokens_in == sum(est(p) for _, p in prompts)
    assert snap["tokens_out"] == counter.tokens_out == 3 * reply_tokens
    assert counter.total_tokens == counter.tokens_in + counter.tokens_out
    assert snap["seconds"] == counter.seconds > 0
    assert set(snap["by_step"]) == {"plan", "act"}
    assert snap["by_step"]["act"]["n_calls"] == 2
    assert snap["by_step"]["act"]["tokens_in"] == est("write code") + est("write more code")
    assert snap["by_step"]["plan"]["tokens_out"] == reply_tokens


def test_bound_counter_counts_calls_that_pass_their_own_config(scripted: ScriptedModel) -> None:
    # toolforge's way: the agent binds the counter, the callee passes only its step.
    counter = UsageCounter()
    bound = scripted.with_config(callbacks=[counter])
    bound.invoke("distill this", config=step_config("distill"))
    bound.invoke("refine this", config=step_config("refine"))
    assert counter.by_step["distill"]["n_calls"] == 1
    assert counter.by_step["refine"]["n_calls"] == 1
    # Attached both ways at once, a call still counts once.
    invoke_step(bound, "plan", "twice attached", counter)
    assert counter.n_calls == 3 and counter.by_step["plan"]["n_calls"] == 1


def test_call_without_a_step_is_counted_as_unknown(scripted: ScriptedModel) -> None:
    counter = UsageCounter()
    scripted.invoke("no step here", config={"callbacks": [counter]})
    assert counter.by_step["unknown"]["n_calls"] == 1


def test_without_usage_data_tokens_are_estimated_from_text() -> None:
    counter = UsageCounter()
    prompt = "a prompt of thirty-one letters."
    invoke_step(NoUsageModel(), "check", prompt, counter)
    assert (counter.tokens_in, counter.tokens_out) == (est(prompt), est("forty-two"))


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAIServer]:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key")
    with FakeOpenAIServer(lambda request: "the provider's reply") as fake:
        yield fake


def test_provider_usage_is_preferred_over_the_estimate(server: FakeOpenAIServer) -> None:
    counter = UsageCounter()
    model = get_model("openai:test-model", base_url=server.base_url, max_retries=0)
    prompt = "count my tokens"
    invoke_step(model, "plan", prompt, counter)
    assert counter.tokens_in == est(prompt) + PROMPT_TOKEN_OFFSET
    assert counter.tokens_out == est("the provider's reply")


def test_failed_calls_count_as_errors_with_their_seconds(scripted: ScriptedModel) -> None:
    counter = UsageCounter()
    strict = ScriptedModel.from_rules([{"when": "known", "reply": "ok"}])
    with pytest.raises(ModelCallError):
        invoke_step(strict, "act", "something else", counter)
    invoke_step(strict, "act", "known prompt", counter)
    assert counter.n_calls == 2 and counter.n_errors == 1
    assert counter.by_step["act"]["n_errors"] == 1
    assert counter.tokens_out == est("ok")


def test_snapshot_is_a_copy_and_reset_clears(scripted: ScriptedModel) -> None:
    counter = UsageCounter()
    invoke_step(scripted, "plan", "p", counter)
    snap = counter.snapshot()
    snap["by_step"]["plan"]["n_calls"] = 99
    assert counter.by_step["plan"]["n_calls"] == 1
    counter.reset()
    assert counter.snapshot() == {
        "n_calls": 0,
        "n_errors": 0,
        "tokens_in": 0,
        "tokens_out": 0,
        "seconds": 0.0,
        "by_step": {},
    }


def test_counter_is_exact_under_threads(scripted: ScriptedModel) -> None:
    counter = UsageCounter()
    bound = scripted.with_config(callbacks=[counter])

    def worker(n: int) -> None:
        for i in range(50):
            bound.invoke(f"prompt {n} {i}", config=step_config("act" if i % 2 else "plan"))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    snap = counter.snapshot()
    assert snap["n_calls"] == 400
    assert snap["by_step"]["act"]["n_calls"] == snap["by_step"]["plan"]["n_calls"] == 200
    expected_in = sum(est(f"prompt {n} {i}") for n in range(8) for i in range(50))
    assert snap["tokens_in"] == expected_in
