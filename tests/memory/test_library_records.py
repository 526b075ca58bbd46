"""Tools, versions, merges, usage, tips, failures, episodes and runs round-trip through SQL."""

from __future__ import annotations

import pytest

from memory import Episode, Library, LibraryError, Provenance, UsageEvent
from memory.errors import UnknownToolError
from toolforge.testfiles import BadTestFile, merge_tests


def test_add_tool_stores_version_one_with_provenance(lib: Library, draft) -> None:
    info = lib.add_tool(draft())
    assert (info.name, info.version, info.status) == ("sort_words", 1, "active")
    assert info.provenance == [
        Provenance("Sort the following words alphabetically: List: pear apple", "t1")
    ]
    assert info.reliability == pytest.approx(3 / 4)  # the Beta(3, 1) prior of a new tool
    assert lib.tool_tasks("sort_words") == [
        "Sort the following words alphabetically: List: pear apple"
    ]
    assert [t.name for t in lib.list_tools()] == ["sort_words"]


def test_duplicate_active_name_is_refused(lib: Library, draft) -> None:
    lib.add_tool(draft())
    with pytest.raises(LibraryError, match=r"already exists.*add a version"):
        lib.add_tool(draft())


def test_adding_a_name_that_is_archived_makes_a_new_active_version(lib: Library, draft) -> None:
    lib.add_tool(draft())
    lib.set_status("sort_words", "archived", "unused")
    info = lib.add_tool(draft(doc="Sort words, new take."))
    assert (info.version, info.status) == (2, "active")


def test_add_version_keeps_history_and_reactivates(lib: Library, draft) -> None:
    lib.add_tool(draft())
    lib.set_status("sort_words", "quarantined", "fails")
    info = lib.add_version(
        "sort_words", draft(body="return ' '.join(sorted(text.lower().split()))")
    )
    assert (info.version, info.status, info.current_version) == (2, "active", 2)
    assert [v.version for v in lib.tool_versions("sort_words")] == [1, 2]
    old = lib.get_tool("sort_words", 1)
    assert old is not None and "lower" not in old.source
    kinds = [e.kind for e in lib.tool_history("sort_words")]
    assert kinds == ["added", "quarantined", "versioned"]
    assert lib.get_tool("sort_words", 7) is None


def test_add_version_checks_name(lib: Library, draft) -> None:
    lib.add_tool(draft())
    with pytest.raises(LibraryError, match="keeps its tool's name"):
        lib.add_version("sort_words", draft(name="other_tool"))
    with pytest.raises(UnknownToolError, match="Did you mean: sort_words"):
        lib.add_version("sort_word", draft(name="sort_word"))


def test_bad_tool_name_is_refused(lib: Library, draft) -> None:
    with pytest.raises(LibraryError, match="not a public Python identifier"):
        lib.add_tool(draft(name="sort-words"))


def test_merge_into_keeps_every_test_and_adds_provenance(lib: Library, draft) -> None:
    lib.add_tool(draft())
    before = lib.get_tool("sort_words").tests
    new_tests = (
        "import string\nfrom tools import sort_words\n\n\n"
        "def test_sort_words_basic():\n    assert sort_words('a') == 'a'  # same name\n\n\n"
        "@staticmethod\ndef test_sort_words_empty():\n    assert sort_words('') == ''\n"
    )
    grow = lambda old: merge_tests(old, new_tests)  # noqa: E731 - the forge's rule
    info = lib.merge_into("sort_words", Provenance("Sort: zebra cat", "t2", "ep2"), grow)
    assert info.version == 1
    assert "test_sort_words_empty" in info.tests and "@staticmethod" in info.tests
    # a clashing name keeps both bodies (the new one suffixed); the old test is intact
    assert (
        "def test_sort_words_basic():" in info.tests and "def test_sort_words_basic_" in info.tests
    )
    assert "assert sort_words('a') == 'a'" in info.tests
    assert before.split("def ", 1)[1] in info.tests
    assert info.tests.index("import string\n") < info.tests.index("def ")  # imports first
    assert [p.task_id for p in info.provenance] == ["t1", "t2"]
    assert "Sort: zebra cat" in lib.tool_tasks("sort_words")
    # A growth that fails leaves the tool as it was (the write is one transaction).
    with pytest.raises(BadTestFile, match="do not parse"):
        lib.merge_into("sort_words", Provenance("t"), lambda old: merge_tests(old, "def x(:\n"))
    assert lib.get_tool("sort_words").tests == info.tests


