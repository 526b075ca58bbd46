"""Every path of the graph, driven by scripted models, with code run in each sandbox
backend (`any_sandbox`: local in `make test-fast`, Docker marked) and a real library
(hash embeddings) on a temp home."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.solve import solve_task
from agent.task import Task
from memory.episode import Episode
from sandbox.config import SandboxConfig
from tests.agent.graph_kit import (
    ANSWER,
    CREATE_CODE,
    DISTILL_REPLY,
    REUSE_CODE,
    TASK,
    check_reply,
    make_deps,
    write_script,
)

PLAN_NEW = {"step": "plan", "reply": "TOOLS: none\nPLAN: write a sort_words function and call it\n"}
# The independent route (step `check`): the task answered directly, without code.
CHECK_OK = {"step": "check", "reply": check_reply(ANSWER)}
#: the check route answers each of these tasks right
CHECK_EACH = [
    {"step": "check", "when": f"List: {w}\n", "reply": check_reply(" ".join(sorted(w.split())))}
    for w in ("pear apple fig", "kiwi banana cherry", "oak elm ash", "plum date lime", "yew fir")
]
TIP = {"step": "reflect", "when": "TIP:", "reply": "TIP: compare words case-insensitively\n"}
LESSON = {"step": "reflect", "when": "LESSON:", "reply": "LESSON: keep the code short and finite\n"}


def code(source: str) -> str:
    return f"```python\n{source}\n```\n"


def solve(
    home: Path,
    sandbox: Any,
    rules: list[dict[str, Any]],
    task: Task | None = None,
    *,
    forge: str = "off",
    default: str | None = None,
    events: list[dict[str, Any]] | None = None,
    latency_s: float = 0,
    **agent: Any,
) -> tuple[Episode, Any]:
    """Solve `task` with a script of `rules`; returns the result and the (open) library."""
    script = write_script(
        home / f"script-{len(list(home.glob('script-*')))}.yaml", rules, default, latency_s
    )
    deps = make_deps(home, script, sandbox, **agent)
    result = solve_task(
        task or Task(id="t1", task=TASK, expected=ANSWER),
        deps,
        forge=forge,  # type: ignore[arg-type]
        on_event=events.append if events is not None else None,
    )
    deps.close()
    from memory import HashEmbedder, Library

    return result, Library.open(home, embedder=HashEmbedder())


def calls(result: Episode, step: str) -> int:
    return int(result.usage_by_step.get(step, {}).get("n_calls", 0))


def test_creation_is_forged_and_reused_with_fewer_calls(home: Path, any_sandbox: Any) -> None:
    rules = [
        {
            "step": "plan",
            "when": "(?s)Library tools offered:\n- sort_words",
            "reply": "TOOLS: sort_words\nPLAN: call the library tool\n",
        },
        PLAN_NEW,
        {"step": "act", "when": "from tools import NAME", "reply": REUSE_CODE},
        {"step": "act", "reply": CREATE_CODE},
        *CHECK_EACH,
        {"step": "distill", "reply": DISTILL_REPLY},
        TIP,
    ]
    created, library = solve(home, any_sandbox, rules, forge="now")
    assert created.status == "solved" and created.correct is True
    assert created.answer == ANSWER
    assert created.tools_created == ["sort_words"]
    tool = library.get_tool("sort_words")
    assert tool is not None and tool.status == "active"
    assert "def test_ignores_case" in tool.tests
    assert calls(created, "distill") == 1  # forge's call is counted with the task
    library.close()

    second = Task(
        id="t2",
        task="Sort the following words alphabetically: List: kiwi banana cherry",
        expected="banana cherry kiwi",
    )
    events: list[dict[str, Any]] = []
    reused, library = solve(home, any_sandbox, rules, second, forge="now", events=events)
    assert reused.status == "solved" and reused.correct is True
    assert reused.answer == "banana cherry kiwi"
    assert reused.tools_used == ["sort_words"]
    assert reused.tools_created == []
    assert reused.n_calls < created.n_calls
    recall = next(e for e in events if e["event"] == "recall")
    assert recall["tools"][0] == "sort_words"
    # the use was recorded and the task linked to the tool
    info = library.get_tool("sort_words")
    assert info is not None and info.n_uses >= 1 and info.n_success >= 1
    assert any("kiwi" in t for t in library.tool_tasks("sort_words"))
    library.close()


def test_a_disagreement_retries_without_showing_the_other_answer(
    home: Path, any_sandbox: Any
) -> None:
    rules = [
        {
            "step": "plan",
            "when": "judged incorrect",
            "reply": "TOOLS: none\nPLAN: sort ascending this time\n",
        },
        {"step": "plan", "reply": "TOOLS: none\nPLAN: sort the words\n"},
        {
            # The other route's answer never reaches the code route: a later agreement
            # must stay independent.
            "step": "act",
            "when": "apple fig pear",
            "reply": code('answer = "the other answer leaked"'),
        },
        {
            "step": "act",
            "when": "sort ascending this time",
            "reply": code('answer = " ".join(sorted("pear apple fig".split()))'),
        },
        {
            "step": "act",
            "reply": code('answer = " ".join(sorted("pear apple fig".split(), reverse=True))'),
        },
        CHECK_OK,
        TIP,
    ]
    result, library = solve(home, any_sandbox, rules, learn=True)
    assert result.status == "solved"
    assert result.attempts == 2
    assert result.answer == ANSWER and result.correct is True
    verdicts = [(h["verdict"], h["by"]) for h in result.history if h["kind"] == "verify"]
    assert verdicts == [("incorrect", "agreement"), ("correct", "agreement")]
    # the independent answer is asked once per task, then compared with each attempt
    assert (calls(result, "plan"), calls(result, "act"), calls(result, "check")) == (2, 2, 1)
    assert calls(result, "reflect") == 1
    tips = library.search_tips("Sort the following words", k=3)
    assert [hit.tip.text for hit in tips] == ["compare words case-insensitively"]
    library.close()


def test_answers_no_route_confirms_end_unverified_and_teach_nothing(
    home: Path, any_sandbox: Any
) -> None:
    """Without labels, the critic's approval is gone: an answer that the independent route
    contradicts on every attempt is answered but unverified, is not forged, and leaves a
    failure note with both answers for the next task of its kind."""
    rules = [
        PLAN_NEW,
        {"step": "act", "reply": CREATE_CODE},
        {"step": "check", "reply": check_reply("fig apple pear")},
        {"step": "distill", "reply": DISTILL_REPLY},
    ]
    result, library = solve(home, any_sandbox, rules, forge="now")
    assert result.status == "unverified" and result.answer == ANSWER
    assert result.correct is True  # scored afterwards: it was right, but nothing backed it
    assert result.tools_created == [] and library.list_tools() == []
    assert calls(result, "distill") == 0 and calls(result, "check") == 1
    failures = library.search_failures(TASK, k=1)
    assert failures and failures[0].failure.error_type == "Disagreement"
    lesson = failures[0].failure.lesson
    assert "'apple fig pear'" in lesson and "'fig apple pear'" in lesson
    library.close()


def test_labels_feedback_lets_the_checker_decide(home: Path, any_sandbox: Any) -> None:
    rules = [
        {"step": "plan", "when": "judged incorrect", "reply": "TOOLS: none\nPLAN: fix the order\n"},
        {"step": "plan", "reply": "TOOLS: none\nPLAN: sort the words\n"},
        {"step": "act", "when": "fix the order", "reply": code('answer = "apple fig pear"')},
        {"step": "act", "reply": code('answer = "fig apple pear"')},
    ]
    result, library = solve(home, any_sandbox, rules, feedback="labels", learn=False)
    assert result.status == "solved" and result.attempts == 2
    assert calls(result, "check") == 0  # the checker, not the model, verified
    first = next(h for h in result.history if h["kind"] == "verify")
    assert first["by"] == "checker" and "expected" in first["reason"]
    library.close()


def test_feedback_none_still_scores_against_the_label(home: Path, any_sandbox: Any) -> None:
    rules = [
        {"step": "plan", "reply": "TOOLS: none\nPLAN: sort\n"},
        {"step": "act", "reply": code('answer = "fig apple pear"')},
        # the independent route makes the same mistake: agreement is evidence, not proof
        {"step": "check", "reply": check_reply("fig apple pear")},
    ]
    result, library = solve(home, any_sandbox, rules)
    assert result.status == "solved"  # two routes agreed
    assert result.correct is False  # the label says otherwise
    library.close()


def test_an_error_goes_back_to_act_and_never_to_the_check(home: Path, any_sandbox: Any) -> None:
    rules = [
        {"step": "plan", "reply": "TOOLS: none\nPLAN: sort\n"},
        {
            "step": "act",
            "when": "ERROR ZeroDivisionError",
            "reply": code('answer = "apple fig pear"'),
        },
        {"step": "act", "reply": code("answer = 1 / 0")},
        CHECK_OK,
        TIP,
    ]
    result, library = solve(home, any_sandbox, rules)
    assert result.status == "solved" and result.answer == ANSWER
    assert calls(result, "act") == 2 and calls(result, "check") == 1
    library.close()


def test_a_failure_is_recorded_with_its_lesson_and_recalled(home: Path, any_sandbox: Any) -> None:
    rules = [
        {
            "step": "plan",
            "when": "keep the code short and finite",
            "reply": "TOOLS: none\nPLAN: LESSON-SEEN\n",
        },
        {"step": "plan", "reply": "TOOLS: none\nPLAN: sort\n"},
        {"step": "act", "reply": code("answer = undefined_name")},
        LESSON,
    ]
    result, library = solve(home, any_sandbox, rules, max_attempts=1, max_steps=1)
    assert result.status == "failed" and "NameError" in result.reason
    assert calls(result, "check") == 0  # execution errors fail without a model call
    failures = library.search_failures(TASK, k=3)
    assert failures and failures[0].failure.lesson == "keep the code short and finite"
    assert failures[0].failure.error_type == "NameError"
    library.close()
    again, library = solve(
        home, any_sandbox, rules, Task(id="t2", task=TASK), max_attempts=1, max_steps=1
    )
    assert any(h.get("plan") == "LESSON-SEEN" for h in again.history)
    library.close()


def test_garbage_replies_get_the_format_and_count(home: Path, any_sandbox: Any) -> None:
    rules = [
        {"step": "plan", "when": "could not be used", "reply": "TOOLS: none\nPLAN: sort\n"},
        {"step": "plan", "reply": "Sure! I will sort them for you."},
        {"step": "act", "when": "could not be used", "reply": code('answer = "apple fig pear"')},
        {"step": "act", "reply": "The answer is apple fig pear."},
        CHECK_OK,
        TIP,
    ]
    events: list[dict[str, Any]] = []
    result, library = solve(home, any_sandbox, rules, events=events)
    assert result.status == "solved" and result.answer == ANSWER
    assert (calls(result, "plan"), calls(result, "act"), calls(result, "check")) == (2, 2, 1)
    assert any(e.get("format_error") for e in events if e["event"] == "plan")
    library.close()


def test_only_garbage_fails_cleanly_within_the_limits(home: Path, any_sandbox: Any) -> None:
    result, library = solve(
        home, any_sandbox, [], default="I don't know.", max_attempts=2, max_steps=2
    )
    assert result.status == "failed"
    assert "could not be parsed" in result.reason
    # 2 attempts x 2 plan replies; nothing ran; the lesson request got garbage twice too
    assert calls(result, "plan") == 4 and calls(result, "act") == 0 and calls(result, "check") == 0
    assert calls(result, "reflect") == 2
    assert result.n_calls == 6
    assert library.search_failures(TASK, k=1) == []  # no lesson: nothing to store
    library.close()


def test_token_budget_ends_the_task(home: Path, any_sandbox: Any) -> None:
    rules = [
        {"step": "plan", "reply": "TOOLS: none\nPLAN: sort\n"},
        {"step": "act", "reply": CREATE_CODE},
    ]
    result, library = solve(home, any_sandbox, rules, max_tokens=100)
    assert result.status == "budget_exhausted"
    assert "token budget" in result.reason
    assert result.n_calls == 1  # the plan call went over; act was never asked
    assert result.correct is False  # a labelled task without an answer is scored wrong
    library.close()


def test_time_budget_ends_the_task(home: Path, any_sandbox: Any) -> None:
    rules = [
        {"step": "plan", "reply": "TOOLS: none\nPLAN: sort\n"},
        {"step": "act", "reply": CREATE_CODE},
    ]
    result, library = solve(home, any_sandbox, rules, latency_s=0.4, max_seconds=0.3)
    assert result.status == "budget_exhausted" and "time budget" in result.reason
    assert result.n_calls == 1
    library.close()


def test_an_endpoint_failure_is_status_error(home: Path, any_sandbox: Any) -> None:
    rules = [{"step": "plan", "reply": "TOOLS: none\nPLAN: sort\n"}]  # no act rule, no default
    result, library = solve(home, any_sandbox, rules)
    assert result.status == "error"
    assert "act" in result.reason and "no rule matches" in result.reason
    assert library.search_failures(TASK, k=1) == []  # says nothing about the task
    episode = library.get_episode(result.id)
    assert episode is not None and episode.status == "error"
    library.close()


@pytest.fixture
def listener() -> Iterator[tuple[int, list[Any]]]:
    """A TCP server on the host's loopback that records every connection it gets."""
    accepted: list[Any] = []
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, addr = server.accept()
            except OSError:
                continue
            accepted.append(addr)
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], accepted
    stop.set()
    thread.join(timeout=2)
    server.close()


