"""One side of the two-process test: `writer` (a task stream) or `browser` (a person).

Run as `python two_process_worker.py ROLE HOME OUT N`; writes a JSON report to OUT.
"""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path

from memory import (
    Episode,
    HashEmbedder,
    Library,
    MemoryConfig,
    Provenance,
    ToolDraft,
    UsageEvent,
)

CFG = MemoryConfig(embedder="hash", busy_timeout_s=60)


def draft(name: str, doc: str) -> ToolDraft:
    src = f'def {name}(text: str) -> str:\n    """{doc}"""\n    return text\n'
    return ToolDraft(
        name,
        src,
        f"from tools import {name}\n",
        f"{name}(text: str) -> str",
        doc,
        Provenance(f"task for {name}: {doc}"),
    )


def writer(home: Path, out: Path, n: int) -> None:
    lib = Library.open(home, CFG, HashEmbedder())
    assert lib.owns_index, "the writer must own the index"
    (home / "writer.ready").touch()
    saw_quarantine = None
    n_usage = 0
    for i in range(n):
        name = f"tool_{i}"
        lib.add_tool(draft(name, f"transform text number {i} with operation {i % 7}"))
        events = [UsageEvent(name, ok=(i % 5 != 0) or j < 2) for j in range(6)]  # every 5th: flaky
        lib.record_usage(events)
        n_usage += len(events)
        lib.add_tip(f"tip number {i}: check the input format {i % 3}", task=f"task {i}")
        lib.add_failure(
            task=f"task {i}", error_type="ValueError", message=f"bad value {i}", lesson="validate"
        )
        lib.add_episode(
            Episode(
                task_id=f"t{i}",
                task=f"task {i}",
                status="solved",
                answer=i,
                correct=True,
                attempts=1,
                n_calls=2,
                tokens_in=10,
                tokens_out=5,
                seconds=0.1,
                tools_used=[name],
                tools_created=[name],
                feedback="none",
            )
        )
        before = lib.tool_history(name)
        hits = lib.search_tools(f"transform text number {i} with operation {i % 7}", k=3)
        info = lib.get_tool(name)
        # Unless the person changed its status meanwhile, the new tool is among the top hits.
        if info is not None and info.status == "active" and lib.tool_history(name) == before:
            assert name in [h.tool.name for h in hits], (name, hits)
        if saw_quarantine is None and (home / "victim.quarantined").exists():
            names = [
                h.tool.name
                for h in lib.search_tools("the victim tool that a person quarantines", k=5)
            ]
            saw_quarantine = "victim" not in names
    lib.close()
    out.write_text(json.dumps({"n": n, "usage": n_usage, "saw_quarantine": saw_quarantine}))


def browser(home: Path, out: Path, n: int) -> None:
    while not (home / "writer.ready").exists():
        time.sleep(0.01)
    rng = random.Random(7)
    lib = Library.open(home, CFG, HashEmbedder(), own_index=False)
    assert not lib.owns_index
    last_status: dict[str, str] = {}
    rounds = 0
    deadline = time.time() + 120
    while time.time() < deadline:
        rounds += 1
        tools = lib.list_tools("all")
        lib.search_tools("transform text with operation 3", k=5)
        lib.search_tips("check the input format", k=3)
        if rounds == 3:
            lib.set_status("victim", "quarantined", "person")
            last_status["victim"] = "quarantined"
            (home / "victim.quarantined").touch()
        candidates = [t.name for t in tools if t.name.startswith("tool_")]
        if candidates:
            name = rng.choice(candidates)
            status = rng.choice(["quarantined", "archived", "active"])
            lib.set_status(name, status, "browsing")
            last_status[name] = status
        if rounds % 10 == 0:
            for ch in lib.prune(min_uses=6, max_fail_rate=0.6, grace_episodes=10_000):
                last_status[ch.ref] = "quarantined"
            lib.consolidate()
        if (home / "writer.done").exists() and rounds > 5:
            break
    lib.close()
    out.write_text(json.dumps({"rounds": rounds, "last_status": last_status}))


if __name__ == "__main__":
    role, home_arg, out_arg, n_arg = sys.argv[1:5]
    {"writer": writer, "browser": browser}[role](Path(home_arg), Path(out_arg), int(n_arg))