def test_usage_counts_reliability_and_open_failures(lib: Library, draft) -> None:
    lib.add_tool(draft())
    lib.record_usage(
        [
            UsageEvent("sort_words", True, "ep1", args=["b a"], result="a b", seconds=0.01),
            UsageEvent(
                "sort_words",
                False,
                "ep1",
                args=[None],
                error_type="AttributeError",
                error_message="'NoneType' object has no attribute 'split'",
            ),
        ]
    )
    info = lib.get_tool("sort_words")
    assert info is not None
    # Two calls in one episode, one of which raised: one use, one failure (counts are
    # outcomes per episode, so code cannot move them by calling a tool many times).
    assert (info.n_uses, info.n_success, info.n_fail, info.total_uses) == (1, 0, 1, 1)
    assert info.reliability == pytest.approx((0 + 3) / (1 + 4))
    assert info.last_used_at is not None
    fails = lib.tool_failures("sort_words")
    assert [(f.error_type, f.args) for f in fails] == [("AttributeError", [None])]
    # A newer version addresses the old failures and starts its own counts.
    lib.add_version("sort_words", draft(body="return ' '.join(sorted((text or '').split()))"))
    assert lib.tool_failures("sort_words") == []
    info = lib.get_tool("sort_words")
    assert info is not None and (info.n_uses, info.total_uses) == (0, 1)
    assert [u.ok for u in lib.usage("sort_words")] == [False, True]


def test_usage_counts_one_outcome_per_episode_and_success_needs_a_solved_one(
    lib: Library, draft
) -> None:
    lib.add_tool(draft())
    lib.record_usage([UsageEvent("sort_words", True, "ep1")] * 50, solved=True)
    lib.record_usage([UsageEvent("sort_words", True, "ep2")], solved=False)
    info = lib.get_tool("sort_words")
    assert info is not None and (info.n_uses, info.n_success, info.n_fail) == (2, 1, 0)
    assert len(lib.usage("sort_words", limit=100)) == 51  # every call is still on record


def test_usage_of_unknown_tool_rejects_the_whole_batch(lib: Library, draft) -> None:
    lib.add_tool(draft())
    with pytest.raises(UnknownToolError):
        lib.record_usage([UsageEvent("sort_words", True), UsageEvent("nope", True)])
    info = lib.get_tool("sort_words")
    assert info is not None and info.n_uses == 0


def test_tool_sources_and_unknown_names(lib: Library, draft) -> None:
    lib.add_tool(draft())
    lib.add_tool(draft(name="count_items", doc="Count items."))
    sources = lib.tool_sources(["count_items", "sort_words"])
    assert list(sources) == ["count_items", "sort_words"]
    assert sources["sort_words"].startswith("def sort_words")
    with pytest.raises(UnknownToolError, match="Did you mean: count_items"):
        lib.tool_sources(["count_item"])


def test_set_status_validates(lib: Library, draft) -> None:
    lib.add_tool(draft())
    with pytest.raises(LibraryError, match="unknown status"):
        lib.set_status("sort_words", "deleted", "x")
    assert lib.set_status("sort_words", "quarantined", "manual").status_reason == "manual"
    assert lib.list_tools() == []
    assert [t.name for t in lib.list_tools("quarantined")] == ["sort_words"]
    assert lib.restore("sort_words").status == "active"
    with pytest.raises(LibraryError, match="already active"):
        lib.restore("sort_words")


def test_rejections_are_recorded(lib: Library) -> None:
    lib.record_rejection("bad_tool", "tests failed", "dynamic", Provenance("task", "t9"))
    [row] = lib.rejections("bad_tool")
    assert (row["reason"], row["source"], row["task_id"]) == ("tests failed", "dynamic", "t9")


def test_tips_dedupe_exact_text(lib: Library) -> None:
    a = lib.add_tip("Split on whitespace before sorting.", task="sort")
    b = lib.add_tip("Split on whitespace before sorting.", task="sort again")
    assert a.id == b.id and b.support == 2
    with pytest.raises(LibraryError, match="needs text"):
        lib.add_tip("  ", task="x")