def test_an_infinite_loop_is_stopped_and_the_task_fails(home: Path, any_sandbox: Any) -> None:
    rules = [
        {"step": "plan", "reply": "TOOLS: none\nPLAN: loop\n"},
        {"step": "act", "reply": code("while True:\n    pass")},
        LESSON,
    ]
    script = write_script(home / "loop.yaml", rules)
    deps = make_deps(home, script, any_sandbox, max_attempts=1, max_steps=1)
    deps.settings = deps.settings.model_copy(update={"sandbox": SandboxConfig(timeout_s=2)})
    result = solve_task(Task(id="loop", task=TASK), deps, forge="off")
    failures = deps.library.search_failures(TASK, k=1)
    deps.close()
    assert result.status == "failed"
    assert "TIMEOUT" in result.reason
    assert failures and failures[0].failure.error_type == "Timeout"


def test_a_network_attempt_is_stopped(
    home: Path, any_sandbox: Any, listener: tuple[int, list[Any]]
) -> None:
    port, accepted = listener
    rules = [
        {"step": "plan", "reply": "TOOLS: none\nPLAN: fetch\n"},
        {
            "step": "act",
            "reply": code(
                "import socket\n"
                f"s = socket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
                "answer = 'connected'"
            ),
        },
        LESSON,
    ]
    result, library = solve(home, any_sandbox, rules, max_attempts=1, max_steps=1)
    assert result.status == "failed"
    assert result.answer is None
    assert accepted == []  # the host's listener never saw the sandbox
    library.close()


