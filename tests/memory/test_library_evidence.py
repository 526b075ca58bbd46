"""Trust is evidence: per-version evidence, trust levels, pins, a person's verdicts, and
evidence through versions and export/import."""

from __future__ import annotations

from pathlib import Path

import pytest

from memory import (
    Evidence,
    HashEmbedder,
    Learned,
    Library,
    LibraryError,
    MemoryConfig,
    Provenance,
    ToolDraft,
)
from memory.episode import Episode

SOURCE = 'def shout(task: str) -> str:\n    """The task, upper-cased."""\n    return task.upper()\n'
TESTS = "from tools import shout\n\ndef test_a():\n    assert shout('a') == 'A'\n"


def draft(**fields: object) -> ToolDraft:
    base = dict(
        name="shout",
        source=SOURCE,
        tests=TESTS,
        signature="shout(task: str) -> str",
        docstring="The task, upper-cased.",
        provenance=Provenance("say hi", "t0"),
    )
    return ToolDraft(**{**base, **fields})  # type: ignore[arg-type]


@pytest.fixture
def lib(home: Path) -> Library:
    library = Library.open(home, MemoryConfig(embedder="hash"), HashEmbedder())
    yield library  # type: ignore[misc]
    library.close()


def agree(task: str, kind: str = "agreement") -> Evidence:
    return Evidence("shout", kind, task=task, answer=task.upper(), other=task.upper())


def test_trust_needs_confirmations_on_distinct_tasks_and_none_against(lib: Library) -> None:
    info = lib.add_tool(draft(evidence=(agree("say hi"),)))
    assert (info.trust, info.n_support, info.n_against) == ("probation", 1, 0)
    # The same task again is one confirmation, not two.
    lib.add_evidence([agree("say hi"), agree("say hi"), agree("say yo", "label_match")])
    assert lib.get_tool("shout").n_support == 2  # type: ignore[union-attr]
    lib.add_evidence([agree("say ho", "user_right")])
    assert lib.get_tool("shout").trust == "trusted"  # type: ignore[union-attr]
    # A property that held moves nothing; one piece against makes it doubted.
    lib.add_evidence([Evidence("shout", "property_held", task="say he")])
    assert lib.get_tool("shout").n_support == 3  # type: ignore[union-attr]
    lib.add_evidence([Evidence("shout", "disagreement", task="say ha", answer="X", other="Y")])
    info = lib.get_tool("shout")
    assert info is not None and (info.trust, info.n_against) == ("doubted", 1)
    kinds = [e.kind for e in lib.tool_evidence("shout")]
    assert kinds[0] == "disagreement" and kinds.count("agreement") == 3
    assert any(ev.kind == "trust" for ev in lib.tool_history("shout"))


def test_unknown_kinds_and_tools_are_refused(lib: Library) -> None:
    lib.add_tool(draft())
    with pytest.raises(LibraryError, match="unknown kind of evidence"):
        lib.add_evidence([Evidence("shout", "the critic approved")])
    with pytest.raises(LibraryError, match="no tool"):
        lib.add_evidence([Evidence("nope", "agreement", task="x")])


def test_a_new_version_starts_its_own_record_and_the_old_one_stays(lib: Library) -> None:
    lib.add_tool(draft(evidence=(agree("say hi"),)))
    lib.add_evidence([agree("say yo"), agree("say ho")])
    assert lib.get_tool("shout").trust == "trusted"  # type: ignore[union-attr]
    v2 = lib.add_version("shout", draft(source=SOURCE.replace("upper", "upper().strip")))
    assert (v2.version, v2.trust, v2.n_support) == (2, "probation", 0)
    assert len(lib.tool_evidence("shout", version=1)) == 3
    assert lib.tool_evidence("shout", version=2) == []
    assert lib.get_tool("shout", version=1).n_support == 3  # type: ignore[union-attr]


def test_a_pin_vouches_whatever_the_evidence_and_unpin_gives_it_back(lib: Library) -> None:
    lib.add_tool(draft())
    lib.add_evidence([Evidence("shout", "label_mismatch", task="say hi", answer="X", other="Y")])
    assert lib.pin("shout").trust == "pinned"
    assert lib.unpin("shout").trust == "doubted"


