"""Tests read as calls the host makes and checks itself.

A test program that runs in the sandbox can reach its own frames and report anything:
its word that a test passed is worth nothing. So a test is read here, on the trusted
side, as what it asks: calls of the tool with literal arguments and what each must give
(`assert tool(<literals>) == <literal>`, `is True`, `== pytest.approx(...)`, a bare
`assert tool(...)` or `assert not tool(...)`, `with pytest.raises(ValueError):
tool(...)`). Those calls are then made by a plain caller program, the tool answers in a
process of its own, and each expectation is held against the supervisor's record of the
call (`meets`): no code of the test ever runs.

A test that does more than that (a loop, a helper, a computed argument) is *opaque*: it
still runs in the sandbox's test program, but its report can only reject a candidate (a
failure is believed, a pass proves nothing). A candidate needs enough tests whose
verdict the host reached itself.
"""

from __future__ import annotations

import ast
import builtins
import re
from dataclasses import dataclass, field
from typing import Any

from memory import pyparse

#: exceptions a `pytest.raises` test may expect (the caller sees only builtin types by name)
_EXCEPTIONS = frozenset(
    n for n, v in vars(builtins).items() if isinstance(v, type) and issubclass(v, BaseException)
)


@dataclass(frozen=True)
class Expect:
    """What one call must give: `eq`/`ne` a value, `is`/`is_not` True/False/None, `in`/
    `not_in` a literal container, `truthy`, `falsy`, `approx` a number (rel, abs),
    `raises` an exception type (and a message pattern)."""

    op: str
    value: Any = None
    rel: float = 1e-6
    abs: float = 1e-12
    match: str | None = None


@dataclass(frozen=True)
class Probe:
    """One call of the tool the host asks for, and what it must give (None: anything
    that returns or raises; a perturbation, a real input)."""

    args: tuple[Any, ...]
    kwargs: dict[str, Any] = field(default_factory=dict)
    expect: Expect | None = None


@dataclass(frozen=True)
class TestCase:
    """One `test_*` function: its probes, or why the host cannot judge it alone."""

    name: str
    probes: tuple[Probe, ...] = ()
    opaque: str = ""


def read_tests(tests: str, tool: str) -> list[TestCase]:
    """The test functions of a test file, each as probes or opaque (empty when the file
    does not parse: the static gate names the syntax error)."""
    try:
        tree = pyparse.parse(tests)
    except SyntaxError:
        return []
    out = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test"):
            out.append(_read_test(node, tool))
    return out


class _Opaque(Exception):
    pass


def _read_test(fn: ast.FunctionDef, tool: str) -> TestCase:
    if fn.args.args or fn.args.kwonlyargs or fn.args.vararg or fn.args.kwarg or fn.decorator_list:
        return TestCase(fn.name, opaque="it takes parameters or decorators")
    consts: dict[str, Any] = {}
    probes: list[Probe] = []
    try:
        for stmt in fn.body:
            probes.extend(_statement(stmt, tool, consts))
    except _Opaque as exc:
        return TestCase(fn.name, opaque=str(exc))
    if not probes:
        return TestCase(fn.name, opaque="it makes no literal call of the tool")
    return TestCase(fn.name, tuple(probes))


def _statement(stmt: ast.stmt, tool: str, consts: dict[str, Any]) -> list[Probe]:
    if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
        return []  # a docstring
    if isinstance(stmt, ast.ImportFrom) and stmt.module == "tools":
        if all(a.name == tool and a.asname in (None, tool) for a in stmt.names):
            return []
        raise _Opaque("it imports another tool or renames this one")
    if isinstance(stmt, ast.Import) and all(
        a.name == "pytest" and not a.asname for a in stmt.names
    ):
        return []
    if isinstance(stmt, ast.Pass):
        return []
    if (
        isinstance(stmt, ast.Assign)
        and len(stmt.targets) == 1
        and isinstance(stmt.targets[0], ast.Name)
    ):
        name = stmt.targets[0].id
        if name == tool:
            raise _Opaque("it rebinds the tool's name")
        consts[name] = _literal(stmt.value, consts)
        return []
    if isinstance(stmt, ast.Expr) and _is_call(stmt.value, tool):
        return [_probe(stmt.value, consts, None)]
    if isinstance(stmt, ast.Assert):
        return [_assertion(stmt.test, tool, consts)]
    if isinstance(stmt, ast.With):
        return [_raises(stmt, tool, consts)]
    raise _Opaque(f"line {stmt.lineno} is not a literal call or assertion of the tool")


