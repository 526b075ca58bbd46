"""The snapshot a distributed run ships to its workers ranks exactly as the library does."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from memory import HashEmbedder, Learned, Library, MemoryConfig
from memory.episode import Episode
from memory.errors import UnknownToolError
from memory.protocol import Solving, ToolLibrary
from memory.snapshot import SnapshotLibrary

CFG = MemoryConfig(embedder="hash", index="chroma")

QUERIES = [
    "Sort these words alphabetically: zebra cat",
    "How many musical instruments do I have? a piano and two drums",
    "not ( True ) and ( False ) is",
    "frobnicate the widget",
]


def _seed(lib: Library, draft) -> None:
    lib.add_tool(draft("sort_words", "Sort the words of a text alphabetically.", "Sort: b a"))
    lib.add_tool(draft("count_objects", "Count objects a sentence lists.", "How many drums?"))
    lib.add_tool(draft("eval_boolean", "Evaluate a boolean expression.", "not ( True ) is"))
    lib.add_tool(draft("old_tool", "Sort words, the old way.", "Sort these words"))
    lib.set_status("old_tool", "quarantined", "test")
    lib.link_task("eval_boolean", "frobnicate the widget with True and False")
    lib.add_tip(text="Split on spaces before sorting words.", task="Sort: b a")
    lib.add_failure(
        task="How many drums?", error_type="ValueError", message="bad count", lesson="count all"
    )


def test_a_snapshot_ranks_tools_tips_and_failures_like_the_library(home: Path, draft) -> None:
    lib = Library.open(home, CFG, HashEmbedder())
    try:
        _seed(lib, draft)
        snap = pickle.loads(pickle.dumps(lib.snapshot()))  # as shipped to a worker
        worker = SnapshotLibrary(snap, HashEmbedder())
        for q in QUERIES:
            want = [(h.tool.name, h.view, round(h.score, 6)) for h in lib.search_tools(q, k=3)]
            got = [(h.tool.name, h.view, round(h.score, 6)) for h in worker.search_tools(q, k=3)]
            assert got == want
            assert [h.tip.id for h in worker.search_tips(q, k=2)] == [
                h.tip.id for h in lib.search_tips(q, k=2)
            ]
            assert [h.failure.id for h in worker.search_failures(q, k=2)] == [
                h.failure.id for h in lib.search_failures(q, k=2)
            ]
        assert worker.tool_names() == ["count_objects", "eval_boolean", "sort_words"]
        assert worker.tool_sources(["sort_words"]) == lib.tool_sources(["sort_words"])
        with pytest.raises(UnknownToolError):
            worker.tool_sources(["old_tool"])  # quarantined: not shipped
        assert worker.tools_stamp() == lib.tools_stamp()
    finally:
        lib.close()


def test_a_worker_writes_to_its_outbox_and_nothing_else(home: Path, draft) -> None:
    lib = Library.open(home, CFG, HashEmbedder())
    try:
        _seed(lib, draft)
        worker = SnapshotLibrary(lib.snapshot(), HashEmbedder())
    finally:
        lib.close()
    ep = Episode(
        task_id="t1",
        task="Sort: b a",
        status="solved",
        answer="a b",
        correct=None,
        attempts=1,
        n_calls=1,
        tokens_in=1,
        tokens_out=1,
        seconds=0.1,
        tools_used=[],
        tools_created=[],
        feedback="none",
        id="ep-1",
    )
    assert worker.get_episode("ep-1") is None
    worker.record_episode(ep, Learned())
    assert worker.get_episode("ep-1") is ep
    # It plays the solving role and no other: it is not the library itself.
    assert isinstance(worker, Solving) and not isinstance(worker, ToolLibrary)
    assert not hasattr(worker, "add_tool")
    out = worker.take_outbox()
    assert [e.id for e, _ in out.episodes] == ["ep-1"]
    assert worker.take_outbox().episodes == []


def test_a_worker_with_another_embedder_is_refused(home: Path, draft) -> None:
    lib = Library.open(home, CFG, HashEmbedder())
    try:
        _seed(lib, draft)
        snap = lib.snapshot()
    finally:
        lib.close()
    with pytest.raises(Exception, match=r"same memory\.embedder"):
        SnapshotLibrary(snap, HashEmbedder(dim=64))
