"""`evoagent tools ...` and `evoagent memory ...` on a hash-embedded home."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.commands.memory import memory_app
from agent.commands.tools import tools_app
from memory import HashEmbedder, Library, LibraryError, MemoryConfig, UsageEvent
from memory.transfer import import_tools, read_export
from tests.memory.conftest import make_draft

runner = CliRunner()


@pytest.fixture(autouse=True)
def hash_embedder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVOAGENT_MEMORY__EMBEDDER", "hash")


@pytest.fixture
def draft() -> object:
    return make_draft


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
    assert isinstance(bad.exception, LibraryError) and "use uses, success, trust or recent" in str(
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


def test_export_writes_a_folder_read_export_reads_back(seeded: Path, tmp_path: Path) -> None:
    # The import itself verifies each tool in the sandbox: `tools import` is toolforge's
    # command (tests/toolforge/test_forge_import.py); memory reads and writes the folder.
    out = tmp_path / "export"
    assert "exported 2" in run(tools_app, "export", str(out)).output
    assert sorted(p.name for p in out.iterdir()) == [
        "count_items.py",
        "sort_words.py",
        "test_count_items.py",
        "test_sort_words.py",
        "tools.json",
    ]
    items = {i.draft.name: i for i in read_export(out)}
    assert sorted(items) == ["count_items", "sort_words"]
    sort_words = items["sort_words"]
    assert "key=str.lower" in sort_words.draft.source
    assert sort_words.draft.tests.startswith("from tools")
    assert "Sort: pear apple" in sort_words.tasks
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "thing.py").write_text("def other():\n    pass\n")
    with pytest.raises(LibraryError, match="no function named thing"):
        read_export(bad)


def test_import_tools_writes_new_tools_versions_and_skips_unchanged(
    seeded: Path, tmp_path: Path
) -> None:
    out = tmp_path / "export"
    run(tools_app, "export", str(out), "--status", "all")
    other = tmp_path / "other-home"
    with Library.open(other, MemoryConfig(embedder="hash"), HashEmbedder()) as lib:
        assert import_tools(lib, read_export(out)) == {"added": 2, "versioned": 0, "unchanged": 0}
        assert import_tools(lib, read_export(out)) == {"added": 0, "versioned": 0, "unchanged": 2}
        (out / "count_items.py").write_text(
            (out / "count_items.py").read_text().replace("sorted(", "reversed(")
        )
        assert import_tools(lib, read_export(out)) == {"added": 0, "versioned": 1, "unchanged": 1}
        info = lib.get_tool("count_items")
        assert info is not None and info.version == 2 and "reversed(" in info.source
        assert "Sort: pear apple" in lib.tool_tasks("sort_words")


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
        ('{"a_tool": {}, "z_tool": {}}', b"\xff\xfe not utf-8", "is not UTF-8 text"),
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
    # read_export checks the whole folder before import_tools can write anything
    with pytest.raises(LibraryError) as caught:
        read_export(folder)
    assert message in str(caught.value)
    with Library.open(home, MemoryConfig(embedder="hash"), HashEmbedder()) as lib:
        assert lib.list_tools(None) == []


def test_the_only_import_is_the_verifying_one() -> None:
    # Admitting a tool takes the sandbox: `tools import` is the one command that imports,
    # and it is the one that verifies (the tests above and tests/toolforge check how).
    from agent.cli import app
    from agent.commands import tools

    [mounted] = [g.typer_instance for g in app.registered_groups if g.name == "tools"]
    imports = [c.callback for c in mounted.registered_commands if c.name == "import"]
    assert imports == [tools.import_tools]
    assert {"export", "list", "prune", "add", "test", "serve"} <= {
        c.name for c in mounted.registered_commands
    }


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


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--min-uses", "-1", "--min-uses must be at least 1, not -1"),
        ("--min-uses", "0", "--min-uses must be at least 1, not 0"),
        ("--max-fail-rate", "-0.5", "--max-fail-rate must be between 0 and 1, not -0.5"),
        ("--max-fail-rate", "1.5", "--max-fail-rate must be between 0 and 1, not 1.5"),
        ("--grace", "-3", "--grace must be at least 1 episode, not -3"),
        ("--log-scale", "-1", "--log-scale must be 0 or more, not -1.0"),
    ],
)
def test_prune_rejects_thresholds_out_of_range(
    seeded: Path, option: str, value: str, message: str
) -> None:
    result = run(tools_app, "prune", option, value)
    assert isinstance(result.exception, LibraryError), result.output
    assert message in str(result.exception)
    # nothing was pruned
    assert len(json.loads(run(tools_app, "list", "--json").output)) == 2


def test_tool_text_with_markup_and_escape_sequences_prints_literally(home: Path, draft) -> None:
    hostile = "Sort [/x] words \x1b[31mred\x1b[0m and [bold]more."
    with Library.open(home, MemoryConfig(embedder="hash"), HashEmbedder()) as lib:
        lib.add_tool(draft("sort_words", hostile, "Sort: [/x] pear apple"))
        lib.set_status("sort_words", "quarantined", "said [/y] \x1b[2J")
    for args in (["list", "--status", "all"], ["show", "sort_words"], ["search", "sort words"]):
        out = run(tools_app, *args)
        assert out.exit_code == 0, (args, out.output)
        assert "\x1b" not in out.output, args
    assert "[/x]" in run(tools_app, "list", "--status", "all").output


def test_import_refuses_links_and_reads_only_what_the_manifest_lists(
    seeded: Path, tmp_path: Path
) -> None:
    out = tmp_path / "export"
    run(tools_app, "export", str(out))
    # A stale file beside the bundle is not one of its tools.
    (out / "stale_tool.py").write_text('def stale_tool() -> int:\n    """Old."""\n    return 1\n')
    assert sorted(i.draft.name for i in read_export(out)) == ["count_items", "sort_words"]
    # A link could make an import read any file of this machine.
    secret = tmp_path / "secret.py"
    secret.write_text("def sort_words(text: str) -> str:\n    return text\n")
    (out / "sort_words.py").unlink()
    (out / "sort_words.py").symlink_to(secret)
    with pytest.raises(LibraryError, match="symbolic link"):
        read_export(out)
    (out / "sort_words.py").unlink()
    (out / "tools.json").unlink()
    (out / "tools.json").symlink_to(tmp_path / "elsewhere.json")
    with pytest.raises(LibraryError, match="symbolic link"):
        read_export(out)


def test_export_into_a_non_empty_folder_is_refused_or_replaces_it_whole(
    seeded: Path, tmp_path: Path
) -> None:
    out = tmp_path / "export"
    out.mkdir()
    (out / "old_tool.py").write_text("# from an earlier export\n")
    refused = run(tools_app, "export", str(out))
    assert refused.exit_code == 1 and "is not empty" in str(refused.exception)
    assert run(tools_app, "export", str(out), "--replace").exit_code == 0
    assert not (out / "old_tool.py").exists()
    assert sorted(p.name for p in out.iterdir()) == [
        "count_items.py",
        "sort_words.py",
        "test_count_items.py",
        "test_sort_words.py",
        "tools.json",
    ]


def test_trust_is_listed_shown_and_set_by_a_persons_verdict_and_pin(seeded: Path) -> None:
    from memory import Episode, Learned

    with Library.open(seeded, MemoryConfig(embedder="hash"), HashEmbedder()) as lib:
        ep = Episode(
            task_id="t7",
            task="Sort: List: b a",
            status="solved",
            answer="a b",
            correct=None,
            attempts=1,
            n_calls=0,
            tokens_in=0,
            tokens_out=0,
            seconds=0.1,
            tools_used=["sort_words"],
            tools_created=[],
            feedback="none",
        )
        lib.record_episode(ep, Learned())
    listed = run(tools_app, "list", "--wide").output
    assert "trust (+/-)" in listed and "probation 0/0" in listed
    done = run(tools_app, "verdict", "sort_words", "wrong", "--task", "t7")
    assert done.exit_code == 0 and "doubted 0/1" in done.output
    shown = run(tools_app, "show", "sort_words").output
    assert "trust: doubted" in shown and "user_wrong" in shown and "t7" in shown
    assert "pinned" in run(tools_app, "pin", "sort_words").output
    assert "pinned 0/1" in run(tools_app, "list", "--wide").output
    assert "doubted 0/1" in run(tools_app, "unpin", "sort_words").output
    bad = run(tools_app, "verdict", "sort_words", "right", "--task", "nope")
    assert isinstance(bad.exception, LibraryError) and "t7" in str(bad.exception)
    assert isinstance(
        run(tools_app, "verdict", "sort_words", "maybe", "--task", "t7").exception, LibraryError
    )


def test_the_listing_fits_an_80_column_terminal(
    seeded: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    out = run(tools_app, "list").output
    assert max(len(line) for line in out.splitlines()) <= 80
    # No column squeezed to a character per line: every row is one line.
    assert len([line for line in out.splitlines() if line.strip()]) <= 2 + 2 + 3


def test_show_names_the_tools_a_tool_calls_and_its_callers(seeded: Path, draft) -> None:
    with Library.open(seeded, MemoryConfig(embedder="hash"), HashEmbedder()) as lib:
        shout = draft("shout_sorted", "The sorted words in capitals.", "Shout: b a")
        lib.add_tool(
            replace(
                shout,
                source="from tools import sort_words\n\n\n"
                + shout.source.replace(
                    "return ' '.join(sorted(text.split()))", "return sort_words(text).upper()"
                ),
            )
        )
    data = json.loads(run(tools_app, "show", "shout_sorted", "--json").output)
    assert data["calls"] == ["sort_words"] and data["called_by"] == []
    callee = json.loads(run(tools_app, "show", "sort_words", "--json").output)
    assert callee["called_by"] == ["shout_sorted"]
    assert "called by: shout_sorted" in run(tools_app, "show", "sort_words").output
