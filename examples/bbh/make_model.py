"""Build the demo's scripted model `model.yaml` from the stream and `solutions/`.

A scripted model answers with verbatim replies (README "Models"), while a real model
copies the data it reads in the task into the code it writes. This script does that
copying ahead of time: for each task of the stream it reads the task's input out of the
task text (a regex per family, the way a model reads the question) and writes the two
code replies a model would give for it:

- no suitable tool offered: the family's general solution function from
  `solutions/<family>.py` (a real boolean parser, dyck completer, arithmetic parser,
  object counter, word sorter), then `answer = <function>(<the task's input>)`;
- the family's tool offered and chosen: `from tools import <tool>` and the same call.

Asked to answer a task directly (the independent route that confirms an answer without
labels, step `check`), it gives what the family's general method computes on that task,
worked out here when the file is written. It never reads the labels (`expected`): every
answer is computed by code. Before writing new code the model first writes the function with a few checks
on small cases of its own and looks at the output (one extra act step), as a model
developing new code does; with a tool from the library it calls it at once.

    python examples/bbh/make_model.py                      # stream.jsonl -> model.yaml
    python examples/bbh/make_model.py --latency 1 --out /tmp/slow.yaml
"""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Family:
    tool: str
    #: recognises the family from the task text (found after "Task:\n" in every prompt)
    phrase: str
    #: reads the function's arguments out of the task text
    read: str
    #: small cases the model checks its new function on (its own, not from the stream)
    checks: tuple[tuple[str, Any], ...]
    plan_new: str
    plan_tool: str


FAMILIES: dict[str, Family] = {
    "boolean_expressions": Family(
        tool="evaluate_boolean_expression",
        phrase=r"(?:not|True|False|\()[^\n]* is",
        read=r"(?P<expression>.*) is",
        checks=(
            ("( True and not False )", "True"),
            ("not ( True or False )", "False"),
            ("( False or True and False )", "False"),
            ("not not ( False or True )", "True"),
        ),
        plan_new=(
            "Write evaluate_boolean_expression(expression) with a small recursive-descent\n"
            "parser (not binds tighter than and, and tighter than or), check it on a few\n"
            "expressions, then evaluate the expression in the task (the text before 'is')."
        ),
        plan_tool="Call evaluate_boolean_expression on the expression before 'is'.",
    ),
    "dyck_languages": Family(
        tool="complete_dyck_sequence",
        phrase=r"Complete the rest of the sequence, making sure that the parentheses are closed properly\.",
        read=r".*Input: (?P<prefix>.*)",
        checks=(("[ { ( ) <", "> } ]"), ("( [ ] )", ""), ("< < [", "] > >")),
        plan_new=(
            "Write complete_dyck_sequence(prefix): push each opening bracket on a stack,\n"
            "pop on its closing one, and close what is left innermost first. Check it on a\n"
            "few sequences, then apply it to the sequence after 'Input:'."
        ),
        plan_tool="Call complete_dyck_sequence on the sequence after 'Input:'.",
    ),
    "multistep_arithmetic_two": Family(
        tool="evaluate_arithmetic",
        phrase=r"[-+*() 0-9]+ =",
        read=r"(?P<expression>.*) =",
        checks=(("((-1 + 2) * 3 - -4)", 7), ("2 + 3 * -4", -10), ("(-(2 - 5)) * (1 + 1)", 6)),
        plan_new=(
            "Write evaluate_arithmetic(expression), a small parser for +, -, * and\n"
            "parentheses with signed numbers (no eval), check it on a few expressions,\n"
            "then evaluate the expression before '='."
        ),
        plan_tool="Call evaluate_arithmetic on the expression before '='.",
    ),
    "object_counting": Family(
        tool="count_objects",
        phrase=r"I have [^\n]*\. How many [^\n]* do I have\?",
        read=r"I have (?P<items>.*)\. How many (?P<category>.*) do I have\?",
        checks=(
            (("a flute, two pianos, and a cat", "musical instruments"), 3),
            (("three heads of broccoli, a yam, and two apples", "vegetables"), 4),
            (("a bed, two mice, and a lamp", "animals"), 2),
        ),
        plan_new=(
            "Write count_objects(items, category): split the list, read each quantity\n"
            "(a/an, number words, digits), reduce the noun to its singular and count it when\n"
            "it belongs to the category. Check it on a few lists, then apply it to the task."
        ),
        plan_tool="Call count_objects on the list after 'I have' and the category asked for.",
    ),
    "word_sorting": Family(
        tool="sort_words",
        phrase=r"Sort the following words alphabetically: List:",
        read=r"Sort the following words alphabetically: List: (?P<words>.*)",
        checks=(
            ("pear apple fig", "apple fig pear"),
            ("b a", "a b"),
            ("kiwi Banana apple", "apple Banana kiwi"),
        ),
        plan_new=(
            "Write sort_words(words): split on spaces, sort by lower-case form, join with\n"
            "spaces. Check it on a few lists, then apply it to the words after 'List:'."
        ),
        plan_tool="Call sort_words on the words after 'List:'.",
    ),
}

OFFERED = r"Library tools offered:\n(?:(?!\nTips from past tasks:).)*?^- {tool}: "
CHOSEN = r"Library tools to use \(import each with[^\n]*\n(?:.*\n)*?- {tool}: "
OBSERVED = r"The code ran\. Result:"


def solution(family: str) -> str:
    return (HERE / "solutions" / f"{family}.py").read_text(encoding="utf-8").strip()


