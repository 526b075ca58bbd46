"""The learning curve with the real local model; prints JSON. Not for CI: hours.

The five BBH families of bench/data (8 tasks each by default: 40 tasks, shuffled with a
fixed seed), each run from an empty home with the local model (default: the 1.5B), with
learning and with `--no-learn`, in both feedback modes (`labels`, `none`). Per run:

- solve rate (scored against the labels in both modes), on the whole stream and on its
  second half;
- model calls, tokens and seconds per task and per solved task;
- per family: the first task's calls and seconds against the later ones' means, and
  the same for all first occurrences against all later ones;
- tools created (and whether any two do the same job), reuse rate, fast-path tasks and
  the model calls they made, format errors (replies that did not parse);
- each admitted tool run on held-out examples of its family (the next 20 of the data
  file, never seen by the stream): how often it is right. With `--feedback none` this
  is the risk of label-free learning: tools that are wrong and trusted
  (`wrong_but_trusted`: right on < 80% of its held-out tasks, yet trusted);
- the held-out tasks solved by the final library alone, with no model call allowed
  (`zero_call_held_out`): per family, how many a trusted tool answered and how many of
  those were right (the precision of zero-call answers);
- what backs the answers (`evidence`: share called solved / unverified, precision of
  solved, zero-call answers, reuse precision, audit calls per task) and the library's
  health (library precision, utilisation, redundancy, regression rate).

    nohup .venv/bin/python bench/real_stream.py > real_stream.json 2> real_stream.log &
    .venv/bin/python bench/real_stream.py --per-family 2 --families word_sorting \\
        boolean_expressions --modes labels --skip-no-learn
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

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
SEED = 7
HELD_OUT = 20


def stream(families: list[str], per_family: int) -> list[dict[str, Any]]:
    tasks = []
    for family in families:
        examples = json.loads((DATA / f"{family}.json").read_text())["examples"]
        for i, ex in enumerate(examples[:per_family]):
            tasks.append(
                {
                    "id": f"{family}-{i:03d}",
                    "task": ex["input"],
                    "expected": ex["target"],
                    "tags": [family],
                }
            )
    random.Random(SEED).shuffle(tasks)
    return tasks


def held_out(family: str, per_family: int) -> list[dict[str, Any]]:
    examples = json.loads((DATA / f"{family}.json").read_text())["examples"]
    return examples[per_family : per_family + HELD_OUT]


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 2) if values else None


def one_run(
    tasks: list[dict[str, Any]],
    model: str,
    *,
    learn: bool,
    feedback: str,
    batch: int,
    per_family: int,
    keep: Path | None = None,
    overrides: list[str] | None = None,
) -> dict[str, Any]:
    from agent.config import load_settings
    from agent.stream import RunHooks, RunOptions, start_run
    from agent.task import Task
    from memory import Library

    with tempfile.TemporaryDirectory(prefix="evoagent-real-") as tmp:
        home = str(keep / f"{feedback}-{'learn' if learn else 'no-learn'}") if keep else tmp
        settings = load_settings(home=home, model=model, overrides=list(overrides or []))
        options = RunOptions(workers=1, batch=batch, learn=learn, feedback=feedback)
        started = time.perf_counter()

        def progress(p: Any) -> None:
            if p.phase == "task" and p.last:
                r = p.last
                print(
                    f"  [{feedback}{'' if learn else ' no-learn'}] {p.n_done}/{p.n_tasks} "
                    f"{r['id']}: {r['status']} correct={r['correct']} calls={r['n_calls']} "
                    f"{r['seconds']:.0f}s tools={r['tools_used']}",
                    file=sys.stderr,
                    flush=True,
                )

        outcome = start_run(
            [Task.from_dict(t) for t in tasks],
            settings,
            options,
            meta={"stream": "real"},
            hooks=RunHooks(on_progress=progress),
        )
        wall = time.perf_counter() - started
        rows = outcome.results
        with Library.open(home, settings.memory, own_index=False) as lib:
            episodes = {e: lib.get_episode(e) for e in (r.get("episode_id") for r in rows) if e}
            tools = lib.list_tools(status=None)
            accuracy = _tool_accuracy(tools, per_family) if learn else {}
            stored = _stored_tests(lib.list_tools("active"), settings)
            health = lib.health()
        zero_call = (
            _zero_call_held_out(home, model, sorted({t["tags"][0] for t in tasks}), per_family)
            if learn
            else {}
        )
    figures = _figures(rows, episodes, tools, accuracy, outcome.summary, wall)
    figures["stored_tests"] = stored
    figures["evidence"] = outcome.summary.get("evidence")
    figures["library_health"] = health
    figures["zero_call_held_out"] = zero_call
    figures["wrong_but_trusted"] = sorted(
        name
        for name, acc in accuracy.items()
        if acc.get("held_out_accuracy") is not None
        and acc["held_out_accuracy"] < 0.8
        and acc.get("trust") in ("trusted", "pinned")
    )
    per_family: dict[str, int] = {}
    for acc in accuracy.values():
        if acc.get("status") == "active" and acc.get("family"):
            per_family[acc["family"]] = per_family.get(acc["family"], 0) + 1
    figures["active_tools_per_family"] = per_family
    return figures


def _zero_call_held_out(
    home: str, model: str, families: list[str], per_family: int
) -> dict[str, Any]:
    """The held-out tasks of each family against the final library, frozen, with no model
    call allowed (a time budget that ends a task at its first call): what trusted tools
    answer alone, and how often they are right."""
    from agent.config import load_settings
    from agent.stream import RunOptions, start_run
    from agent.task import Task

    tasks = [
        Task(id=f"{family}-held-{i:03d}", task=ex["input"], expected=ex["target"], tags=[family])
        for family in families
        for i, ex in enumerate(held_out(family, per_family))
    ]
    settings = load_settings(
        home=home, model=model, overrides=["agent.max_seconds=0.05", "agent.max_attempts=1"]
    )
    options = RunOptions(workers=1, batch=50, learn=False, feedback="none")
    outcome = start_run(tasks, settings, options, run_id="held-out", meta={"stream": "held-out"})
    out: dict[str, Any] = {}
    for family in families:
        rows = [r for r in outcome.results if r["id"].startswith(f"{family}-held-")]
        zero = [
            r for r in rows if r["status"] == "solved" and r.get("answer_tool") and not r["n_calls"]
        ]
        right = sum(bool(r["correct"]) for r in zero)
        out[family] = {
            "n": len(rows),
            "zero_call_answers": len(zero),
            "right": right,
            "precision": round(right / len(zero), 3) if zero else None,
        }
    n = sum(v["zero_call_answers"] for v in out.values())
    right = sum(v["right"] for v in out.values())
    out["all"] = {
        "zero_call_answers": n,
        "right": right,
        "precision": round(right / n, 3) if n else None,
    }
    return out


def _stored_tests(tools: list[Any], settings: Any) -> dict[str, Any]:
    """Every active tool's stored tests, re-run in the sandbox after the stream."""
    from sandbox import get_sandbox
    from toolforge.retest import test_stored_tools

    if not tools:
        return {"n_tools": 0, "all_green": None, "failing": []}
    sandbox = get_sandbox(settings.sandbox)
    try:
        reports = test_stored_tools(tools, sandbox, settings.forge)
    finally:
        sandbox.close()
    failing = [r.tool for r in reports if not r.passed]
    return {"n_tools": len(reports), "all_green": not failing, "failing": failing}


