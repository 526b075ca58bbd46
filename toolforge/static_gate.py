"""The static gate: what can be decided from a candidate's source without running it.

Checks, in order (the first failure is the rejection reason; all are logged):
size bounds; it parses; exactly one public function (private helpers allowed), fully
annotated, with a docstring and a real body; imports within the allow-list; no escape
hatches (eval/exec/open/dunder attributes); nothing but definitions and constants at
import time; no hard-coded answers; a snake_case name; tests that parse, call the
tool, and use the same allow-list.

This is defence in depth and a quality bar, not the security boundary: every line still
runs only in the sandbox.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memory import pyparse
from toolforge.config import ForgeConfig
from toolforge.source import (
    docstring_of,
    name_problem,
    normalise_name,
    public_functions,
    rename_identifier,
    signature_of,
    unread_parameters,
)


def _policy() -> dict[str, frozenset[str]]:
    with POLICY_FILE.open("rb") as fh:
        data = tomllib.load(fh)
    return {key: frozenset(values) for key, values in data.items()}


POLICY_FILE = Path(__file__).with_name("policy.toml")
_POLICY = _policy()
DENIED_MODULES = _POLICY["denied_modules"]
BANNED_BUILTINS = _POLICY["banned_builtins"]
ALLOWED_DUNDERS = _POLICY["allowed_dunders"]
INTROSPECTION_ATTRIBUTES = _POLICY["introspection_attributes"]
CONST_CALLS = _POLICY["const_calls"]
ALLOWED_DECORATORS = _POLICY["allowed_decorators"]
GENERIC_ANSWERS = _POLICY["generic_answers"]


@dataclass
class StaticReport:
    """The verdict of the static gate; `source`/`tests` carry the normalised name."""

    ok: bool
    name: str
    source: str
    tests: str
    signature: str = ""
    docstring: str = ""
    problems: list[str] = field(default_factory=list)

    @property
    def reason(self) -> str:
        return self.problems[0] if self.problems else ""


def check_static(
    source: str,
    tests: str,
    config: ForgeConfig,
    *,
    task: str = "",
    answer: Any = None,
    min_tests: int | None = None,
    expected_name: str | None = None,
) -> StaticReport:
    """Run every static check on a tool module and its tests."""
    report = StaticReport(ok=False, name="", source=source, tests=tests)
    problems = report.problems
    if len(source) > config.max_source_chars:
        problems.append(
            f"source has {len(source)} characters, more than the {config.max_source_chars} allowed"
        )
        return report
    try:
        tree = pyparse.parse(source)
    except SyntaxError as exc:
        problems.append(f"source does not parse: SyntaxError line {exc.lineno}: {exc.msg}")
        return report

    funcs = public_functions(tree)
    if len(funcs) != 1:
        names = ", ".join(f.name for f in funcs) or "none"
        problems.append(
            f"a tool has exactly one public function; found {len(funcs)} ({names}): "
            "prefix helpers with an underscore"
        )
        return report
    func = funcs[0]
    name = normalise_name(func.name)
    if expected_name and name != expected_name:
        name = expected_name
    if name != func.name:
        source = rename_identifier(source, func.name, name)
        tests = rename_identifier(tests, func.name, name)
        tree = pyparse.parse(source)
        func = public_functions(tree)[0]
    report.name, report.source, report.tests = name, source, tests
    report.signature, report.docstring = signature_of(func), docstring_of(func)

    if problem := name_problem(name):
        problems.append(f"name: {problem}")
    for cls in tree.body:
        if isinstance(cls, ast.ClassDef) and not cls.name.startswith("_"):
            problems.append(f"public class {cls.name!r}: helper classes must start with '_'")
    problems.extend(_annotation_problems(func))
    if len(report.docstring.strip()) < 10:
        problems.append(
            f"{name} has no docstring (or one under 10 characters): "
            "say what it does, its inputs and its output"
        )
    if _trivial_body(func):
        problems.append(f"{name} has no body beyond its docstring")
    n_lines = sum(1 for line in source.splitlines() if line.strip())
    if n_lines > config.max_function_lines:
        problems.append(
            f"source has {n_lines} lines, more than the {config.max_function_lines} allowed"
        )
    problems.extend(_import_problems(tree, config, allow_tools=None))
    problems.extend(_hatch_problems(tree))
    problems.extend(_import_time_problems(tree))
    problems.extend(hardcoded_problems(tree, task=task, answer=answer, config=config))
    if unread := unread_parameters(func):
        problems.append(
            f"{name} never reads its parameter(s) {', '.join(unread)}: a tool computes from "
            "its input, not from data written into its code"
        )
    problems.extend(
        _test_problems(tests, name, config, config.min_tests if min_tests is None else min_tests)
    )
    report.ok = not problems
    return report


def _annotation_problems(func: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    args = func.args
    every = [*args.posonlyargs, *args.args, *args.kwonlyargs]
    every += [a for a in (args.vararg, args.kwarg) if a is not None]
    missing = [a.arg for a in every if a.annotation is None]
    out = []
    if missing:
        out.append(f"{func.name}: parameters without a type annotation: {', '.join(missing)}")
    if func.returns is None:
        out.append(f"{func.name}: no return annotation (add `-> type`)")
    if isinstance(func, ast.AsyncFunctionDef):
        out.append(f"{func.name} is async: tools are plain functions")
    return out


def _trivial_body(func: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    body = list(func.body)
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    return all(
        isinstance(s, ast.Pass) or (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))
        for s in body
    )


def module_allowed(module: str, config: ForgeConfig) -> bool:
    top = module.split(".")[0]
    if top in config.extra_imports:
        return True
    return (
        top in sys.stdlib_module_names and top not in DENIED_MODULES and not top.startswith("_")
    ) or top == "__future__"


def _import_problems(tree: ast.AST, config: ForgeConfig, allow_tools: str | None) -> list[str]:
    out: list[str] = []
    for node in ast.walk(tree):
        modules: list[str] = []
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                out.append("relative imports are not allowed")
                continue
            modules = [node.module or ""]
            if node.module == "tools":
                if allow_tools is None:
                    out.append("a tool may not import other library tools")
                else:
                    others = [a.name for a in node.names if a.name != allow_tools]
                    if others:
                        out.append(
                            f"tests import other tools ({', '.join(others)}): "
                            f"only `from tools import {allow_tools}` is available"
                        )
                continue
        for module in modules:
            top = module.split(".")[0]
            if allow_tools is not None and top in ("pytest", "tools"):
                continue
            if not module_allowed(module, config):
                out.append(
                    f"import of {module!r} is not allowed (no process, network, ctypes or "
                    "file-system modules; standard library and the image's packages only)"
                )
    return out


def _hatch_problems(tree: ast.AST) -> list[str]:
    bound = _bound_names(tree)
    modules = _module_names(tree)
    out: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            if node.id in BANNED_BUILTINS and node.id not in bound:
                out.append(f"use of {node.id}() is not allowed")
            elif node.id.startswith("__") and node.id not in ALLOWED_DUNDERS:
                out.append(f"use of {node.id} is not allowed")
        elif isinstance(node, ast.Attribute):
            if node.attr in INTROSPECTION_ATTRIBUTES:
                out.append(
                    f"access to the attribute {node.attr} is not allowed (frames, code, "
                    "globals and the class graph are out of a tool's reach)"
                )
            elif node.attr.startswith("__") and node.attr not in ALLOWED_DUNDERS:
                out.append(f"access to the attribute {node.attr} is not allowed")
            elif (root := _root_name(node)) in modules and (
                node.attr.startswith("_") or node.attr in DENIED_MODULES
            ):
                # `random._os`, `typing.sys`: a denied module reached through an allowed one.
                out.append(
                    f"{ast.unparse(node)}: a module's private names and the modules it "
                    f"imported are not part of its interface (module {root})"
                )
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "hasattr")
            and node.func.id not in bound
            and len(node.args) >= 2
            and not (
                isinstance(node.args[1], ast.Constant)
                and isinstance(node.args[1].value, str)
                and not node.args[1].value.startswith("_")
                and node.args[1].value not in INTROSPECTION_ATTRIBUTES
            )
        ):
            out.append(f"{node.func.id}() with a computed or private attribute name is not allowed")
    return sorted(set(out), key=out.index)


def _module_names(tree: ast.AST) -> set[str]:
    """Names bound to imported modules (`import a.b as c` binds c; `import a.b` binds a)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                names.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            # `from collections import abc` binds a module too; a function is checked alike.
            for alias in node.names:
                names.add(alias.asname or alias.name)
    return names


