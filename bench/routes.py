"""Which independent route confirms the code route's answers best; prints JSON.

Without labels an answer counts as solved only when an independent route reaches it
too (agent/routes.py). A good route agrees with the code when the code is right and
rarely when the code is wrong: its errors correlate little with the code's. For each
BBH family of bench/data (tasks 0..`--per-family`-1), with the real model:

- the code route: the act step's prompt and grammar (a function of the task's text,
  run in the sandbox on the task), as the graph asks it for a new kind of task;
- each independent route (`answer`, `reasoned`, `program`), asked the same task.

Per route: its own accuracy; how often it agrees with the code; the precision of an
agreement (share of agreed answers that are right: what `solved` means without labels);
its recall (share of right code answers it confirms); how often it agrees with a WRONG
code answer (the false confirmations that would let a wrong tool in); the correlation
(phi) of its errors with the code's; seconds per call. The same per family.

    nohup .venv/bin/python bench/routes.py > routes.json 2> routes.log &
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace
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


def code_answer(model: Any, sandbox: Any, task: str) -> tuple[Any, float]:
    """The act step's answer to a new task (no tools, no plan), and its seconds."""
    from agent.config import AgentConfig
    from agent.models import invoke_step
    from agent.nodes.act import first_messages
    from agent.nodes.common import to_messages
    from agent.nodes.parse import ACT_NEW_GRAMMAR, MAX_TOKENS, FormatError, parse_code

    state: Any = {"task": {"id": "t", "task": task}, "offered_tools": [], "attempt": 1}
    run: Any = SimpleNamespace(agent=AgentConfig())
    started = time.perf_counter()
    reply = invoke_step(
        model,
        "act",
        to_messages(first_messages(state, run)),
        grammar=ACT_NEW_GRAMMAR,
        max_tokens=MAX_TOKENS["act"],
    )
    seconds = time.perf_counter() - started
    try:
        code = parse_code(str(reply.content))
    except FormatError:
        return None, seconds
    res = sandbox.run(code, inputs={"TASK": task}, timeout_s=10)
    return (res.answer if res.ok and res.has_answer else None), seconds


def route_answer(model: Any, sandbox: Any, route: str, task: str) -> tuple[Any, float]:
    from agent.models import invoke_step
    from agent.nodes.common import to_messages
    from agent.nodes.parse import MAX_TOKENS
    from agent.routes import CHECK_STEP, ask_route

    def ask(messages: list[dict[str, str]], grammar: str) -> str:
        reply = invoke_step(
            model,
            CHECK_STEP,
            to_messages(messages),
            grammar=grammar,
            max_tokens=MAX_TOKENS["act"] if route == "program" else MAX_TOKENS[CHECK_STEP],
        )
        return str(reply.content)

    started = time.perf_counter()
    got = ask_route(route, task, ask, sandbox, 10)
    return got.answer, time.perf_counter() - started


def phi(xs: list[bool], ys: list[bool]) -> float | None:
    n = len(xs)
    a = sum(x and y for x, y in zip(xs, ys, strict=True))
    b = sum(x and not y for x, y in zip(xs, ys, strict=True))
    c = sum(y and not x for x, y in zip(xs, ys, strict=True))
    d = n - a - b - c
    den = math.sqrt((a + b) * (c + d) * (a + c) * (b + d))
    return round((a * d - b * c) / den, 3) if den else None


def summary(rows: list[dict[str, Any]], route: str) -> dict[str, Any]:
    code_right = [r["code_correct"] for r in rows]
    mine_right = [r["routes"][route]["correct"] for r in rows]
    agree = [r["routes"][route]["agrees"] for r in rows]
    agreed_right = [c for c, a in zip(code_right, agree, strict=True) if a]
    n_wrong = sum(not c for c in code_right)
    false_agree = sum(a and not c for c, a in zip(code_right, agree, strict=True))
    return {
        "accuracy": round(sum(mine_right) / len(rows), 3) if rows else None,
        "agreement_rate": round(sum(agree) / len(rows), 3) if rows else None,
        "agreement_precision": round(sum(agreed_right) / len(agreed_right), 3)
        if agreed_right
        else None,
        "recall_of_right_code": round(
            sum(a for c, a in zip(code_right, agree, strict=True) if c) / sum(code_right), 3
        )
        if any(code_right)
        else None,
        "false_confirmations": f"{false_agree} of {n_wrong} wrong code answers",
        "error_correlation_phi": phi([not c for c in code_right], [not m for m in mine_right]),
        "seconds_per_call": round(sum(r["routes"][route]["seconds"] for r in rows) / len(rows), 2)
        if rows
        else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="local")
    parser.add_argument("--per-family", type=int, default=6)
    parser.add_argument("--families", nargs="+", default=list(FAMILIES))
    parser.add_argument("--routes", nargs="+", default=["answer", "reasoned", "program"])
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from agent.checkers import normalize
    from agent.config import load_settings
    from agent.deps import open_model
    from agent.routes import agree
    from agent.task import Task
    from sandbox import get_sandbox
    from sandbox.config import SandboxConfig
    from sandbox.image import ensure_image

    settings = load_settings(model=args.model)
    model, settings = open_model(settings)
    sandbox = get_sandbox(SandboxConfig(image=ensure_image(), pool_size=1))
    rows: list[dict[str, Any]] = []
    try:
        for family in args.families:
            examples = json.loads((DATA / f"{family}.json").read_text())["examples"]
            for i, ex in enumerate(examples[: args.per_family]):
                task = Task(id=f"{family}-{i:03d}", task=ex["input"], expected=ex["target"])
                answer, seconds = code_answer(model, sandbox, task.task)
                row: dict[str, Any] = {
                    "id": task.id,
                    "family": family,
                    "code_answer": answer,
                    "code_correct": answer is not None
                    and normalize(answer) == normalize(ex["target"]),
                    "code_seconds": round(seconds, 1),
                    "routes": {},
                }
                for route in args.routes:
                    got, secs = route_answer(model, sandbox, route, task.task)
                    row["routes"][route] = {
                        "answer": got,
                        "correct": got is not None and normalize(got) == normalize(ex["target"]),
                        "agrees": answer is not None and agree(task, answer, got),
                        "seconds": round(secs, 1),
                    }
                rows.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
    finally:
        sandbox.close()
    out: dict[str, Any] = {
        "model": args.model,
        "n_tasks": len(rows),
        "code_accuracy": round(sum(r["code_correct"] for r in rows) / len(rows), 3),
        "routes": {route: summary(rows, route) for route in args.routes},
        "by_family": {
            family: {
                "code_accuracy": round(
                    sum(r["code_correct"] for r in rows if r["family"] == family)
                    / max(1, sum(r["family"] == family for r in rows)),
                    3,
                ),
                **{
                    route: summary([r for r in rows if r["family"] == family], route)
                    for route in args.routes
                },
            }
            for family in args.families
        },
        "rows": rows,
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
