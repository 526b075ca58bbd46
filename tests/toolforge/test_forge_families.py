"""Good tools for the five BIG-Bench Hard families of the demo pass every gate (the
perturbation check does not reject general tools), and a batch of two traces per family
adds exactly one tool per family. Real Docker sandbox."""

from __future__ import annotations

from typing import Any

import pytest

from memory import Library
from toolforge import Trace, forge_batch

pytestmark = pytest.mark.docker

FUNCS = {
    "boolean": '''
def evaluate_boolean_expression(expression: str) -> str:
    """Evaluate a Python-style boolean expression of True, False, not, and, or and
    parentheses (a trailing ' is' is ignored); return 'True' or 'False'."""
    tokens = expression.replace("(", " ( ").replace(")", " ) ").split()
    if tokens and tokens[-1] == "is":
        tokens = tokens[:-1]
    pos = 0
    def _or():
        nonlocal pos
        v = _and()
        while pos < len(tokens) and tokens[pos] == "or":
            pos += 1
            r = _and()
            v = v or r
        return v
    def _and():
        nonlocal pos
        v = _not()
        while pos < len(tokens) and tokens[pos] == "and":
            pos += 1
            r = _not()
            v = v and r
        return v
    def _not():
        nonlocal pos
        if tokens[pos] == "not":
            pos += 1
            return not _not()
        if tokens[pos] == "(":
            pos += 1
            v = _or()
            pos += 1
            return v
        v = tokens[pos] == "True"
        pos += 1
        return v
    return str(_or())
''',
    "dyck": '''
def close_brackets(task: str) -> str:
    """Return the closing brackets that complete the bracket sequence after 'Input:',
    space separated, innermost first."""
    pairs = {"(": ")", "[": "]", "{": "}", "<": ">"}
    stack = []
    for tok in task.rsplit("Input:", 1)[-1].split():
        if tok in pairs:
            stack.append(tok)
        elif stack and pairs[stack[-1]] == tok:
            stack.pop()
    return " ".join(pairs[t] for t in reversed(stack))
''',
    "arithmetic": '''
import re


def evaluate_arithmetic(expression: str) -> int:
    """Evaluate an integer expression with + - * and parentheses (a trailing '=' is ignored)."""
    tokens = re.findall(r"\\d+|[-+*()]", expression)
    pos = 0
    def _expr():
        nonlocal pos
        v = _term()
        while pos < len(tokens) and tokens[pos] in "+-":
            op = tokens[pos]; pos += 1
            r = _term()
            v = v + r if op == "+" else v - r
        return v
    def _term():
        nonlocal pos
        v = _factor()
        while pos < len(tokens) and tokens[pos] == "*":
            pos += 1
            v = v * _factor()
        return v
    def _factor():
        nonlocal pos
        tok = tokens[pos]; pos += 1
        if tok == "-":
            return -_factor()
        if tok == "(":
            v = _expr(); pos += 1
            return v
        return int(tok)
    return _expr()
''',
    "counting": '''
import re

_NUMBERS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5}


def count_listed_items(text: str) -> int:
    """Count the items listed in 'I have ...' sentences: 'a flute, two lamps' counts 3."""
    listed = text.split("?")[0]
    listed = listed.rsplit(". ", 1)[0] if ". " in listed else listed
    total = 0
    for part in re.split(r",|\\band\\b", listed):
        words = part.split()
        for i, w in enumerate(words):
            if w.lower() in _NUMBERS:
                total += _NUMBERS[w.lower()]
                break
    return total
''',
    "sorting": '''
def sort_word_list(task: str) -> str:
    """Sort the words after 'List:' alphabetically and return them space separated."""
    return " ".join(sorted(task.rsplit("List:", 1)[-1].split()))
''',
}

# (function, task, answer): two examples per family (BBH inputs and targets).
CASES = {
    "boolean": (
        "evaluate_boolean_expression",
        [("not ( True ) and ( True ) is", "False"), ("True and not not ( not False ) is", "True")],
    ),
    "dyck": (
        "close_brackets",
        [
            (
                "Complete the rest of the sequence, making sure that the parentheses are closed properly. Input: [ [",
                "] ]",
            ),
            (
                "Complete the rest of the sequence, making sure that the parentheses are closed properly. Input: < [ [",
                "] ] >",
            ),
        ],
    ),
    "arithmetic": (
        "evaluate_arithmetic",
        [
            ("((-1 + 2 + 9 * 5) - (-2 + -4 + -4 * -7)) =", "24"),
            ("((3 * -3 * 6 + -5) - (-2 + -7 - 7 - -7)) =", "-50"),
        ],
    ),
    "counting": (
        "count_listed_items",
        [
            ("I have a fridge, a chair, and a microwave. How many objects do I have?", "3"),
            ("I have a lamp, two chairs, a bed, and a table. How many objects do I have?", "5"),
        ],
    ),
    "sorting": (
        "sort_word_list",
        [
            (
                "Sort the following words alphabetically: List: syndrome therefrom",
                "syndrome therefrom",
            ),
            (
                "Sort the following words alphabetically: List: vegetate artillery harm fda doris prosody",
                "artillery doris fda harm prosody vegetate",
            ),
        ],
    ),
}


def test_one_tool_per_family_from_a_batch(library: Library, docker_sandbox: Any) -> None:
    traces = [
        Trace(
            task=task,
            task_id=f"{family}-{i}",
            code=FUNCS[family] + f"\n\nanswer = str({fn}({task!r}))\n",
            answer=answer,
        )
        for family, (fn, examples) in CASES.items()
        for i, (task, answer) in enumerate(examples)
    ]
    outcomes = forge_batch(traces, library, docker_sandbox)
    by_family: dict[str, list[str]] = {}
    for trace, outcome in zip(traces, outcomes, strict=True):
        by_family.setdefault(trace.task_id.split("-")[0], []).append(outcome.status)
    assert {f: sorted(s) for f, s in by_family.items()} == {
        f: ["admitted", "merged"] for f in CASES
    }, [o.reason for o in outcomes]
    assert sorted(t.name for t in library.list_tools()) == sorted(fn for fn, _ in CASES.values())
    for tool in library.list_tools():
        assert len(tool.provenance) == 2
        # Each family's inputs admit at least one shape-keeping mutation, and it ran.
        assert "perturbation check: " in tool.verification_log
        assert "perturbation check: 0 mutated" not in tool.verification_log
