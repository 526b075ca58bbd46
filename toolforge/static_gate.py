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
import sys
from collections.abc import Collection
from dataclasses import dataclass, field

from memory import pyparse
from toolforge.config import ForgeConfig
from toolforge.hardcode import hardcoded_problems, task_literal_problems
from toolforge.import_time import import_time_problems
from toolforge.policy import (
    ALLOWED_DUNDERS,
    BANNED_BUILTINS,
    DENIED_MODULES,
    DENIED_NAMES,
    INTROSPECTION_ATTRIBUTES,
)
from toolforge.source import (
    docstring_of,
    name_problem,
    normalise_name,
    public_functions,
    rename_identifier,
    signature_of,
    unread_parameters,
)


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
    answer: object = None,
    min_tests: int | None = None,
    expected_name: str | None = None,
    siblings: list[str] | None = None,
    callable_tools: Collection[str] = (),
) -> StaticReport:
    """Run every static check on a tool module and its tests. The module may import the
    library tools named in `callable_tools` (`from tools import name`), never itself."""
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
    problems.extend(
        _import_problems(tree, config, allow_tools=None, callees=set(callable_tools) - {name})
    )
    problems.extend(_hatch_problems(tree))
    problems.extend(import_time_problems(tree))
    problems.extend(hardcoded_problems(tree, task=task, answer=answer, config=config))
    problems.extend(task_literal_problems(tree, task=task, siblings=list(siblings or [])))
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


def _import_problems(
    tree: ast.AST, config: ForgeConfig, allow_tools: str | None, callees: Collection[str] = ()
) -> list[str]:
    """Imports a tool module (`allow_tools` None; it may import the library tools in
    `callees`) or its tests (which import the tool `allow_tools`) may not make."""
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
                    unknown = [a.name for a in node.names if a.name not in callees]
                    if unknown:
                        out.append(
                            f"`from tools import {', '.join(unknown)}`: a tool may import "
                            "only active library tools, never itself"
                        )
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
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if alias.name in DENIED_NAMES:
                    out.append(
                        f"import of {alias.name} is not allowed (it reaches objects by a "
                        "string or opens files)"
                    )
        if isinstance(node, ast.Name):
            if node.id in DENIED_NAMES:
                out.append(f"use of {node.id} is not allowed (it reaches objects by a string)")
            elif node.id in BANNED_BUILTINS and node.id not in bound:
                out.append(f"use of {node.id}() is not allowed")
            elif node.id.startswith("__") and node.id not in ALLOWED_DUNDERS:
                out.append(f"use of {node.id} is not allowed")
        elif isinstance(node, ast.Attribute):
            if node.attr in DENIED_NAMES:
                out.append(
                    f"access to {node.attr} is not allowed (it reaches objects by a string "
                    "or opens files)"
                )
            elif node.attr in INTROSPECTION_ATTRIBUTES:
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
