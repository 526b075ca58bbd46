"""Candidates without a model: functions the solution defined and called.

The sandbox runner records calls of library tools only, so the forge re-runs each
trace's code in the sandbox with a recorder on every top-level function
(`harness.instrument_program`). The re-run must reproduce the trace's answer; each
function called with literal arguments and a literal result becomes a candidate: its
module is the function plus what it needs from the solution (imports, constants, helper
functions renamed private), and its tests are the observed calls.
"""

from __future__ import annotations

import ast
import builtins
import json
from dataclasses import dataclass
from typing import Any

from memory import pyparse
from toolforge.config import ForgeConfig
from toolforge.harness import add_recorders
from toolforge.import_time import const_expr
from toolforge.source import normalise_name, rename_identifier, short_hash
from toolforge.testfiles import node_lines
from toolforge.types import Candidate, Rejection, Trace
from toolforge.verify import Verifier

_BUILTINS = frozenset(dir(builtins))


@dataclass
class Extraction:
    candidates: list[Candidate]
    rejections: list[Rejection]
    skip_reason: str = ""


def extract_candidates(
    traces: dict[int, Trace], verifier: Verifier, tool_sources: dict[str, str], config: ForgeConfig
) -> dict[int, Extraction]:
    """Candidates per trace index, from one batched instrumented re-run."""
    out: dict[int, Extraction] = {}
    runnable: dict[int, str] = {}
    for i, trace in traces.items():
        try:
            annotated, names = add_recorders(trace.code)
        except SyntaxError as exc:
            out[i] = Extraction(
                [], [], f"the trace's code does not parse (line {exc.lineno}: {exc.msg})"
            )
            continue
        if not names:
            out[i] = Extraction(
                [], [], "the solution defines no top-level function to turn into a tool"
            )
            continue
        runnable[i] = annotated
    if not runnable:
        return out
    order = list(runnable)
    reports = verifier.instrument(
        [runnable[i] for i in order], tool_sources, [traces[i].task for i in order]
    )
    for i, report in zip(order, reports, strict=True):
        out[i] = _from_report(i, traces[i], report, config)
    return out


def _norm(value: object) -> Any:
    return json.loads(json.dumps(value, sort_keys=True, default=repr))


def _from_report(i: int, trace: Trace, report: dict[str, Any], config: ForgeConfig) -> Extraction:
    if report.get("error"):
        return Extraction(
            [],
            [Rejection("(trace)", "extract", f"re-running the solution failed: {report['error']}")],
        )
    if trace.answer is not None and (
        not report.get("has_answer") or _norm(report.get("answer")) != _norm(trace.answer)
    ):
        got = report.get("answer") if report.get("has_answer") else "no answer"
        return Extraction(
            [],
            [
                Rejection(
                    "(trace)",
                    "extract",
                    f"re-running the solution gave {got!r}, not its answer {trace.answer!r} "
                    "(a solution that does not reproduce cannot teach a tool)",
                )
            ],
        )
    calls: dict[str, list[dict[str, Any]]] = {}
    for call in report.get("calls", []):
        calls.setdefault(call["name"], []).append(call)
    tree = pyparse.parse(trace.code)
    candidates: list[Candidate] = []
    rejections: list[Rejection] = []
    for fname, fcalls in calls.items():
        if fname.startswith("_"):
            continue  # marked private by its author: a helper, not a tool on its own
        usable = [c for c in fcalls if c.get("error") is None and c.get("args") and c.get("result")]
        name = normalise_name(fname)
        if not usable:
            rejections.append(
                Rejection(
                    name,
                    "extract",
                    f"{fname} was called but no call had literal arguments and a literal result "
                    "to test it with",
                )
            )
            continue
        if all(c["result"] == "None" for c in usable):
            rejections.append(
                Rejection(name, "extract", f"{fname} returns nothing (None): not a tool")
            )
            continue
        module, problem = extract_module(tree, trace.code, fname)
        if module is None:
            rejections.append(Rejection(name, "extract", problem))
            continue
        candidates.append(
            Candidate.of_trace(
                trace,
                i,
                name,
                module,
                observed_tests(name, usable, config.max_observed_tests),
                "observed",
                primary=min(c["depth"] for c in fcalls) == 0,
                log=[f"observed {len(fcalls)} call(s) of {fname} in the re-run of the solution"],
            )
        )
    # The function the solution called itself comes first: it is the trace's main tool.
    candidates.sort(key=lambda c: not c.primary)
    return Extraction(candidates, rejections)


