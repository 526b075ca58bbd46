"""One call of a step (agent/models/calls.py): a reply read one way, the ask-parse-re-ask
loop, and the forge's `StepModel` over a chat model (named, counted, its grammar passed)."""

from __future__ import annotations

from pathlib import Path

from toolforge.replies import ReplyFormatError


def test_content_text_reads_a_reply_one_way() -> None:
    from langchain_core.messages import AIMessage

    from agent.models import content_text

    parts = ["a", {"type": "text", "text": "b"}, {"type": "image_url", "image_url": "x"}]
    assert content_text("plain") == "plain"
    assert content_text(parts) == "ab"
    assert content_text(AIMessage(content=parts)) == "ab"
    assert content_text(None) == ""


def test_ask_until_parsed_sends_back_what_was_wrong() -> None:
    from agent.models import ask_until_parsed

    replies = iter(["no number", "42"])
    seen: list[list[str]] = []
    problems: list[str] = []

    def ask(messages: list[str]) -> str:
        seen.append(list(messages))
        return next(replies)

    def parse(reply: str) -> int:
        if not reply.isdigit():
            raise ReplyFormatError(f"{reply!r} is not a number")
        return int(reply)

    asked = ask_until_parsed(
        ask, ["q"], parse, lambda r, p: [r, f"fix: {p}"], tries=3, on_problem=problems.append
    )
    assert (asked.value, asked.problem, asked.calls) == (42, "", 2)
    assert seen[1] == ["q", "no number", "fix: 'no number' is not a number"]
    assert problems == ["'no number' is not a number"]

    never = ask_until_parsed(lambda m: "x", [], parse, lambda r, p: [], tries=2)
    assert (never.value, never.problem, never.calls) == (None, "'x' is not a number", 2)


def test_the_forges_step_model_names_counts_and_constrains_each_call(tmp_path: Path) -> None:
    from agent.models import StepCaller, UsageCounter, get_model
    from tests.agent.graph_kit import write_script

    script = write_script(
        tmp_path / "m.yaml", [{"step": "distill", "reply": "```python\nx = 1\n```\n"}]
    )
    counter = UsageCounter()
    caller = StepCaller(get_model(f"scripted:{script}"), counter)
    text = caller.ask("distill", [{"role": "user", "content": "make a tool"}], grammar="root ::= x")
    assert text.startswith("```python")
    assert counter.snapshot()["by_step"]["distill"]["n_calls"] == 1


def test_several_replies_to_one_prompt_are_one_call_where_the_model_samples_together(
    tmp_path: Path,
) -> None:
    from agent.models import UsageCounter, get_model, invoke_step_n
    from tests.agent.graph_kit import write_script

    rules = [
        {"step": "explore", "sample": 2, "reply": "second"},
        {"step": "explore", "sample": 3, "reply": "third"},
        {"step": "explore", "reply": "first"},
    ]
    script = write_script(tmp_path / "m.yaml", rules)
    counter = UsageCounter()
    prompt = [{"role": "user", "content": "a task " * 50}]
    texts = invoke_step_n(get_model(f"scripted:{script}"), "explore", prompt, 3, counter)
    assert texts == ["first", "second", "third"]
    explore = counter.snapshot()["by_step"]["explore"]
    assert explore["n_calls"] == 1
    # The prompt is read once for all three: its tokens are counted once.
    one = UsageCounter()
    invoke_step_n(get_model(f"scripted:{script}"), "explore", prompt, 1, one)
    assert explore["tokens_in"] == one.snapshot()["by_step"]["explore"]["tokens_in"]
    assert explore["tokens_out"] > one.snapshot()["by_step"]["explore"]["tokens_out"]


def test_a_model_that_returns_one_reply_per_call_is_asked_again_with_other_seeds() -> None:
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage

    from agent.models import UsageCounter, invoke_step_n

    replies = iter([AIMessage(content=f"reply {i}") for i in range(5)])
    model = GenericFakeChatModel(messages=replies)
    counter = UsageCounter()
    texts = invoke_step_n(model, "explore", [{"role": "user", "content": "q"}], 3, counter)
    assert sorted(texts) == ["reply 0", "reply 1", "reply 2"]
    assert counter.snapshot()["by_step"]["explore"]["n_calls"] == 3


def test_sampling_names_a_known_step() -> None:
    import pytest

    from agent.models import invoke_step_n

    with pytest.raises(ValueError, match="unknown step 'guess'"):
        invoke_step_n(object(), "guess", [], 2)  # type: ignore[arg-type]
