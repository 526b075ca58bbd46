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
