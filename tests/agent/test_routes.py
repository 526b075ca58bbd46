"""The evidence rules of the independent route (agent/routes.py) that need no model."""

from __future__ import annotations

from agent.routes import answer_choices, by_elimination

CHOICE = "Which is a fruit?\nOptions:\n(A) oak\n(B) pear\n(C) elm\n"


def test_a_true_false_task_has_two_answers_and_an_open_one_none() -> None:
    assert answer_choices("not ( True ) and ( True ) is") == [{"true"}, {"false"}]
    assert answer_choices("Sort the following words alphabetically: List: b a") is None
    assert answer_choices(CHOICE) == [{"(a)", "oak"}, {"(b)", "pear"}, {"(c)", "elm"}]


def test_elimination_needs_every_other_allowed_answer_refuted() -> None:
    task = "not ( True ) and ( True ) is"
    assert by_elimination(task, ["false"], "True")
    assert not by_elimination(task, [], "True")
    # a refuted answer the task does not allow eliminates nothing
    assert not by_elimination(task, ["false and true"], "True")
    assert not by_elimination(CHOICE, ["(a)"], "(B)")
    assert by_elimination(CHOICE, ["(a)", "elm"], "pear")
    assert not by_elimination("How many apples: two apples", ["3"], "2")