def test_failures_cluster_by_signature(lib: Library) -> None:
    a = lib.add_failure(
        task="count", error_type="KeyError", message="'piano'", lesson="map plurals"
    )
    b = lib.add_failure(task="count", error_type="KeyError", message="'drum'", lesson="")
    c = lib.add_failure(
        task="count", error_type="KeyError", message="'drum'", lesson="", tool="count_items"
    )
    assert b.status == "merged" and b.merged_into == a.id
    assert c.status == "active"  # another tool: another signature
    [rep, other] = lib.list_failures()
    assert (rep.id, rep.count, rep.lesson) == (a.id, 2, "map plurals")
    assert other.id == c.id


def test_episode_and_run_round_trip(lib: Library) -> None:
    lib.start_run("run1", {"model": "scripted"})
    ep = Episode(
        task_id="t1",
        task="Sort: b a",
        status="solved",
        answer="a b",
        correct=True,
        attempts=1,
        n_calls=3,
        tokens_in=100,
        tokens_out=20,
        seconds=1.5,
        tools_used=["sort_words"],
        tools_created=[],
        feedback="labels",
        run_id="run1",
        history=[{"code": "x"}],
    )
    ep_id = lib.add_episode(ep)
    got = lib.get_episode(ep_id)
    assert got is not None and (got.answer, got.correct, got.tools_used, got.history) == (
        "a b",
        True,
        ["sort_words"],
        [{"code": "x"}],
    )
    # The same id again replaces it (a resumed task).
    ep.id, ep.status = ep_id, "failed"
    assert lib.add_episode(ep) == ep_id
    again = lib.get_episode(ep_id)
    assert again is not None and again.status == "failed"
    lib.finish_run("run1", {"solved": 1})
    run = lib.get_run("run1")
    assert run is not None and run["summary"] == {"solved": 1} and run["finished_at"]
    with pytest.raises(LibraryError, match="no run"):
        lib.finish_run("nope", {})


def test_read_only_library_refuses_writes(lib: Library, home, draft) -> None:
    lib.add_tool(draft())
    ro = Library.open(home, lib.config, lib.embedder, read_only=True)
    try:
        assert ro.get_tool("sort_words") is not None
        assert [h.tool.name for h in ro.search_tools("sort words")] == ["sort_words"]
        with pytest.raises(LibraryError, match="read-only"):
            ro.add_tip("x", task="y")
    finally:
        ro.close()


def test_closed_library_says_so(home, draft) -> None:
    from memory import HashEmbedder, MemoryConfig

    library = Library.open(home, MemoryConfig(embedder="hash"), HashEmbedder())
    library.close()
    with pytest.raises(LibraryError, match="closed"):
        library.add_tool(draft())


def test_outside_calls_are_on_record_but_move_no_count(lib: Library, draft) -> None:
    lib.add_tool(draft())
    stamp = lib.tools_stamp()
    lib.record_usage(
        [
            UsageEvent("sort_words", False, error_type="ValueError", source="mcp"),
            UsageEvent("sort_words", True, result="a b", source="langchain"),
        ]
    )
    info = lib.get_tool("sort_words")
    assert info is not None
    assert (info.total_uses, info.n_fail, info.last_used_at is not None) == (0, 0, True)
    assert [e.source for e in lib.usage("sort_words")] == ["langchain", "mcp"]
    # an outside failure is no failure of the tool: no repair, nothing for prune to see
    assert lib.tool_failures("sort_words") == [] and lib.tools_to_repair() == []
    assert lib.tools_stamp() == stamp  # use is no change of the tools
    lib.set_status("sort_words", "quarantined", "a test")
    assert lib.tools_stamp() != stamp
    lib.restore("sort_words")
    lib.record_usage([UsageEvent("sort_words", False, error_type="ValueError")])
    info = lib.get_tool("sort_words")
    assert info is not None and (info.total_uses, info.n_fail) == (1, 1)
    assert [e.source for e in lib.tool_failures("sort_words")] == ["agent"]
    assert lib.tools_to_repair() == ["sort_words"]
