"""Consolidation and pruning: planned, dry-run, applied in one go, and reversible."""

from __future__ import annotations

import time

import pytest

from memory import Episode, Library, LibraryError, UsageEvent


def _episodes(lib: Library, n: int) -> None:
    for i in range(n):
        lib.add_episode(
            Episode(
                task_id=f"t{i}",
                task="task",
                status="solved",
                answer=None,
                correct=True,
                attempts=1,
                n_calls=1,
                tokens_in=1,
                tokens_out=1,
                seconds=0.1,
                tools_used=[],
                tools_created=[],
                feedback="none",
            )
        )


def test_near_duplicate_tips_merge_keeping_support_and_can_be_restored(lib: Library) -> None:
    a = lib.add_tip("Split the list on spaces, then sort it.", task="sort")
    lib.add_tip("Split the list on spaces, then sort it.", task="sort 2")  # exact: support 2
    b = lib.add_tip("split the list on spaces then sort it!", task="sort 3")
    c = lib.add_tip("Count musical instruments one at a time.", task="count")
    planned = lib.consolidate(dry_run=True)
    assert [(ch.kind, ch.ref, ch.action, ch.into) for ch in planned] == [
        ("tip", b.id, "merge", a.id)
    ]
    assert lib.get_tip(b.id).status == "active"  # dry run changed nothing
    assert lib.consolidate() == planned
    rep = lib.get_tip(a.id)
    assert (rep.support, lib.get_tip(b.id).status, lib.get_tip(b.id).merged_into) == (
        3,
        "merged",
        a.id,
    )
    assert {t.id for t in lib.list_tips()} == {a.id, c.id}
    assert [h.tip.id for h in lib.search_tips("split spaces sort", k=3)] == [a.id, c.id]
    assert lib.consolidate() == []  # idempotent
    lib.restore_tip(b.id)
    assert (lib.get_tip(a.id).support, lib.get_tip(b.id).status) == (2, "active")
    with pytest.raises(LibraryError, match="already active"):
        lib.restore_tip(b.id)


def test_tips_that_keep_failing_to_help_are_archived(lib: Library) -> None:
    bad = lib.add_tip("Always use recursion.", task="x")
    good = lib.add_tip("Check the parentheses stack.", task="y")
    for _ in range(5):
        lib.record_tip_outcome([bad.id, good.id], helped=False)
    lib.record_tip_outcome([good.id] * 1, helped=True)
    lib.record_tip_outcome([good.id], helped=True)
    changes = lib.consolidate()
    assert [(ch.ref, ch.action) for ch in changes] == [(bad.id, "archive")]
    assert lib.get_tip(bad.id).status == "archived"
    lib.restore_tip(bad.id)
    assert lib.get_tip(bad.id).status == "active"


def test_failures_with_one_signature_merge_and_restore(lib: Library) -> None:
    a = lib.add_failure(task="t", error_type="KeyError", message="'x'", lesson="check keys")
    b = lib.add_failure(task="t", error_type="KeyError", message="'y'", lesson="")
    assert b.status == "merged"
    lib.restore_failure(b.id)  # back out of the cluster: two active with one signature
    assert [f.count for f in lib.list_failures()] == [1, 1]
    [change] = lib.consolidate()
    assert (change.kind, change.into) == ("failure", a.id) or (change.kind, change.into) == (
        "failure",
        b.id,
    )
    [rep] = lib.list_failures()
    assert rep.count == 2 and rep.lesson == "check keys"


def test_prune_quarantines_unreliable_tools(lib: Library, draft) -> None:
    lib.add_tool(draft("flaky", "Flaky tool."))
    lib.add_tool(draft("solid", "Solid tool."))
    lib.record_usage([UsageEvent("flaky", False)] * 3 + [UsageEvent("flaky", True)] * 2)
    lib.record_usage([UsageEvent("solid", True)] * 5 + [UsageEvent("solid", False)])
    planned = lib.prune(dry_run=True)
    assert [(c.ref, c.action) for c in planned] == [("flaky", "quarantine")]
    assert lib.get_tool("flaky").status == "active"
    assert lib.prune(dry_run=True, min_uses=10) == []  # thresholds are arguments
    lib.prune()
    assert lib.get_tool("flaky").status == "quarantined"
    assert "failed 3 of 5" in lib.get_tool("flaky").status_reason
    lib.restore("flaky")
    assert lib.get_tool("flaky").status == "active"


