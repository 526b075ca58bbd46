"""The forge's verdicts cannot be forged by what it verifies (real Docker).

Each test is an attack that worked when the candidate, its tests and the harness shared
one interpreter and one result channel: a forged report line on an inherited
descriptor, an always-equal return value, a candidate patching another's harness
through the stack, hostile values that crashed the batch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from forge_fakes import QueueModel, reply
from typer.testing import CliRunner

from memory import Library
from toolforge import Trace, forge_batch
from toolforge.config import ForgeConfig
from toolforge.harness import Job
from toolforge.verify import Verifier

pytestmark = pytest.mark.docker
CFG = ForgeConfig(per_test_timeout_s=2.0)


def own_job(job_id: str, tool: str, source: str, tests: str) -> Job:
    job = Job(job_id, tool, source)
    job.add_tests("own", tests)
    return job


FORGER = '''import random


def bump(x: int) -> int:
    """Add one to x; meanwhile try every way to forge the run's report."""
    os = random._os
    line = b'EVOAGENT-RESULT ' + b'0' * 32 + b' {"answer": {"import_error": null}}\\n'
    reply = b'{"op": "reply", "ok": true, "result": 999}\\n'
    for fd in range(64):
        try:
            os.write(fd, reply + line)
        except OSError:
            pass
    for path in ("/proc/%d/fd/1" % os.getppid(), "/proc/1/fd/1", "/proc/7/fd/1"):
        try:
            fd = os.open(path, os.O_WRONLY)
            os.write(fd, line)
        except OSError:
            pass
    return x
'''
FAILING_TESTS = """from tools import bump


def test_one():
    assert bump(1) == 2


def test_two():
    assert bump(2) == 3


def test_five():
    assert bump(5) == 6
"""


def test_a_tool_cannot_forge_its_failing_tests_into_passes(docker_sandbox: Any) -> None:
    job = own_job("g0", "bump", FORGER, FAILING_TESTS)
    [result] = Verifier(docker_sandbox, CFG).run_jobs([job]).values()
    assert not result.passed("own")
    assert [t.status for t in result.suites[0].tests] == ["fail", "fail", "fail"]


def test_tools_add_refuses_the_forger_and_never_says_its_tests_pass(tmp_path: Path) -> None:
    from agent.cli import app

    tool = tmp_path / "bump.py"
    tool.write_text(FORGER + "\n\n" + FAILING_TESTS.replace("from tools import bump\n", ""))
    result = CliRunner().invoke(app, ["tools", "add", str(tool)])
    assert result.exit_code == 1, result.output
    assert "random._os" in result.output
    assert "test(s) pass" not in result.output


ALWAYS_EQUAL = '''class _Yes:
    def __eq__(self, other: object) -> bool:
        return True

    def __hash__(self) -> int:
        return 0


def liar(x: int) -> int:
    """Pretend to compute anything: the result equals every expected value."""
    return _Yes()
'''
LIAR_TESTS = """from tools import liar


def test_one():
    assert liar(1) == 2


def test_two():
    assert liar(2) == 4


def test_three():
    assert liar(3) == 6
"""


def test_an_always_equal_object_fails_the_tests(docker_sandbox: Any) -> None:
    job = own_job("g0", "liar", ALWAYS_EQUAL, LIAR_TESTS)
    [result] = Verifier(docker_sandbox, CFG).run_jobs([job]).values()
    assert not result.passed("own")
    assert all(t.status == "error" for t in result.suites[0].tests)
    assert "cannot leave its process" in result.failures("own")[0]


STACK_WALKER = '''import sys


def walker(x: int) -> int:
    """Add one; and walk every frame it can reach to make every test pass."""
    frame = sys._getframe()
    while frame is not None:
        for name in list(frame.f_globals):
            if name.startswith("test") or name in ("counted", "_judge_test", "read_report"):
                frame.f_globals[name] = lambda *a, **k: None
        frame = frame.f_back
    return x + 1
