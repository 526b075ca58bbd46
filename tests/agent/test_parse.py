"""The strict reply parsers: every documented format parses, everything else is a
FormatError that says what was wrong."""

from __future__ import annotations

import pytest

from agent.nodes.parse import FormatError, parse_code, parse_line, parse_plan, parse_verdict


def test_plan_with_tools_and_multiline_plan() -> None:
    reply = "TOOLS: sort_words, count_items\nPLAN: call sort_words\nthen join the words"
    parsed = parse_plan(reply, ["sort_words", "count_items", "other"])
    assert parsed.tools == ["sort_words", "count_items"]
    assert parsed.plan == "call sort_words\nthen join the words"


def test_plan_none_is_new_code_and_keys_are_case_insensitive() -> None:
    parsed = parse_plan("  tools: none\n  plan: write it", [])
    assert parsed.tools == []
    assert parsed.plan == "write it"


@pytest.mark.parametrize(
    ("reply", "problem"),
    [
        ("PLAN: do it", "TOOLS:"),
        ("TOOLS: none", "PLAN:"),
        ("TOOLS: made_up\nPLAN: x", "not among the tools offered"),
        ("TOOLS: sort words!\nPLAN: x", "not a tool name"),
        ("TOOLS:\nPLAN: x", "empty"),
        ("TOOLS: none\nPLAN:", "empty"),
    ],
)
def test_plan_format_errors(reply: str, problem: str) -> None:
    with pytest.raises(FormatError, match=problem):
        parse_plan(reply, ["sort_words"])


def test_code_block_exactly_one() -> None:
    assert parse_code("Here:\n```python\nanswer = 1\n```\nDone.") == "answer = 1"
    with pytest.raises(FormatError, match="no ```python"):
        parse_code("answer = 1")
    with pytest.raises(FormatError, match="2 ```python blocks"):
        parse_code("```python\na=1\n```\n```python\nanswer=2\n```")
    with pytest.raises(FormatError, match="empty"):
        parse_code("```python\n\n```")


def test_verdict() -> None:
    assert parse_verdict("VERDICT: correct\nREASON: fine") == (True, "fine")
    assert parse_verdict("verdict: Incorrect.\nreason: off by one") == (False, "off by one")
    # the order the local grammar fixes: the reason first, then the verdict
    assert parse_verdict("REASON: it is 3, as proposed\nVERDICT: correct") == (
        True,
        "it is 3, as proposed",
    )
    with pytest.raises(FormatError, match="neither"):
        parse_verdict("VERDICT: maybe\nREASON: x")
    with pytest.raises(FormatError, match="REASON"):
        parse_verdict("VERDICT: correct")
    with pytest.raises(FormatError, match="VERDICT"):
        parse_verdict("looks good to me")


def test_line() -> None:
    assert parse_line("TIP: sort with key=str.lower", "TIP") == "sort with key=str.lower"
    assert parse_line("TIP: none", "TIP") is None
    assert (
        parse_line("LESSON: check the input format first", "LESSON")
        == "check the input format first"
    )
    with pytest.raises(FormatError, match="LESSON"):
        parse_line("be careful", "LESSON")
