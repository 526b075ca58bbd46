"""Small operations on Python source that every stage needs: names, signatures, renaming,
test files (split, combine, the literal calls they make)."""

from __future__ import annotations

import ast
import builtins
import hashlib
import io
import keyword
import re
import tokenize
from dataclasses import dataclass
from typing import Any

from memory import pyparse
from toolforge.errors import ForgeError


def normalise_name(name: str) -> str:
    """`SortWords`, `sortWords`, `_sort_words`, `sort-words` -> `sort_words`."""
    text = re.sub(r"[^0-9A-Za-z]+", "_", name)
    text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", text)
    text = re.sub(r"_+", "_", text).strip("_").lower()
    if text and text[0].isdigit():
        text = "tool_" + text
    return text


def name_problem(name: str) -> str | None:
    """Why `name` cannot name a tool, or None."""
    if not name or not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        return f"{name!r} is not a snake_case identifier"
    if keyword.iskeyword(name) or name in dir(builtins):
        return f"{name!r} shadows a Python keyword or builtin: choose a descriptive name"
    if name in {"tools", "test", "main"} or name.startswith("test"):
        return f"{name!r} is reserved: choose a descriptive name"
    if len(name) > 60:
        return f"{name!r} is longer than 60 characters"
    return None


def rename_identifier(source: str, old: str, new: str) -> str:
    """Rename every NAME token `old` (not strings or comments) to `new`."""
    if old == new or old not in source:
        return source
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return re.sub(rf"\b{re.escape(old)}\b", new, source)
    lines = source.splitlines(keepends=True)
    # An attribute (`re.sub` when renaming `sub`) is another object's name: keep it.
    after_dot = {
        i
        for i, tok in enumerate(tokens)
        if i and tokens[i - 1].type == tokenize.OP and tokens[i - 1].string == "."
    }
    # Replace from the end so earlier offsets stay valid.
    for i, tok in reversed(list(enumerate(tokens))):
        if tok.type == tokenize.NAME and tok.string == old and i not in after_dot:
            row, col = tok.start
            line = lines[row - 1]
            lines[row - 1] = line[:col] + new + line[col + len(old) :]
    return "".join(lines)


def public_functions(tree: ast.Module) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    return [
        node
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and not node.name.startswith("_")
    ]


def signature_of(func: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    """`name(a: int, b: str = 'x') -> bool`."""
    returns = f" -> {ast.unparse(func.returns)}" if func.returns is not None else ""
    return f"{func.name}({ast.unparse(func.args)}){returns}"


def docstring_of(func: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    return ast.get_docstring(func) or ""


def short_hash(text: str, n: int = 8) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:n]


def test_names(tests: str) -> list[str]:
    """Names of the `test_*` functions of a test file (empty when it does not parse)."""
    try:
        tree = pyparse.parse(tests)
    except SyntaxError:
        return []
    return [
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test")
    ]


@dataclass(frozen=True)
class LiteralCall:
    args: tuple[Any, ...]
    kwargs: dict[str, Any]


def literal_calls(tests: str, name: str) -> list[LiteralCall]:
    """Calls of `name` in the test file whose arguments are Python literals.

    A bare name bound earlier in the same function to a literal counts too
    (`words = ["b", "a"]; assert sort_words(words) == ...`): a small constant
    propagation, enough for the usual shape of tests.
    """
    try:
        tree = pyparse.parse(tests)
    except SyntaxError:
        return []
    calls: list[LiteralCall] = []
    seen: set[str] = set()
    scopes: list[ast.AST] = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
    scopes.append(tree)
    for scope in scopes:
        consts: dict[str, Any] = {}
        for node in ast.walk(scope):
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target = node.targets[0]
                if isinstance(target, ast.Name):
                    try:
                        consts[target.id] = ast.literal_eval(node.value)
                    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                        consts.pop(target.id, None)
        for node in ast.walk(scope):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == name
            ):
                continue
            try:
                args = tuple(_literal(arg, consts) for arg in node.args)
                kwargs = {kw.arg: _literal(kw.value, consts) for kw in node.keywords if kw.arg}
            except ValueError:
                continue
            if any(kw.arg is None for kw in node.keywords):
                continue
            key = repr((args, sorted(kwargs.items())))
            if key not in seen:
                seen.add(key)
                calls.append(LiteralCall(args, kwargs))
    return calls


def _literal(node: ast.expr, consts: dict[str, Any]) -> Any:
    if isinstance(node, ast.Starred):
        raise ValueError("starred argument")
    if isinstance(node, ast.Name) and node.id in consts:
        return consts[node.id]
    try:
        return ast.literal_eval(node)
    except (TypeError, SyntaxError, MemoryError, RecursionError) as exc:
        raise ValueError(str(exc)) from exc


def unread_parameters(func: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    """The function's named parameters its body never reads: a tool that ignores its
    input computes from data copied into its code (the task's, typically)."""
    params = [a.arg for a in [*func.args.posonlyargs, *func.args.args, *func.args.kwonlyargs]]
    read = {
        node.id
        for stmt in func.body
        for node in ast.walk(stmt)
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)
    }
    return [p for p in params if p not in read and p not in ("self", "cls")]


def split_inline_tests(source: str, tree: ast.Module) -> tuple[str, str]:
    """A file holding the tool and its `test_*` functions -> (tool module, tests)."""
    lines = source.splitlines(keepends=True)
    tests = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test")]
    if not tests:
        raise ForgeError(
            "no tests: pass --tests FILE or put test_* functions in the tool file "
            "(each test calls the tool and asserts on its result)"
        )
    public = [
        n.name
        for n in tree.body
        if isinstance(n, ast.FunctionDef) and not n.name.startswith(("_", "test"))
    ]
    if len(public) != 1:
        raise ForgeError(
            f"the file must define exactly one public function besides its tests; found "
            f"{', '.join(public) or 'none'}"
        )
    drop: set[int] = set()
    test_text = [f"from tools import {public[0]}\n"]
    for node in tests:
        start = min([d.lineno for d in node.decorator_list] + [node.lineno])
        drop.update(range(start, (node.end_lineno or node.lineno) + 1))
        test_text.append("\n\n" + "".join(lines[start - 1 : node.end_lineno]))
    module = "".join(line for i, line in enumerate(lines, 1) if i not in drop).rstrip() + "\n"
    return module, "".join(test_text)
