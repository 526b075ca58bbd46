"""Ranked retrieval: views, status filtering, reliability, guests, drift repair, reindex."""

from __future__ import annotations

from pathlib import Path

import pytest

from memory import HashEmbedder, Library, MemoryConfig, UsageEvent, get_embedder
from memory.errors import LibraryError

# Chroma on purpose: these tests compare the Chroma owner with numpy guests (a library
# this small would use numpy itself under the default `index = "auto"`).
CFG = MemoryConfig(embedder="hash", index="chroma")


def _seed(lib: Library, draft) -> None:
    lib.add_tool(
        draft(
            "sort_words", "Sort the words of a text alphabetically.", "Sort these words: pear apple"
        )
    )
    lib.add_tool(
        draft(
            "count_objects",
            "Count how many objects of a category a sentence lists.",
            "I have a piano and two drums. How many musical instruments do I have?",
        )
    )
    lib.add_tool(
        draft(
            "eval_boolean",
            "Evaluate a boolean expression of True, False, not, and, or.",
            "not ( True ) and ( True ) is",
        )
    )


def test_search_finds_the_right_tool_first(lib: Library, draft) -> None:
    _seed(lib, draft)
    hits = lib.search_tools("Sort these words alphabetically: zebra cat", k=2)
    assert hits[0].tool.name == "sort_words"
    assert len(hits) == 2 and hits[0].score >= hits[1].score
    assert lib.search_tools("", k=3) == [] and lib.search_tools("sort", k=0) == []


def test_past_tasks_view_finds_a_tool_its_description_misses(lib: Library, draft) -> None:
    _seed(lib, draft)
    lib.add_tool(draft("helper_x", "Does a thing.", ""))
    query = "frobnicate the quux widget with zorblax"
    assert lib.search_tools(query, k=1)[0].tool.name != "helper_x"
    lib.link_task("helper_x", "please frobnicate the quux widget with zorblax now")
    [hit] = lib.search_tools(query, k=1)
    assert (hit.tool.name, hit.view) == ("helper_x", "tasks")


def test_only_active_tools_are_returned(lib: Library, draft) -> None:
    _seed(lib, draft)
    lib.set_status("sort_words", "quarantined", "test")
    names = [h.tool.name for h in lib.search_tools("Sort these words", k=5)]
    assert "sort_words" not in names and len(names) == 2
    lib.restore("sort_words")
    assert lib.search_tools("Sort these words", k=1)[0].tool.name == "sort_words"


def test_status_filter_reaches_past_many_inactive_neighbours(home: Path, draft) -> None:
    # More inactive near-duplicates than the first candidate batch: the search widens.
    lib = Library.open(
        home, MemoryConfig(embedder="hash", candidates=5, index="chroma"), HashEmbedder()
    )
    try:
        for i in range(12):
            lib.add_tool(draft(f"sort_words_{i}", "Sort the words of a text alphabetically.", ""))
            lib.set_status(f"sort_words_{i}", "archived", "old")
        lib.add_tool(draft("word_sorter", "Alphabetical order for a list of words.", ""))
        assert [
            h.tool.name for h in lib.search_tools("Sort the words of a text alphabetically", k=3)
        ] == ["word_sorter"]
    finally:
        lib.close()


def test_reliability_breaks_ties_and_prior_keeps_new_tools_up(lib: Library, draft) -> None:
    lib.add_tool(draft("sorter_p", "Sort the words of a text alphabetically.", ""))
    lib.add_tool(draft("sorter_q", "Sort the words of a text alphabetically.", ""))
    lib.record_usage([UsageEvent("sorter_p", False)] * 6)
    hits = lib.search_tools("Sort the words of a text alphabetically", k=2)
    assert [h.tool.name for h in hits] == ["sorter_q", "sorter_p"]  # new (prior 0.75) above failing
    assert hits[0].similarity == pytest.approx(hits[1].similarity, abs=0.15)
    lib.record_usage([UsageEvent("sorter_p", True)] * 40)
    assert (
        lib.search_tools("Sort the words of a text alphabetically", k=1)[0].tool.name == "sorter_p"
    )


