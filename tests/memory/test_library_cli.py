"""`evoagent tools ...` and `evoagent memory ...` on a hash-embedded home."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from memory import HashEmbedder, Library, LibraryError, MemoryConfig, UsageEvent
from memory.cli import memory_app, tools_app

runner = CliRunner()


@pytest.fixture(autouse=True)
def hash_embedder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVOAGENT_MEMORY__EMBEDDER", "hash")


@pytest.fixture
def seeded(home: Path, draft) -> Path:
    with Library.open(home, MemoryConfig(embedder="hash"), HashEmbedder()) as lib:
        lib.add_tool(
            draft("sort_words", "Sort the words of a text alphabetically.", "Sort: pear apple")
        )
        lib.add_version(
            "sort_words",
            draft(
                "sort_words",
                "Sort words alphabetically, ignoring case.",
                "x",
                body="return ' '.join(sorted(text.split(), key=str.lower))",
            ),
        )
        lib.add_tool(draft("count_items", "Count the items a sentence lists.", "How many fruits?"))
        lib.record_usage([UsageEvent("count_items", True)] * 2)
        lib.add_tip("Sort with key=str.lower.", task="sort")
        lib.add_failure(
            task="count", error_type="KeyError", message="'two'", lesson="map number words"
        )
    return home


def run(app, *args: str):
    result = runner.invoke(app, list(args))
    if result.exception and not isinstance(result.exception, SystemExit | LibraryError):
        raise result.exception
    return result


def test_list_json_and_sort(seeded: Path) -> None:
    out = json.loads(run(tools_app, "list", "--json", "--sort", "uses").output)
    assert [t["name"] for t in out] == ["count_items", "sort_words"]
    assert "source" not in out[0] and out[0]["total_uses"] == 2
    assert "sort_words" in run(tools_app, "list").output
    bad = run(tools_app, "list", "--sort", "size")
    assert isinstance(bad.exception, LibraryError) and "use uses, success or recent" in str(
        bad.exception
    )


def test_show_search_diff(seeded: Path) -> None:
    shown = run(tools_app, "show", "sort_words")
    assert shown.exit_code == 0 and "key=str.lower" in shown.output and "versioned" in shown.output
    assert "str.lower" not in run(tools_app, "show", "sort_words", "--version", "1").output
    data = json.loads(run(tools_app, "show", "sort_words", "--json").output)
    assert data["tool"]["version"] == 2 and [e["kind"] for e in data["history"]] == [
        "added",
        "versioned",
    ]
    hits = json.loads(
        run(tools_app, "search", "sort words alphabetically", "-k", "1", "--json").output
    )
    assert [h["name"] for h in hits] == ["sort_words"]
    diff = run(tools_app, "diff", "sort_words", "1", "2").output
    assert "+    return ' '.join(sorted(text.split(), key=str.lower))" in diff
    missing = run(tools_app, "diff", "sort_words", "1", "9")
    assert isinstance(missing.exception, LibraryError) and "[1, 2]" in str(missing.exception)


def test_unknown_name_suggests_close_ones(seeded: Path) -> None:
    result = run(tools_app, "show", "sort_word")
    assert result.exit_code != 0
    assert isinstance(result.exception, LibraryError)
    assert "Did you mean: sort_words" in str(result.exception)


def test_quarantine_restore_prune(seeded: Path) -> None:
    assert "quarantined" in run(tools_app, "quarantine", "sort_words").output
    assert [t["name"] for t in json.loads(run(tools_app, "list", "--json").output)] == [
        "count_items"
    ]
    assert (
        json.loads(run(tools_app, "list", "--status", "quarantined", "--json").output)[0]["name"]
        == "sort_words"
    )
    assert "active again" in run(tools_app, "restore", "sort_words").output
    out = json.loads(
        run(
            tools_app, "prune", "--dry-run", "--min-uses", "1", "--max-fail-rate", "0.0", "--json"
        ).output
    )
    assert out["dry_run"] and [c["ref"] for c in out["changes"]] == ["count_items"]
    assert json.loads(run(tools_app, "list", "--json").output)[0]["status"] == "active"


def test_export_import_round_trip(
    seeded: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "export"
    assert "exported 2" in run(tools_app, "export", str(out)).output
    assert sorted(p.name for p in out.iterdir()) == [
        "count_items.py",
        "sort_words.py",
        "test_count_items.py",
        "test_sort_words.py",
        "tools.json",
    ]
    other = tmp_path / "other-home"
    monkeypatch.setenv("EVOAGENT_HOME", str(other))
    assert "2 new" in run(tools_app, "import", str(out)).output
    assert "2 unchanged" in run(tools_app, "import", str(out)).output
    with Library.open(other, MemoryConfig(embedder="hash"), HashEmbedder()) as lib:
        info = lib.get_tool("sort_words")
        assert (
            info is not None
            and "key=str.lower" in info.source
            and info.tests.startswith("from tools")
        )
        assert "Sort: pear apple" in lib.tool_tasks("sort_words")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "thing.py").write_text("def other():\n    pass\n")
    result = run(tools_app, "import", str(bad))
    assert isinstance(result.exception, LibraryError) and "no function named thing" in str(
        result.exception
    )


def test_memory_commands(seeded: Path) -> None:
    tips = json.loads(run(memory_app, "tips", "list", "--json").output)
    assert [t["text"] for t in tips] == ["Sort with key=str.lower."]
    assert (
        json.loads(run(memory_app, "tips", "search", "sort lower", "--json").output)[0]["tip"][
            "support"
        ]
        == 1
    )
    fails = json.loads(run(memory_app, "failures", "list", "--json").output)
    assert fails[0]["lesson"] == "map number words"
    assert json.loads(run(memory_app, "failures", "search", "KeyError two", "--json").output)
    assert "nothing to change" in run(memory_app, "consolidate", "--dry-run").output
    stats = json.loads(run(memory_app, "stats", "--json").output)
    assert stats["tools"] == {"active": 2} and stats["tool_versions"] == 3
    assert "2 tools" in run(memory_app, "reindex").output
    assert run(memory_app, "path").output.strip() == str(seeded)
    assert run(tools_app, "path").output.strip() == str(seeded / "library.db")


@pytest.mark.parametrize(
    ("manifest", "extra", "message"),
    [
        ("[1, 2]", None, "must map each tool name to an object"),
        ('{"a_tool": {"status": "weird"}}', None, "status 'weird' is not active"),
        ('{"a_tool": {"provenance": [{"nope": 1}]}}', None, "provenance must be a list"),
        ('{"a_tool": {"tasks": "one"}}', None, "tasks must be a list of strings"),
        ("{}", b"\xff\xfe not utf-8", "is not UTF-8 text"),
    ],
)
def test_import_of_a_bad_folder_is_one_error_and_imports_nothing(
    home: Path, tmp_path: Path, manifest: str, extra: bytes | None, message: str
) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    # a good tool first: it must not be imported when a later entry is bad
    (folder / "a_tool.py").write_text(
        'def a_tool(x: int) -> int:\n    """Add one."""\n    return x + 1\n'
    )
    (folder / "tools.json").write_text(manifest)
    if extra is not None:
        (folder / "z_tool.py").write_bytes(extra)
    result = run(tools_app, "import", str(folder))
    assert isinstance(result.exception, LibraryError), result.output
    assert message in str(result.exception)
    with Library.open(home, MemoryConfig(embedder="hash"), HashEmbedder()) as lib:
        assert lib.list_tools(None) == []


def test_an_unknown_status_on_tips_or_failures_is_an_error(seeded: Path) -> None:
    for app_args in (("tips", "list"), ("failures", "list")):
        result = run(memory_app, *app_args, "--status", "weird")
        assert isinstance(result.exception, LibraryError)
        assert "unknown status 'weird'" in str(result.exception)
    assert "Sort with key=str.lower." in run(memory_app, "tips", "list", "--status", "all").output


def test_export_to_a_place_that_cannot_be_written_is_one_error(
    seeded: Path, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    result = run(tools_app, "export", str(blocker / "out"))
    assert isinstance(result.exception, LibraryError), result.output
    assert "cannot write the export" in str(result.exception)
