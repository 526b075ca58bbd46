"""The form a task states for its answer, and checks of an answer against it.

A task often says what shape its answer takes: one of the listed options, the given words
in alphabetical order, the brackets that close the given sequence, a count, the value of
an arithmetic or a boolean expression. `task_form` reads that from the text alone (no
family names, no labels); the independent route decodes its answer under the form's
grammar, and the forge stores the checks that held on a tool's own task as the tool's
*properties*. Every real use of the tool is checked against them on the trusted side
(`violations`): a tool answering outside its task's form is evidence against it, and its
answer is never returned.

A property is plain data (`{"kind": ...}`), stored with the tool version. What a property
checks is stated by the task itself; a wrong answer of the right form passes them, so a
property that holds is recorded but earns no trust (memory's EVIDENCE_NEUTRAL).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

#: closing partner of each opening bracket
PAIRS = {"(": ")", "[": "]", "{": "}", "<": ">"}
CLOSERS = frozenset(PAIRS.values())

_OPTION = re.compile(r"^\s*(?:\(([A-Z])\)\s*(.+?)|-\s+(.+?))\s*$")
_LIST = re.compile(r"\bList:[ \t]*(.+?)\s*$", re.DOTALL)
_SEQUENCE = re.compile(r"\bInput:[ \t]*([\(\)\[\]\{\}<> \t]+?)\s*$")
_ARITH = re.compile(r"^[\s\d()+\-*/.]+=\s*$")
_BOOL = re.compile(r"^(?:\s|\(|\)|\bTrue\b|\bFalse\b|\bnot\b|\band\b|\bor\b)+\bis\s*$")
_WORD = re.compile(r"^[\w'&.-]+$")


@dataclass(frozen=True)
class Form:
    """What a task states about its answer.

    kind: `choice` (one of `options`), `sorted_words` (the words of `items`, sorted),
    `closers` (the brackets that close `items`, in order), `count` (a whole number of
    things), `integer` (the value of an integer expression), `boolean` (True or False),
    `text` (nothing stated)."""

    kind: str
    options: tuple[str, ...] = ()
    items: tuple[str, ...] = ()


def task_options(task: str) -> list[str]:
    """The options a task lists after an `Options:` line: `(A) text` lines give both the
    label and the text, `- text` lines the text."""
    _, found, tail = task.partition("Options:")
    if not found:
        return []
    out: list[str] = []
    for line in tail.splitlines():
        if not line.strip():
            continue
        match = _OPTION.match(line)
        if match is None:
            break
        label, text, dash = match.groups()
        if label:
            out += [f"({label})", text]
        else:
            out.append(dash)
    return out


def task_form(task: str) -> Form:
    """The answer's form as the task states it (see `Form`)."""
    options = task_options(task)
    if options:
        return Form("choice", options=tuple(options))
    text = task.strip()
    listed = _LIST.search(text)
    if listed and re.search(r"\bsort\b", text, re.IGNORECASE) and "alphabetic" in text.lower():
        words = tuple(listed.group(1).split())
        if words and all(_WORD.match(w) for w in words):
            return Form("sorted_words", items=words)
    sequence = _SEQUENCE.search(text)
    if sequence and "closed" in text.lower():
        tokens = tuple(sequence.group(1).split())
        if tokens and all(t in PAIRS or t in CLOSERS for t in tokens):
            return Form("closers", items=tokens)
    if re.search(r"\bhow many\b", text, re.IGNORECASE):
        return Form("count")
    if _ARITH.match(text):
        return Form("integer")
    if _BOOL.match(text):
        return Form("boolean")
    return Form("text")


# --------------------------------------------------------------------------- answers


