"""provider:model through langchain's init_chat_model, against a real OpenAI-compatible
HTTP server on 127.0.0.1; endpoint failures come out as ModelCallError."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from agent.errors import ModelError
from agent.models import (
    ModelCallError,
    ProviderModel,
    get_model,
    invoke_step,
    is_model_failure,
)
from tests.agent.fakes.openai_server import FakeOpenAIServer, closed_port, prompt_of

# Keep failure tests quick: no retries with backoff, a short timeout.
FAST = {"max_retries": 0, "timeout_s": 5}


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAIServer]:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key")

    def answer(request: dict) -> str:
        return "4" if "2 + 2" in prompt_of(request) else "I don't know."

    with FakeOpenAIServer(answer) as fake:
        yield fake


def test_a_reply_through_langchain_openai(server: FakeOpenAIServer) -> None:
    model = get_model("openai:test-model", base_url=server.base_url, **FAST)
    assert isinstance(model, ProviderModel)
    messages = [SystemMessage("You add numbers."), HumanMessage("What is 2 + 2?")]
    reply = invoke_step(model, "act", messages)
    assert reply.content == "4"
    [request] = server.requests
    assert request["model"] == "test-model"
    assert request["messages"] == [
        {"role": "system", "content": "You add numbers."},
        {"role": "user", "content": "What is 2 + 2?"},
    ]


def test_a_local_server_needs_no_api_key(
    server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    model = get_model("openai:test-model", base_url=server.base_url, **FAST)
    assert invoke_step(model, "plan", "What is 2 + 2?").content == "4"


def test_server_error_is_a_model_call_error(server: FakeOpenAIServer) -> None:
    model = get_model("openai:test-model", base_url=server.base_url, **FAST)
    server.status = 500
    with pytest.raises(ModelCallError) as info:
        invoke_step(model, "check", "What is 2 + 2?")
    message = str(info.value)
    assert "HTTP 500" in message and server.base_url in message and "(step check)" in message
    assert info.value.step == "check"
    assert is_model_failure(info.value)
    # A caller that invokes the model directly (toolforge) gets the same error type.
    with pytest.raises(ModelCallError, match="HTTP 500"):
        model.invoke("What is 2 + 2?", config={"tags": ["step:distill"]})


def test_refused_connection_is_a_model_call_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key")
    base_url = f"http://127.0.0.1:{closed_port()}/v1"
    model = get_model("openai:test-model", base_url=base_url, **FAST)
    with pytest.raises(ModelCallError) as info:
        invoke_step(model, "plan", "anyone there?")
    assert f"cannot reach model openai:test-model at {base_url}" in str(info.value)
    assert "is the server running?" in str(info.value)


def test_invoke_step_translates_an_unwrapped_provider_model(server: FakeOpenAIServer) -> None:
    model = get_model("openai:test-model", base_url=server.base_url, **FAST)
    assert isinstance(model, ProviderModel)
    server.status = 503
    with pytest.raises(ModelCallError, match="HTTP 503"):
        invoke_step(model.inner, "act", "What is 2 + 2?")


GRAMMAR = 'root ::= "VERDICT: " ("correct" | "wrong")'


def test_a_step_grammar_goes_to_a_self_hosted_server(server: FakeOpenAIServer) -> None:
    model = get_model("openai:test-model", base_url=server.base_url, **FAST)
    invoke_step(model, "check", "What is 2 + 2?", grammar=GRAMMAR)
    invoke_step(model, "act", "What is 2 + 2?")  # no grammar: no field
    with_grammar, without = server.requests
    assert with_grammar["grammar"] == GRAMMAR
    assert "grammar" not in without


def test_a_server_that_refuses_grammars_is_asked_plainly_from_then_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key")
    with FakeOpenAIServer(lambda request: "4", refuse_fields=frozenset({"grammar"})) as fake:
        model = get_model("openai:test-model", base_url=fake.base_url, **FAST)
        assert invoke_step(model, "check", "What is 2 + 2?", grammar=GRAMMAR).content == "4"
        assert invoke_step(model, "check", "What is 3 + 1?", grammar=GRAMMAR).content == "4"
        sent = ["grammar" in request for request in fake.requests]
    # refused once, repeated without it, and never sent again
    assert sent == [True, False, False]


def test_grammars_are_sent_only_when_asked(server: FakeOpenAIServer) -> None:
    off = get_model("openai:test-model", base_url=server.base_url, server_grammar="off", **FAST)
    invoke_step(off, "check", "What is 2 + 2?", grammar=GRAMMAR)
    assert "grammar" not in server.requests[-1]
    # `send` insists even when the server refuses: the refusal is the call's error
    server.refuse_fields = frozenset({"grammar"})
    send = get_model("openai:test-model", base_url=server.base_url, server_grammar="send", **FAST)
    with pytest.raises(ModelCallError, match="HTTP 400"):
        invoke_step(send, "check", "What is 2 + 2?", grammar=GRAMMAR)


def test_is_model_failure_tells_failures_from_bugs() -> None:
    assert is_model_failure(ModelCallError("x"))
    assert is_model_failure(ModelError("x"))
    assert is_model_failure(ConnectionRefusedError())
    assert is_model_failure(TimeoutError())
    assert not is_model_failure(ValueError("a bug"))
    assert not is_model_failure(KeyError("a bug"))


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("", "no model given"),
        ("   ", "no model given"),
        ("gpt-4o", "is not provider:model"),
        ("openai:", "is not provider:model"),
        ("nosuchprovider:some-model", "unknown model provider 'nosuchprovider'"),
    ],
)
def test_bad_specs_say_what_to_write(spec: str, expected: str) -> None:
    with pytest.raises(ModelError, match=expected) as info:
        get_model(spec)
    assert "openai:gpt-4o-mini" in str(info.value) or "Supported model providers" in str(info.value)


def test_missing_provider_package_says_what_to_install() -> None:
    candidates = {"anthropic": "langchain_anthropic", "groq": "langchain_groq"}
    missing = [p for p, module in candidates.items() if importlib.util.find_spec(module) is None]
    if not missing:
        pytest.skip("every candidate provider package is installed here")
    provider = missing[0]
    with pytest.raises(ModelError, match=rf"pip install langchain-{provider}"):
        get_model(f"{provider}:some-model")


def test_missing_api_key_says_what_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ModelError, match="OPENAI_API_KEY"):
        get_model("openai:gpt-4o-mini")


def test_unknown_step_is_a_programming_error(server: FakeOpenAIServer) -> None:
    model = get_model("openai:test-model", base_url=server.base_url, **FAST)
    with pytest.raises(ValueError, match="unknown step 'planning'"):
        invoke_step(model, "planning", "hi")
    assert server.requests == []
