"""Hard-coded answers: a tool that returns the trace's answer as a literal, copies the
task's text, or spells the answer as a sequence, solves one task and no other.
`hardcoded_problems` names each such literal with its line; `task_literal_problems` the
literals of the one task it came from that are not words of its kind (a person's name
copied from the task: `does_shenna_tell_the_truth`)."""

from __future__ import annotations

import ast
import re

from toolforge.config import ForgeConfig
from toolforge.import_time import docstring_nodes
from toolforge.policy import FORM_WORDS, GENERIC_ANSWERS


def _answer_text(answer: object) -> str:
    if answer is None or isinstance(answer, bool):
        return ""
    if isinstance(answer, list | tuple):
        return " ".join(str(a) for a in answer)
    return str(answer).strip()


def _generic(text: str) -> bool:
    return (
        len(text) < 2
        or text.lower() in GENERIC_ANSWERS
        or re.fullmatch(r"\(?[A-Za-z]\)?", text) is not None
    )


def hardcoded_problems(
    tree: ast.Module, *, task: str, answer: object, config: ForgeConfig
) -> list[str]:
    """The source task's answer, or long literals from its text, inside the code."""
    skip = docstring_nodes(tree)
    answer_text = _answer_text(answer)
    number = _as_number(answer_text)
    task_norm = " ".join(task.split())
    window = config.task_literal_min_chars
    task_windows = (
        {task_norm[i : i + window] for i in range(max(0, len(task_norm) - window + 1))}
        if task_norm
        else set()
    )
    out: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and id(node) not in skip:
            value = node.value
            if isinstance(value, str):
                text = value.strip()
                if (
                    answer_text
                    and not _generic(answer_text)
                    and (text == answer_text or (len(answer_text) >= 8 and answer_text in text))
                ):
                    out.append(
                        f"line {node.lineno}: the literal {_short(text)} is the source "
                        "task's answer (hard-coded answer)"
                    )
                    continue
                norm = " ".join(value.split())
                if len(norm) >= window and any(
                    norm[i : i + window] in task_windows for i in range(len(norm) - window + 1)
                ):
                    out.append(
                        f"line {node.lineno}: the literal {_short(norm)} copies the task text "
                        f"(string literals of {window}+ characters from the task are task data)"
                    )
            elif (
                isinstance(value, int | float)
                and not isinstance(value, bool)
                and number is not None
                and abs(number) >= 100
                and value == number
            ):
                out.append(
                    f"line {node.lineno}: the number {value!r} is the source task's answer "
                    "(hard-coded answer)"
                )
        elif isinstance(node, ast.List | ast.Tuple) and answer_text and len(node.elts) >= 2:
            words = [
                e.value
                for e in node.elts
                if isinstance(e, ast.Constant) and isinstance(e.value, str)
            ]
            if len(words) == len(node.elts) and any(
                sep.join(w.strip() for w in words) == answer_text for sep in (" ", ", ", ",", "")
            ):
                out.append(
                    f"line {node.lineno}: the sequence {_short(ast.unparse(node))} spells the "
                    "source task's answer (hard-coded answer)"
                )
    return sorted(set(out), key=out.index)


_CAPITALISED = re.compile(r"\b[A-Z][a-z]{2,}\b")


def task_literal_problems(tree: ast.Module, *, task: str, siblings: list[str]) -> list[str]:
    """Capitalised words (names) in the code's string literals that the source task holds
    but the other tasks of its kind do not: instance data, not the task's form. With no
    other task of its kind to compare with, any such word is refused unless it is one of
    the words tasks are phrased with (`policy.toml`: form_words)."""
    if not task:
        return []
    skip = docstring_nodes(tree)
    in_task = set(_CAPITALISED.findall(task))
    shared = [set(_CAPITALISED.findall(s)) for s in siblings]
    out: list[str] = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
            continue
        if id(node) in skip:
            continue
        for word in dict.fromkeys(_CAPITALISED.findall(node.value)):
            if word not in in_task or word in FORM_WORDS:
                continue
            if shared and any(word in words for words in shared):
                continue
            where = (
                f"none of the {len(siblings)} other task(s) of its kind has it"
                if shared
                else "it is not a word tasks are phrased with"
            )
            out.append(
                f"line {node.lineno}: the literal {_short(node.value)} holds {word!r}, copied "
                f"from the one task the tool came from ({where}): a tool of one instance"
            )
    return sorted(set(out), key=out.index)


def _as_number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _short(text: str, n: int = 50) -> str:
    return repr(text if len(text) <= n else text[:n] + "…")


# --- tests --------------------------------------------------------------------------