def as_text(value: object) -> str:
    """An answer as text: a str as it is, anything else as its JSON."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return str(value)


def normalize(value: object) -> str:
    """An answer as compared by default: case-folded, whitespace collapsed."""
    return " ".join(as_text(value).casefold().split())


def same_answer(a: object, b: object) -> bool:
    """Whether two answers are the same answer (compared `normalize`d)."""
    return a is not None and b is not None and normalize(a) == normalize(b)


# --------------------------------------------------------------------------- checks


def _words(answer: object) -> list[str]:
    return str(answer).split()


def _closing(items: tuple[str, ...]) -> list[str] | None:
    """The closers that complete the bracket sequence `items`, or None if it is broken."""
    stack: list[str] = []
    for token in items:
        if token in PAIRS:
            stack.append(PAIRS[token])
        elif not stack or stack.pop() != token:
            return None
    return list(reversed(stack))


def _as_int(answer: object) -> int | None:
    if isinstance(answer, bool):
        return None
    if isinstance(answer, int):
        return answer
    if isinstance(answer, float) and answer.is_integer():
        return int(answer)
    if isinstance(answer, str) and re.fullmatch(r"\s*-?\d+\s*", answer):
        return int(answer)
    return None


def _check(kind: str, form: Form, answer: object) -> str | None:
    """Why `answer` breaks property `kind` on a task of `form` (None: it holds)."""
    if kind == "one_of_options":
        if form.kind != "choice":
            return "the task lists no options"
        given = " ".join(str(answer).split()).lower()
        if given not in {" ".join(o.split()).lower() for o in form.options}:
            return "the answer is not one of the task's options"
        return None
    if kind in ("permutation_of_list", "sorted"):
        if form.kind != "sorted_words":
            return "the task gives no list of words to sort"
        words = _words(answer)
        if Counter(words) != Counter(form.items):
            return "the answer is not the task's words, each once"
        if kind == "sorted" and words != sorted(words, key=str.lower):
            return "the answer's words are not in alphabetical order"
        return None
    if kind == "closes_sequence":
        if form.kind != "closers":
            return "the task gives no bracket sequence to close"
        tokens = _words(answer)
        if any(t not in CLOSERS for t in tokens):
            return "the answer holds more than closing brackets"
        if _closing(form.items) != tokens:
            return "the answer does not close the task's sequence properly"
        return None
    if kind == "integer":
        return None if _as_int(answer) is not None else "the answer is not a whole number"
    if kind == "count":
        value = _as_int(answer)
        return None if value is not None and value >= 0 else "the answer is not a count"
    if kind == "boolean":
        return None if str(answer).strip() in ("True", "False") else "the answer is not True/False"
    return f"unknown property {kind!r}"


#: the properties a task of each form can carry, weakest first
_BY_FORM: dict[str, tuple[str, ...]] = {
    "choice": ("one_of_options",),
    "sorted_words": ("permutation_of_list", "sorted"),
    "closers": ("closes_sequence",),
    "count": ("count",),
    "integer": ("integer",),
    "boolean": ("boolean",),
    "text": (),
}


def derive_properties(examples: list[tuple[str, Any]]) -> list[dict[str, Any]]:
    """The properties that hold on every (task, confirmed answer) of `examples`: a tool's
    own task first, then others of its kind whose answers were confirmed. A property is
    kept only where the first task's form states it and every example satisfies it."""
    if not examples:
        return []
    first = task_form(examples[0][0])
    out = []
    for kind in _BY_FORM.get(first.kind, ()):
        if all(_check(kind, task_form(t), a) is None for t, a in examples):
            out.append({"kind": kind})
    return out


def violations(
    properties: list[dict[str, Any]] | tuple[dict[str, Any], ...], task: str, answer: object
) -> list[str]:
    """What `answer` breaks of a tool's `properties` on `task` (empty: all held)."""
    if not properties:
        return []
    form = task_form(task)
    out = []
    for prop in properties:
        kind = str(prop.get("kind", "")) if isinstance(prop, dict) else ""
        problem = _check(kind, form, answer)
        if problem is not None:
            out.append(f"{kind}: {problem}")
    return out
