"""Soak benchmark: a long scripted stream, to see that nothing grows with its length.

A stream of N tasks (default 2,000) is built from the five BBH families of
examples/bbh/data (1,250 distinct tasks; the rest repeat them under new ids), with the
demo's scripted model generated for it (latency 0: every second is evoagent's own).
It runs once, learning, in a fresh home, with the real Docker sandbox and embeddings,
and prints JSON:

- per-task wall time (the runner's whole cost per task) over tasks 1-100, 101-200 and
  the last 100, and their ratios (flat means no cost grows with the stream);
- bytes added to library.db and checkpoints.db (pages in use, their WAL included) and to
  the run folder per task, between task 100 and the middle, and the middle and the end;
- the runner's RSS at those points and its peak.

    .venv/bin/python bench/soak.py                 # 2,000 tasks (about 30 minutes)
    .venv/bin/python bench/soak.py --tasks 400     # a quicker look
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BBH = ROOT / "examples" / "bbh"


def _module(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, BBH / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def stream(n: int) -> list[dict[str, Any]]:
    distinct = _module("make_stream").build(250)
    out = []
    for i in range(n):
        task = dict(distinct[i % len(distinct)])
        if i >= len(distinct):
            task["id"] = f"{task['id']}-r{i // len(distinct)}"
        out.append(task)
    return out


def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for row in fh:
            if row.startswith("VmRSS:"):
                return round(int(row.split()[1]) / 1024, 1)
    return 0.0


def _db_bytes(path: Path) -> int:
    """Bytes of pages in use as a reader sees the database (its WAL included), so a WAL
    checkpoint or truncation does not look like the data shrinking or growing."""
    import sqlite3

    if not path.exists():
        return 0
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
        size = conn.execute("PRAGMA page_size").fetchone()[0]
    finally:
        conn.close()
    return int((pages - free) * size)


def _bytes(home: Path, run_id: str) -> dict[str, int]:
    run_dir = home / "runs" / run_id
    folder = (
        sum(p.stat().st_size for p in run_dir.glob("*") if p.is_file()) if run_dir.exists() else 0
    )
    return {
        "library_db": _db_bytes(home / "library.db"),
        "checkpoints_db": _db_bytes(home / "checkpoints.db"),
        "run_folder": folder,
    }


def soak(n: int, workers: int, batch: int) -> dict[str, Any]:
    from agent.config import load_settings
    from agent.stream import RunHooks, RunOptions, start_run
    from agent.task import Task

    tasks = stream(n)
    make_model = _module("make_model")
    marks = sorted({100, n // 2, n})
    with tempfile.TemporaryDirectory(prefix="evoagent-soak-") as tmp:
        model = Path(tmp) / "model.yaml"
        make_model.write(make_model.build(tasks), model)
        home = Path(tmp) / "home"
        settings = load_settings(home=home, model=f"scripted:{model}")
        done_at: list[float] = []
        samples: dict[int, dict[str, Any]] = {}

        def on_progress(p: Any) -> None:
            if p.phase != "task":
                return
            done_at.append(time.perf_counter())
            if p.n_done in marks:
                samples[p.n_done] = {"bytes": _bytes(home, "soak"), "rss_mb": _rss_mb()}

        started = time.perf_counter()
        outcome = start_run(
            [Task.from_dict(t) for t in tasks],
            settings,
            RunOptions(workers=workers, batch=batch),
            run_id="soak",
            meta={"stream": "soak"},
            hooks=RunHooks(on_progress=on_progress),
        )
        samples[n] = {"bytes": _bytes(home, "soak"), "rss_mb": _rss_mb()}
        wall = time.perf_counter() - started

    def per_task(lo: int, hi: int) -> float:
        """Seconds per task over tasks lo+1..hi (by the time each one finished)."""
        first = done_at[lo - 1] if lo else started
        return round((done_at[hi - 1] - first) / (hi - lo), 4)

    windows = {
        "tasks_1_100": per_task(0, min(100, n)),
        "tasks_101_200": per_task(100, min(200, n)) if n >= 200 else None,
        f"tasks_{n - 99}_{n}": per_task(n - 100, n),
    }
    last = windows[f"tasks_{n - 99}_{n}"]

    def growth(a: int, b: int) -> dict[str, float]:
        before, after = samples[a]["bytes"], samples[b]["bytes"]
        return {k: round((after[k] - before[k]) / (b - a), 1) for k in before}

    mid = n // 2
    return {
        "n_tasks": n,
        "workers": workers,
        "batch": batch,
        "status": outcome.status,
        "solve_rate": outcome.summary["solve_rate"],
        "tools": outcome.summary["library_size"],
        "wall_s": round(wall, 1),
        "seconds_per_task": windows,
        "last_over_first_100": round(last / windows["tasks_1_100"], 3),
        "last_over_101_200": (
            round(last / windows["tasks_101_200"], 3) if windows["tasks_101_200"] else None
        ),
        "bytes_per_task": {
            f"tasks_100_{mid}": growth(100, mid),
            f"tasks_{mid}_{n}": growth(mid, n),
        },
        "bytes_at_end": samples[n]["bytes"],
        "rss_mb": {str(k): v["rss_mb"] for k, v in sorted(samples.items())},
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()
    if args.tasks < 400:
        parser.error("--tasks must be at least 400 (it compares windows of 100 tasks)")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    from sandbox.image import ensure_image

    os.environ["EVOAGENT_SANDBOX__IMAGE"] = ensure_image()
    print(json.dumps(soak(args.tasks, args.workers, args.batch), indent=2))


if __name__ == "__main__":
    main()