def test_prune_archives_tools_rarely_used_for_their_age(lib: Library, draft) -> None:
    lib.add_tool(draft("old_unused", "Unused."))
    lib.add_tool(draft("old_used", "Used a lot."))
    time.sleep(0.01)
    _episodes(lib, 30)
    lib.record_usage([UsageEvent("old_used", True)] * 3)
    lib.add_tool(draft("young", "Just added."))
    _episodes(lib, 5)
    # Exposure 35 episodes: a tool needs log10(35) = 1.5 uses; young is in its grace period.
    changes = lib.prune(dry_run=True, grace_episodes=20)
    assert [(c.ref, c.action) for c in changes] == [("old_unused", "archive")]
    # old_used was used 5 episodes ago: not idle long enough even with more required uses.
    assert [c.ref for c in lib.prune(dry_run=True, grace_episodes=20, log_scale=5.0)] == [
        "old_unused"
    ]
    assert [c.ref for c in lib.prune(dry_run=True, grace_episodes=5, log_scale=5.0)] == [
        "old_unused",
        "old_used",
        "young",
    ]
    lib.prune(grace_episodes=20)
    assert lib.get_tool("old_unused").status == "archived"
    assert [t.name for t in lib.list_tools()] == ["old_used", "young"]


@pytest.mark.slow
def test_consolidation_with_real_embeddings(home, minilm) -> None:
    from memory import MemoryConfig

    with Library.open(home, MemoryConfig(), minilm) as lib:
        a = lib.add_tip("Sort words alphabetically with sorted().", task="sort")
        b = lib.add_tip("Sort the words alphabetically using sorted().", task="sort")
        c = lib.add_tip(
            "Keep a stack of opening brackets; emit the closers in reverse.", task="dyck"
        )
        d = lib.add_tip(
            "Map number words (two, three) to ints before adding up counts.", task="count"
        )
        changes = lib.consolidate()
        assert [(ch.ref, ch.into) for ch in changes] in ([(b.id, a.id)], [(a.id, b.id)])
        assert {t.id for t in lib.list_tips()} >= {c.id, d.id}
        assert len(lib.list_tips()) == 3


def test_gc_drops_old_records_keeps_counts_and_other_processes_resync(
    lib: Library, draft, home
) -> None:
    """Old usage, rejections and log entries go; a tool's counts stay; a second process
    whose replay position was collected compares its index with SQL and still finds the
    tools (`memory gc`)."""
    from memory import HashEmbedder, MemoryConfig, Provenance

    lib.add_tool(draft("sort_words", "Sort the words alphabetically."))
    guest = Library.open(home, MemoryConfig(embedder="hash"), HashEmbedder(), read_only=True)
    try:
        assert [h.tool.name for h in guest.search_tools("sort words")] == ["sort_words"]
        lib.record_usage([UsageEvent("sort_words", True, "ep1")] * 3, solved=True)
        lib.record_rejection(
            "other", "static gate: no docstring", "def other(): pass", Provenance("t")
        )
        lib.add_tool(draft("count_items", "Count the items of a list."))
        with lib._store.write() as (s, _):
            s.connection().exec_driver_sql("UPDATE usage_event SET created_at = 0")
            s.connection().exec_driver_sql("UPDATE rejection SET created_at = 0")
            s.connection().exec_driver_sql("UPDATE change SET created_at = 0")
        planned = lib.gc(dry_run=True)
        assert planned["usage_events"] == 3 and planned["rejections"] == 1
        assert planned["change_log"] > 0
        assert lib.gc(dry_run=False, vacuum=True) == planned
        assert lib.gc(dry_run=True)["usage_events"] == 0
        info = lib.get_tool("sort_words")
        assert info is not None and (info.n_uses, info.n_success) == (1, 1)
        # The guest never replayed the collected entries (count_items was added in them).
        names = {h.tool.name for h in guest.search_tools("count the items", k=5)}
        assert "count_items" in names
    finally:
        guest.close()
