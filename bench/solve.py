"""Wall time of `evoagent solve` around the model, for a reuse task; prints JSON.

A fresh home; one word-sorting task solved and forged (the tool `sort_words`), then
`--n` reuse tasks (other words), each a new `evoagent solve` process, as a person
runs it. The reuse tasks take the fast path: the tool runs with no model call, so the
whole wall time is what evoagent costs beyond the model. Reported per model:

- `wall_s`: the process from start to exit (p50, min, max);
- `episode_s`: the episode's own seconds (recall → learn), from `--json`;
- `floor_s`: `python -c "import agent.cli"` and `evoagent --help` (imports alone).

Each model twice: `cold` (every `solve` process opens everything itself) and `served`
(`evoagent serve` runs for the home, started after the first task, and each `solve` hands
its task to it: what a person who solves many tasks in a day would run).

`--models` takes `scripted` (the zero-latency scripted model: nothing to load) and
`local` (the default local model, no `--model`: the wall time also holds loading the
engine and mapping the weights, which `bench/model.py` reports as its load time).

    .venv/bin/python bench/solve.py --n 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent / "evoagent"
SCRIPTED = f"scripted:{ROOT / 'examples' / 'solve' / 'sort_task.yaml'}"
FIRST = "Sort the following words alphabetically: List: pear apple fig"
REUSE = [
    "Sort the following words alphabetically: List: zebra mango banana cherry",
    "Sort the following words alphabetically: List: delta alpha charlie bravo",
    "Sort the following words alphabetically: List: oak elm ash birch",
    "Sort the following words alphabetically: List: tin gold iron copper lead",
    "Sort the following words alphabetically: List: rose lily fern moss",
    "Sort the following words alphabetically: List: nile amazon congo volga",
    "Sort the following words alphabetically: List: mars venus earth pluto",
]


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    return time.perf_counter() - started, done


def stats(values: list[float]) -> dict[str, float]:
    return {
        "p50": round(statistics.median(values), 3),
        "min": round(min(values), 3),
        "max": round(max(values), 3),
    }


def one_model(model: str, n: int, env: dict[str, str], served: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="evoagent-solve-bench-") as home:
        base = [str(BIN), "--home", home, "solve"]
        extra = ["--model", SCRIPTED] if model == "scripted" else []
        wall0, first = timed([*base, FIRST, *extra, "--expect", "apple fig pear", "--json"], env)
        if first.returncode != 0:
            raise SystemExit(f"the first task failed: {first.stderr[-2000:]}")
        server = None
        if served:
            server = subprocess.Popen(
                [str(BIN), "--home", home, "serve", *extra],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            deadline = time.monotonic() + 300
            while not (Path(home) / "serve.sock").exists():
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("evoagent serve did not start")
                time.sleep(0.2)
        try:
            return {"first_task_wall_s": round(wall0, 2), **reuse(base, extra, n, env)}
        finally:
            if server is not None:
                server.terminate()
                server.wait(timeout=60)


def reuse(base: list[str], extra: list[str], n: int, env: dict[str, str]) -> dict[str, Any]:
    walls, episodes, calls = [], [], []
    for task in REUSE[:n]:
        words = task.split("List:")[1].split()
        expect = " ".join(sorted(words))
        wall, done = timed([*base, task, *extra, "--expect", expect, "--json"], env)
        if done.returncode != 0:
            raise SystemExit(f"a reuse task failed: {done.stderr[-2000:]}")
        episode = json.loads(done.stdout[done.stdout.index("{") :])
        walls.append(wall)
        episodes.append(float(episode["seconds"]))
        calls.append(int(episode["n_calls"]))
    return {
        "reuse_wall_s": stats(walls),
        "reuse_episode_s": stats(episodes),
        "reuse_model_calls": calls,
        "reuse_outside_episode_s": stats([w - e for w, e in zip(walls, episodes, strict=True)]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5)
    parser.add_argument("--models", nargs="+", default=["scripted", "local"])
    args = parser.parse_args()
    env = dict(os.environ)
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("ANONYMIZED_TELEMETRY", "False")
    imports = [timed([sys.executable, "-c", "import agent.cli"], env)[0] for _ in range(3)]
    helps = [timed([str(BIN), "--help"], env)[0] for _ in range(3)]
    out: dict[str, Any] = {
        "cores": os.cpu_count(),
        "floor_s": {"import_agent_cli": stats(imports), "evoagent_help": stats(helps)},
        "target_s_beyond_model": 1.5,
    }
    for model in args.models:
        out[model] = {
            mode: one_model(model, args.n, env, served=mode == "served")
            for mode in ("cold", "served")
        }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