def test_tips_and_failures_search(lib: Library) -> None:
    lib.add_tip("Sort words with sorted() and join them with spaces.", task="sort")
    lib.add_tip("Sort words: with sorted(), and join them with spaces!", task="sort")
    lib.add_tip("Count musical instruments one by one.", task="count")
    hits = lib.search_tips("how to sort words", k=3)
    assert len(hits) == 3 and hits[-1].tip.text.startswith("Count")
    # A tip that keeps failing to help loses rank.
    top = hits[0].tip
    lib.record_tip_outcome([top.id], helped=False)
    lib.record_tip_outcome([top.id], helped=False)
    lib.record_tip_outcome([top.id], helped=False)
    assert lib.search_tips("how to sort words", k=1)[0].tip.id != top.id
    assert lib.get_tip(top.id).n_shown == 3
    lib.add_failure(
        task="count",
        error_type="ValueError",
        message="invalid literal for int()",
        lesson="Parse number words like 'two' before int().",
    )
    lib.add_failure(
        task="sort",
        error_type="TypeError",
        message="'<' not supported",
        lesson="Do not mix None with strings when sorting.",
    )
    [hit] = lib.search_failures("ValueError invalid literal for int() while counting", k=1)
    assert hit.failure.error_type == "ValueError"
    with pytest.raises(LibraryError, match="no tip"):
        lib.record_tip_outcome(["missing"], helped=True)


def test_guest_ranks_like_the_owner_and_sees_its_writes(lib: Library, home: Path, draft) -> None:
    _seed(lib, draft)
    guest = Library.open(home, CFG, HashEmbedder())
    try:
        assert lib.owns_index and not guest.owns_index
        q = "How many musical instruments do I have?"
        owner_hits = [(h.tool.name, round(h.score, 4)) for h in lib.search_tools(q, k=3)]
        assert [(h.tool.name, round(h.score, 4)) for h in guest.search_tools(q, k=3)] == owner_hits
        # Guest writes go to SQL; the owner replays the change log before its next search.
        guest.set_status("count_objects", "quarantined", "by a person")
        assert "count_objects" not in [h.tool.name for h in lib.search_tools(q, k=3)]
        guest.add_tool(draft("count_instruments", "Count musical instruments in a sentence.", q))
        assert lib.search_tools(q, k=1)[0].tool.name == "count_instruments"
        assert lib.drift()["tools"] == {"missing": 0, "extra": 0, "stale": 0}
        # And the owner's writes reach the guest.
        lib.add_tool(draft("sort_numbers", "Sort a list of numbers ascending.", "Sort 3 1 2"))
        assert (
            guest.search_tools("Sort a list of numbers ascending", k=1)[0].tool.name
            == "sort_numbers"
        )
    finally:
        guest.close()


def test_drift_is_repaired_on_open(home: Path, draft) -> None:
    lib = Library.open(home, CFG, HashEmbedder())
    _seed(lib, draft)
    index = lib._ensure_index()
    index.delete("tools", ["sort_words"])  # an index entry lost
    index.upsert("tips", ["ghost"], index_vectors(lib), ["h"])  # an entry with no record
    lib.close()
    # A guest writes while no owner runs: only SQL changes.
    guest = Library.open(home, CFG, HashEmbedder(), own_index=False)
    guest.add_tip("Join the sorted words with single spaces.", task="sort")
    guest.close()
    lib = Library.open(home, CFG, HashEmbedder())
    try:
        assert all(v == {"missing": 0, "extra": 0, "stale": 0} for v in lib.drift().values())
        assert lib.search_tools("Sort these words", k=1)[0].tool.name == "sort_words"
        assert lib.search_tips("sorted words spaces", k=1)[0].tip.text.startswith("Join")
    finally:
        lib.close()


def index_vectors(lib: Library):
    import numpy as np

    return np.asarray(lib.embedder.embed(["ghost"]), dtype=np.float32)


def test_reindex_rebuilds_from_sql(lib: Library, draft) -> None:
    _seed(lib, draft)
    lib.add_tip("a tip", task="t")
    counts = lib.reindex()
    assert counts == {"tools": 3, "tasks": 3, "tips": 1, "failures": 0}
    assert lib.search_tools("Sort these words", k=1)[0].tool.name == "sort_words"


def test_embeddings_are_cached_by_content_hash(home: Path, draft) -> None:
    class Counting(HashEmbedder):
        calls = 0

        def embed(self, texts: list[str]) -> list[list[float]]:
            Counting.calls += len(texts)
            return super().embed(texts)

    with Library.open(home, CFG, Counting()) as lib:
        lib.add_tool(draft())
        first = Counting.calls
        lib.reindex()
    with Library.open(home, CFG, Counting()) as lib:
        lib.search_tools("Sort the words", k=1)
    assert first == 2  # description + task, once each
    assert Counting.calls == first + 1  # later: only the query


