"""A tool's test file: the one rule for merging two of them.

Merging happens when a candidate is merged into a tool it duplicates, when a better
version takes over a tool's tests, and when a repair adds a test: one rule for all, so
"merged" and "versioned" tools keep their tests the same way. No test is lost: a test of
the new file whose name the old one uses for a different body is kept under a suffixed
name; an identical one is dropped; helpers (functions, classes, other statements) are
kept; imports go first, once each.
"""

from __future__ import annotations

import ast
import hashlib
import re

from memory import pyparse


class BadTestFile(ValueError):
    """A test file that does not parse: it cannot be merged."""


def node_lines(source_lines: list[str], node: ast.stmt) -> str:
    """The source of a top-level statement, decorators included."""
    start = node.lineno
    for deco in getattr(node, "decorator_list", []):
        start = min(start, deco.lineno)
    end = node.end_lineno or node.lineno
    return "".join(source_lines[start - 1 : end])


def merge_tests(base: str, extra: str) -> tuple[str, list[str]]:
    """`base` plus the statements of `extra`, as one test file. Returns the merged source
    and the names of the `test*` functions taken from `extra` (renamed ones included).
    Raises `BadTestFile` when either file does not parse."""
    try:
        trees = pyparse.parse(base or ""), pyparse.parse(extra or "")
    except SyntaxError as exc:
        raise BadTestFile(
            f"tests do not parse ({exc.msg}, line {exc.lineno}): fix them first"
        ) from exc
    if not base.strip():
        return extra, [
            n.name
            for n in trees[1].body
            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name.startswith("test")
        ]
    imports: list[str] = []
    body: list[str] = []
    defined: dict[str, str] = {}
    added: list[str] = []
    changed = False  # anything taken from `extra`
    for source, tree, from_extra in ((base, trees[0], False), (extra, trees[1], True)):
        lines = source.splitlines(keepends=True)
        for node in tree.body:
            text = node_lines(lines, node).rstrip() + "\n"
            if isinstance(node, ast.Import | ast.ImportFrom):
                if text not in imports:
                    imports.append(text)
                    changed = changed or from_extra
                continue
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
                continue  # module docstrings
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                name = node.name
                if from_extra:
                    if defined.get(name) == text:
                        continue
                    if name in defined:
                        text, name = _rename_def(text, name)
                    if name.startswith("test"):
                        added.append(name)
                defined[name] = text
            body.append(text)
            changed = changed or from_extra
    if not changed:
        return base, []  # nothing new: `base` as it was written
    return "".join(imports) + "\n\n" + "\n\n".join(body), added


def _rename_def(text: str, name: str) -> tuple[str, str]:
    new = f"{name}_{hashlib.sha1(text.encode('utf-8')).hexdigest()[:6]}"
    return re.sub(rf"\b(def|class)\s+{re.escape(name)}\b", rf"\1 {new}", text, count=1), new
