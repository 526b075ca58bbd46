"""Learning with the real local model, CI-sized: two families, two tasks each, one
stream. The first task of a family is solved by the model, whose solution becomes a
tool at the batch end when it is a general function; the second task of the family
reuses that tool and needs fewer model calls. (The full curve, 8 tasks of 5 families with and without learning, is
`bench/real_stream.py`: hours, not CI.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent.stream.metrics import succeeded

DATA = Path(__file__).resolve().parents[2] / "bench" / "data" / "bbh"
# word_sorting is the family the 1.5B model solves at first sight nearly every time;
# the other one it solves about half the time (bench/real_stream.py), so the test holds
# it to what must be true whichever way its first task goes.
SURE, OTHER = "word_sorting", "boolean_expressions"


def tasks() -> list[dict[str, Any]]:
    out = []
    for family in (SURE, OTHER):
        examples = json.loads((DATA / f"{family}.json").read_text())["examples"]
        out.append([(family, i, examples[i]) for i in range(2)])
    # Batch 1 holds both families' first tasks, batch 2 their second ones.
    ordered = [out[0][0], out[1][0], out[0][1], out[1][1]]
    return [
        {"id": f"{family}-{i:03d}", "task": ex["input"], "expected": ex["target"], "tags": [family]}
        for family, i, ex in ordered
    ]


@pytest.mark.model
@pytest.mark.docker
def test_a_tool_forged_from_a_first_task_serves_the_second_with_fewer_calls(
    local_models: Path, sandbox_image: str, tmp_path: Path
) -> None:
    from agent.config import load_settings
    from agent.stream import RunOptions, start_run
    from agent.task import Task
    from memory import Library

    home = tmp_path / "home"
    settings = load_settings(
        home=str(home),
        model="local",
        overrides=["agent.max_attempts=2", "agent.max_seconds=150"],
    )
    outcome = start_run(
        [Task.from_dict(t) for t in tasks()],
        settings,
        RunOptions(workers=1, batch=2, learn=True, feedback="labels"),
        meta={"stream": "ci-learning"},
    )
    assert outcome.status == "finished", outcome.message
    rows = {r["id"]: r for r in outcome.results}
    with Library.open(str(home), settings.memory, own_index=False) as lib:
        tools = lib.list_tools(status=None)
        rejections = lib.rejections()
    made_from = {p.task_id: t.name for t in tools for p in t.provenance if p.task_id is not None}

    def check(family: str) -> None:
        first, second = rows[f"{family}-000"], rows[f"{family}-001"]
        tool = made_from.get(first["id"])
        assert succeeded(first), first
        assert tool is not None, (first, [t.name for t in tools])
        assert tool in second["tools_used"], (tool, second)
        assert succeeded(second), second
        assert second["n_calls"] < first["n_calls"], (first, second)

    check(SURE)
    # The other family: when the model's first solution was a general function (the forge
    # admitted it), the same must follow. A right answer the model wrote into its code is
    # kept for the task, but the static gate refuses it as a tool (greedy decoding does this
    # on boolean_expressions-000 since the prompt shows the data): then the refusal is on
    # record. A failed first task is never forged.
    first = rows[f"{OTHER}-000"]
    if f"{OTHER}-000" in made_from:
        check(OTHER)
    elif succeeded(first):
        refused = [r["reason"] for r in rejections if r.get("task_id") == first["id"]]
        assert any(reason.startswith("static gate") for reason in refused), refused
    else:
        assert not [r for r in rejections if r.get("task_id") == first["id"]], rejections
