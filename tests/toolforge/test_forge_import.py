"""`evoagent tools import`: a folder written by `tools export`, each tool verified first."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.cli import app
from memory import HashEmbedder, Library, MemoryConfig, Provenance, ToolDraft

HASH = ["-c", "memory.embedder=hash"]


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, [*HASH, *args])
    error = str(result.exception) if result.exception and result.exit_code else ""
    return result.exit_code, result.stdout + result.stderr + error


def tool_source(name: str, body: str, doc: str = "Sort the words of a text alphabetically.") -> str:
    return f'def {name}(text: str) -> str:\n    """{doc}"""\n    {body}\n'


def tool_tests(name: str, check: str) -> str:
    return f"from tools import {name}\n\n\ndef test_{name}():\n    assert {check}\n"


def seed(home: Path) -> None:
    with Library.open(home, MemoryConfig(embedder="hash"), HashEmbedder()) as lib:
        lib.add_tool(
            ToolDraft(
                "sort_words",
                tool_source("sort_words", "return ' '.join(sorted(text.split()))"),
                tool_tests("sort_words", "sort_words('b a') == 'a b'"),
                "sort_words(text: str) -> str",
                "Sort the words of a text alphabetically.",
                Provenance("Sort: pear apple", task_id="t1"),
            )
        )
        lib.add_version(
            "sort_words",
            ToolDraft(
                "sort_words",
                tool_source(
                    "sort_words",
                    "return ' '.join(sorted(text.split(), key=str.lower))",
                    "Sort words alphabetically, ignoring case.",
                ),
                tool_tests("sort_words", "sort_words('b A') == 'A b'"),
                "sort_words(text: str) -> str",
                "Sort words alphabetically, ignoring case.",
                Provenance("x", task_id="t1"),
            ),
        )
        lib.add_tool(
            ToolDraft(
                "count_items",
                'def count_items(text: str) -> int:\n    """Count the comma-separated items."""\n'
                "    return len([p for p in text.split(',') if p.strip()])\n",
                tool_tests("count_items", "count_items('a, b,') == 2"),
                "count_items(text: str) -> int",
                "Count the comma-separated items.",
                Provenance("How many fruits?", task_id="t2"),
            )
        )


def no_docker(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any use of the sandbox fail loudly: the step under test must not need it."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the sandbox was opened")

    monkeypatch.setattr("sandbox.get_sandbox", refuse)


def names(home: Path) -> list[str]:
    with Library.open(home, MemoryConfig(embedder="hash"), HashEmbedder()) as lib:
        return sorted(t.name for t in lib.list_tools(None))


# ------------------------------------------------------------------ errors at parse time


@pytest.mark.parametrize(
    ("manifest", "extra", "message"),
    [
        ("[1, 2]", None, "must map each tool name to an object"),
        ('{"a_tool": {"status": "weird"}}', None, "status 'weird' is not active"),
        ('{"a_tool": {"provenance": [{"nope": 1}]}}', None, "provenance must be a list"),
        ('{"a_tool": {"tasks": "one"}}', None, "tasks must be a list of strings"),
        ('{"a_tool": {}, "z_tool": {}}', b"\xff\xfe not utf-8", "is not UTF-8 text"),
        ('{"a_tool": {}, "z_tool": {}}', b"def other():\n    pass\n", "no function named z_tool"),
    ],
)
def test_a_bad_folder_is_one_error_before_docker_and_imports_nothing(
    home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    manifest: str,
    extra: bytes | None,
    message: str,
) -> None:
    no_docker(monkeypatch)
    folder = tmp_path / "bad"
    folder.mkdir()
    # a good tool first: it must not be imported when a later entry is bad
    (folder / "a_tool.py").write_text(
        'def a_tool(x: int) -> int:\n    """Add one."""\n    return x + 1\n'
    )
    (folder / "tools.json").write_text(manifest)
    if extra is not None:
        (folder / "z_tool.py").write_bytes(extra)
    code, out = run("tools", "import", str(folder))
    assert code == 1 and message in out and "Traceback" not in out
    assert "the sandbox was opened" not in out
    assert names(home) == []


def test_a_missing_folder_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    no_docker(monkeypatch)
    code, out = run("tools", "import", str(tmp_path / "nowhere"))
    assert code == 1 and "is not a folder" in out and "Traceback" not in out


# ------------------------------------------------------------------ verified in the sandbox


@pytest.mark.docker
def test_export_import_round_trip(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sandbox_image: str
) -> None:
    seed(home)
    out = tmp_path / "export"
    code, text = run("tools", "export", str(out))
    assert code == 0 and "exported 2" in text
    other = tmp_path / "other-home"
    monkeypatch.setenv("EVOAGENT_HOME", str(other))
    code, text = run("tools", "import", str(out))
    assert code == 0, text
    assert "2 new" in text
    with Library.open(other, MemoryConfig(embedder="hash"), HashEmbedder()) as lib:
        info = lib.get_tool("sort_words")
        assert (
            info is not None
            and "key=str.lower" in info.source
            and info.tests.startswith("from tools")
            and info.status == "active"
        )
        assert "Sort: pear apple" in lib.tool_tasks("sort_words")
    # Unchanged tools are reported as such, without another sandbox run.
    no_docker(monkeypatch)
    code, text = run("tools", "import", str(out))
    assert code == 0 and "2 unchanged" in text, text


@pytest.mark.docker
def test_a_tool_that_imports_os_and_fails_its_test_is_not_imported(
    home: Path, tmp_path: Path, sandbox_image: str
) -> None:
    # The audit's case: this went in as an active tool when import did not verify.
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "home_words.py").write_text(
        "import os\n\n\n"
        + tool_source("home_words", "return os.environ.get('HOME', '') + text", "Prefix HOME.")
    )
    (folder / "test_home_words.py").write_text(tool_tests("home_words", "home_words('a') == 'b'"))
    code, out = run("tools", "import", str(folder))
    assert code == 1 and "Traceback" not in out
    # Both reasons at once, so the person fixes the tool in one go.
    assert "not imported: home_words: static gate: import of 'os' is not allowed" in out
    assert "test test_home_words failed" in out
    assert "failed verification and were not imported: home_words;" in out
    assert "imported: none" in out
    assert names(home) == []


@pytest.mark.docker
def test_only_the_tools_that_pass_are_imported(
    home: Path, tmp_path: Path, sandbox_image: str
) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "upper_words.py").write_text(
        tool_source("upper_words", "return text.upper()", "Upper-case every word of a text.")
    )
    (folder / "test_upper_words.py").write_text(
        tool_tests("upper_words", "upper_words('a b') == 'A B'")
    )
    # a tool without tests: nothing vouches for it
    (folder / "lower_words.py").write_text(
        tool_source("lower_words", "return text.lower()", "Lower-case every word of a text.")
    )
    code, out = run("tools", "import", str(folder))
    assert code == 1 and "Traceback" not in out
    assert "not imported: lower_words: no test functions" in out
    assert "1 new" in out and "imported: upper_words" in out
    assert names(home) == ["upper_words"]
    # A changed tool is verified again before its new version goes in.
    (folder / "lower_words.py").unlink()
    (folder / "upper_words.py").write_text(
        tool_source("upper_words", "return text.lower()", "Upper-case every word of a text.")
    )
    code, out = run("tools", "import", str(folder))
    assert code == 1 and "not imported: upper_words: test test_upper_words failed" in out
    with Library.open(home, MemoryConfig(embedder="hash"), HashEmbedder()) as lib:
        info = lib.get_tool("upper_words")
        assert info is not None and info.version == 1 and "upper()" in info.source
