"""Benchmark of task streams; prints JSON.

1. The demo stream (examples/bbh/stream.jsonl, 200 tasks) learning vs `--no-learn`:
   model calls and tokens per solved task, solve rate, and their ratios.
2. Throughput: tasks per second at 1, 2, 4 and 8 workers with the demo's scripted model
   sleeping 1 s per call, on a small slice of the stream, `--no-learn` so that every
   run does the same work (no forge at batch ends): the runner's own overhead per task
   should stay small beside the model's time, so throughput should scale with workers.

Real Docker sandbox and real embeddings; each run gets a fresh home in a temp dir.

    .venv/bin/python bench/stream.py                 # both parts (about 10 minutes)
    .venv/bin/python bench/stream.py --per-family 10 --slice 8 --workers 1 2
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
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
    sys.modules[name] = module  # dataclasses look their module up while defining
    spec.loader.exec_module(module)
    return module


def run(
    tasks: list[dict[str, Any]], model: Path, *, learn: bool, workers: int, batch: int
) -> dict[str, Any]:
    from agent.config import load_settings
    from agent.stream import RunOptions, start_run
    from agent.task import Task

    with tempfile.TemporaryDirectory(prefix="evoagent-bench-") as home:
        settings = load_settings(home=home, model=f"scripted:{model}")
        options = RunOptions(workers=workers, batch=batch, learn=learn)
        started = time.perf_counter()
        outcome = start_run([Task.from_dict(t) for t in tasks], settings, options, stream="bench")
        wall = time.perf_counter() - started
    s = outcome.summary
    return {
        "status": outcome.status,
        "n_tasks": s["n_done"],
        "solve_rate": s["solve_rate"],
        "reuse_rate": s["reuse_rate"],
        "tokens_per_success": s["tokens_per_success"],
        "tokens_per_success_with_forge": s["tokens_per_success_with_forge"],
        "calls_per_success": s["calls_per_success"],
        "tools_created": s["n_tools_created"],
        "tokens_per_success_2nd_over_1st_half": s["halves"]["tokens_per_success_ratio"],
        "runner_elapsed_s": s["elapsed_s"],
        "wall_s": round(wall, 2),  # includes opening the library, embedder and sandbox
    }


def demo(per_family: int, workers: int, batch: int) -> dict[str, Any]:
    tasks = _module("make_stream").build(per_family)
    model = BBH / "model.yaml"
    learning = run(tasks, model, learn=True, workers=workers, batch=batch)
    frozen = run(tasks, model, learn=False, workers=workers, batch=batch)

    def ratio(key: str) -> float | None:
        a, b = learning[key], frozen[key]
        return round(a / b, 4) if a is not None and b else None

    return {
        "stream": f"examples/bbh, {per_family} per family ({len(tasks)} tasks)",
        "workers": workers,
        "batch": batch,
        "learning": learning,
        "no_learn": frozen,
        "learning_over_no_learn": {
            "tokens_per_success": ratio("tokens_per_success"),
            "tokens_per_success_with_forge": round(
                learning["tokens_per_success_with_forge"] / frozen["tokens_per_success"], 4
            ),
            "calls_per_success": ratio("calls_per_success"),
            "solve_rate": ratio("solve_rate"),
        },
    }


def throughput(n_tasks: int, workers_list: list[int]) -> dict[str, Any]:
    tasks = [json.loads(line) for line in (BBH / "stream.jsonl").read_text().splitlines()][:n_tasks]
    make_model = _module("make_model")
    out: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="evoagent-bench-model-") as tmp:
        slow = Path(tmp) / "slow.yaml"
        make_model.write(make_model.build(tasks, latency_s=1.0), slow)
        for workers in workers_list:
            # One batch per max(workers) tasks: every setting can fill its workers.
            r = run(tasks, slow, learn=False, workers=workers, batch=max(workers_list))
            calls = (
                r["calls_per_success"] * r["n_tasks"] * r["solve_rate"] if r["solve_rate"] else 0
            )
            out.append(
                {
                    "workers": workers,
                    "tasks_per_s": round(r["n_tasks"] / r["runner_elapsed_s"], 4),
                    "runner_elapsed_s": r["runner_elapsed_s"],
                    "model_seconds": round(calls, 1),  # 1 s per call
                    "solve_rate": r["solve_rate"],
                }
            )
    base = out[0]["tasks_per_s"]
    for row in out:
        row["speedup"] = round(row["tasks_per_s"] / base, 3)
        # What the runner, the sandbox and the library add beyond the model's own time,
        # per task, at this number of workers.
        row["overhead_s_per_task"] = round(
            (row["runner_elapsed_s"] * row["workers"] - row["model_seconds"]) / n_tasks, 3
        )
    return {"latency_s_per_call": 1.0, "n_tasks": n_tasks, "mode": "no-learn", "runs": out}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-family", type=int, default=40)
    parser.add_argument("--demo-workers", type=int, default=4)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--slice", type=int, default=16, help="tasks for the throughput runs")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--skip-demo", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    from sandbox.image import ensure_image

    # Built once here (offline, a few minutes the first time) rather than by every run.
    os.environ["EVOAGENT_SANDBOX__IMAGE"] = ensure_image()
    result: dict[str, Any] = {}
    if not args.skip_demo:
        result["demo"] = demo(args.per_family, args.demo_workers, args.batch)
    if not args.skip_throughput:
        result["throughput"] = throughput(args.slice, args.workers)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
