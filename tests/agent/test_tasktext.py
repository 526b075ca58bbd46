"""Where a task's data is: the hint the act prompt shows a small model."""

from __future__ import annotations

from agent.tasktext import MAX_SHOWN, data_hint


def _check(task: str) -> str:
    hint = data_hint(task)
    assert hint is not None
    expr, value = hint
    # The expression is code the model may copy: it must give the value shown.
    assert eval(expr, {"task": task}) == value
    return value


def test_a_marker_line_gives_the_text_after_it() -> None:
    assert _check("Sort the following words alphabetically: List: pear Apple fig") == (
        "pear Apple fig"
    )
    assert _check("Complete the sequence. Input: < ( [ ]") == "< ( [ ]"


def test_the_last_marker_wins_and_options_are_cut_off() -> None:
    task = "Question: which is larger?\nInput: 3 7\nOptions:\n(A) 3\n(B) 7"
    assert _check(task) == "3 7"


def test_a_question_stub_gives_the_text_before_it() -> None:
    assert _check("((-1 + 2) * 3) =") == "((-1 + 2) * 3)"
    assert _check("not ( True ) and False is") == "not ( True ) and False"


def test_no_hint_for_prose_or_an_ambiguous_marker() -> None:
    assert data_hint("I have a car, and a toaster. How many objects do I have?") is None
    assert data_hint("Word: a b. Word: c d") is None  # cut at which one? say nothing


def test_a_long_value_is_shown_cut() -> None:
    hint = data_hint("Input: " + "( " * 400)
    assert hint is not None and len(hint[1]) == MAX_SHOWN and hint[1].endswith("…")
