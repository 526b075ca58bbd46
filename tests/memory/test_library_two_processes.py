"""Two real processes on one home: a writer (owns the index) and a browsing, pruning person."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from memory import HashEmbedder, Library, MemoryConfig

WORKER = Path(__file__).with_name("two_process_worker.py")
N = 100


@pytest.mark.slow
def test_writer_and_browser_at_once(home: Path, tmp_path: Path) -> None:
    with Library.open(home, MemoryConfig(embedder="hash"), HashEmbedder()) as lib:
        from memory import Provenance, ToolDraft

        src = 'def victim(text: str) -> str:\n    """The victim tool."""\n    return text\n'
        lib.add_tool(
            ToolDraft(
                "victim",
                src,
                "",
                "victim(text: str) -> str",
                "The victim tool that a person quarantines.",
                Provenance("victim task"),
            )
        )
    w_out, b_out = tmp_path / "writer.json", tmp_path / "browser.json"
    writer = subprocess.Popen(
        [sys.executable, str(WORKER), "writer", str(home), str(w_out), str(N)]
    )
    browser = subprocess.Popen(
        [sys.executable, str(WORKER), "browser", str(home), str(b_out), str(N)]
    )
    try:
        assert writer.wait(timeout=240) == 0  # no hang, no crash
        (home / "writer.done").touch()
        assert browser.wait(timeout=240) == 0
    finally:
        for proc in (writer, browser):
            if proc.poll() is None:
                proc.kill()
    w, b = json.loads(w_out.read_text()), json.loads(b_out.read_text())
    assert b["rounds"] > 5
    assert w["saw_quarantine"] is True  # the writer's search saw the person's quarantine

    conn = sqlite3.connect(home / "library.db")
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("SELECT count(*) FROM tool").fetchone()[0] == N + 1
    assert conn.execute("SELECT count(*) FROM episode").fetchone()[0] == N
    assert conn.execute("SELECT count(*) FROM tip").fetchone()[0] == N
    assert conn.execute("SELECT count(*) FROM failure").fetchone()[0] == N
    assert conn.execute(
        "SELECT count(*), sum(n_uses) FROM tool WHERE name LIKE 'tool_%'"
    ).fetchone() == (N, w["usage"])
    assert conn.execute("SELECT count(*) FROM usage_event").fetchone()[0] == w["usage"]
    statuses = dict(conn.execute("SELECT name, status FROM tool").fetchall())
    conn.close()
    # No lost write: every status the person set last is the one stored.
    assert b["last_status"], "the browser changed nothing"
    for name, status in b["last_status"].items():
        assert statuses[name] == status, name

    # The next owner finds SQL and index in agreement.
    with Library.open(home, MemoryConfig(embedder="hash"), HashEmbedder()) as lib:
        assert lib.owns_index
        assert all(d == {"missing": 0, "extra": 0, "stale": 0} for d in lib.drift().values())
        active = {t.name for t in lib.list_tools()}
        hits = lib.search_tools("transform text number 5 with operation 5", k=N + 1)
        assert {h.tool.name for h in hits} == active
