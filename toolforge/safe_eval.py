"""`eval` in a tool, made safe by rewriting it before the static gate.

A solution often reads an expression out of the task ("not ( True ) and False is",
"((-1 + 2) * 3) =") and evaluates it with `eval`. A tool may not call `eval` (it runs
any code its input holds), so the forge rewrites `eval(x)` into a call of a private
helper appended to the module: an evaluator of Python expressions made of literals and
operators only (boolean, arithmetic, comparison, conditional, containers), which raises
ValueError for anything else: names, calls, attributes, subscripts, comprehensions.
"""

from __future__ import annotations

import ast

from memory import pyparse

HELPER = "_evaluate_expression"

HELPER_SOURCE = '''

def _evaluate_expression(text: str) -> object:
    """The value of a Python expression of literals and operators (no names, calls or
    attributes): what `eval` gives for such an expression; ValueError otherwise."""
    import ast as _ast
    import operator as _op

    binary = {
        _ast.Add: _op.add, _ast.Sub: _op.sub, _ast.Mult: _op.mul, _ast.Div: _op.truediv,
        _ast.FloorDiv: _op.floordiv, _ast.Mod: _op.mod, _ast.Pow: _op.pow,
        _ast.BitAnd: _op.and_, _ast.BitOr: _op.or_, _ast.BitXor: _op.xor,
    }
    unary = {_ast.Not: _op.not_, _ast.USub: _op.neg, _ast.UAdd: _op.pos, _ast.Invert: _op.invert}
    compare = {
        _ast.Eq: _op.eq, _ast.NotEq: _op.ne, _ast.Lt: _op.lt, _ast.LtE: _op.le,
        _ast.Gt: _op.gt, _ast.GtE: _op.ge, _ast.In: lambda a, b: a in b,
        _ast.NotIn: lambda a, b: a not in b, _ast.Is: _op.is_, _ast.IsNot: _op.is_not,
    }

    def value(node):
        if isinstance(node, _ast.Constant):
            return node.value
        if isinstance(node, _ast.BoolOp):
            result = value(node.values[0])
            for item in node.values[1:]:
                if isinstance(node.op, _ast.And):
                    result = result and value(item)
                else:
                    result = result or value(item)
            return result
        if isinstance(node, _ast.BinOp) and type(node.op) in binary:
            right = value(node.right)
            if isinstance(node.op, _ast.Pow) and isinstance(right, int) and abs(right) > 1000:
                raise ValueError("exponent too large")
            return binary[type(node.op)](value(node.left), right)
        if isinstance(node, _ast.UnaryOp) and type(node.op) in unary:
            return unary[type(node.op)](value(node.operand))
        if isinstance(node, _ast.Compare):
            left = value(node.left)
            for op, item in zip(node.ops, node.comparators):
                right = value(item)
                if not compare[type(op)](left, right):
                    return False
                left = right
            return True
        if isinstance(node, _ast.IfExp):
            return value(node.body) if value(node.test) else value(node.orelse)
        if isinstance(node, (_ast.List, _ast.Tuple, _ast.Set)):
            items = [value(e) for e in node.elts]
            return {_ast.List: list, _ast.Tuple: tuple, _ast.Set: set}[type(node)](items)
        if isinstance(node, _ast.Dict):
            return {value(k): value(v) for k, v in zip(node.keys, node.values)}
        raise ValueError("not an expression of literals and operators: " + type(node).__name__)

    try:
        tree = _ast.parse(str(text).strip(), mode="eval")
    except SyntaxError as exc:
        raise ValueError("not an expression: " + str(exc)) from None
    return value(tree.body)
'''


def rewrite_eval(source: str) -> str:
    """`source` with its one-argument `eval(...)` calls evaluating literals only; unchanged
    if it has none (or does not parse: the static gate reports that)."""
    try:
        tree = pyparse.parse(source)
    except SyntaxError:
        return source
    calls = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "eval"
        and len(node.args) == 1
        and not node.keywords
    ]
    if not calls or HELPER in source:
        return source
    for call in calls:
        call.func = ast.Name(HELPER, ast.Load())
    return ast.unparse(tree) + "\n" + HELPER_SOURCE