def test_changing_the_embedder_rebuilds_the_index(home: Path, draft) -> None:
    with Library.open(home, CFG, HashEmbedder(256)) as lib:
        _seed(lib, draft)
    with Library.open(home, CFG, HashEmbedder(64)) as lib:
        assert lib.search_tools("Sort these words", k=1)[0].tool.name == "sort_words"
        assert lib._ensure_index().count("tools") == 3


def test_get_embedder_names(tmp_path: Path) -> None:
    assert isinstance(get_embedder(MemoryConfig(embedder="hash")), HashEmbedder)
    with pytest.raises(LibraryError, match="unknown embedder"):
        get_embedder(MemoryConfig(embedder="word2vec"))
    bad = get_embedder(MemoryConfig(embedding_model_path=str(tmp_path)))
    with pytest.raises(LibraryError, match="no sentence-transformers model"):
        bad.embed(["x"])


def test_hash_embedder_is_deterministic_and_normalised() -> None:
    e = HashEmbedder(64)
    a, b = e.embed(["sort the words", "sort the words"])
    assert a == b and sum(x * x for x in a) == pytest.approx(1.0)
    assert e.embed([""])[0][0] == 1.0


@pytest.mark.slow
def test_minilm_embeddings_rank_real_tasks(home: Path, minilm, draft) -> None:
    assert minilm.dim == 384
    [v] = minilm.embed(["hello"])
    assert sum(x * x for x in v) == pytest.approx(1.0, abs=1e-4)
    with Library.open(home, MemoryConfig(), minilm) as lib:
        _seed(lib, draft)
        hits = lib.search_tools(
            "I have a flute, a violin and two drums. How many musical instruments do I have?", k=3
        )
        assert hits[0].tool.name == "count_objects"
        assert (
            lib.search_tools(
                "Sort the following words alphabetically: List: syndrome therefrom", k=1
            )[0].tool.name
            == "sort_words"
        )


def test_bulk_add_and_single_views(lib: Library, draft) -> None:
    n = lib.add_tools(
        [
            draft(
                "sort_words",
                "Sort the words of a text alphabetically.",
                "Sort these words: pear apple",
            ),
            draft("count_objects", "Count objects in a sentence.", "frobnicate quux zorblax"),
        ]
    )
    assert n == 2 and lib.tool_tasks("count_objects") == ["frobnicate quux zorblax"]
    [hit] = lib.search_tools("frobnicate quux zorblax", k=1, views=("tasks",))
    assert (hit.tool.name, hit.view) == ("count_objects", "tasks")
    [hit] = lib.search_tools("Sort the words of a text alphabetically", k=1, views=("description",))
    assert (hit.tool.name, hit.view) == ("sort_words", "description")
    with pytest.raises(LibraryError, match="unknown retrieval view"):
        lib.search_tools("x", views=("source",))
    with pytest.raises(LibraryError, match="already exist"):
        lib.add_tools([draft("sort_words")])
    with pytest.raises(LibraryError, match="same name twice"):
        lib.add_tools([draft("a_tool"), draft("a_tool")])


@pytest.mark.slow
def test_the_numpy_minilm_gives_the_vectors_of_sentence_transformers(minilm) -> None:
    """The default embedder's forward pass is numpy; the reference is the same model
    through sentence-transformers and torch: the vectors must agree."""
    import numpy as np

    from memory import MiniLMEmbedder

    texts = [
        "Sort the following words alphabetically: List: pear apple fig",
        "not ( True ) and ( True ) is",
        "I have a flute, two pianos, and a cat. How many musical instruments do I have?",
        "",
        "word " * 400,  # past the 256-token window: cut the same way
    ]
    ours = np.array(minilm.embed(texts))
    reference = np.array(MiniLMEmbedder(reference=True).embed(texts))
    assert ours.shape == reference.shape == (5, 384)
    assert (ours * reference).sum(axis=1).min() > 0.9999


def test_a_small_library_ranks_with_numpy_and_a_large_one_with_chroma(home: Path, draft) -> None:
    with Library.open(home, MemoryConfig(embedder="hash"), HashEmbedder()) as lib:
        lib.add_tool(draft("sort_words", "Sort the words alphabetically."))
        assert lib.owns_index and not lib.chroma
        assert lib.stats()["index"]["kind"] == "numpy (a small library)"
        assert [h.tool.name for h in lib.search_tools("sort words")] == ["sort_words"]
    big = MemoryConfig(embedder="hash", index_numpy_below=1)
    with Library.open(home, big, HashEmbedder()) as lib:
        assert lib.chroma  # the numpy owner's writes reached Chroma through the log
        assert [h.tool.name for h in lib.search_tools("sort words")] == ["sort_words"]