def test_defer_returns_traces_and_no_learn_leaves_the_library(home: Path, any_sandbox: Any) -> None:
    rules = [PLAN_NEW, {"step": "act", "reply": CREATE_CODE}, CHECK_OK]
    deferred, library = solve(home, any_sandbox, rules, forge="defer")
    assert deferred.status == "solved" and deferred.tools_created == []
    assert len(deferred.traces) == 1
    trace = deferred.traces[0]
    assert trace.task == TASK and "def sort_words" in trace.code and trace.answer == ANSWER
    assert trace.episode_id == deferred.id
    assert library.list_tools() == []
    library.close()

    frozen, library = solve(
        home, any_sandbox, rules, Task(id="t3", task=TASK), forge="now", learn=False
    )
    assert frozen.status == "solved" and frozen.traces == [] and frozen.tools_created == []
    assert library.list_tools() == [] and library.search_tips(TASK, k=1) == []
    assert library.get_episode(frozen.id) is not None
    library.close()


def test_resume_does_not_repeat_finished_steps(home: Path, any_sandbox: Any) -> None:
    rules = [PLAN_NEW, {"step": "act", "reply": CREATE_CODE}, CHECK_OK]
    script = write_script(home / "resume.yaml", rules)
    deps = make_deps(home, script, any_sandbox)

    class Crash(BaseException):
        pass

    def crash_in_verify(event: dict[str, Any]) -> None:
        if event["event"] == "verify":
            raise Crash  # the process "dies" inside verify, after its model call

    task = Task(id="t1", task=TASK)
    with pytest.raises(Crash):
        solve_task(task, deps, forge="off", on_event=crash_in_verify)
    result = solve_task(task, deps, forge="off", resume=True)
    assert result.status == "solved"
    # plan and act come from the checkpoint; only verify ran again (once counted)
    assert (calls(result, "plan"), calls(result, "act"), calls(result, "check")) == (1, 1, 1)
    again = solve_task(task, deps, forge="off", resume=True)  # finished: nothing to redo
    assert again.n_calls == result.n_calls and again.status == "solved"
    fresh = solve_task(task, deps, forge="off")  # resume=False starts the thread afresh
    assert fresh.id != result.id and fresh.n_calls == 3
    deps.close()