def _assertion(test: ast.expr, tool: str, consts: dict[str, Any]) -> Probe:
    if _is_call(test, tool):
        return _probe(test, consts, Expect("truthy"))
    if (
        isinstance(test, ast.UnaryOp)
        and isinstance(test.op, ast.Not)
        and _is_call(test.operand, tool)
    ):
        return _probe(test.operand, consts, Expect("falsy"))
    if isinstance(test, ast.Compare) and len(test.ops) == 1:
        left, op, right = test.left, test.ops[0], test.comparators[0]
        if (
            not _is_call(left, tool)
            and _is_call(right, tool)
            and isinstance(op, ast.Eq | ast.NotEq)
        ):
            left, right = right, left
        if _is_call(left, tool):
            if (
                isinstance(op, ast.Is | ast.IsNot)
                and isinstance(right, ast.Constant)
                and right.value in (True, False, None)
            ):
                kind = "is" if isinstance(op, ast.Is) else "is_not"
                return _probe(left, consts, Expect(kind, right.value))
            if isinstance(op, ast.In | ast.NotIn):
                container = _literal(right, consts)
                if not isinstance(container, list | tuple | set | frozenset | dict | str):
                    raise _Opaque("`in` a value that is not a literal container")
                kind = "in" if isinstance(op, ast.In) else "not_in"
                return _probe(left, consts, Expect(kind, container))
            if isinstance(op, ast.Eq | ast.NotEq):
                approx = _approx(right, consts)
                if approx is not None:
                    if isinstance(op, ast.NotEq):
                        raise _Opaque("`!= pytest.approx(...)` is not checked by the host")
                    return _probe(left, consts, approx)
                value = _literal(right, consts)
                return _probe(left, consts, Expect("eq" if isinstance(op, ast.Eq) else "ne", value))
    raise _Opaque(f"the assertion on line {test.lineno} is not `tool(...) == <literal>`")


def _approx(node: ast.expr, consts: dict[str, Any]) -> Expect | None:
    if not (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "pytest"
        and node.func.attr == "approx"
        and len(node.args) == 1
    ):
        return None
    value = _literal(node.args[0], consts)
    if not _number(value):
        raise _Opaque("pytest.approx of something other than a number")
    options = {kw.arg: _literal(kw.value, consts) for kw in node.keywords}
    if set(options) - {"rel", "abs"} or not all(_number(v) for v in options.values()):
        raise _Opaque("pytest.approx with options other than rel and abs")
    return Expect(
        "approx", value, rel=float(options.get("rel", 1e-6)), abs=float(options.get("abs", 1e-12))
    )


def _raises(stmt: ast.With, tool: str, consts: dict[str, Any]) -> Probe:
    if len(stmt.items) != 1 or len(stmt.body) != 1:
        raise _Opaque("a `with` block other than `with pytest.raises(E): tool(...)`")
    ctx = stmt.items[0].context_expr
    body = stmt.body[0]
    if not (
        isinstance(ctx, ast.Call)
        and isinstance(ctx.func, ast.Attribute)
        and isinstance(ctx.func.value, ast.Name)
        and ctx.func.value.id == "pytest"
        and ctx.func.attr == "raises"
        and len(ctx.args) == 1
        and isinstance(ctx.args[0], ast.Name)
        and ctx.args[0].id in _EXCEPTIONS
        and stmt.items[0].optional_vars is None
        and isinstance(body, ast.Expr)
        and _is_call(body.value, tool)
    ):
        raise _Opaque("a `with` block other than `with pytest.raises(E): tool(...)`")
    match = None
    for kw in ctx.keywords:
        value = _literal(kw.value, consts)
        if kw.arg != "match" or not isinstance(value, str):
            raise _Opaque("pytest.raises with options other than match")
        match = value
    call = body.value
    assert isinstance(call, ast.Call)
    return _probe(call, consts, Expect("raises", ctx.args[0].id, match=match))