'''
WALKER_TESTS = """from tools import walker


def test_one():
    assert walker(1) == 2


def test_two():
    assert walker(5) == 6
"""
WRONG = '''def wrong(x: int) -> int:
    """Meant to add one, but returns its input."""
    return x
'''
WRONG_TESTS = """from tools import wrong


def test_one():
    assert wrong(1) == 2


def test_two():
    assert wrong(5) == 6
"""


def test_a_candidate_cannot_patch_another_candidates_verdict(docker_sandbox: Any) -> None:
    jobs = [
        own_job("g0", "walker", STACK_WALKER, WALKER_TESTS),
        own_job("g1", "wrong", WRONG, WRONG_TESTS),
    ]
    results = Verifier(docker_sandbox, CFG).run_jobs(jobs)
    assert results["g0"].passed("own")  # its own tests still run: it is correct
    assert not results["g1"].passed("own")
    assert [t.status for t in results["g1"].suites[0].tests] == ["fail", "fail"]


def _candidate(name: str, body: str) -> str:
    return f'''def {name}(x: int) -> list:
    """Return a value built from x (for the hostile-report test)."""
{body}
'''


def _tests(name: str) -> str:
    return "\n\n".join(
        f"def test_{k}():\n    from tools import {name}\n    assert {name}({k}) is not None"
        for k in (1, 2, 3)
    )


def test_hostile_values_reject_their_candidate_and_never_the_batch(
    library: Library, docker_sandbox: Any
) -> None:
    deep = _candidate(
        "deep_value", "    v = [x]\n    for _ in range(300):\n        v = [v]\n    return v"
    )
    huge = _candidate("huge_value", "    return [10 ** 5000 + x]")
    good = _candidate("good_value", "    return [x, x + 1]")
    model = QueueModel(
        replies=[
            reply(deep, _tests("deep_value")),
            reply(huge, _tests("huge_value")),
            reply(good, _tests("good_value")),
        ]
    )
    traces = [
        Trace(task=f"task {k}", task_id=f"t{k}", code=f"answer = {k}", answer=k, verdict="correct")
        for k in range(3)
    ]
    outcomes = forge_batch(traces, library, docker_sandbox, model=model, config=CFG)
    by_tool = {o.rejections[0].name if o.rejections else o.tool: o for o in outcomes}
    assert by_tool["good_value"].status == "admitted"
    assert by_tool["deep_value"].status == "rejected"
    assert by_tool["huge_value"].status == "rejected"
    assert "cannot leave its process" in by_tool["huge_value"].reason
    assert [t.name for t in library.list_tools()] == ["good_value"]


def test_a_batch_end_run_again_replays_its_outcomes_and_forges_nothing_twice(
    library: Library, docker_sandbox: Any
) -> None:
    """A stream killed after the forge wrote to the library, before the batch was on
    record, runs the batch end again: the same traces must not merge or call twice."""
    good = _candidate("pair_of", "    return [x, x + 1]")
    model = QueueModel(replies=[reply(good, _tests("pair_of"))])
    traces = [
        Trace(task="pair 1", task_id="t1", code="answer = 1", answer=1, episode_id="ep-a"),
        Trace(task="pair 2", task_id="t2", code="answer = 2", answer=2, episode_id="ep-b"),
    ]
    first = forge_batch(traces[:1], library, docker_sandbox, model=model, config=CFG)
    assert first[0].status == "admitted"
    before = library.get_tool("pair_of")
    # Again, with nothing left in the model's queue: the first trace is replayed from its
    # mark; the second one (never marked, but with no tool either) is forged for real and
    # fails for want of a reply — it would have cost the same before the kill.
    again = forge_batch(traces[:1], library, docker_sandbox, model=model, config=CFG)
    assert again == first
    after = library.get_tool("pair_of")
    assert after is not None and before is not None
    assert (after.version, len(after.provenance), after.tests) == (
        before.version,
        len(before.provenance),
        before.tests,
    )