def test_a_thread_holding_only_its_input_is_started_afresh_on_resume(
    home: Path, any_sandbox: Any
) -> None:
    """A kill while a task's first step is being written can leave a thread with the
    task's input and nothing to run next: resumed, it is solved afresh, not reported as an
    empty `error` (seen in CI as a resumed stream's in-flight tasks ending in error)."""
    from agent.graph import build_graph
    from agent.models import UsageCounter
    from agent.nodes.common import Run
    from agent.solve import thread_id

    rules = [PLAN_NEW, {"step": "act", "reply": CREATE_CODE}, CHECK_OK]
    deps = make_deps(home, write_script(home / "input-only.yaml", rules), any_sandbox)
    task = Task(id="t1", task=TASK)
    graph = build_graph(Run(deps, UsageCounter(), "off", None, task.id), deps.checkpointer)
    config = {"configurable": {"thread_id": thread_id(task.id, None)}}
    graph.update_state(config, {"task": task.to_dict(), "episode_id": "ep-x"}, as_node="learn")
    assert graph.get_state(config).next == ()
    result = solve_task(task, deps, forge="off", resume=True)
    assert result.status == "solved" and result.n_calls == 3
    deps.close()


def test_learn_killed_after_its_writes_is_not_redone(home: Path, any_sandbox: Any) -> None:
    rules = [
        PLAN_NEW,
        {"step": "act", "reply": CREATE_CODE},
        CHECK_OK,
        {"step": "distill", "reply": DISTILL_REPLY},
    ]
    deps = make_deps(home, write_script(home / "learn.yaml", rules), any_sandbox)

    class Crash(BaseException):
        pass

    def crash_after_learn(event: dict[str, Any]) -> None:
        if event["event"] == "learn":
            raise Crash  # every write is done; the checkpoint of learn is not

    task = Task(id="t1", task=TASK)
    with pytest.raises(Crash):
        solve_task(task, deps, forge="now", on_event=crash_after_learn)
    result = solve_task(task, deps, forge="now", resume=True)
    assert result.status == "solved" and result.tools_created == ["sort_words"]
    assert calls(result, "distill") == 0  # not forged a second time
    tool = deps.library.get_tool("sort_words")
    assert tool is not None and tool.version == 1
    deps.close()


