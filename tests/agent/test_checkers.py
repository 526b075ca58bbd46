"""Checkers from spec strings; the python checker runs in the (Docker) sandbox."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.checkers import checker_for, parse_checker
from agent.errors import AgentError
from agent.task import Task


def test_exact_and_normalized() -> None:
    assert parse_checker("exact").check("apple fig", "apple fig", None).ok
    assert not parse_checker("exact").check("Apple  fig", "apple fig", None).ok
    assert parse_checker("normalized").check(" Apple \n fig ", "apple fig", None).ok
    assert parse_checker(None).kind == "normalized"
    assert parse_checker("normalised").kind == "normalized"
    # non-string answers compare by their JSON
    assert parse_checker("exact").check([1, 2], "[1, 2]", None).ok
    assert parse_checker("exact").check(42, "42", None).ok


def test_numeric_tolerance() -> None:
    checker = parse_checker("numeric:0.01")
    assert checker.check("3.141", 3.14, None).ok
    assert not checker.check(3.2, "3.14", None).ok
    result = checker.check("about three", "3", None)
    assert not result.ok and "not a number" in result.reason
    assert parse_checker("numeric").check(1.0000000001, 1, None).ok
    assert not parse_checker("numeric").check(True, 1, None).ok


def test_regex_needs_no_label() -> None:
    checker = parse_checker(r"regex:^\d+$", has_expected=False)
    assert checker.check(" 123 ", None, None).ok
    assert not checker.check("12a", None, None).ok


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("fuzzy", "unknown checker"),
        ("numeric:abc", "tolerance must be a number"),
        ("numeric:-1", ">= 0"),
        ("regex:", "needs a pattern"),
        ("regex:(", "invalid regular expression"),
        ("exact:x", "takes no argument"),
        ("python:", "needs a file or source"),
        ("python:missing_checker.py", "not found"),
        ("python:def check(a, e) return", "does not compile"),
        ("python:x = 1", "must define"),
    ],
)
def test_bad_specs_say_what_to_do(spec: str, message: str) -> None:
    with pytest.raises(AgentError, match=message):
        parse_checker(spec)


def test_label_required_by_comparing_checkers() -> None:
    with pytest.raises(AgentError, match="--expect"):
        parse_checker("exact", has_expected=False)
    assert checker_for(Task(id="t", task="x")) is None
    assert checker_for(Task(id="t", task="x", expected="y")).kind == "normalized"  # type: ignore[union-attr]


def test_python_checker_reads_a_file_and_needs_a_sandbox(tmp_path: Path) -> None:
    path = tmp_path / "check.py"
    path.write_text("def check(answer, expected):\n    return answer == expected[::-1]\n")
    checker = parse_checker(f"python:{path}")
    assert "def check" in checker.arg
    with pytest.raises(AgentError, match="sandbox"):
        checker.check("ab", "ba", None)


@pytest.mark.docker
def test_python_checker_runs_in_the_sandbox(docker_sandbox: object) -> None:
    source = (
        "import os\n"
        "def check(answer, expected):\n"
        "    # runs in the sandbox: the host's home is not there\n"
        "    return answer == expected[::-1] and not os.path.exists('/work/main')\n"
    )
    checker = parse_checker("python:" + source)
    assert checker.check("ab", "ba", docker_sandbox).ok
    assert not checker.check("ab", "ab", docker_sandbox).ok
    # a crashing predicate fails the check with its error, never raises
    broken = parse_checker("python:def check(answer, expected):\n    return 1 / 0\n")
    result = broken.check("a", "b", docker_sandbox)
    assert not result.ok and "ZeroDivisionError" in result.reason
    # an answer cannot inject code: it travels as JSON data
    sneaky = "'); import os; os._exit(0); ('"
    assert not checker.check(sneaky, "x", docker_sandbox).ok