def _root_name(node: ast.expr) -> str:
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else ""


def _bound_names(tree: ast.AST) -> set[str]:
    bound: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            bound.add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound.add(node.name)
    return bound


def _dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    if isinstance(node, ast.Call):
        return _dotted(node.func)
    return ""


def _import_time_problems(tree: ast.Module) -> list[str]:
    """Nothing may run when the module is imported but imports and definitions of
    constants: decorators, default values, annotations and class bodies all run then."""
    out: list[str] = []
    # A constant may call a pure constructor, but never with a function of the module
    # (`sorted(DATA, key=evil)` would run evil at import).
    defined = {
        n.name
        for n in ast.walk(tree)
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
    }
    inside = _inside_bodies(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and id(node) not in inside:
            named = [a for a in ast.walk(node) if isinstance(a, ast.Name) and a.id in defined]
            if named:
                out.append(
                    f"line {node.lineno}: `{ast.unparse(node)[:50]}` would call "
                    f"{named[0].id} at import"
                )
    for i, node in enumerate(tree.body):
        if (
            i == 0
            and isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            continue
        if isinstance(node, ast.Import | ast.ImportFrom) or _is_main_guard(node):
            continue
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            out.extend(_definition_problems(node))
            continue
        if isinstance(node, ast.Assign | ast.AnnAssign):
            out.extend(_assignment_problems(node, "module-level"))
            continue
        out.append(
            f"line {node.lineno}: module-level statement `{ast.unparse(node)[:60]}` has a "
            "side effect at import: a tool module only defines things"
        )
    return out


def _definition_problems(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> list[str]:
    """What a `def` or `class` statement runs when it is executed."""
    out: list[str] = []
    for deco in node.decorator_list:
        if _dotted(deco) not in ALLOWED_DECORATORS:
            out.append(
                f"decorator @{ast.unparse(deco)} runs code at import: only "
                "functools caches and dataclasses are allowed"
            )
    if isinstance(node, ast.ClassDef):
        for base in [*node.bases, *(k.value for k in node.keywords)]:
            if not _annotation_expr(base):
                out.append(
                    f"line {node.lineno}: class {node.name}'s base `{ast.unparse(base)[:40]}` "
                    "runs code at import"
                )
        for i, stmt in enumerate(node.body):
            if i == 0 and isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
                continue
            if isinstance(stmt, ast.Pass):
                continue
            if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                out.extend(_definition_problems(stmt))
            elif isinstance(stmt, ast.Assign | ast.AnnAssign):
                out.extend(_assignment_problems(stmt, f"class {node.name}'s"))
            else:
                out.append(
                    f"line {stmt.lineno}: class {node.name}'s body runs "
                    f"`{ast.unparse(stmt)[:50]}` at import: a class body only defines things"
                )
        return out
    args = node.args
    for default in [*args.defaults, *(d for d in args.kw_defaults if d is not None)]:
        if not _const_expr(default):
            out.append(
                f"line {node.lineno}: {node.name}'s default `{ast.unparse(default)[:40]}` is "
                "computed at import: defaults must be constants"
            )
    every = [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
    notes = [a.annotation for a in every if a is not None and a.annotation is not None]
    for note in [*notes, *([node.returns] if node.returns is not None else [])]:
        if not _annotation_expr(note):
            out.append(
                f"line {node.lineno}: {node.name}'s annotation `{ast.unparse(note)[:40]}` "
                "runs code at import: annotations are types, not calls"
            )
    return out


def _inside_bodies(tree: ast.Module) -> set[int]:
    """Ids of the nodes inside function bodies: what does not run at import."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            body = node.body if isinstance(node.body, list) else [node.body]
            inside.update(id(n) for stmt in body for n in ast.walk(stmt))
    return inside


def _assignment_problems(node: ast.Assign | ast.AnnAssign, where: str) -> list[str]:
    out = []
    if isinstance(node, ast.AnnAssign) and not _annotation_expr(node.annotation):
        out.append(
            f"line {node.lineno}: the annotation `{ast.unparse(node.annotation)[:40]}` runs "
            "code at import"
        )
    if node.value is not None and not _const_expr(node.value):
        out.append(
            f"line {node.lineno}: {where} `{ast.unparse(node)[:60]}` runs code at "
            "import: only constants are allowed outside functions"
        )
    return out


def _annotation_expr(node: ast.expr) -> bool:
    """A type written without calling anything: names, `a.b`, `list[int]`, `int | None`."""
    if isinstance(node, ast.Constant | ast.Name):
        return True
    if isinstance(node, ast.Attribute):
        return _annotation_expr(node.value)
    if isinstance(node, ast.Subscript):
        return _annotation_expr(node.value) and _annotation_expr(node.slice)
    if isinstance(node, ast.Tuple | ast.List):
        return all(_annotation_expr(e) for e in node.elts)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _annotation_expr(node.left) and _annotation_expr(node.right)
    return False


def _is_main_guard(node: ast.stmt) -> bool:
    return (
        isinstance(node, ast.If)
        and isinstance(node.test, ast.Compare)
        and isinstance(node.test.left, ast.Name)
        and node.test.left.id == "__name__"
    )


def _const_expr(node: ast.AST) -> bool:
    """A module-level value that computes nothing but data."""
    if isinstance(node, ast.Constant | ast.Name):
        return True
    if isinstance(node, ast.Attribute):
        return _const_expr(node.value)
    if isinstance(node, ast.List | ast.Tuple | ast.Set):
        return all(_const_expr(e) for e in node.elts)
    if isinstance(node, ast.Dict):
        return all(_const_expr(k) for k in node.keys if k is not None) and all(
            _const_expr(v) for v in node.values
        )
    if isinstance(node, ast.Starred):
        return _const_expr(node.value)
    if isinstance(node, ast.UnaryOp):
        return _const_expr(node.operand)
    if isinstance(node, ast.BinOp):
        return _const_expr(node.left) and _const_expr(node.right)
    if isinstance(node, ast.BoolOp):
        return all(_const_expr(v) for v in node.values)
    if isinstance(node, ast.Compare):
        return _const_expr(node.left) and all(_const_expr(c) for c in node.comparators)
    if isinstance(node, ast.IfExp):
        return all(_const_expr(n) for n in (node.test, node.body, node.orelse))
    if isinstance(node, ast.Subscript):
        return _const_expr(node.value) and _const_expr(node.slice)
    if isinstance(node, ast.Slice):
        return all(_const_expr(n) for n in (node.lower, node.upper, node.step) if n is not None)
    if isinstance(node, ast.JoinedStr | ast.FormattedValue):
        return all(_const_expr(n) for n in ast.iter_child_nodes(node))
    if isinstance(node, ast.ListComp | ast.SetComp | ast.GeneratorExp):
        return _const_expr(node.elt) and all(_const_comp(g) for g in node.generators)
    if isinstance(node, ast.DictComp):
        return (
            _const_expr(node.key)
            and _const_expr(node.value)
            and all(_const_comp(g) for g in node.generators)
        )
    if isinstance(node, ast.Call):
        return (
            (
                _dotted(node.func) in CONST_CALLS
                or (
                    isinstance(node.func, ast.Attribute)
                    and isinstance(node.func.value, ast.Constant)
                    and isinstance(node.func.value.value, str)
                )
            )
            and all(_const_expr(a) for a in node.args)
            and all(_const_expr(k.value) for k in node.keywords)
        )
    return False


def _const_comp(gen: ast.comprehension) -> bool:
    return _const_expr(gen.iter) and all(_const_expr(c) for c in gen.ifs)


# --- hard-coded answers -------------------------------------------------------------


def _docstring_nodes(tree: ast.Module) -> set[int]:
    ids: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def _answer_text(answer: Any) -> str:
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
    tree: ast.Module, *, task: str, answer: Any, config: ForgeConfig
) -> list[str]:
    """The source task's answer, or long literals from its text, inside the code."""
    skip = _docstring_nodes(tree)
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


def _as_number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _short(text: str, n: int = 50) -> str:
    return repr(text if len(text) <= n else text[:n] + "…")


# --- tests --------------------------------------------------------------------------


def _test_problems(tests: str, name: str, config: ForgeConfig, min_tests: int) -> list[str]:
    if len(tests) > config.max_tests_chars:
        return [f"tests have {len(tests)} characters, more than {config.max_tests_chars}"]
    try:
        tree = pyparse.parse(tests)
    except SyntaxError as exc:
        return [f"tests do not parse: SyntaxError line {exc.lineno}: {exc.msg}"]
    funcs = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test")]
    out: list[str] = []
    if len(funcs) < min_tests:
        out.append(f"{len(funcs)} test functions; at least {min_tests} needed (test_* functions)")
    if len(funcs) > config.max_tests:
        out.append(f"{len(funcs)} test functions; at most {config.max_tests} allowed")
    for func in funcs:
        if func.args.args or func.args.posonlyargs or func.args.kwonlyargs:
            out.append(f"{func.name} takes parameters: pytest fixtures are not supported")
    calls = any(
        isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == name
        for n in ast.walk(tree)
    )
    if funcs and not calls:
        out.append(f"the tests never call {name}")
    out.extend(_import_problems(tree, config, allow_tools=name))
    out.extend(f"tests: {p}" for p in _hatch_problems(tree))
    return out