def test_without_a_checkpointer_the_graph_still_runs(home: Path, any_sandbox: Any) -> None:
    rules = [PLAN_NEW, {"step": "act", "reply": CREATE_CODE}, CHECK_OK]
    deps = make_deps(home, write_script(home / "plain.yaml", rules), any_sandbox)
    deps.checkpointer = None
    result = solve_task(Task(id="t1", task=TASK, expected=ANSWER), deps, forge="off")
    deps.close()
    assert result.status == "solved" and result.correct is True and result.n_calls == 3


# --------------------------------------------------------------------------- fast path

SORT_TASK_TOOL = '''def sort_task_words(task: str) -> str:
    """Sort the words after 'List:' in the task alphabetically."""
    return " ".join(sorted(task.split("List:")[1].split()))
'''
# Made for the expression, not for a task's whole text.
SORT_LIST_TOOL = '''def sort_list_text(words: str) -> str:
    """Sort space-separated words alphabetically."""
    return " ".join(sorted(words.split()))
'''
# Takes the task's text, and is wrong: the words come back in reverse order.
REVERSE_TASK_TOOL = '''def sort_task_words(task: str) -> str:
    """Sort the words after 'List:' in the task alphabetically."""
    return " ".join(sorted(task.split("List:")[1].split(), reverse=True))
'''


