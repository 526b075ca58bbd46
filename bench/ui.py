"""Benchmark of `evoagent ui`'s pages on a large library; prints JSON.

A home with --tools tools (two versions each for one in ten) and --uses usage rows, the
app served in-process (Starlette's test client: the server's own time, no network), and
each page requested --repeat times after one warm-up: median and p95 milliseconds per
page. The goal (issue 28): every page p95 <= 150 ms at 10,000 tools and 100,000 uses.

    .venv/bin/python bench/ui.py
    .venv/bin/python bench/ui.py --tools 1000 --uses 10000 --repeat 10
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def seed(home: Path, n_tools: int, n_uses: int) -> float:
    """Fill `home`; return the seconds it took."""
    from memory import HashEmbedder, Library
    from memory.config import MemoryConfig
    from memory.types import Provenance, ToolDraft, UsageEvent

    started = time.perf_counter()
    words = ["sort", "count", "parse", "sum", "order", "filter", "rank", "match", "split", "join"]
    with Library.open(home, MemoryConfig(embedder="hash"), HashEmbedder()) as lib:
        drafts = []
        for i in range(n_tools):
            verb, noun = words[i % 10], words[(i // 10) % 10]
            name = f"{verb}_{noun}_{i}"
            doc = f"{verb.capitalize()} the {noun}s of a text (variant {i})."
            source = f'def {name}(text: str) -> str:\n    """{doc}"""\n    return text[::-1]\n'
            tests = (
                f"from tools import {name}\n\n\ndef test_it():\n    assert {name}('ab') == 'ba'\n"
            )
            drafts.append(
                ToolDraft(
                    name, source, tests, f"{name}(text: str) -> str", doc,
                    Provenance(f"{verb} these {noun}s: a b c", task_id=f"t{i}"),
                )
            )  # fmt: skip
        for start in range(0, n_tools, 500):
            lib.add_tools(drafts[start : start + 500])
        for draft in drafts[::10]:
            lib.add_version(draft.name, draft)
        rng = random.Random(7)
        names = [d.name for d in drafts]
        batch: list[UsageEvent] = []
        for _ in range(n_uses):
            ok = rng.random() < 0.8
            batch.append(UsageEvent(rng.choice(names), ok, args=["a b"], result="b a"))
            if len(batch) == 5000:
                lib.record_usage(batch, solved=True)
                batch = []
        if batch:
            lib.record_usage(batch, solved=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tools", type=int, default=10_000)
    parser.add_argument("--uses", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    os.environ["EVOAGENT_MEMORY__EMBEDDER"] = "hash"
    from starlette.testclient import TestClient

    from agent.config import load_settings
    from agent.ui import create_app

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        os.environ["EVOAGENT_HOME"] = str(home)
        seeded = seed(home, args.tools, args.uses)
        run = home / "runs" / "r1"
        run.mkdir(parents=True)
        (run / "meta.json").write_text(
            json.dumps({"run_id": "r1", "status": "finished", "n_tasks": 200})
        )
        (run / "results.jsonl").write_text(
            "".join(
                json.dumps({"id": f"f-{i}", "status": "solved", "batch": i // 10, "n_calls": 2})
                + "\n"
                for i in range(200)
            )
        )
        tool = "sort_sort_0"  # one of the tools with two versions
        pages = {
            "library": "/tools",
            "library_sorted_recent": "/tools?sort=recent&page=3",
            "library_quarantined": "/tools?status=quarantined",
            "search": "/tools?q=count+the+words",
            "tool": f"/tools/{tool}",
            "diff": f"/tools/{tool}/diff?a=1&b=2",
            "quarantine_preview": f"/tools/{tool}/do/quarantine",
            "prune_preview": "/prune",
            "runs": "/runs",
            "run": "/runs/r1",
            "run_live": "/runs/r1/live.json",
            "tips": "/tips",
            "failures": "/failures",
            "missing": "/tools/no_such_tool",
        }
        out: dict[str, object] = {
            "tools": args.tools,
            "uses": args.uses,
            "seed_seconds": round(seeded, 1),
            "pages_ms": {},
        }
        with TestClient(create_app(load_settings())) as client:
            for name, path in pages.items():
                client.get(path)  # warm-up: caches, first embedder call
                times = []
                for _ in range(args.repeat):
                    started = time.perf_counter()
                    response = client.get(path)
                    times.append((time.perf_counter() - started) * 1000)
                    assert response.status_code in (200, 404), (path, response.status_code)
                times.sort()
                p95 = times[min(len(times) - 1, int(0.95 * len(times)))]
                out["pages_ms"][name] = {  # type: ignore[index]
                    "median": round(statistics.median(times), 1),
                    "p95": round(p95, 1),
                }
                print(json.dumps({name: out["pages_ms"][name]}), file=sys.stderr)  # type: ignore[index]
        worst = max(v["p95"] for v in out["pages_ms"].values())  # type: ignore[attr-defined]
        out["worst_p95_ms"] = worst
        out["goal_p95_ms"] = 150
        print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
