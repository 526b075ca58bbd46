"""The Ray executor's bookkeeping that needs no cluster: episode ids and stored outcomes."""

from __future__ import annotations

from agent.solve import EpisodeResult
from agent.stream.ray_exec import episode_id
from toolforge.types import Trace


def test_an_episode_id_is_the_same_on_a_rerun_and_new_for_a_new_attempt() -> None:
    first = episode_id("run-1", "t1", 0)
    assert first == episode_id("run-1", "t1", 0)  # the driver killed, the task re-run
    assert first.startswith("ep-") and len(first) == 19
    others = {
        episode_id("run-1", "t1", 1),
        episode_id("run-2", "t1", 0),
        episode_id("run-1", "t2", 0),
    }
    assert first not in others and len(others) == 3


def test_an_outcome_read_back_from_its_episode_is_the_outcome() -> None:
    trace = Trace.from_dict(
        {
            "task": "Sort: b a",
            "code": "print('a b')",
            "answer": "a b",
            "tool_calls": [],
            "episode_id": "ep-1",
        }
    )
    result = EpisodeResult(
        task_id="t1",
        status="solved",
        answer="a b",
        correct=True,
        attempts=1,
        n_calls=2,
        tokens_in=30,
        tokens_out=5,
        seconds=1.5,
        tools_used=["sort_words"],
        tools_created=[],
        feedback="labels",
        reason="checked",
        traces=[trace],
        episode_id="ep-1",
        history=[{"step": "plan"}],
    )
    back = EpisodeResult.from_record(result.to_record("Sort: b a", "run-1"))
    assert back == result