def add_tool(
    home: Path, source: str, solved: str, properties: tuple[dict[str, Any], ...] = ()
) -> str:
    """A tool in the library that solved the task `solved` (the past-tasks view)."""
    import ast

    from memory import HashEmbedder, Library, Provenance, ToolDraft

    fn = ast.parse(source).body[0]
    assert isinstance(fn, ast.FunctionDef)
    arg = fn.args.args[0].arg
    with Library.open(home, embedder=HashEmbedder()) as library:
        library.add_tool(
            ToolDraft(
                name=fn.name,
                source=source,
                tests=f"from tools import {fn.name}\n\ndef test_it():\n    assert {fn.name}\n",
                signature=f"{fn.name}({arg}: str) -> str",
                docstring=ast.get_docstring(fn) or "",
                provenance=Provenance(task=solved, task_id="t0"),
                properties=properties,
            )
        )
        library.link_task(fn.name, solved)
    return fn.name


def sort_task(words: str) -> Task:
    return Task(
        id=f"t-{words.replace(' ', '-')}",
        task=f"Sort the following words alphabetically: List: {words}",
        expected=" ".join(sorted(words.split())),
    )


def test_a_tool_on_probation_is_audited_until_confirmed_then_answers_alone(
    home: Path, any_sandbox: Any
) -> None:
    name = add_tool(home, SORT_TASK_TOOL, TASK)
    trust = []
    for words in ("pear apple fig", "kiwi banana cherry", "oak elm ash", "plum date lime"):
        result, library = solve(
            home,
            any_sandbox,
            CHECK_EACH,
            sort_task(words),
            fast_path_similarity=0.0,
            audit_rate=0.0,
        )
        info = library.get_tool(name)
        assert info is not None
        trust.append((result.status, result.n_calls, info.trust, info.n_support))
        library.close()
    assert trust == [
        ("solved", 1, "probation", 1),  # the tool answered, the check route agreed
        ("solved", 1, "probation", 2),
        ("solved", 1, "trusted", 3),  # three confirmations on distinct tasks
        ("solved", 0, "trusted", 3),  # trusted: no model call at all
    ]
    with __import__("memory").Library.open(
        home, embedder=__import__("memory").HashEmbedder()
    ) as lib:
        kinds = [e.kind for e in lib.tool_evidence(name)]
    assert kinds.count("agreement") == 3


def test_a_consistent_but_wrong_tool_is_caught_and_leaves_the_fast_path(
    home: Path, any_sandbox: Any
) -> None:
    """The tool answers every task the same wrong way and would look reliable to a critic;
    the independent route disagrees: the model answers instead, the disagreement is
    evidence against the tool, and the tool goes to repair and off the fast path."""
    name = add_tool(home, REVERSE_TASK_TOOL, TASK)
    rules = [PLAN_NEW, {"step": "act", "reply": CREATE_CODE}, *CHECK_EACH]
    events: list[dict[str, Any]] = []
    result, library = solve(
        home,
        any_sandbox,
        rules,
        sort_task("pear apple fig"),
        fast_path_similarity=0.0,
        events=events,
    )
    assert result.status == "solved" and result.correct is True and result.answer == ANSWER
    plans = [e for e in events if e["event"] == "plan"]
    assert plans[0]["fast"] is True and not plans[1].get("fast")
    info = library.get_tool(name)
    assert info is not None and info.trust == "doubted" and info.n_against == 1
    evidence = library.tool_evidence(name)
    assert [(e.kind, e.answer, e.other) for e in evidence] == [
        ("disagreement", "pear fig apple", ANSWER)
    ]
    assert [f.error_type for f in library.tool_failures(name)] == ["Disagreement"]
    assert name in library.tools_to_repair()
    library.close()
    events.clear()
    _again, library = solve(
        home,
        any_sandbox,
        rules,
        sort_task("kiwi banana cherry"),
        fast_path_similarity=0.0,
        events=events,
    )
    assert not any(e.get("fast") for e in events if e["event"] == "plan")
    library.close()


