"""How often the critic (the verify step with `--feedback none`) is right; prints JSON.

For each BBH family of bench/data, tasks 1..`--per-family`: the critic judges the
label (a right answer) and a near miss (two words swapped, a boolean flipped, a number
off by one, a bracket dropped), with the production prompt (agent/prompts/verify.md)
and grammar, in two orders of the reply:

- `reason_first` (production): `REASON: ...` then `VERDICT: ...`: the model works the
  answer out before it judges;
- `verdict_first`: the same prompt, `VERDICT:` then `REASON:` (the format lines swapped);
- `previous`: the prompt and grammar before (verdict first; "judge whether the answer
  correctly and completely solves the task", no asking for the right answer).

Reported per order: right answers accepted, wrong answers caught, accuracy, seconds
per call. About 4 minutes per order with the 1.5B model on 2 cores.

    .venv/bin/python bench/critic.py
"""

from __future__ import annotations

import argparse
import json
import os
import sys
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


def near_miss(family: str, target: str) -> str:
    """A wrong answer of the right form, close to the label."""
    if family == "word_sorting":
        words = target.split()
        words[0], words[1] = words[1], words[0]
        return " ".join(words)
    if family == "boolean_expressions":
        return "False" if target == "True" else "True"
    if family in ("multistep_arithmetic_two", "object_counting"):
        return str(int(target) + 1)
    return target.rsplit(" ", 1)[0] if " " in target else target + " )"


def verdict_first(system: str, grammar: str) -> tuple[str, str]:
    """The production prompt and grammar with the two reply lines in the other order."""
    swapped = system.replace(
        "REASON: <one line: the right answer, and whether the proposed one matches it>\n"
        "VERDICT: correct|incorrect",
        "VERDICT: correct|incorrect\nREASON: <one line: why>",
    )
    assert swapped != system, "the verify prompt changed: update bench/critic.py"
    line = r"[^\n]"
    return swapped, (
        f'root ::= "VERDICT: " ("correct" | "incorrect") "\\nREASON: " {line}{{1,240}}\n'
    )


PREVIOUS_SYSTEM = """You are the critic of a Python-writing agent. You read a task, the code the agent ran
and its result, and you judge whether the answer correctly and completely solves the task.

Reply in exactly this format, and nothing else:

VERDICT: correct
REASON: <one line: why>

or

VERDICT: incorrect
REASON: <one line: what is wrong and how to fix it>"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="local")
    parser.add_argument("--per-family", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from agent import prompts
    from agent.config import load_settings
    from agent.models import get_model, invoke_step
    from agent.nodes.parse import MAX_TOKENS, VERIFY_GRAMMAR, FormatError, parse_verdict

    model = get_model(args.model, local=load_settings().local)
    system = prompts.render("verify", "system")
    orders = {
        "reason_first": (system, VERIFY_GRAMMAR),
        "verdict_first": verdict_first(system, VERIFY_GRAMMAR),
        "previous": (PREVIOUS_SYSTEM, verdict_first(system, VERIFY_GRAMMAR)[1]),
    }
    out: dict[str, Any] = {"model": args.model, "orders": {}}
    for order, (system_text, grammar) in orders.items():
        counts = {"right_accepted": 0, "right": 0, "wrong_caught": 0, "wrong": 0, "unparsed": 0}
        seconds = 0.0
        for family in FAMILIES:
            examples = json.loads((DATA / f"{family}.json").read_text())["examples"]
            for example in examples[1 : 1 + args.per_family]:
                target = example["target"]
                for right, answer in ((True, target), (False, near_miss(family, target))):
                    user = prompts.render(
                        "verify",
                        "user",
                        task=example["input"],
                        code="answer = solve(TASK)",
                        observation=f"answer = {answer!r}",
                        answer=answer,
                    )
                    started = time.perf_counter()
                    reply = invoke_step(
                        model,
                        "verify",
                        [("system", system_text), ("human", user)],
                        grammar=grammar,
                        max_tokens=MAX_TOKENS["verify"],
                    )
                    seconds += time.perf_counter() - started
                    try:
                        said_correct = parse_verdict(str(reply.content))[0]
                    except FormatError:
                        counts["unparsed"] += 1
                        said_correct = False
                    if right:
                        counts["right"] += 1
                        counts["right_accepted"] += said_correct
                    else:
                        counts["wrong"] += 1
                        counts["wrong_caught"] += not said_correct
        n = counts["right"] + counts["wrong"]
        out["orders"][order] = {
            **counts,
            "accuracy": round((counts["right_accepted"] + counts["wrong_caught"]) / n, 3),
            "seconds_per_call": round(seconds / n, 2),
        }
        print(json.dumps(out, indent=2), file=sys.stderr)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