def observed_tests(name: str, calls: list[dict[str, Any]], limit: int) -> str:
    """`assert name(<args>) == <result>` for distinct observed calls, outer calls first."""
    chosen: list[dict[str, Any]] = []
    seen: set[str] = set()
    for call in sorted(calls, key=lambda c: c["depth"]):
        if call["args"] in seen:
            continue
        seen.add(call["args"])
        chosen.append(call)
        if len(chosen) >= limit:
            break
    parts = [f"from tools import {name}\n"]
    for call in chosen:
        args, kwargs = ast.literal_eval(call["args"])
        rendered = ", ".join([repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()])
        test = f"test_{name}_observed_{short_hash(call['args'] + call['result'], 6)}"
        parts.append(f"\n\ndef {test}():\n    assert {name}({rendered}) == {call['result']}\n")
    return "".join(parts)


def extract_module(tree: ast.Module, code: str, fname: str) -> tuple[str | None, str]:
    """The function `fname` as a standalone module, or (None, why not)."""
    lines = code.splitlines(keepends=True)
    defs: dict[str, ast.stmt] = {}
    imports: dict[str, str] = {}
    consts: dict[str, ast.stmt] = {}
    assigned: dict[str, int] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            defs[node.name] = node
        elif isinstance(node, ast.Import):
            for alias in node.names:
                bound = alias.asname or alias.name.split(".")[0]
                imports[bound] = f"import {alias.name}" + (
                    f" as {alias.asname}" if alias.asname else ""
                )
        elif isinstance(node, ast.ImportFrom) and not node.level:
            for alias in node.names:
                bound = alias.asname or alias.name
                imports[bound] = f"from {node.module} import {alias.name}" + (
                    f" as {alias.asname}" if alias.asname else ""
                )
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name):
                    assigned[target.id] = assigned.get(target.id, 0) + 1
                    consts[target.id] = node
    if fname not in defs:
        return None, f"{fname} is not defined at the top level of the solution"

    needed_defs: list[str] = []
    needed_imports: list[str] = []
    needed_consts: list[str] = []
    queue: list[str] = [fname]
    while queue:
        current = queue.pop()
        found: ast.stmt | None = defs.get(current) or consts.get(current)
        assert found is not None
        node = found
        if any(isinstance(n, ast.Global) for n in ast.walk(node)):
            return None, f"{current} changes global state (`global`): not a self-contained function"
        for free in sorted(_free_names(node)):
            if free in defs:
                if free not in needed_defs and free != fname:
                    needed_defs.append(free)
                    queue.append(free)
            elif free in imports:
                if imports[free] not in needed_imports:
                    needed_imports.append(imports[free])
            elif free in consts:
                value = consts[free].value  # type: ignore[attr-defined]
                if assigned[free] > 1 or value is None or not const_expr(value):
                    return None, (
                        f"{fname} uses the global {free!r} that the solution computes at run "
                        "time: not a self-contained function"
                    )
                if free not in needed_consts:
                    needed_consts.append(free)
                    queue.append(free)
            elif free not in _BUILTINS:
                return None, f"{fname} uses {free!r}, which the solution never defines"

    order = {id(node): k for k, node in enumerate(tree.body)}
    stmts = [consts[n] for n in needed_consts] + [defs[n] for n in needed_defs] + [defs[fname]]
    stmts = sorted({id(s): s for s in stmts}.values(), key=lambda s: order[id(s)])
    body = "\n\n".join(node_lines(lines, s).rstrip() + "\n" for s in stmts)
    module = ("\n".join(needed_imports) + "\n\n\n" if needed_imports else "") + body
    # Helpers become private so the module has exactly one public function.
    for helper in needed_defs + needed_consts:
        if not helper.startswith("_") and helper in defs:
            module = rename_identifier(module, helper, "_" + helper)
    public = normalise_name(fname)
    if public != fname:
        module = rename_identifier(module, fname, public)
    return module, ""


def _free_names(node: ast.AST) -> set[str]:
    """Names a definition reads that it does not bind itself (an approximation that
    ignores scoping inside the definition, which is enough to find its dependencies)."""
    bound: set[str] = set()
    loaded: set[str] = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            (loaded if isinstance(sub.ctx, ast.Load) else bound).add(sub.id)
        elif isinstance(sub, ast.arg):
            bound.add(sub.arg)
        elif (
            isinstance(sub, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
            and sub is not node
        ):
            bound.add(sub.name)
        elif isinstance(sub, ast.alias):
            bound.add(sub.asname or sub.name.split(".")[0])
        elif isinstance(sub, ast.ExceptHandler) and sub.name:
            bound.add(sub.name)
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        bound.add(node.name)
        # Annotations and decorators are read too (`list[Word]`, `@lru_cache`).
    return loaded - bound
