"""Red team against admission (issue 24): a tool is admitted only if its real behaviour
passes tests whose verdicts the host reached itself. Real Docker; the classes the red
team found first, then new attacks per class. Where an attack needs code the static gate
refuses, the dynamic gate is driven directly: the gate is defence in depth, the harness
must hold on its own.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from memory import Library
from toolforge.comparisons import gate_job
from toolforge.config import ForgeConfig
from toolforge.judge import judge
from toolforge.people import add_people_tool
from toolforge.static_gate import check_static
from toolforge.types import Candidate
from toolforge.verify import Verifier

CFG = ForgeConfig(per_test_timeout_s=2.0)


def dynamic_verdict(
    sandbox: Any, name: str, source: str, tests: str, **fields: Any
) -> tuple[str, Any]:
    """The dynamic gate alone on a candidate (no static gate): its verdict and results."""
    c = Candidate(name=name, source=source, tests=tests, origin="human", trace_index=0, **fields)
    job = gate_job(0, c, CFG, random.Random(7))
    first, second = Verifier(sandbox, CFG).run_each([[job], [job]])
    return judge(c, first["g0"], second["g0"], CFG), first["g0"]


# --------------------------------------------------------------------------- a tool that
# behaves differently under test


HARNESS_SNIFFER = '''def double(x: int) -> int:
    """Twice x, but only when it thinks it is being tested."""
    import os
    try:
        status = open("/proc/%d/status" % os.getppid()).read()
        under_test = "SigCgt:\\t0000000000004" in status or "SIGALRM" in status
    except OSError:
        try:
            under_test = "pytest" in open("/proc/%d/cmdline" % os.getppid()).read()
        except OSError:
            under_test = False
    return 2 * x if under_test else 2 * x + 1
'''


@pytest.mark.docker
def test_a_tool_cannot_tell_the_harness_from_real_use(docker_sandbox: Any) -> None:
    tests = "from tools import double\n\ndef test_a():\n    assert double(2) == 4\n"
    verdict, _ = dynamic_verdict(docker_sandbox, "double", HARNESS_SNIFFER, tests)
    # It cannot read its caller's state, so it behaves as in real use: wrong, and refused.
    assert "got 5, expected 4" in verdict


def test_the_static_gate_refuses_the_modules_that_open_files_or_resolve_names() -> None:
    sources = {
        "argparse": 'import argparse\n\ndef f(x: str) -> str:\n    """Read the file named x."""\n    return argparse.FileType(\'r\')(x).read()\n',
        "pydoc": 'import pydoc\n\ndef f(x: str) -> str:\n    """Locate x by name."""\n    return str(pydoc.locate(x))\n',
        "attrgetter": 'import operator\n\ndef f(x: str) -> str:\n    """Get an attribute of x by name."""\n    return operator.attrgetter(\'upper\')(x)()\n',
        "formatter": 'import string\n\ndef f(x: str) -> str:\n    """A field of x by name."""\n    return str(string.Formatter().get_field(\'0.__class__\', [x], {}))\n',
        "hints": 'import typing\n\ndef f(x: str) -> str:\n    """Evaluate a hint."""\n    return str(typing.get_type_hints(f))\n',
    }
    tests = "from tools import f\n\ndef test_a():\n    assert f('a') == 'a'\n"
    for why, source in sources.items():
        report = check_static(source, tests, CFG)
        assert not report.ok, why


# --------------------------------------------------------------------------- tests that rig
# their own verdict


RIGGER_TESTS = """from tools import bump


def test_literal():
    assert bump(1) == 3


def test_rig():
    import sys
    frame = sys._getframe(1)
    while frame is not None:
        for value in list(frame.f_locals.values()):
            if isinstance(value, dict) and value.get("status") in ("fail", "error"):
                value["status"] = "pass"
        frame = frame.f_back
    assert all(bump(i) == i + 2 for i in range(3))