def test_a_property_violation_is_never_returned_and_sends_the_tool_to_repair(
    home: Path, any_sandbox: Any
) -> None:
    properties = ({"kind": "permutation_of_list"}, {"kind": "sorted"})
    name = add_tool(home, REVERSE_TASK_TOOL, TASK, properties)
    rules = [PLAN_NEW, {"step": "act", "reply": CREATE_CODE}, *CHECK_EACH]
    result, library = solve(
        home, any_sandbox, rules, sort_task("pear apple fig"), fast_path_similarity=0.0
    )
    assert result.status == "solved" and result.answer == ANSWER
    act = next(h for h in result.history if h["kind"] == "act")
    assert "breaks what the task states" in act["observation"]
    info = library.get_tool(name)
    assert info is not None and info.trust == "doubted"
    assert [e.kind for e in library.tool_evidence(name)] == ["property_violated"]
    assert [f.error_type for f in library.tool_failures(name)] == ["PropertyViolated"]
    assert name in library.tools_to_repair()
    library.close()


def test_a_pinned_tool_answers_alone_but_is_still_audited_at_the_audit_rate(
    home: Path, any_sandbox: Any
) -> None:
    from memory import HashEmbedder, Library

    name = add_tool(home, SORT_TASK_TOOL, TASK)
    with Library.open(home, embedder=HashEmbedder()) as library:
        assert library.pin(name).trust == "pinned"
    quiet, library = solve(
        home,
        any_sandbox,
        CHECK_EACH,
        sort_task("oak elm ash"),
        fast_path_similarity=0.0,
        audit_rate=0.0,
    )
    library.close()
    audited, library = solve(
        home,
        any_sandbox,
        CHECK_EACH,
        sort_task("yew fir"),
        fast_path_similarity=0.0,
        audit_rate=1.0,
    )
    assert (quiet.status, quiet.n_calls) == ("solved", 0)
    assert (audited.status, audited.n_calls, calls(audited, "check")) == ("solved", 1, 1)
    assert [e.kind for e in library.tool_evidence(name)] == ["agreement"]
    library.close()


def test_the_fast_path_runs_a_task_tool_without_a_model_call(home: Path, any_sandbox: Any) -> None:
    name = add_tool(home, SORT_TASK_TOOL, TASK)
    events: list[dict[str, Any]] = []
    # Were the model asked, its answer would be wrong (the checker verifies with labels).
    rules = [{"step": "act", "reply": code('answer = "the model was asked"')}]
    result, library = solve(
        home, any_sandbox, rules, feedback="labels", fast_path_similarity=0.0, events=events
    )
    assert result.status == "solved" and result.correct is True and result.answer == ANSWER
    assert result.n_calls == 0 and result.tools_used == [name]
    plan = next(e for e in events if e["event"] == "plan")
    assert plan["fast"] is True and plan["tools"] == [name]
    info = library.get_tool(name)
    assert info is not None and info.n_success == 1
    library.close()


def test_the_fast_path_never_calls_a_tool_of_another_input_on_the_task(
    home: Path, any_sandbox: Any
) -> None:
    """A tool of `words: str` solved this very task (as a helper), but calling it on the
    whole text would fail: the model plans instead, and the tool is not blamed."""
    name = add_tool(home, SORT_LIST_TOOL, TASK)
    rules = [PLAN_NEW, {"step": "act", "reply": CREATE_CODE}]
    events: list[dict[str, Any]] = []
    result, library = solve(
        home,
        any_sandbox,
        rules,
        feedback="labels",
        fast_path_similarity=0.0,
        events=events,
    )
    assert result.status == "solved" and calls(result, "plan") == 1
    assert not any(e.get("fast") for e in events if e["event"] in ("plan", "act"))
    info = library.get_tool(name)
    assert info is not None and info.n_uses == 0
    library.close()


