"""A home for the UI tests: tools with versions, evidence and usage, and a run folder."""

from __future__ import annotations

import json
from pathlib import Path

from memory import HashEmbedder, Library
from memory.config import MemoryConfig
from memory.episode import Episode
from memory.types import Evidence, UsageEvent
from tests.memory.conftest import make_draft


def seed_home(home: Path) -> None:
    """Three tools: `sort_words` (two versions, evidence, uses), `count_items` calling it,
    and `shout`, whose docstring is markup that must show as text."""
    with Library.open(home, MemoryConfig(embedder="hash"), HashEmbedder()) as lib:
        lib.add_tool(make_draft())
        lib.add_version(
            "sort_words",
            make_draft(body="return ' '.join(sorted(text.split(), key=str.lower))"),
        )
        lib.add_tool(
            make_draft(
                "count_items",
                doc="Count the words a sorted list holds.",
                body="from tools import sort_words\n    return str(len(sort_words(text).split()))",
                task="How many items: apple pear",
            )
        )
        lib.add_tool(make_draft("shout", doc="<script>alert('x')</script> upper-case a text"))
        lib.add_evidence(
            [
                Evidence("sort_words", "agreement", task="Sort: b a", task_id="t7", answer="a b"),
                Evidence("sort_words", "label_match", task="Sort: d c", task_id="t8", answer="c d"),
            ]
        )
        lib.record_usage(
            [UsageEvent("sort_words", True, args=["b a"], result="a b")] * 3
            + [UsageEvent("sort_words", False, error_type="ValueError", error_message="x")],
            solved=True,
        )
        lib.add_episode(
            Episode(
                task_id="t7", task="Sort: b a", status="solved", answer="a b",
                tools_used=["sort_words"],
            )
        )  # fmt: skip
        lib.add_tip("compare words case-insensitively", task="Sort the words: b A")
        lib.add_failure(
            task="Sort: z y",
            error_type="Disagreement",
            message="another route said otherwise",
            lesson="check the order twice",
            tool="sort_words",
        )


def write_run(home: Path, run_id: str, n_tasks: int, rows: int, status: str = "finished") -> Path:
    """A run folder as the runner leaves it (meta, results, batches)."""
    folder = home / "runs" / run_id
    folder.mkdir(parents=True, exist_ok=True)
    meta = {
        "run_id": run_id,
        "status": status,
        "started_at": "2026-12-07T10:00:00",
        "stream": "tasks.jsonl",
        "n_tasks": n_tasks,
        "feedback": "labels",
        "learn": True,
        "model": "scripted:x",
        "batch": 5,
    }
    (folder / "meta.json").write_text(json.dumps(meta))
    append_results(folder, 0, rows)
    return folder


def append_results(folder: Path, start: int, n: int) -> None:
    with (folder / "results.jsonl").open("a") as out:
        for i in range(start, start + n):
            row = {
                "id": f"word_sorting-{i:03d}",
                "family": "word_sorting",
                "status": "solved" if i % 3 else "failed",
                "correct": bool(i % 3),
                "batch": i // 5,
                "n_calls": 2,
                "tokens_in": 100,
                "tokens_out": 20,
                "seconds": 1.5,
                "tools_used": [],
                "tools_created": [],
                "library_size_before": 0,
                "attempts": 1,
            }
            out.write(json.dumps(row) + "\n")