def test_a_persons_verdict_names_a_task_the_tool_answered(lib: Library) -> None:
    lib.add_tool(draft())
    ep = Episode(
        task_id="t9",
        task="say yes",
        status="solved",
        answer="SAY YES",
        correct=None,
        attempts=1,
        n_calls=0,
        tokens_in=0,
        tokens_out=0,
        seconds=0.1,
        tools_used=["shout"],
        tools_created=[],
        feedback="none",
    )
    lib.record_episode(ep, Learned())
    piece = lib.verdict("shout", "t9", right=False)
    assert (piece.kind, piece.answer, piece.task) == ("user_wrong", "SAY YES", "say yes")
    assert lib.get_tool("shout").trust == "doubted"  # type: ignore[union-attr]
    with pytest.raises(LibraryError, match="tasks it was used on: t9"):
        lib.verdict("shout", "t1", right=True)


def test_evidence_of_an_episode_is_stored_with_it_in_one_transaction(lib: Library) -> None:
    lib.add_tool(draft())
    ep = Episode(
        task_id="t1",
        task="say a",
        status="solved",
        answer="SAY A",
        correct=None,
        attempts=1,
        n_calls=1,
        tokens_in=1,
        tokens_out=1,
        seconds=0.1,
        tools_used=["shout"],
        tools_created=[],
        feedback="none",
    )
    lib.record_episode(ep, Learned(solved=True, evidence=[agree("say a")]))
    assert [e.kind for e in lib.tool_evidence("shout")] == ["agreement"]
    assert lib.get_tool("shout").n_support == 1  # type: ignore[union-attr]


def test_evidence_survives_export_and_import_as_history_and_counts_only_when_asked(
    lib: Library, tmp_path: Path
) -> None:
    from memory.transfer import export_manifest, import_tools, read_export

    lib.add_tool(draft(evidence=(agree("say hi"),), properties=({"kind": "integer"},)))
    lib.add_evidence([agree("say yo"), agree("say ho")])
    lib.pin("shout")
    folder = tmp_path / "bundle"
    folder.mkdir()
    import json

    (folder / "shout.py").write_text(SOURCE)
    (folder / "test_shout.py").write_text(TESTS)
    (folder / "tools.json").write_text(json.dumps(export_manifest(lib, lib.list_tools())))
    items = read_export(folder)
    assert [e.kind for e in items[0].evidence] == ["agreement"] * 3 and items[0].pinned

    for keep, trust in ((False, "probation"), (True, "pinned")):
        other = Library.open(
            tmp_path / f"other-{keep}", MemoryConfig(embedder="hash"), HashEmbedder()
        )
        import_tools(other, items, keep_trust=keep)
        info = other.get_tool("shout")
        assert info is not None and info.trust == trust
        assert info.properties == ({"kind": "integer"},)
        assert len(other.tool_evidence("shout")) == 3
        assert all(e.detail.startswith("imported") for e in other.tool_evidence("shout"))
        other.close()


def test_health_figures_come_from_the_records(lib: Library) -> None:
    from memory import UsageEvent

    lib.add_tool(draft(evidence=(agree("say hi"),)))
    lib.add_tool(draft(name="yell", source=SOURCE.replace("shout", "yell")))
    lib.add_tool(draft(name="idle", source=SOURCE.replace("shout", "idle")))
    lib.add_evidence([Evidence("yell", "disagreement", task="say x")])
    events = [
        UsageEvent(tool, True, args=[t], result=t.upper(), episode_id=f"{tool}{t}")
        for tool in ("shout", "yell")
        for t in ("a", "b")
    ]
    lib.record_usage(events, solved=True)
    health = lib.health()
    assert health["library_precision"] == 0.5  # shout right, yell refuted; idle unjudged
    assert health["utilisation"] == round(2 / 3, 3)
    assert health["redundant_pairs"] == [["shout", "yell"]]
