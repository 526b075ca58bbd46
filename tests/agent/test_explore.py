"""Exploration (agent/nodes/explore.py): for a task no tool covers, several programs
sampled in one call, run, and the first that holds kept; a repair turn when none runs;
budgets per task and per stream. Scripted models answer each sample (`sample: N`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agent.deps import ExplorePool
from agent.solve import solve_task
from agent.task import Task
from tests.agent.graph_kit import ANSWER, CREATE_CODE, DISTILL_REPLY, TASK, make_deps, write_script
from tests.agent.test_graph import CHECK_OK, PLAN_NEW, calls, code, solve

WRONG = code('answer = "fig apple pear"')
RIGHT = code('answer = " ".join(sorted("pear apple fig".split()))')
RAISES = code("answer = 1 / 0")
NO_ANSWER = code('print("thinking")')


def samples(*replies: str) -> list[dict[str, Any]]:
    """Rules answering the explore call's samples 1..n with `replies`, in order."""
    return [{"step": "explore", "sample": i, "reply": reply} for i, reply in enumerate(replies, 1)]


def test_the_third_sample_holds_where_the_first_raises_and_the_second_is_wrong(
    home: Path, any_sandbox: Any
) -> None:
    rules = [PLAN_NEW, *samples(RAISES, WRONG, RIGHT, RIGHT)]
    result, library = solve(
        home, any_sandbox, rules, feedback="labels", explore="always", learn=False
    )
    assert result.status == "solved" and result.answer == ANSWER and result.attempts == 1
    # One call drew the four samples; the checker judged the wrong one, then the right one.
    assert calls(result, "explore") == 1 and calls(result, "act") == 0
    assert result.explored == 4
    verdicts = [(h["verdict"], h["by"]) for h in result.history if h["kind"] == "verify"]
    assert verdicts == [("correct", "checker")]
    tried = [h for h in result.history if h["kind"] == "act"]
    # The fourth sample repeated the third: it was not run twice.
    assert len(tried) == 3 and all(h["explore"] for h in tried)
    assert "ZeroDivisionError" in tried[0]["observation"]
    library.close()


RIGHT_TOO = code('answer = " ".join(sorted(["pear", "apple", "fig"]))')


def test_without_labels_candidates_meet_the_route_asked_once(home: Path, any_sandbox: Any) -> None:
    rules = [PLAN_NEW, *samples(WRONG, RIGHT, RIGHT_TOO), CHECK_OK]
    result, library = solve(home, any_sandbox, rules, explore="always", explore_k=3)
    assert result.status == "solved" and result.answer == ANSWER
    assert result.verified_by == "agreement"
    assert calls(result, "check") == 1 and calls(result, "explore") == 1
    library.close()


def test_without_labels_a_lone_later_program_agreeing_with_the_route_is_no_evidence(
    home: Path, any_sandbox: Any
) -> None:
    """k programs give k chances to meet the route's answer by coincidence: a later
    program the route agrees with counts only when another program reached its answer."""
    rules = [PLAN_NEW, *samples(WRONG, RIGHT), CHECK_OK]
    result, library = solve(home, any_sandbox, rules, explore="always", explore_k=2, max_attempts=1)
    assert result.status == "unverified" and result.answer == "fig apple pear"
    assert calls(result, "check") == 1
    library.close()


def test_the_program_that_held_is_the_one_the_forge_takes(home: Path, any_sandbox: Any) -> None:
    rules = [
        PLAN_NEW,
        *samples(WRONG, CREATE_CODE),
        {"step": "distill", "reply": DISTILL_REPLY},
    ]
    result, library = solve(
        home, any_sandbox, rules, feedback="labels", explore="always", explore_k=2, forge="now"
    )
    assert result.status == "solved" and result.tools_created == ["sort_words"]
    assert [t.name for t in library.list_tools()] == ["sort_words"]
    library.close()


