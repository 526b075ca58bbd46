"""Benchmark of the local models (llama.cpp in-process); prints JSON.

Per model (qwen2.5-coder-1.5b, qwen2.5-coder-0.5b):

1. The engine: load time; prompt tokens/s (a ~600-token prompt, nothing cached);
   generated tokens/s (96 free tokens); the physical floor of generation (each token
   reads every weight once: memory bandwidth / file size, bandwidth measured here with
   a 1 GB numpy copy) and the measured speed's ratio to it.
2. Sampling: k = 1, 2, 4 replies to one prompt decoded together (exploration's call),
   seconds against one plain call; `--tune`: prompt and generation speed per engine
   setting (threads, micro-batch, flash attention, q8_0 KV cache) and of a Q4_0 build.
3. The graph: five tasks (the first of each BBH family of bench/data), each solved with
   `--feedback none --no-learn` (plan, act, the critic), in three set-ups:
   `grammars` (every fixed-format step decoded under its grammar, prompt-state cache on),
   `free` (no grammar, cache on) and `no_cache` (grammars, cache off: only the previous
   prompt's prefix is reused, as llama.cpp does on its own). For each: seconds per step,
   format errors per 100 calls, prompt tokens sent and actually evaluated per call,
   solved tasks.
   `server_grammars` / `server_free`: the same five tasks through `python -m llama_cpp.server`
   on 127.0.0.1 (the OpenAI-compatible path, `openai:` with `base_url`), each step's grammar
   sent in the request's `grammar` field or not (`server_grammar = "send"` / `"off"`); needs
   `pip install -e '.[server]'` (the engine's own server extra).

Real Docker sandbox; a fresh home per set-up. About 25 minutes for both models.

    .venv/bin/python bench/model.py
    .venv/bin/python bench/model.py --models qwen2.5-coder-0.5b --setups grammars free
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from uuid import UUID

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT / "bench" / "data" / "bbh"
FAMILIES = (
    "boolean_expressions",
    "dyck_languages",
    "multistep_arithmetic_two",
    "object_counting",
    "word_sorting",
)
SETUPS = {
    "grammars": {"grammars": True, "prompt_cache_mb": 1024},
    "free": {"grammars": False, "prompt_cache_mb": 1024},
    "no_cache": {"grammars": True, "prompt_cache_mb": 0},
    "server_grammars": {"server_grammar": "send"},
    "server_free": {"server_grammar": "off"},
}


class LlamaServer:
    """`python -m llama_cpp.server` for one GGUF on 127.0.0.1, up until the block ends."""

    def __init__(self, path: Path, threads: int, n_ctx: int) -> None:
        import socket

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.cmd = [
            sys.executable, "-m", "llama_cpp.server", "--model", str(path),
            "--host", "127.0.0.1", "--port", str(self.port), "--n_threads", str(threads),
            "--n_ctx", str(n_ctx), "--verbose", "false",
        ]  # fmt: skip
        self.base_url = f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> LlamaServer:
        import subprocess
        import urllib.request

        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(self.cmd, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.log.seek(0)
                raise SystemExit("llama_cpp.server exited: " + self.log.read()[-2000:].decode())
            try:
                with urllib.request.urlopen(self.base_url + "/models", timeout=2):
                    return self
            except OSError:
                time.sleep(0.5)
        self.__exit__()
        raise SystemExit("llama_cpp.server did not answer within 120 s")

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except Exception:
            self.proc.kill()
        self.log.close()


def bandwidth_gb_s() -> float:
    """Memory bandwidth: bytes read + written by a 1 GB numpy copy, best of three."""
    import numpy as np

    src = np.ones(1 << 27, dtype=np.float64)  # 1 GiB
    dst = np.empty_like(src)
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - started)
    return round(2 * src.nbytes / best / 1e9, 2)


STORY = "Write a long story about a robot who learns to code."


def speeds(llm: Any, path: Path, bandwidth: float) -> dict[str, Any]:
    """Prompt and generation tokens/s of a loaded `llama_cpp.Llama`, and generation's
    share of the memory-bandwidth floor (each token reads every weight once)."""
    import llama_cpp

    ctx = llm._ctx.ctx
    words = " ".join(f"word{i}" for i in range(300))
    llm.reset()
    llama_cpp.llama_perf_context_reset(ctx)
    llm.create_chat_completion(
        messages=[{"role": "user", "content": f"Sort these words alphabetically: {words}"}],
        max_tokens=1,
    )
    perf = llama_cpp.llama_perf_context(ctx)
    prompt_tps = perf.n_p_eval / (perf.t_p_eval_ms / 1000)
    llm.reset()
    llama_cpp.llama_perf_context_reset(ctx)
    llm.create_chat_completion(messages=[{"role": "user", "content": STORY}], max_tokens=96)
    perf = llama_cpp.llama_perf_context(ctx)
    gen_tps = perf.n_eval / (perf.t_eval_ms / 1000)
    size = path.stat().st_size
    floor = bandwidth * 1e9 / size
    return {
        "file_mb": size >> 20,
        "prompt_tokens_per_s": round(prompt_tps, 1),
        "generated_tokens_per_s": round(gen_tps, 1),
        "bandwidth_floor_tokens_per_s": round(floor, 1),
        "generation_over_floor": round(gen_tps / floor, 3),
    }


def engine_figures(path: Path, bandwidth: float) -> dict[str, Any]:
    from agent.models.local import Engine

    engine = Engine(path, n_ctx=4096, n_threads=os.cpu_count() or 1, cache_mb=0)
    try:
        return {"load_s": round(engine.load_seconds, 2), **speeds(engine.llm, path, bandwidth)}
    finally:
        engine.close()


def sampling_figures(path: Path) -> dict[str, Any]:
    """k = 1, 2, 4 samples of one reply decoded together (agent/models/local_sampling.py):
    wall seconds per call, with a fresh prompt each time (nothing reused), against one
    plain call of the engine. `story`: 96 free tokens per sample (no sample stops early,
    so k=4 decodes 4x the tokens); `act`: the act step's grammar on a BBH task, as
    exploration samples it (samples end when their program does)."""
    from agent.models.local import Engine
    from agent.nodes.parse import ACT_NEW_GRAMMAR

    engine = Engine(path, n_ctx=4096, n_threads=os.cpu_count() or 1, cache_mb=0)
    task = json.loads((DATA / "word_sorting.json").read_text())["examples"][0]["input"]
    out: dict[str, Any] = {}
    try:
        for name, grammar, content, tokens in (
            ("story", None, STORY, 96),
            ("act", ACT_NEW_GRAMMAR, f"Write Python that sets `answer`.\nTask: {task}", 400),
        ):
            figures: dict[str, Any] = {}
            for run, k in enumerate((0, 1, 2, 4)):
                messages = [{"role": "user", "content": f"(run {run} of {name})\n{content}"}]
                started = time.perf_counter()
                if k == 0:  # the engine's plain single call, as an act step makes it
                    out_ = engine.complete(messages, grammar, tokens, None, 0.8)[0]
                    produced = [out_["choices"][0]["message"]["content"]]
                    label = "plain"
                else:
                    sampled = engine.complete_n(messages, k, grammar, tokens, 0.8)
                    produced = [s.text for s in sampled.samples]
                    label = f"k{k}"
                figures[label] = {
                    "seconds": round(time.perf_counter() - started, 2),
                    "distinct": len(set(produced)),
                }
            figures["k4_over_k1"] = round(figures["k4"]["seconds"] / figures["k1"]["seconds"], 2)
            figures["k4_over_plain"] = round(
                figures["k4"]["seconds"] / figures["plain"]["seconds"], 2
            )
            out[name] = figures
    finally:
        engine.close()
    return out


#: engine settings tried by --tune (on top of llama-cpp-python's defaults, n_ctx 4096)
TUNINGS: dict[str, dict[str, Any]] = {
    "now": {"n_threads": 2, "n_batch": 512},
    "threads_1": {"n_threads": 1, "n_batch": 512},
    "ubatch_128": {"n_threads": 2, "n_batch": 512, "n_ubatch": 128},
    "flash_attn": {"n_threads": 2, "n_batch": 512, "flash_attn": True},
    "kv_q8_0": {"n_threads": 2, "n_batch": 512, "flash_attn": True, "type_k": 8, "type_v": 8},
}


def requantized_q4_0(path: Path) -> Path:
    """A Q4_0 copy of the GGUF (llama.cpp repacks Q4_0 for AVX2 at load), made once."""
    import llama_cpp

    out = path.with_name(path.stem + ".Q4_0-requant.gguf")
    if not out.exists():
        params = llama_cpp.llama_model_quantize_default_params()
        params.ftype = llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_0
        params.allow_requantize = True
        params.nthread = os.cpu_count() or 1
        status = llama_cpp.llama_model_quantize(
            str(path).encode(), str(out).encode(), ctypes.byref(params)
        )
        if status != 0:
            raise SystemExit(f"llama_model_quantize failed ({status})")
    return out


def tune_figures(path: Path, bandwidth: float) -> dict[str, Any]:
    """Prompt and generation speed per engine setting of TUNINGS, and of a Q4_0 build."""
    import llama_cpp

    out: dict[str, Any] = {}
    runs = [(name, path, kwargs) for name, kwargs in TUNINGS.items()]
    runs.append(("q4_0", requantized_q4_0(path), TUNINGS["now"]))
    for name, file, kwargs in runs:
        llm = llama_cpp.Llama(model_path=str(file), n_ctx=4096, verbose=False, **kwargs)
        try:
            out[name] = speeds(llm, file, bandwidth)
        finally:
            llm.close()
        print(json.dumps({name: out[name]}), file=sys.stderr)
    return out


class Evaluated:
    """A callback: prompt tokens sent and evaluated per call (from the local model)."""

    def __init__(self) -> None:
        from langchain_core.callbacks import BaseCallbackHandler

        outer = self
        self.sent: list[int] = []
        self.evaluated: list[int] = []

        class Handler(BaseCallbackHandler):
            def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:
                message = response.generations[0][0].message
                meta = message.response_metadata or {}
                outer.sent.append(int((message.usage_metadata or {}).get("input_tokens", 0)))
                outer.evaluated.append(int(meta.get("prompt_tokens_evaluated", 0)))

        self.handler = Handler()


def graph_figures(name: str, setup: dict[str, Any]) -> dict[str, Any]:
    from agent.config import load_settings
    from agent.deps import AgentDeps
    from agent.models import get_model
    from agent.solve import solve_task
    from agent.task import Task

    tasks = []
    for family in FAMILIES:
        first = json.loads((DATA / f"{family}.json").read_text())["examples"][0]
        tasks.append(
            Task(id=f"{family}-0", task=first["input"], expected=first["target"], tags=[family])
        )
    server = setup.get("server_grammar")
    overrides = [] if server else [f"local.{k}={str(v).lower()}" for k, v in setup.items()]
    overrides += ["agent.learn=false", "agent.feedback=none", "agent.max_attempts=2"]
    steps: dict[str, dict[str, float]] = {}
    errors = {"plan": 0, "act": 0, "verify": 0}
    repeats = 0
    solved = 0
    evaluated = Evaluated()
    with contextlib.ExitStack() as stack:
        home = stack.enter_context(tempfile.TemporaryDirectory(prefix="evoagent-bench-model-"))
        settings = load_settings(home=home, overrides=overrides)
        if server:
            from agent.models import weights

            path = weights.resolve(f"local:{name}", weights.models_dir(settings.local.models_dir))
            running = stack.enter_context(
                LlamaServer(
                    path, settings.local.n_threads or os.cpu_count() or 2, settings.local.n_ctx
                )
            )
            model = get_model(
                "openai:local",
                base_url=running.base_url,
                server_grammar=server,
                max_retries=0,
                temperature=0,  # greedy, as the in-process engine decodes by default
            )
        else:
            model = get_model(f"local:{name}", local=settings.local)
        model = model.with_config(callbacks=[evaluated.handler])
        with AgentDeps.from_settings(settings, model=model) as deps:
            for task in tasks:

                def on_event(e: dict[str, Any]) -> None:
                    nonlocal repeats
                    if e.get("format_error") and e["event"] in errors:
                        errors[e["event"]] += 1
                    repeats += bool(e.get("repeated"))

                result = solve_task(task, deps, forge="off", on_event=on_event)
                solved += bool(result.correct)
                for step, figures in result.usage_by_step.items():
                    into = steps.setdefault(step, {"calls": 0, "seconds": 0.0})
                    into["calls"] += figures["n_calls"]
                    into["seconds"] += figures["seconds"]
    n_calls = sum(int(s["calls"]) for s in steps.values())
    return {
        "solved": f"{solved}/{len(tasks)}",
        "calls": n_calls,
        "seconds_per_step": {
            step: round(s["seconds"] / s["calls"], 2) for step, s in steps.items() if s["calls"]
        },
        "calls_per_step": {step: int(s["calls"]) for step, s in steps.items()},
        "format_errors": errors,
        "format_errors_per_100_calls": round(100 * sum(errors.values()) / max(1, n_calls), 1),
        # act replies that parsed but repeated an earlier try's code (not run again)
        "repeated_code": repeats,
        "prompt_tokens_sent_per_call": round(sum(evaluated.sent) / max(1, len(evaluated.sent)), 1),
        # the server does not say how much of a prompt it evaluated
        "prompt_tokens_evaluated_per_call": None
        if server
        else round(sum(evaluated.evaluated) / max(1, len(evaluated.evaluated)), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b"])
    parser.add_argument("--setups", nargs="+", default=list(SETUPS), choices=list(SETUPS))
    parser.add_argument("--skip-graph", action="store_true")
    parser.add_argument(
        "--tune", action="store_true", help="also try engine settings and a Q4_0 build"
    )
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    from agent.config import load_settings
    from agent.models import weights
    from sandbox.image import ensure_image

    os.environ["EVOAGENT_SANDBOX__IMAGE"] = ensure_image()
    directory = weights.models_dir(load_settings().local.models_dir)
    bandwidth = bandwidth_gb_s()
    out: dict[str, Any] = {
        "cores": os.cpu_count(),
        "memory_bandwidth_gb_s": bandwidth,
        "models": {},
    }
    for name in args.models:
        path = weights.resolve(f"local:{name}", directory)
        figures: dict[str, Any] = {"engine": engine_figures(path, bandwidth)}
        figures["sampling"] = sampling_figures(path)
        if args.tune:
            figures["tune"] = tune_figures(path, bandwidth)
        if not args.skip_graph:
            for setup in args.setups:
                figures[setup] = graph_figures(name, SETUPS[setup])
        out["models"][name] = figures
        print(json.dumps(out, indent=2), file=sys.stderr)  # progress: what is known so far
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
