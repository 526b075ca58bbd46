"""`evoagent tools add` and `evoagent tools test` with the real Docker sandbox."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.cli import app
from memory import HashEmbedder, Library, MemoryConfig, Provenance, ToolDraft

pytestmark = pytest.mark.docker

HASH = ["-c", "memory.embedder=hash"]

TOOL_FILE = '''import re


def count_vowels(text: str) -> int:
    """Count the vowels (a, e, i, o, u; any case) in a text."""
    return len(re.findall(r"[aeiou]", text, flags=re.IGNORECASE))


def test_hello():
    assert count_vowels("Hello") == 2


def test_empty():
    assert count_vowels("") == 0
'''


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, [*HASH, *args])
    # A user error reaches the root as ForgeError, which turns it into one red line on
    # stderr; the exception's message is checked too, whichever way the root shows it.
    error = str(result.exception) if result.exception and result.exit_code else ""
    return result.exit_code, result.stdout + result.stderr + error


def test_add_a_people_tool_then_test_it(tmp_path: Path, sandbox_image: str) -> None:
    path = tmp_path / "count_vowels.py"
    path.write_text(TOOL_FILE)
    code, out = run("tools", "add", str(path))
    assert code == 0, out
    assert "admitted: count_vowels v1" in out

    code, out = run("tools", "test", "count_vowels")
    assert code == 0, out
    assert "ok   count_vowels v1: 2/2 tests pass" in out

    code, out = run("tools", "test", "--all", "--json")
    assert code == 0, out
    assert json.loads(out)[0]["passed"] is True


def test_add_with_a_separate_tests_file(tmp_path: Path, sandbox_image: str) -> None:
    tool, tests = tmp_path / "tool.py", tmp_path / "test_tool.py"
    tool.write_text(TOOL_FILE.split("\n\ndef test_hello")[0] + "\n")
    tests.write_text(
        "from tools import count_vowels\n\n\ndef test_x():\n    assert count_vowels('xyz') == 0\n"
    )
    code, out = run("tools", "add", str(tool), "--tests", str(tests), "--json")
    assert code == 0, out
    assert json.loads(out)["status"] == "admitted"


def test_people_tools_go_through_the_same_gates(tmp_path: Path, sandbox_image: str) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import subprocess\n" + TOOL_FILE)
    code, out = run("tools", "add", str(bad))
    assert code == 1
    assert "import of 'subprocess' is not allowed" in out and "Traceback" not in out

    wrong = tmp_path / "wrong.py"
    wrong.write_text(TOOL_FILE.replace('count_vowels("Hello") == 2', 'count_vowels("Hello") == 3'))
    code, out = run("tools", "add", str(wrong))
    assert code == 1 and "test test_hello failed" in out


def test_user_mistakes_are_one_line_errors(tmp_path: Path) -> None:
    code, out = run("tools", "add", str(tmp_path / "missing.py"))
    assert code == 1 and "does not exist" in out and "Traceback" not in out
    code, out = run("tools", "test")
    assert code == 1 and "give a tool NAME or --all" in out
    code, out = run("tools", "test", "nope")
    assert code == 1 and "no tool named 'nope'" in out


def test_a_tool_whose_stored_tests_fail_is_reported(home: Path, sandbox_image: str) -> None:
    with Library.open(home, MemoryConfig(embedder="hash"), HashEmbedder()) as lib:
        lib.add_tool(
            ToolDraft(
                name="double",
                source='def double(x: int) -> int:\n    """Twice x."""\n    return x * 3\n',
                tests="from tools import double\n\n\ndef test_two():\n    assert double(2) == 4\n",
                signature="double(x: int) -> int",
                docstring="Twice x.",
                provenance=Provenance(task="imported"),
            )
        )
    code, out = run("tools", "test", "double")
    assert code == 1
    assert "FAIL double v1: 0/1 tests pass" in out and "test test_two failed" in out


def test_a_people_tool_rejected_statically_names_every_problem(
    tmp_path: Path, sandbox_image: str
) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import subprocess\n"
        + TOOL_FILE.replace(
            '"""Count the vowels (a, e, i, o, u; any case) in a text."""', '"""V."""'
        )
    )
    code, out = run("tools", "add", str(bad))
    assert code == 1 and "Traceback" not in out
    # Both problems at once, so the person fixes the file in one go.
    assert "import of 'subprocess' is not allowed" in out
    assert "count_vowels has no docstring (or one under 10 characters)" in out
    assert "more problem(s)" not in out


def test_a_folder_given_as_the_tool_file_says_so(tmp_path: Path) -> None:
    code, out = run("tools", "add", str(tmp_path))
    assert code == 1 and "is a folder: give a .py file" in out and "Traceback" not in out
