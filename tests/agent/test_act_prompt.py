"""What the act prompt shows a small model: where the data is, and after a critique the
earlier function's name rather than its code (a 1.5B model shown its code writes it out
again: 3 of 3 attempts on a dyck task before this)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from agent.config import AgentConfig
from agent.nodes.act import first_messages

WRONG = '''def count_vowels(task: str) -> str:
    """Count vowels."""
    return str(sum(c in "aeiou" for c in task))

answer = count_vowels(TASK)'''


def _run() -> Any:
    settings = SimpleNamespace(agent=AgentConfig(max_attempts=3))
    return SimpleNamespace(deps=SimpleNamespace(settings=settings), agent=settings.agent)


def _user(state: dict[str, Any]) -> str:
    messages = first_messages(state, _run())  # type: ignore[arg-type]
    return messages[1]["content"]


def test_the_data_line_is_shown_for_new_code_only() -> None:
    task = {"id": "t", "task": "Sort the following words alphabetically: List: pear fig"}
    user = _user({"task": task, "attempt": 1})
    assert 'The data in this task: `task.split("List:")[1].strip()` gives\npear fig\n' in user
    offered = [
        {"name": "sort_words", "signature": "sort_words(task: str) -> str", "docstring": "Sort."}
    ]
    with_tool = _user(
        {"task": task, "attempt": 1, "offered_tools": offered, "chosen_tools": ["sort_words"]}
    )
    assert "The data in this task" not in with_tool and "- sort_words:" in with_tool


def test_a_retry_names_the_earlier_function_without_its_code() -> None:
    task = {"id": "t", "task": "not ( True ) and False is"}
    user = _user(
        {
            "task": task,
            "attempt": 2,
            "critique": "answer '9' != expected 'False'",
            "previous_code": WRONG,
            "plan": "evaluate the expression",
        }
    )
    assert "An earlier attempt, `count_vowels`, was judged incorrect: answer '9'" in user
    assert "sum(c in" not in user and "Do not write `count_vowels` again" in user
    # each section on its own lines: the plan does not run into the tools line
    assert "evaluate the expression\nLibrary tools to use: none" in user