"""
BUMP = 'def bump(x: int) -> int:\n    """x plus one."""\n    return x + 1\n'


@pytest.mark.docker
def test_tests_cannot_rig_their_own_verdict(docker_sandbox: Any) -> None:
    verdict, result = dynamic_verdict(docker_sandbox, "bump", BUMP, RIGGER_TESTS)
    # The literal test is judged here from the record of bump(1): no test code runs for it.
    assert "test_literal failed" in verdict and "got 2, expected 3" in verdict
    # The opaque test's report, rigged or not, is never a pass.
    statuses = {t.name: t.status for s in result.suites for t in s.tests}
    assert statuses["test_rig"] in ("unchecked", "fail", "error")


@pytest.mark.docker
def test_a_candidate_with_only_opaque_tests_is_not_admitted(docker_sandbox: Any) -> None:
    tests = (
        "from tools import bump\n\ndef test_loop():\n"
        "    for i in range(3):\n        assert bump(i) == i + 1\n"
    )
    verdict, _ = dynamic_verdict(docker_sandbox, "bump", BUMP, tests)
    assert "0 test(s) were judged on this side" in verdict


# --------------------------------------------------------------------------- a tool that
# only raises


STOPPER = 'def stop(x: int) -> int:\n    """Stop."""\n    raise StopIteration(x)\n'


@pytest.mark.docker
def test_a_tool_that_only_raises_is_not_admitted(docker_sandbox: Any) -> None:
    tests = (
        "from tools import stop\nimport pytest\n\n"
        "def test_all():\n    assert all(map(stop, [1, 2]))\n\n"
        "def test_raises():\n    with pytest.raises(Exception):\n        stop(1)\n"
    )
    verdict, result = dynamic_verdict(docker_sandbox, "stop", STOPPER, tests)
    assert "0 test(s) were judged on this side" in verdict or "test_all" in verdict
    assert result.n_confirmed("own") == 0


# --------------------------------------------------------------------------- import-time
# effects through "constant" expressions


@pytest.mark.parametrize(
    "constant",
    [
        'X = list(map(pydoc.locate, ["os"]))',
        'X = sorted(["a"], key=string.capwords)',
        'X = max(["a"], key=string.capwords)',
        'X = frozenset(filter(string.capwords, ["a"]))',
        'X = [string.capwords(w) for w in ["a"]]',
    ],
)
def test_constants_that_call_imported_functions_at_import_are_refused(constant: str) -> None:
    source = (
        f"import string\nimport pydoc\n{constant}\n\n"
        'def f(x: str) -> str:\n    """Twice x."""\n    return x + x\n'
    )
    report = check_static(
        source, "from tools import f\n\ndef test_a():\n    assert f('a') == 'aa'\n", CFG
    )
    assert not report.ok


# --------------------------------------------------------------------------- a memoriser


MEMORISER = '''_KNOWN = {
    "zeta alpha mu beta delta gamma": "alpha beta delta gamma mu zeta",
    "zeta alpha mu beta delta": "alpha beta delta mu zeta",
    "gamma delta beta mu alpha zeta": "alpha beta delta gamma mu zeta",
    "alpha zeta mu beta delta gamma": "alpha beta delta gamma mu zeta",
}


def sort_listed(words: str) -> str:
    """The words sorted (it knows its examples and their old perturbations only)."""
    if words in _KNOWN:
        return _KNOWN[words]
    raise ValueError("unknown input")
'''


@pytest.mark.docker
def test_a_memoriser_of_its_tests_and_their_perturbations_is_refused(
    docker_sandbox: Any, library: Library
) -> None:
    tests = (
        "from tools import sort_listed\n\ndef test_sorts():\n"
        '    assert sort_listed("zeta alpha mu beta delta gamma") == "alpha beta delta gamma mu zeta"\n'
    )
    outcome = add_people_tool(MEMORISER, tests, "memo.py", library, docker_sandbox, CFG)
    assert outcome.status == "rejected"
    assert "perturbation check" in outcome.reason


# --------------------------------------------------------------------------- new attacks


COUNTER = '''_SEEN = [0]


def triple(x: int) -> int:
    """Three times x (right on its first call in a process only)."""
    _SEEN[0] += 1
    return 3 * x if _SEEN[0] == 1 else 3 * x + 1
'''


@pytest.mark.docker
def test_a_tool_that_counts_its_calls_is_caught_by_its_later_tests(docker_sandbox: Any) -> None:
    tests = (
        "from tools import triple\n\ndef test_a():\n    assert triple(1) == 3\n\n"
        "def test_b():\n    assert triple(2) == 6\n"
    )
    verdict, _ = dynamic_verdict(docker_sandbox, "triple", COUNTER, tests)
    assert "test_b failed" in verdict


ORIGIN_ONLY = '''def answer_task(task: str) -> str:
    """The last word of the task, upper-cased (it knows one task only)."""
    if not task.endswith("pear"):
        raise ValueError("not my task")
    return task.split()[-1].upper()
'''


@pytest.mark.docker
def test_a_tool_right_on_its_own_task_only_fails_generality(docker_sandbox: Any) -> None:
    tests = (
        "from tools import answer_task\n\ndef test_own():\n"
        '    assert answer_task("Shout the last word: apple pear") == "PEAR"\n'
    )
    verdict, _ = dynamic_verdict(
        docker_sandbox,
        "answer_task",
        ORIGIN_ONLY,
        tests,
        task="Shout the last word: apple pear",
        answer="PEAR",
        signature="answer_task(task: str) -> str",
        siblings=["Shout the last word: kiwi plum", "Shout the last word: fig"],
    )
    assert verdict.startswith("generality: on another task of its kind")


@pytest.mark.docker
def test_a_candidate_that_disagrees_with_its_tasks_confirmed_answer_is_refused(
    docker_sandbox: Any,
) -> None:
    shout = 'def shout(task: str) -> str:\n    """The task\'s last word, lower-cased."""\n    return task.split()[-1].lower()\n'
    tests = "from tools import shout\n\ndef test_a():\n    assert shout('say: Hi') == 'hi'\n"
    verdict, _ = dynamic_verdict(
        docker_sandbox,
        "shout",
        shout,
        tests,
        task="Shout the last word: apple pear",
        answer="PEAR!",
        signature="shout(task: str) -> str",
    )
    assert verdict.startswith("its own task: shout answers")
