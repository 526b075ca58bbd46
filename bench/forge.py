"""Forge throughput: candidates verified per minute, one at a time vs batched.

Builds N distinct successful traces (each defines and calls one documented function, so
the model-less path applies: instrumented re-run, static gate, tests + determinism
re-run + perturbations, dedup against the batch and the library, admission), then forges
them (a) one `forge()` per trace into a fresh library and (b) with `forge_batch()` into
another. Prints JSON; the target is >= 30 candidates a minute on 2 cores.

    .venv/bin/python bench/forge.py [--n 24] [--batch 12]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from memory import HashEmbedder, Library, MemoryConfig
from sandbox import get_sandbox
from sandbox.base import ExecResult
from sandbox.config import SandboxConfig
from sandbox.image import ensure_image
from toolforge import Trace, forge, forge_batch
from toolforge.config import ForgeConfig

WORDS = ["pear", "apple", "fig", "kiwi", "mango", "plum", "lime", "date", "grape", "melon"]


class CountingSandbox:
    """Counts the sandbox runs the forge makes (wraps the real DockerSandbox)."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.kind, self.runs = inner, inner.kind, 0

    def run(
        self, code: str, *, tools: Mapping[str, str] | None = None, **limits: Any
    ) -> ExecResult:
        self.runs += 1
        return self.inner.run(code, tools=tools, **limits)

    def close(self) -> None:
        self.inner.close()


def make_trace(k: int) -> Trace:
    """A family per k: rotate the words after the colon by k+1 places."""
    name = f"rotate_words_by_{k + 1}"
    words = WORDS[k % 5 : k % 5 + 4]
    task = f"Rotate these words left by {k + 1}: {' '.join(words)}"
    code = f'''
def {name}(text: str) -> str:
    """Rotate the words after the last colon of `text` left by {k + 1} places; join with spaces."""
    items = text.rsplit(":", 1)[-1].split()
    if not items:
        return ""
    n = {k + 1} % len(items)
    return " ".join(items[n:] + items[:n])


answer = {name}({task!r})
second = {name}("List: a b c d e")
'''
    n = (k + 1) % len(words)
    return Trace(task=task, task_id=f"rot-{k}", code=code, answer=" ".join(words[n:] + words[:n]))


def measure(
    mode: str, traces: list[Trace], batch: int, sandbox: Any, config: ForgeConfig
) -> dict[str, Any]:
    home = Path(tempfile.mkdtemp(prefix=f"bench-forge-{mode}-"))
    counting = CountingSandbox(sandbox)
    per_admission: list[float] = []
    statuses: dict[str, int] = {}
    with Library.open(home, MemoryConfig(embedder="hash"), HashEmbedder()) as lib:
        start = time.perf_counter()
        if mode == "one_at_a_time":
            outcomes = []
            for trace in traces:
                t0 = time.perf_counter()
                outcome = forge(trace, lib, counting, config=config)
                if outcome.status == "admitted":
                    per_admission.append(time.perf_counter() - t0)
                outcomes.append(outcome)
        else:
            outcomes = []
            for i in range(0, len(traces), batch):
                t0 = time.perf_counter()
                part = forge_batch(traces[i : i + batch], lib, counting, config=config)
                admitted = sum(o.status == "admitted" for o in part)
                per_admission += [(time.perf_counter() - t0) / max(1, admitted)] * admitted
                outcomes += part
        seconds = time.perf_counter() - start
    for o in outcomes:
        statuses[o.status] = statuses.get(o.status, 0) + 1
    n_candidates = sum(o.n_candidates for o in outcomes)
    return {
        "seconds": round(seconds, 2),
        "candidates": n_candidates,
        "candidates_per_min": round(n_candidates / seconds * 60, 1),
        "median_s_per_admission": round(statistics.median(per_admission), 3)
        if per_admission
        else None,
        "sandbox_runs": counting.runs,
        "outcomes": statuses,
        "first_reason": outcomes[0].reason if outcomes else "",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=24, help="traces (one candidate each)")
    parser.add_argument("--batch", type=int, default=12, help="traces per forge_batch call")
    args = parser.parse_args()
    image = ensure_image()
    sandbox = get_sandbox(SandboxConfig(image=image, pool_size=2))
    config = ForgeConfig()
    traces = [make_trace(k) for k in range(args.n)]
    try:
        forge(
            make_trace(999),
            Library.open(Path(tempfile.mkdtemp()), MemoryConfig(embedder="hash"), HashEmbedder()),
            sandbox,
        )  # warm-up
        single = measure("one_at_a_time", traces, 1, sandbox, config)
        batched = measure("batched", traces, args.batch, sandbox, config)
    finally:
        sandbox.close()
    print(
        json.dumps(
            {
                "bench": "forge",
                "cores": os.cpu_count(),
                "n_traces": args.n,
                "batch_size": args.batch,
                "one_at_a_time": single,
                "batched": batched,
                "speedup_batched": round(
                    batched["candidates_per_min"] / max(single["candidates_per_min"], 1e-9), 2
                ),
                "target_candidates_per_min": 30,
                "meets_target": batched["candidates_per_min"] >= 30,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
