"""The run folder: append-only files that survive a kill, reopened and repaired."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from stream_kit import result_row

from agent.stream.errors import StreamError
from agent.stream.store import RunStore, list_runs


def _store(home: Path, run_id: str = "r1", n: int = 4) -> RunStore:
    tasks = [{"id": f"fam-{i}", "task": f"task {i}", "expected": "x"} for i in range(n)]
    return RunStore.create(
        home,
        run_id,
        {
            "run_id": run_id,
            "n_tasks": n,
            "status": "running",
            "pid": os.getpid(),
            "started_at": "2026-01-01T00:00:0" + run_id[-1],
        },
        tasks,
    )


def test_create_refuses_an_existing_run_and_a_bad_id(home: Path) -> None:
    _store(home)
    with pytest.raises(StreamError, match=r"already exists.*--resume r1"):
        _store(home)
    with pytest.raises(StreamError, match="not valid"):
        _store(home, "../escape")


def test_open_unknown_run_lists_recent_ones(home: Path) -> None:
    _store(home, "r1")
    with pytest.raises(StreamError, match=r"no run 'r9'.*recent runs: r1"):
        RunStore.open(home, "r9")


def test_results_merge_tools_created_from_batches_in_stream_order(home: Path) -> None:
    store = _store(home)
    store.append_result(result_row("fam-2", batch=1, correct=True, tokens=10, calls=1))
    store.append_result(result_row("fam-0", batch=0, correct=True, tokens=10, calls=1))
    store.append_batch({"batch": 0, "created": {"fam-0": ["tool_a"]}, "library_size": 1})
    rows = store.results()
    assert [r["id"] for r in rows] == ["fam-0", "fam-2"]
    assert rows[0]["tools_created"] == ["tool_a"] and rows[1]["tools_created"] == []


def test_a_torn_last_line_is_ignored_and_cut_on_repair(home: Path) -> None:
    store = _store(home)
    store.append_result(result_row("fam-0", batch=0, correct=True, tokens=10, calls=1))
    with (store.dir / "results.jsonl").open("a") as fh:
        fh.write('{"id": "fam-1", "stat')  # the kill came mid-write
    assert [r["id"] for r in store.raw_results()] == ["fam-0"]
    store.repair()
    store.append_result(result_row("fam-1", batch=0, correct=False, tokens=10, calls=1))
    lines = (store.dir / "results.jsonl").read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["fam-0", "fam-1"]


def test_traces_are_kept_per_task(home: Path) -> None:
    store = _store(home)
    store.append_traces("fam-0", 0, [{"task": "t", "code": "answer = 1"}])
    store.append_traces("fam-1", 0, [{"task": "u", "code": "answer = 2"}], [{"kind": "x"}])
    assert store.traces(["fam-1"]) == {
        "fam-1": {"traces": [{"task": "u", "code": "answer = 2"}], "evidence": [{"kind": "x"}]}
    }


def test_list_runs_reports_a_dead_runner_as_interrupted(home: Path) -> None:
    _store(home, "r1")
    other = _store(home, "r2")
    other.update_meta(pid=2**22 + 12345)  # above pid_max: no such process
    infos = {r.run_id: r for r in list_runs(home)}
    assert infos["r1"].status == "running"
    assert infos["r2"].status == "interrupted"
    assert [r.run_id for r in list_runs(home)] == ["r1", "r2"]
