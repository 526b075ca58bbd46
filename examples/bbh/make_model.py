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

Asked for a program for one task (the independent route that confirms an answer
without labels, step `check`), it writes the family's general method applied to that
task's values. It never reads the labels (`expected`): every answer is computed by code,
in the sandbox. Before writing new code the model first writes the function with a few checks
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
    #: the family's general function (solutions/<family>.py); private inside the tool
    tool: str
    #: the library tool: a function of a task's whole text, as the act prompt asks
    task_tool: str
    #: lines of the task tool that read the general function's arguments out of `task`
    parse: str
    #: the call of the general function on what `parse` read
    inner_call: str
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
        task_tool="evaluate_boolean_task",
        parse='expression = task.strip().rsplit(" is", 1)[0]',
        inner_call="_evaluate_boolean_expression(expression)",
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
        task_tool="complete_dyck_task",
        parse='prefix = task.split("Input:", 1)[1].strip()',
        inner_call="_complete_dyck_sequence(prefix)",
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
        task_tool="evaluate_arithmetic_task",
        parse='expression = task.strip().rsplit(" =", 1)[0]',
        inner_call="_evaluate_arithmetic(expression)",
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
        task_tool="count_objects_in_task",
        parse=(
            'found = re.search(r"I have (.*)\\. How many (.*) do I have\\?", task)\n'
            "    if found is None:\n"
            '        raise ValueError("not a counting task: I have ... How many ... do I have?")\n'
            "    items, category = found.group(1), found.group(2)"
        ),
        inner_call="_count_objects(items, category)",
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
        task_tool="sort_word_list",
        parse='words = task.split("List:", 1)[1]',
        inner_call="_sort_words(words)",
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


def check_program(family: str, task_text: str) -> str:
    """The program a model writes for ONE task when asked to compute its answer directly
    (the check route): Python itself evaluates an arithmetic or a boolean expression, and
    sorts a list; bracket completion and counting need the family's method."""
    spec = FAMILIES[family]
    match = re.fullmatch(spec.read, task_text.strip(), flags=re.S)
    if match is None:
        raise ValueError(f"cannot read a {family} task: {task_text[:80]!r}")
    values = match.groupdict()
    if family in ("multistep_arithmetic_two", "boolean_expressions"):
        return f"answer = str({values['expression']})"
    if family == "word_sorting":
        return f"answer = ' '.join(sorted({values['words'].split()!r}))"
    return f"{solution(family)}\n\n\nanswer = str({call(family, task_text)})"


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


def fenced(code: str) -> str:
    return f"```python\n{code}\n```\n"


def task_module(family: str) -> str:
    """The family's task tool: the general function (private), and a function of the
    task's whole text that reads its arguments out of it and calls it."""
    spec = FAMILIES[family]
    helper = re.sub(rf"\b{spec.tool}\b", f"_{spec.tool}", solution(family))
    imports = "import re\n\n\n" if "re." in spec.parse else ""
    return (
        f"{imports}{helper}\n\n\n"
        f"def {spec.task_tool}(task: str) -> str:\n"
        f'    """{spec.plan_tool} (the task\'s whole text in, the answer out)."""\n'
        f"    {spec.parse}\n"
        f"    return str({spec.inner_call})"
    )


def task_rules(task_text: str) -> list[dict[str, Any]]:
    family = family_of(task_text)
    if family is None:
        return []
    here = r"(?ms)^Task:\n" + re.escape(task_text) + r"\n"
    return [
        {
            # The independent route (a program for this one task, with its values in it).
            "step": "check",
            "when": here,
            "reply": fenced(check_program(family, task_text)),
        },
    ]


def family_rules(family: str) -> list[dict[str, Any]]:
    spec = FAMILIES[family]
    task = r"^Task:\n" + spec.phrase
    return [
        {
            "step": "plan",
            "when": r"(?ms)\A(?=.*" + task + r")(?=.*" + OFFERED.format(tool=spec.task_tool) + r")",
            "reply": f"TOOLS: {spec.task_tool}\nPLAN: call {spec.task_tool} on the task\n",
        },
        {
            # The family's tool chosen: called on the task's text.
            "step": "act",
            "when": r"(?ms)" + task + r".*" + CHOSEN.format(tool=spec.task_tool),
            "reply": fenced(
                f"from tools import {spec.task_tool}\n\nanswer = {spec.task_tool}(TASK)"
            ),
        },
        {
            # After looking at its checks: the task tool, called on the task's text.
            "step": "act",
            "when": r"(?ms)" + task + r".*" + OBSERVED,
            "reply": fenced(f"{task_module(family)}\n\n\nanswer = {spec.task_tool}(TASK)"),
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
            # toolforge asks for one function of the task's text (its tests are the
            # tasks it is shown, with their confirmed answers): the same task tool.
            "step": "distill",
            "when": r"(?m)^- \"?" + spec.phrase,
            "reply": fenced(task_module(family)),
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