def test_a_wrong_fast_path_answer_plans_again_without_the_tool_and_counts_against_it(
    home: Path, any_sandbox: Any
) -> None:
    name = add_tool(home, REVERSE_TASK_TOOL, TASK)
    rules = [PLAN_NEW, {"step": "act", "reply": CREATE_CODE}]
    events: list[dict[str, Any]] = []
    result, library = solve(
        home,
        any_sandbox,
        rules,
        feedback="labels",
        fast_path_similarity=0.0,
        events=events,
    )
    assert result.status == "solved" and result.correct is True and result.answer == ANSWER
    plans = [e for e in events if e["event"] == "plan"]
    assert plans[0]["fast"] is True and plans[0]["tools"] == [name]
    assert not plans[1].get("fast") and name not in plans[1]["tools"]
    info = library.get_tool(name)
    assert info is not None and info.n_uses == 1 and info.n_success == 0
    failures = library.tool_failures(name)
    assert failures and failures[0].error_type == "WrongAnswer"
    library.close()


def test_only_the_last_attempt_without_tools_may_take_any_form() -> None:
    from types import SimpleNamespace

    from agent.config import AgentConfig
    from agent.nodes.act import free_form

    run: Any = SimpleNamespace(agent=AgentConfig(max_attempts=3))
    assert not free_form({"attempt": 1}, run)  # type: ignore[typeddict-item]
    assert not free_form({"attempt": 2}, run)  # type: ignore[typeddict-item]
    assert free_form({"attempt": 3}, run)  # type: ignore[typeddict-item]
    assert not free_form({"attempt": 3, "chosen_tools": ["sort_words"]}, run)  # type: ignore[typeddict-item]
    off: Any = SimpleNamespace(agent=AgentConfig(max_attempts=3, free_last_attempt=False))
    assert not free_form({"attempt": 3}, off)  # type: ignore[typeddict-item]
    single: Any = SimpleNamespace(agent=AgentConfig(max_attempts=1))
    assert not free_form({"attempt": 1}, single)  # type: ignore[typeddict-item]


def test_an_answer_found_by_elimination_is_not_confirmed(home: Path, any_sandbox: Any) -> None:
    """Told that its first answer to a True/False task differs from the route's, the model
    can only switch to the route's answer: that agreement is no evidence, so the task ends
    unverified at once (no further attempt can confirm it either)."""
    task = Task(id="b1", task="not ( True ) and ( True ) is", expected="False")
    rules = [
        {"step": "plan", "reply": "TOOLS: none\nPLAN: evaluate the expression\n"},
        {"step": "act", "when": "different answer", "reply": code('answer = "True"')},
        {"step": "act", "reply": code('answer = "False"')},
        {"step": "check", "reply": check_reply("True")},
    ]
    result, library = solve(home, any_sandbox, rules, task, max_attempts=3)
    assert result.status == "unverified" and result.answer == "True"
    assert "elimination" in result.reason
    assert result.attempts == 2 and calls(result, "check") == 1
    library.close()


def test_an_open_answer_may_agree_after_a_disagreement(home: Path, any_sandbox: Any) -> None:
    """With many possible answers a refutation gives nothing away: a later attempt that
    reaches the route's answer is confirmed."""
    rules = [
        {"step": "plan", "reply": "TOOLS: none\nPLAN: sort the words\n"},
        {"step": "act", "when": "different answer", "reply": code(f"answer = {ANSWER!r}")},
        {"step": "act", "reply": code('answer = "fig apple pear"')},
        CHECK_OK,
    ]
    result, library = solve(home, any_sandbox, rules, max_attempts=3)
    assert result.status == "solved" and result.attempts == 2
    library.close()
