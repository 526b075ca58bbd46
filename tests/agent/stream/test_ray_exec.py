"""What the Ray executor does without a cluster: episode ids, stored outcomes, and
addresses where no cluster answers (an error at once, not minutes of Ray's retries)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from agent.stream.errors import StreamError
from agent.stream.ray_exec import episode_id
from memory.episode import Episode
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
    result = Episode(
        task_id="t1",
        task="Sort: b a",
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
        id="ep-1",
        run_id="run-1",
        history=[{"step": "plan"}],
    )
    assert Episode.from_dict(result.to_dict()) == result


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_cluster_address_where_nothing_listens_fails_at_once(
    cli: typer.Typer, home: Path, tmp_path: Path
) -> None:
    pytest.importorskip("ray")
    stream = tmp_path / "s.jsonl"
    stream.write_text('{"id": "a", "task": "t"}\n')
    address = f"127.0.0.2:{_free_port()}"
    out = CliRunner().invoke(cli, ["run", str(stream), "--ray", address, "--run-id", "r"])
    assert out.exit_code != 0
    assert f"no Ray cluster answers at {address}" in out.output
    assert not (home / "runs" / "r").exists()


def test_auto_with_no_cluster_on_this_machine_says_how_to_start_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from agent.stream import ray_exec

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setattr(ray_exec, "CURRENT_CLUSTER", tmp_path / "ray_current_cluster")
    with pytest.raises(StreamError, match="ray start --head"):
        ray_exec.check_reachable("auto")
    assert ray_exec.cluster_address("local") is None
    (tmp_path / "ray_current_cluster").write_text("127.0.0.2:6379\n")
    assert ray_exec.cluster_address("auto") == "127.0.0.2:6379"
    with pytest.raises(StreamError, match="HOST:PORT"):
        ray_exec.check_reachable("nonsense")