def call(family: str, task_text: str) -> str:
    """`tool(args...)` with the arguments read out of the task text."""
    spec = FAMILIES[family]
    match = re.fullmatch(spec.read, task_text.strip(), flags=re.S)
    if match is None:
        raise ValueError(f"cannot read a {family} task: {task_text[:80]!r}")
    args = ", ".join(repr(value) for value in match.groupdict().values())
    return f"{spec.tool}({args})"


def family_of(task_text: str) -> str | None:
    for name, spec in FAMILIES.items():
        if re.fullmatch(spec.phrase, task_text.strip().split("\n")[0]) or re.match(
            spec.phrase, task_text.strip()
        ):
            return name
    return None


def _checks_code(spec: Family) -> str:
    lines = ["checks = ["]
    for args, want in spec.checks:
        arg_text = ", ".join(repr(a) for a in args) if isinstance(args, tuple) else repr(args)
        lines.append(f"    ({spec.tool}({arg_text}), {want!r}),")
    lines.append("]")
    lines.append("for got, want in checks:")
    lines.append('    print("ok" if got == want else "MISMATCH", repr(got), repr(want))')
    return "\n".join(lines)


def _tests_code(spec: Family) -> str:
    parts = [f"from tools import {spec.tool}"]
    for i, (args, want) in enumerate(spec.checks, start=1):
        arg_text = ", ".join(repr(a) for a in args) if isinstance(args, tuple) else repr(args)
        parts.append(
            f"def test_{spec.tool}_{i}():\n"
            f"    from tools import {spec.tool}\n\n"
            f"    assert {spec.tool}({arg_text}) == {want!r}"
        )
    return "\n\n\n".join(parts)


def fenced(code: str) -> str:
    return f"```python\n{code}\n```\n"


def direct_answer(family: str, task_text: str) -> str:
    """What the model says when asked to answer the task directly (the check route): the
    family's general method worked through on this task's input, here on the host, when
    the model file is written (never the label)."""
    namespace: dict[str, Any] = {}
    exec(solution(family), namespace)  # our own solutions/ file
    value = eval(call(family, task_text), namespace)
    return str(value)


def task_rules(task_text: str) -> list[dict[str, Any]]:
    family = family_of(task_text)
    if family is None:
        return []
    spec = FAMILIES[family]
    here = r"(?ms)^Task:\n" + re.escape(task_text) + r"\n"
    the_call = call(family, task_text)
    return [
        {
            "step": "check",
            "when": here,
            "reply": f"ANSWER: {direct_answer(family, task_text)}\n",
        },
        {
            "step": "act",
            "when": here + r".*" + CHOSEN.format(tool=spec.tool),
            "reply": fenced(f"from tools import {spec.tool}\n\nanswer = {the_call}"),
        },
        {
            "step": "act",
            "when": here + r".*" + OBSERVED,
            "reply": fenced(f"{solution(family)}\n\n\nanswer = {the_call}"),
        },
    ]


def family_rules(family: str) -> list[dict[str, Any]]:
    spec = FAMILIES[family]
    task = r"^Task:\n" + spec.phrase
    return [
        {
            "step": "plan",
            "when": r"(?ms)\A(?=.*" + task + r")(?=.*" + OFFERED.format(tool=spec.tool) + r")",
            "reply": f"TOOLS: {spec.tool}\nPLAN: {spec.plan_tool}\n",
        },
        {"step": "plan", "when": r"(?m)" + task, "reply": f"TOOLS: none\nPLAN: {spec.plan_new}\n"},
        {
            # First act step of new code: the function and checks of its own, no answer yet.
            "step": "act",
            "when": r"(?m)" + task,
            "unless": OBSERVED,
            "reply": fenced(f"{solution(family)}\n\n\n{_checks_code(spec)}"),
        },
        {
            # toolforge asks to generalise a solution: the same function, with tests.
            "step": "distill",
            "when": r"(?m)^## The task\n" + spec.phrase,
            "reply": fenced(solution(family)) + fenced(_tests_code(spec)),
        },
    ]


COMMON: list[dict[str, Any]] = [
    # A tool that raised in use: these tools validate their input and say so already.
    {
        "step": "refine",
        "reply": "NO TOOL: the tool rejects malformed input with a clear ValueError already\n",
    },
    {
        "step": "reflect",
        "when": "The agent failed",
        "reply": "LESSON: read the input out of the task text exactly and compute the answer with a general function\n",
    },
    {"step": "reflect", "reply": "TIP: none\n"},
]


def build(tasks: list[dict[str, Any]], latency_s: float = 0.0) -> dict[str, Any]:
    rules: list[dict[str, Any]] = []
    seen: set[str] = set()
    for task in tasks:
        if task["task"] in seen:
            continue
        seen.add(task["task"])
        rules.extend(task_rules(task["task"]))
    for family in FAMILIES:
        rules.extend(family_rules(family))
    rules.extend(COMMON)
    return {"rules": rules, "default": "I don't know.", "latency_s": latency_s}


def read_tasks(path: Path) -> list[dict[str, Any]]:
    return [
        json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    ]


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else "'"
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def write(model: dict[str, Any], out: Path) -> None:
    header = (
        "# Generated by examples/bbh/make_model.py from the stream and examples/bbh/solutions/:\n"
        "# edit those and run the script again, not this file.\n"
    )
    out.write_text(
        header + yaml.dump(model, Dumper=_Dumper, sort_keys=False, width=1000), encoding="utf-8"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stream", type=Path, default=HERE / "stream.jsonl")
    parser.add_argument("--out", type=Path, default=HERE / "model.yaml")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per call (latency_s)")
    args = parser.parse_args()
    model = build(read_tasks(args.stream), args.latency)
    write(model, args.out)
    print(f"wrote {len(model['rules'])} rules to {args.out}")


if __name__ == "__main__":
    main()