def test_when_no_sample_runs_the_repair_turn_sees_the_error(home: Path, any_sandbox: Any) -> None:
    rules = [
        PLAN_NEW,
        *samples(RAISES, NO_ANSWER, RAISES),
        # The repair turn: the act prompt carries the first failing program's error.
        {"step": "act", "when": "ZeroDivisionError", "reply": RIGHT},
        {"step": "act", "reply": WRONG},
    ]
    result, library = solve(
        home, any_sandbox, rules, feedback="labels", explore="always", explore_k=3, learn=False
    )
    assert result.status == "solved" and result.answer == ANSWER
    assert calls(result, "explore") == 1 and calls(result, "act") == 1
    assert result.explored == 3
    library.close()


def test_a_task_a_tool_covers_explores_nothing(home: Path, any_sandbox: Any) -> None:
    first = [PLAN_NEW, *samples(CREATE_CODE, CREATE_CODE), CHECK_OK]
    first.append({"step": "distill", "reply": DISTILL_REPLY})
    created, library = solve(
        home, any_sandbox, first, feedback="labels", explore="always", explore_k=2, forge="now"
    )
    library.close()
    assert created.tools_created == ["sort_words"]
    second = Task(id="t2", task=TASK.replace("pear apple fig", "kiwi banana cherry"))
    rules = [
        {"step": "plan", "reply": "TOOLS: sort_words\nPLAN: sort with the tool\n"},
        {
            "step": "act",
            "reply": code(
                'from tools import sort_words\n\nanswer = " ".join(sort_words("kiwi banana cherry".split()))'
            ),
        },
        {"step": "check", "reply": code('answer = "banana cherry kiwi"')},
    ]
    reused, library = solve(home, any_sandbox, rules, second, explore="always")
    assert reused.status == "solved" and reused.explored == 0
    assert calls(reused, "explore") == 0
    library.close()


def test_budgets_per_task_and_per_stream_hold(home: Path, any_sandbox: Any) -> None:
    # A task's budget of 0 (or of 1: one sample is no exploration) draws nothing.
    rules = [PLAN_NEW, *samples(RIGHT, RIGHT), {"step": "act", "reply": RIGHT}]
    for per_task in (0, 1):
        result, library = solve(
            home, any_sandbox, rules, feedback="labels", explore="always", explore_per_task=per_task
        )
        assert result.explored == 0 and calls(result, "explore") == 0
        library.close()
    # A stream's budget is shared by its tasks: the first draws 4, the second 2, the third 0.
    script = write_script(home / "stream.yaml", rules)
    deps = make_deps(
        home, script, any_sandbox, feedback="labels", explore="always", explore_per_stream=6
    )
    drawn = []
    for i in range(3):
        task = Task(id=f"s{i}", task=TASK, expected=ANSWER)
        drawn.append(solve_task(task, deps, forge="off").explored)
    deps.close()
    assert drawn == [4, 2, 0]


def test_the_pool_grants_what_is_left() -> None:
    pool = ExplorePool(5)
    assert [pool.take(4), pool.take(4), pool.take(4)] == [4, 1, 0]
    least = ExplorePool(5)
    assert [least.take(4, least=2), least.take(4, least=2), least.spent] == [4, 0, 4]
    unlimited = ExplorePool(0)
    assert unlimited.take(16) == 16 and unlimited.take(16) == 16


def test_exploration_is_off_by_default_for_a_scripted_model(home: Path, any_sandbox: Any) -> None:
    rules = [PLAN_NEW, *samples(WRONG, RIGHT), {"step": "act", "reply": RIGHT}]
    result, library = solve(home, any_sandbox, rules, feedback="labels")
    assert result.explored == 0 and calls(result, "explore") == 0 and calls(result, "act") == 1
    library.close()


@pytest.mark.parametrize("value", [1, 17])
def test_k_outside_its_range_is_refused(value: int) -> None:
    from pydantic import ValidationError

    from agent.config import AgentConfig

    with pytest.raises(ValidationError, match="explore_k"):
        AgentConfig(explore_k=value)