def _tool_accuracy(tools: list[Any], per_family: int) -> dict[str, Any]:
    """Each admitted tool on held-out examples of the family it was made from."""
    from agent.checkers import normalize
    from sandbox import get_sandbox
    from sandbox.config import SandboxConfig

    out: dict[str, Any] = {}
    sandbox = get_sandbox(SandboxConfig(pool_size=1))
    try:
        for tool in tools:
            family = next(
                (
                    f
                    for f in FAMILIES
                    for p in tool.provenance
                    if p.task_id and p.task_id.startswith(f)
                ),
                None,
            )
            if family is None or "(task: str)" not in tool.signature.replace(tool.name, ""):
                out[tool.name] = {"family": family, "note": "not a tool of the task's text"}
                continue
            right = 0
            examples = held_out(family, per_family)
            for ex in examples:
                res = sandbox.run(
                    f"from tools import {tool.name}\nanswer = {tool.name}(TASK)",
                    tools={tool.name: tool.source},
                    inputs={"TASK": ex["input"]},
                    timeout_s=10,
                )
                right += bool(
                    res.ok and res.has_answer and normalize(res.answer) == normalize(ex["target"])
                )
            out[tool.name] = {
                "family": family,
                "status": tool.status,
                "trust": tool.trust,
                "evidence": f"{tool.n_support}/{tool.n_against}",
                "held_out_accuracy": round(right / len(examples), 3),
                "n_held_out": len(examples),
            }
    finally:
        sandbox.close()
    return out


