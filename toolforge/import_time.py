"""Import-time effects: a tool module may define things and bind constants, nothing else.

`import_time_problems(tree)` names every statement, class body, decorator, default value
and annotation that would run code when the module is imported (the static gate refuses
them); `const_expr(node)` says whether an expression is a constant built from literals
and the policy's constant calls (also used to lift constants out of solved code).
"""

from __future__ import annotations

import ast

from toolforge.policy import ALLOWED_DECORATORS, CONST_CALLS


def dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{dotted(node.value)}.{node.attr}"
    if isinstance(node, ast.Call):
        return dotted(node.func)
    return ""


def import_time_problems(tree: ast.Module) -> list[str]:
    """Nothing may run when the module is imported but imports and definitions of
    constants: decorators, default values, annotations and class bodies all run then."""
    out: list[str] = []
    imported = imported_names(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and id(node) not in _inside_bodies(tree):
            for arg in [*node.args, *(k.value for k in node.keywords)]:
                for ref in ast.walk(arg):
                    if _names_import(ref, imported):
                        out.append(
                            f"line {node.lineno}: `{ast.unparse(node)[:50]}` hands "
                            f"`{ast.unparse(ref)[:30]}` to a call at import: a constant "
                            "calls nothing imported"
                        )
                        break
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
        if dotted(deco) not in ALLOWED_DECORATORS:
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
        if not const_expr(default):
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
    if node.value is not None and not const_expr(node.value):
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


def const_expr(node: ast.AST) -> bool:
    """A module-level value that computes nothing but data."""
    if isinstance(node, ast.Constant | ast.Name):
        return True
    if isinstance(node, ast.Attribute):
        return const_expr(node.value)
    if isinstance(node, ast.List | ast.Tuple | ast.Set):
        return all(const_expr(e) for e in node.elts)
    if isinstance(node, ast.Dict):
        return all(const_expr(k) for k in node.keys if k is not None) and all(
            const_expr(v) for v in node.values
        )
    if isinstance(node, ast.Starred):
        return const_expr(node.value)
    if isinstance(node, ast.UnaryOp):
        return const_expr(node.operand)
    if isinstance(node, ast.BinOp):
        return const_expr(node.left) and const_expr(node.right)
    if isinstance(node, ast.BoolOp):
        return all(const_expr(v) for v in node.values)
    if isinstance(node, ast.Compare):
        return const_expr(node.left) and all(const_expr(c) for c in node.comparators)
    if isinstance(node, ast.IfExp):
        return all(const_expr(n) for n in (node.test, node.body, node.orelse))
    if isinstance(node, ast.Subscript):
        return const_expr(node.value) and const_expr(node.slice)
    if isinstance(node, ast.Slice):
        return all(const_expr(n) for n in (node.lower, node.upper, node.step) if n is not None)
    if isinstance(node, ast.JoinedStr | ast.FormattedValue):
        return all(const_expr(n) for n in ast.iter_child_nodes(node))
    if isinstance(node, ast.ListComp | ast.SetComp | ast.GeneratorExp):
        return const_expr(node.elt) and all(_const_comp(g) for g in node.generators)
    if isinstance(node, ast.DictComp):
        return (
            const_expr(node.key)
            and const_expr(node.value)
            and all(_const_comp(g) for g in node.generators)
        )
    if isinstance(node, ast.Call):
        return (
            (
                dotted(node.func) in CONST_CALLS
                or (
                    isinstance(node.func, ast.Attribute)
                    and isinstance(node.func.value, ast.Constant)
                    and isinstance(node.func.value.value, str)
                )
            )
            and all(const_expr(a) for a in node.args)
            and all(const_expr(k.value) for k in node.keywords)
        )
    return False


def imported_names(tree: ast.AST) -> set[str]:
    """Names an import binds (`import a.b` binds a; `from a import b as c` binds c)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.asname or a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.update(a.asname or a.name for a in node.names)
    return names


def _names_import(node: ast.AST, imported: set[str]) -> bool:
    """A bare reference (not a call) to something imported: a function handed over."""
    if isinstance(node, ast.Name):
        return node.id in imported and isinstance(node.ctx, ast.Load)
    if isinstance(node, ast.Attribute):
        root = node.value
        while isinstance(root, ast.Attribute):
            root = root.value
        return isinstance(root, ast.Name) and root.id in imported
    return False


def _const_comp(gen: ast.comprehension) -> bool:
    return const_expr(gen.iter) and all(const_expr(c) for c in gen.ifs)


# --- hard-coded answers -------------------------------------------------------------


def docstring_nodes(tree: ast.Module) -> set[int]:
    ids: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids
