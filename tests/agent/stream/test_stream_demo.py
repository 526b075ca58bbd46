"""The demo's scripted model: generated from the stream and the solutions (never from
the labels), and its code really computes the answers, checked in the sandbox on every
example of the five BBH families."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pytest

BBH = Path(__file__).resolve().parents[3] / "examples" / "bbh"


def _make_model() -> Any:
    spec = importlib.util.spec_from_file_location("make_model", BBH / "make_model.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_model"] = module  # dataclasses look their module up while defining
    spec.loader.exec_module(module)
    return module


def test_model_yaml_is_what_the_script_generates(tmp_path: Path) -> None:
    mm = _make_model()
    out = tmp_path / "model.yaml"
    mm.write(mm.build(mm.read_tasks(BBH / "stream.jsonl")), out)
    assert out.read_text() == (BBH / "model.yaml").read_text(), "run examples/bbh/make_model.py"


def test_the_model_is_built_without_the_labels() -> None:
    mm = _make_model()
    tasks = mm.read_tasks(BBH / "stream-small.jsonl")
    unlabelled = [{k: v for k, v in t.items() if k != "expected"} for t in tasks]
    assert mm.build(unlabelled) == mm.build(tasks)
    text = json.dumps(mm.build(tasks))
    # No reply states an answer: every reply that names the task's input computes from it.
    for task in tasks:
        assert f"answer = {task['expected']!r}" not in text


def test_every_task_of_the_stream_is_read(tmp_path: Path) -> None:
    mm = _make_model()
    tasks = mm.read_tasks(BBH / "stream.jsonl")
    assert all(mm.family_of(t["task"]) == t["tags"][0] for t in tasks)
    model = mm.build(tasks)
    checks = [r for r in model["rules"] if r["step"] == "check"]
    assert len(checks) == len({t["task"] for t in tasks})
    tool_calls = [
        r for r in model["rules"] if r["step"] == "act" and "from tools import" in r["reply"]
    ]
    assert len(tool_calls) == len(mm.FAMILIES)


@pytest.mark.docker
def test_the_solutions_compute_every_bbh_answer_in_the_sandbox(docker_sandbox: Any) -> None:
    mm = _make_model()
    for family in mm.FAMILIES:
        examples = json.loads((BBH / "data" / f"{family}.json").read_text())["examples"]
        tool = mm.FAMILIES[family].task_tool
        # The family's task tool on every task's text, as the library will call it.
        code = (
            f"{mm.task_module(family)}\n\n\ncases = {[(e['input'], e['target']) for e in examples]!r}\n"
            f"answer = [i for i, (task, want) in enumerate(cases) if {tool}(task) != want]\n"
        )
        result = docker_sandbox.run(code, timeout_s=60)
        assert result.ok, result.observation()
        assert result.answer == [], f"{family}: wrong on examples {result.answer[:10]}"
        # The independent route's program for each task computes it too.
        for e in examples[:40]:
            res = docker_sandbox.run(mm.check_program(family, e["input"]), timeout_s=20)
            assert res.answer == e["target"], (family, e["input"], res.observation())