def _is_call(node: ast.expr, tool: str) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == tool


def _probe(call: ast.expr, consts: dict[str, Any], expect: Expect | None) -> Probe:
    assert isinstance(call, ast.Call)
    if any(isinstance(a, ast.Starred) for a in call.args) or any(
        kw.arg is None for kw in call.keywords
    ):
        raise _Opaque("a call with * or ** arguments")
    args = tuple(_literal(a, consts) for a in call.args)
    kwargs = {str(kw.arg): _literal(kw.value, consts) for kw in call.keywords}
    return Probe(args, kwargs, expect)


def _literal(node: ast.expr, consts: dict[str, Any]) -> Any:
    if isinstance(node, ast.Name) and node.id in consts:
        return consts[node.id]
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise _Opaque(f"a value on line {node.lineno} is not a literal") from None


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# --------------------------------------------------------------------------- checking


def meets(
    expect: Expect | None,
    ok: bool,
    value: Any,
    error_type: str | None,
    error_message: str | None = None,
) -> str | None:
    """Why a call's recorded outcome does not meet `expect` (None: it does). `value` is
    the call's result decoded from the supervisor's record (plain data only)."""
    if expect is None:
        return None
    if expect.op == "raises":
        if ok:
            return f"expected {expect.value} to be raised; it returned {_show(value)}"
        if not _raised_as(error_type, str(expect.value)):
            return f"expected {expect.value}; it raised {error_type}: {_clip(error_message)}"
        if expect.match is not None and not re.search(expect.match, error_message or ""):
            return f"the message {_clip(error_message)!r} does not match {expect.match!r}"
        return None
    if not ok:
        return f"it raised {error_type}: {_clip(error_message)}"
    if expect.op == "eq":
        return (
            None
            if _equal(value, expect.value)
            else f"got {_show(value)}, expected {_show(expect.value)}"
        )
    if expect.op == "ne":
        return (
            None
            if not _equal(value, expect.value)
            else f"got {_show(value)}, expected anything else"
        )
    if expect.op in ("is", "is_not"):
        same = (
            value is None
            if expect.value is None
            else (type(value) is bool and value == expect.value)
        )
        if expect.op == "is":
            return None if same else f"got {_show(value)}, expected {expect.value!r}"
        return None if not same else f"got {_show(value)}, expected anything but it"
    if expect.op in ("in", "not_in"):
        try:
            inside = value in expect.value
        except TypeError:  # an unhashable value asked of a set: not in it
            inside = False
        if expect.op == "in":
            return None if inside else f"got {_show(value)}, expected one of {_show(expect.value)}"
        return None if not inside else f"got {_show(value)}, expected none of {_show(expect.value)}"
    if expect.op == "truthy":
        return None if bool(value) else f"got {_show(value)}, expected a true value"
    if expect.op == "falsy":
        return None if not bool(value) else f"got {_show(value)}, expected a false value"
    if expect.op == "approx":
        if not _number(value):
            return f"got {_show(value)}, expected a number near {expect.value!r}"
        tol = max(expect.rel * abs(float(expect.value)), expect.abs)
        return (
            None
            if abs(float(value) - float(expect.value)) <= tol
            else (f"got {_show(value)}, expected {expect.value!r} ± {tol:g}")
        )
    return f"unknown expectation {expect.op!r}"


def _equal(a: Any, b: Any) -> bool:
    # Plain data only (decoded from records, and literals): == runs no code of the tool,
    # and means what it means in the test (1 == 1.0, a tuple is not a list).
    try:
        return bool(a == b)
    except RecursionError:
        return False


def _raised_as(error_type: str | None, expected: str) -> bool:
    if error_type == expected:
        return True
    got, want = getattr(builtins, error_type or "", None), getattr(builtins, expected, None)
    return (
        isinstance(got, type)
        and isinstance(want, type)
        and issubclass(got, BaseException)
        and issubclass(got, want)
    )


def _clip(text: str | None, n: int = 150) -> str:
    text = text or ""
    return text if len(text) <= n else text[:n] + "..."


def _show(value: object, n: int = 150) -> str:
    text = repr(value)
    return text if len(text) <= n else text[:n] + "..."
