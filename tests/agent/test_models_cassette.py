"""Record then replay: a cassette written on one run answers the same requests offline."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from agent.errors import ModelError
from agent.models import (
    ModelCallError,
    ReplayModel,
    UsageCounter,
    get_model,
    invoke_step,
    request_key,
)
from tests.agent.fakes.openai_server import FakeOpenAIServer

SCRIPT = """
rules:
  - step: plan
    when: 'Task: (\\w+)'
    reply: "TOOLS: none\\nPLAN: just do it"
  - step: act
    when: 'Task'
    reply: "```python\\nanswer = 42\\n```"
default: "VERDICT: correct"
"""

CONVERSATION = [
    ("plan", [SystemMessage("You plan."), HumanMessage("Task: add 40 and 2")]),
    ("act", [SystemMessage("You code."), HumanMessage("Task: add 40 and 2\nPlan: just do it")]),
    ("check", [HumanMessage("Proposed answer: 42")]),
]


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "script.yaml"
    path.write_text(SCRIPT, encoding="utf-8")
    return path


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAIServer]:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key")
    calls = iter(range(1, 1000))
    with FakeOpenAIServer(lambda request: f"reply {next(calls)}") as fake:
        yield fake


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_record_then_replay_gives_the_same_replies_offline(script: Path, tmp_path: Path) -> None:
    cassette = tmp_path / "run.jsonl"
    recorded = get_model(f"scripted:{script}", record=cassette)
    originals = [invoke_step(recorded, step, messages) for step, messages in CONVERSATION]

    lines = read_lines(cassette)
    assert [line["step"] for line in lines] == ["plan", "act", "check"]
    assert lines[0]["messages"][1] == {"role": "human", "content": "Task: add 40 and 2"}
    assert lines[0]["model"] == f"scripted:{script}"
    assert lines[0]["key"] == request_key(CONVERSATION[0][1], "plan")

    script.unlink()  # the replay must not need the script: it is offline
    replay = get_model(f"replay:{cassette}")
    assert isinstance(replay, ReplayModel)
    counter = UsageCounter()
    replies = [invoke_step(replay, step, messages, counter) for step, messages in CONVERSATION]
    assert [r.content for r in replies] == [o.content for o in originals]
    assert [r.usage_metadata for r in replies] == [o.usage_metadata for o in originals]
    assert counter.n_calls == 3
    assert replay.remaining == 0


def test_identical_requests_replay_in_recorded_order(
    server: FakeOpenAIServer, tmp_path: Path
) -> None:
    cassette = tmp_path / "provider.jsonl"
    live = get_model("openai:test-model", base_url=server.base_url, record=cassette, max_retries=0)
    first = [invoke_step(live, "act", "same question").content for _ in range(3)]
    assert first == ["reply 1", "reply 2", "reply 3"]

    replay = get_model(f"replay:{cassette}")
    again = [invoke_step(replay, "act", "same question").content for _ in range(3)]
    assert again == first
    with pytest.raises(ModelCallError, match=r"recorded 3 time\(s\) and all were already replayed"):
        invoke_step(replay, "act", "same question")
    assert len(server.requests) == 3  # the replay never reached the server


def test_replay_keeps_the_providers_recorded_usage(
    server: FakeOpenAIServer, tmp_path: Path
) -> None:
    cassette = tmp_path / "usage.jsonl"
    live = get_model("openai:test-model", base_url=server.base_url, record=cassette, max_retries=0)
    original = invoke_step(live, "plan", "How many tokens?")
    replayed = invoke_step(get_model(f"replay:{cassette}"), "plan", "How many tokens?")
    assert original.usage_metadata is not None and replayed.usage_metadata is not None
    assert replayed.usage_metadata["input_tokens"] == original.usage_metadata["input_tokens"]
    assert replayed.usage_metadata["input_tokens"] > 1000  # the server's figure, not an estimate


def test_unrecorded_request_names_the_step_and_the_prompt(script: Path, tmp_path: Path) -> None:
    cassette = tmp_path / "run.jsonl"
    recorded = get_model(f"scripted:{script}", record=cassette)
    invoke_step(recorded, "plan", "Task: add 40 and 2")
    replay = get_model(f"replay:{cassette}")
    with pytest.raises(ModelCallError) as info:
        invoke_step(replay, "plan", "Task: multiply 6 by 7")
    message = str(info.value)
    assert "plan" in message and "Task: multiply 6 by 7" in message
    assert "no recording of this request" in message and str(cassette) in message
    # The step is part of the key: the same text asked by another step is not recorded.
    with pytest.raises(ModelCallError, match="step 'act'"):
        invoke_step(replay, "act", "Task: add 40 and 2")
    assert invoke_step(replay, "plan", "Task: add 40 and 2").content.startswith("TOOLS: none")


def test_a_failed_call_is_recorded_and_replays_as_the_same_error(
    server: FakeOpenAIServer, tmp_path: Path
) -> None:
    cassette = tmp_path / "errors.jsonl"
    live = get_model("openai:test-model", base_url=server.base_url, record=cassette, max_retries=0)
    server.status = 500
    with pytest.raises(ModelCallError, match="HTTP 500"):
        invoke_step(live, "act", "please fail")
    [line] = read_lines(cassette)
    assert "error" in line and "reply" not in line
    with pytest.raises(ModelCallError, match=r"replayed from .*HTTP 500"):
        invoke_step(get_model(f"replay:{cassette}"), "act", "please fail")


def test_recording_from_threads_keeps_every_line_whole(script: Path, tmp_path: Path) -> None:
    cassette = tmp_path / "threads.jsonl"
    model = get_model(f"scripted:{script}", record=cassette)

    def worker(n: int) -> None:
        for i in range(20):
            invoke_step(model, "plan", f"Task: t{n}x{i} " + "padding " * 200)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lines = read_lines(cassette)  # every line parses
    assert len(lines) == 120
    assert len({line["messages"][0]["content"] for line in lines}) == 120


def test_recording_appends_to_an_existing_cassette(script: Path, tmp_path: Path) -> None:
    cassette = tmp_path / "run.jsonl"
    invoke_step(get_model(f"scripted:{script}", record=cassette), "plan", "Task: one")
    invoke_step(get_model(f"scripted:{script}", record=cassette), "plan", "Task: two")
    replay = get_model(f"replay:{cassette}")
    assert invoke_step(replay, "plan", "Task: two").content.startswith("TOOLS")
    assert invoke_step(replay, "plan", "Task: one").content.startswith("TOOLS")


def test_a_torn_last_line_is_ignored_but_a_broken_middle_line_is_an_error(
    script: Path, tmp_path: Path
) -> None:
    cassette = tmp_path / "run.jsonl"
    model = get_model(f"scripted:{script}", record=cassette)
    invoke_step(model, "plan", "Task: one")
    whole = cassette.read_text(encoding="utf-8")
    cassette.write_text(whole + '{"v": 1, "key": "abc", "rep', encoding="utf-8")
    assert invoke_step(get_model(f"replay:{cassette}"), "plan", "Task: one").content

    cassette.write_text("not json\n" + whole, encoding="utf-8")
    with pytest.raises(ModelError, match=r"line 1 is not a valid record"):
        get_model(f"replay:{cassette}")


def test_missing_cassette_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"does not exist: record one first with --record"):
        get_model(f"replay:{tmp_path / 'none.jsonl'}")


def test_unwritable_record_path_is_a_model_error(script: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ModelError, match="pick a writable --record path"):
        get_model(f"scripted:{script}", record=blocker / "sub" / "run.jsonl")


def test_a_cassette_that_cannot_be_appended_to_fails_the_call(script: Path, tmp_path: Path) -> None:
    cassette = tmp_path / "run.jsonl"
    model = get_model(f"scripted:{script}", record=cassette)
    cassette.unlink()
    cassette.mkdir()  # appending now fails: the call must not pass silently unrecorded
    with pytest.raises(ModelError, match="cannot append to the cassette"):
        invoke_step(model, "plan", "Task: one")