def _figures(
    rows: list[dict[str, Any]],
    episodes: dict[str, Any],
    tools: list[Any],
    accuracy: dict[str, Any],
    summary: dict[str, Any],
    wall: float,
) -> dict[str, Any]:
    from agent.stream.metrics import succeeded

    n = len(rows)
    half = rows[n // 2 :]
    firsts, laters = [], []
    seen: set[str] = set()
    for r in rows:
        (laters if r["family"] in seen else firsts).append(r)
        seen.add(r["family"])
    fast_tasks, fast_calls, format_errors, repeats = 0, 0, 0, 0
    for r in rows:
        ep = episodes.get(r.get("episode_id") or "")
        history = ep.history if ep else []
        if any(h.get("kind") == "plan" and h.get("fast") for h in history):
            fast_tasks += 1
            fast_calls += int(r["n_calls"])
        format_errors += sum(
            1
            for h in history
            if str(h.get("error") or "").startswith("the reply could not be used")
        )
        repeats += sum(
            1 for h in history if str(h.get("error") or "").startswith("the code repeats")
        )

    def block(items: list[dict[str, Any]]) -> dict[str, Any]:
        solved = [r for r in items if succeeded(r)]
        return {
            "n": len(items),
            "solve_rate": round(len(solved) / len(items), 3) if items else None,
            "calls_per_task": _mean([r["n_calls"] for r in items]),
            "tokens_per_task": _mean([r["tokens_in"] + r["tokens_out"] for r in items]),
            "seconds_per_task": _mean([r["seconds"] for r in items]),
            "seconds_per_solved_task": _mean([r["seconds"] for r in solved]),
            "calls_per_solved_task": _mean([r["n_calls"] for r in solved]),
        }

    by_family: dict[str, Any] = {}
    for family in sorted({r["family"] for r in rows}):
        items = [r for r in rows if r["family"] == family]
        by_family[family] = {"first": block(items[:1]), "later": block(items[1:])}
    # Later over first, per family (seconds per solved task): the pooled ratio above mixes
    # families, so one family the model solves late and slowly (object counting) outweighs
    # the families whose tool answers in a fraction of a second.
    by_family_ratio: dict[str, float | None] = {}
    for family, parts in by_family.items():
        first_s = parts["first"]["seconds_per_solved_task"]
        later_s = parts["later"]["seconds_per_solved_task"]
        by_family_ratio[family] = round(later_s / first_s, 3) if first_s and later_s else None
    reused = [r for r in rows if r["tools_used"] and succeeded(r)]
    return {
        "all": block(rows),
        "second_half": block(half),
        "first_occurrences": block(firsts),
        "later_occurrences": block(laters),
        "later_over_first_seconds_per_solved": (
            round(
                block(laters)["seconds_per_solved_task"] / block(firsts)["seconds_per_solved_task"],
                3,
            )
            if block(laters)["seconds_per_solved_task"] and block(firsts)["seconds_per_solved_task"]
            else None
        ),
        "later_over_first_seconds_per_solved_by_family": by_family_ratio,
        "families": by_family,
        "tools": [
            {
                "name": t.name,
                "status": t.status,
                "signature": t.signature,
                "uses": t.total_uses,
                "docstring": t.docstring,
            }
            for t in tools
        ],
        "n_tools": len([t for t in tools if t.status == "active"]),
        "tool_accuracy_held_out": accuracy,
        "reuse_rate": round(len(reused) / n, 3) if n else None,
        "calls_per_task_solved_with_a_tool": _mean([r["n_calls"] for r in reused]),
        "fast_path_tasks": fast_tasks,
        "fast_path_model_calls": fast_calls,
        "format_errors": format_errors,
        "repeated_code": repeats,
        "forge_calls": summary.get("forge_calls"),
        "repairs": summary.get("repairs"),
        "wall_s": round(wall, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="local")
    parser.add_argument("--per-family", type=int, default=8)
    parser.add_argument("--families", nargs="+", default=list(FAMILIES))
    parser.add_argument(
        "--modes", nargs="+", default=["labels", "none"], choices=["labels", "none"]
    )
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--skip-no-learn", action="store_true")
    parser.add_argument("--keep", type=Path, help="keep each run's home under this folder")
    parser.add_argument(
        "--second-half-only",
        action="store_true",
        help="run only the stream's second half (with --no-learn runs these rows equal "
        "the full run's: a frozen library carries nothing between tasks); the `all` block "
        "is then that half",
    )
    parser.add_argument(
        "--skip-learn", action="store_true", help="only the --no-learn run(s) of each mode"
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a setting for every run, as `-c` takes it (e.g. agent.explore=never to "
        "measure without exploration); repeatable",
    )
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    from sandbox.image import ensure_image

    os.environ["EVOAGENT_SANDBOX__IMAGE"] = ensure_image()
    tasks = stream(args.families, args.per_family)
    if args.second_half_only:
        tasks = tasks[len(tasks) // 2 :]
    out: dict[str, Any] = {
        "model": args.model,
        "n_tasks": len(tasks),
        "part": "second half" if args.second_half_only else "whole stream",
        "batch": args.batch,
        "settings": args.overrides,
        "order": [t["id"] for t in tasks],
        "runs": {},
    }
    for feedback in args.modes:
        kinds = [k for k in (True, False) if not (k and args.skip_learn)]
        for learn in [k for k in kinds if k or not args.skip_no_learn]:
            name = f"{feedback}/{'learn' if learn else 'no-learn'}"
            out["runs"][name] = one_run(
                tasks,
                args.model,
                learn=learn,
                feedback=feedback,
                batch=args.batch,
                per_family=args.per_family,
                keep=args.keep,
                overrides=args.overrides,
            )
            print(json.dumps(out, indent=2), file=sys.stderr, flush=True)
    for feedback in args.modes:
        learning = out["runs"].get(f"{feedback}/learn")
        frozen = out["runs"].get(f"{feedback}/no-learn")
        if learning and frozen:
            a, b = learning["second_half"]["solve_rate"], frozen["second_half"]["solve_rate"]
            out[f"{feedback}: second-half solve rate, learn / no-learn"] = (
                round(a / b, 3) if a is not None and b else None
            )
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
