"""Benchmark of task streams; prints JSON.

1. The demo stream (examples/bbh/stream.jsonl, 200 tasks) learning vs `--no-learn`:
   model calls and tokens per solved task, solve rate, and their ratios.
2. Throughput: tasks per second at 1, 2, 4 and 8 workers with the demo's scripted model
   sleeping 1 s per call, on a small slice of the stream, `--no-learn` so that every
   run does the same work (no forge at batch ends): the runner's own overhead per task
   should stay small beside the model's time, so throughput should scale with workers.

   The same with `--ray` (executor "ray": a Ray actor per worker on a private cluster of
   this machine, on a loopback address), beside threads; and, learning, what a batch end
   costs the driver (forge, repair) against what a batch's tasks cost.
3. The Ray driver's per-batch overhead: the library snapshot shipped to the workers
   (bytes, seconds to take it, pickle it and put it in the object store, and a worker's
   seconds to load it) at 10, 1k and 10k tools.

Real Docker sandbox and real embeddings; each run gets a fresh home in a temp dir.

    .venv/bin/python bench/stream.py                 # every part (about 20 minutes)
    .venv/bin/python bench/stream.py --per-family 10 --slice 8 --workers 1 2
    .venv/bin/python bench/stream.py --skip-demo --executors threads ray
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
    tasks: list[dict[str, Any]],
    model: Path,
    *,
    learn: bool,
    workers: int,
    batch: int,
    executor: str = "threads",
) -> dict[str, Any]:
    from agent.config import load_settings
    from agent.stream import RunOptions, start_run
    from agent.task import Task

    with tempfile.TemporaryDirectory(prefix="evoagent-bench-") as home:
        settings = load_settings(home=home, model=f"scripted:{model}")
        options = RunOptions(workers=workers, batch=batch, learn=learn, executor=executor)
        started = time.perf_counter()
        outcome = start_run(
            [Task.from_dict(t) for t in tasks], settings, options, meta={"stream": "bench"}
        )
        wall = time.perf_counter() - started
        batches = [json.loads(x) for x in (outcome.dir / "batches.jsonl").read_text().splitlines()]
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
        "batch_end_s": [b["seconds"] for b in batches],
        "snapshot_s": [b["snapshot"]["seconds"] for b in batches if "snapshot" in b],
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


def throughput(n_tasks: int, workers_list: list[int], executors: list[str]) -> dict[str, Any]:
    tasks = [json.loads(line) for line in (BBH / "stream.jsonl").read_text().splitlines()][:n_tasks]
    make_model = _module("make_model")
    out: dict[str, list[dict[str, Any]]] = {}
    batch_end: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="evoagent-bench-model-") as tmp:
        slow = Path(tmp) / "slow.yaml"
        make_model.write(make_model.build(tasks, latency_s=1.0), slow)
        for executor in executors:
            rows = out[executor] = []
            for workers in workers_list:
                # One batch per max(workers) tasks: every setting can fill its workers.
                r = run(
                    tasks,
                    slow,
                    learn=False,
                    workers=workers,
                    batch=max(workers_list),
                    executor=executor,
                )
                calls = (
                    r["calls_per_success"] * r["n_tasks"] * r["solve_rate"]
                    if r["solve_rate"]
                    else 0
                )
                rows.append(
                    {
                        "workers": workers,
                        "tasks_per_s": round(r["n_tasks"] / r["runner_elapsed_s"], 4),
                        "runner_elapsed_s": r["runner_elapsed_s"],
                        "wall_s": r["wall_s"],
                        "model_seconds": round(calls, 1),  # 1 s per call
                        "solve_rate": r["solve_rate"],
                    }
                )
            base = rows[0]["tasks_per_s"]
            for row in rows:
                row["speedup"] = round(row["tasks_per_s"] / base, 3)
                # What the runner, the sandbox and the library add beyond the model's own
                # time, per task, at this number of workers.
                row["overhead_s_per_task"] = round(
                    (row["runner_elapsed_s"] * row["workers"] - row["model_seconds"]) / n_tasks, 3
                )
        # Learning, one batch of max(workers) tasks after another: the batch end (forge,
        # repair, on the driver) against the batch's tasks.
        workers = max(workers_list)
        r = run(tasks, slow, learn=True, workers=workers, batch=workers, executor=executors[-1])
        batch_end = {
            "executor": executors[-1],
            "workers": workers,
            "batch": workers,
            "batch_end_s": r["batch_end_s"],
            "snapshot_s": r["snapshot_s"],
            "runner_elapsed_s": r["runner_elapsed_s"],
            "task_seconds_per_batch": round(
                (r["runner_elapsed_s"] - sum(r["batch_end_s"]) - sum(r["snapshot_s"]))
                / max(1, len(r["batch_end_s"])),
                3,
            ),
        }
    return {
        "latency_s_per_call": 1.0,
        "n_tasks": n_tasks,
        "mode": "no-learn",
        "runs": out,
        "ray_over_threads": {
            str(a["workers"]): round(a["tasks_per_s"] / b["tasks_per_s"], 3)
            for a, b in zip(out.get("ray", []), out.get("threads", []), strict=False)
        },
        "learning_batch_end": batch_end,
    }


def snapshot_cost(sizes: list[int]) -> list[dict[str, Any]]:
    """The driver's per-batch cost of shipping the library to Ray workers, by library size.

    Tools are added with a hash embedder of MiniLM's dimension (384): the same bytes per
    vector as the real one, without minutes of embedding 10k descriptions."""
    import pickle

    import ray

    from memory import HashEmbedder, Library, MemoryConfig, Provenance, ToolDraft
    from memory.snapshot import SnapshotLibrary

    out = []
    for n in sizes:
        with tempfile.TemporaryDirectory(prefix="evoagent-bench-snap-") as home:
            embedder = HashEmbedder(dim=384)
            lib = Library.open(Path(home), MemoryConfig(embedder="hash"), embedder)
            try:
                for i in range(n):
                    name = f"tool_{i}"
                    doc = f"Transform a text the way family {i % 97} tasks number {i} need."
                    src = (
                        f"def {name}(text: str) -> str:\n"
                        f'    """{doc}\n\n    Args:\n        text: the task\'s input.\n    """\n'
                        f"    words = text.split()\n    return ' '.join(sorted(words)) + '{i}'\n"
                    )
                    tests = f"from tools import {name}\n\ndef test_{name}():\n    assert {name}('b a')\n"
                    lib.add_tool(
                        ToolDraft(
                            name,
                            src,
                            tests,
                            f"{name}(text: str) -> str",
                            doc,
                            Provenance(f"an example task of family {i % 97}, number {i}", f"t{i}"),
                        )
                    )
                # The first take also replays the change log of the n admissions; a run's
                # batch start replays only its last batch's changes: both are reported.
                first = time.perf_counter()
                lib.snapshot()
                started = time.perf_counter()
                snap = lib.snapshot()
                taken = time.perf_counter()
                blob = pickle.dumps(snap, protocol=5)
                pickled = time.perf_counter()
                ref = ray.put(blob)
                put = time.perf_counter()
                worker = SnapshotLibrary(pickle.loads(ray.get(ref)), embedder)
                worker.search_tools("sort these words", k=5)
                loaded = time.perf_counter()
            finally:
                lib.close()
        out.append(
            {
                "tools": n,
                "bytes": len(blob),
                "first_take_s": round(started - first, 4),
                "take_s": round(taken - started, 4),
                "pickle_s": round(pickled - taken, 4),
                "put_s": round(put - pickled, 4),
                "driver_s": round(put - started, 4),
                "worker_load_and_first_search_s": round(loaded - put, 4),
            }
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-family", type=int, default=40)
    parser.add_argument("--demo-workers", type=int, default=4)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--slice", type=int, default=16, help="tasks for the throughput runs")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--skip-demo", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--executors", nargs="+", default=["threads", "ray"])
    parser.add_argument("--snapshot-sizes", type=int, nargs="+", default=[10, 1000, 10000])
    parser.add_argument("--skip-snapshot", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    from sandbox.image import ensure_image

    # Built once here (offline, a few minutes the first time) rather than by every run.
    os.environ["EVOAGENT_SANDBOX__IMAGE"] = ensure_image()
    result: dict[str, Any] = {}
    if "ray" in args.executors or not args.skip_snapshot:
        import ray

        from agent.stream.ray_exec import LOCAL_NODE_IP

        # One private cluster for every Ray run here, on a loopback address; as many
        # logical CPUs as the most workers asked (the 1 s/call model sleeps, it does not
        # compute). The runs join it, so actor start-up is in wall_s, not runner_elapsed_s.
        ray.init(
            address="local",
            num_cpus=max(args.workers),
            _node_ip_address=LOCAL_NODE_IP,
            include_dashboard=False,
            log_to_driver=False,
        )
    if not args.skip_demo:
        result["demo"] = demo(args.per_family, args.demo_workers, args.batch)
    if not args.skip_throughput:
        result["throughput"] = throughput(args.slice, args.workers, args.executors)
    if not args.skip_snapshot:
        result["ray_snapshot"] = snapshot_cost(args.snapshot_sizes)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
