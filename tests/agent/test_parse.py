"""The strict reply parsers: every documented format parses, everything else is a
FormatError that says what was wrong."""

from __future__ import annotations

import pytest

from agent.nodes.parse import (
    FormatError,
    answer_grammar,
    parse_answer,
    parse_code,
    parse_line,
    parse_plan,
)


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


def test_answer_takes_the_last_answer_line() -> None:
    assert parse_answer("ANSWER: 12") == "12"
    assert parse_answer("WORK: 3 * 4 = 12\nWORK: so 12\nanswer: `12`") == "12"
    with pytest.raises(FormatError, match="ANSWER"):
        parse_answer("12")
    with pytest.raises(FormatError, match="ANSWER"):
        parse_answer("ANSWER:   ")


def test_answer_grammar_follows_the_task_form() -> None:
    from toolforge.properties import task_form

    sort = answer_grammar(task_form("Sort the following words alphabetically: List: b a"))
    assert '"b"' in sort and '"a"' in sort and "{0,1}" in sort
    assert '"True" | "False"' in answer_grammar(task_form("not ( True ) is"))
    choice = answer_grammar(task_form("Which?\nOptions:\n(A) yes\n(B) no"))
    assert '"(A)"' in choice and '"no"' in choice
    assert answer_grammar(task_form("Say hi"), reasoned=True).startswith('root ::= ("WORK: "')


def test_line() -> None:
    assert parse_line("TIP: sort with key=str.lower", "TIP") == "sort with key=str.lower"
    assert parse_line("TIP: none", "TIP") is None
    assert (
        parse_line("LESSON: check the input format first", "LESSON")
        == "check the input format first"
    )
    with pytest.raises(FormatError, match="LESSON"):
        parse_line("be careful", "LESSON")
