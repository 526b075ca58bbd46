"""Refinement of a tool that failed in use (step `refine`, the DRAFT idea).

A failed use is a call that raised, or an answer that did not hold up on a real input:
a label said otherwise, an independent route answered the same task otherwise, it broke
a property of the task's form. The model sees the tool, its tests and those uses (the
input, its answer and the answer it should have given), and proposes a fixed module
plus tests. The proposal becomes the next version only if, in the sandbox, it passes
the old tests and the new ones, runs deterministically, survives the perturbation check,
at least one new test fails on the current version (a test that reproduces the failure),
AND on every failed input that has an answer to reach it now gives that answer (checked
here, from the records). Otherwise the proposal is stored as a rejection; a tool whose
answers were refuted by evidence is quarantined at once (it is wrong where it was
checked), one that only raised when memory's policy says it keeps failing
(`quarantine_min_uses`, `quarantine_fail_rate`).
"""

from __future__ import annotations

import contextlib
import json
import random
import secrets
from typing import Any

from memory import Provenance, ToolDraft, ToolInfo, UsageEvent
from memory.errors import LibraryError
from memory.protocol import ForgeWrites
from sandbox.base import Sandbox
from toolforge.composition import callable_tools, circle_problem, recheck_callers
from toolforge.config import ForgeConfig
from toolforge.harness import Job
from toolforge.judge import determinism_problem, perturbation_problem, tests_problem
from toolforge.perturb import perturbations
from toolforge.properties import same_answer
from toolforge.replies import Reply, ask, clip, prompt
from toolforge.source import literal_calls, test_names
from toolforge.static_gate import StaticReport, check_static
from toolforge.testfiles import merge_tests
from toolforge.types import AcceptedTool, ForgeOutcome, Rejection, StepModel
from toolforge.verify import JobResult, Verifier


def refine(
    name: str,
    library: ForgeWrites,
    sandbox: Sandbox,
    model: StepModel | None,
    config: ForgeConfig | None = None,
) -> ForgeOutcome:
    """Propose, verify and admit a fixed version of `name`; else maybe quarantine it."""
    config = config or ForgeConfig()
    tool: ToolInfo | None = library.get_tool(name)
    if tool is None:
        return ForgeOutcome("skipped", reason=f"no tool named {name!r} in the library")
    failures: list[UsageEvent] = library.tool_failures(name)
    if not failures:
        return ForgeOutcome(
            "skipped", tool=name, version=tool.version, reason="no failed uses to address"
        )
    provenance = Provenance(
        task=f"refine {name} v{tool.version}: {failures[0].error_type}: {failures[0].error_message}"[
            :300
        ],
        episode_id=failures[-1].episode_id,
        parent_version=tool.version,
    )
    if model is None:
        return _give_up(library, tool, "no model to propose a fix with", None)
    reply = _proposal(tool, failures, model, config)
    if isinstance(reply, ForgeOutcome):
        return reply
    if isinstance(reply, Rejection):
        return _give_up(library, tool, reply.reason, reply, provenance)
    if reply.declined is not None:
        return _give_up(library, tool, f"the model proposed no fix: {reply.declined}", None)
    static = check_static(
        reply.source,
        reply.tests,
        config,
        expected_name=name,
        callable_tools=callable_tools(library, reply.source),
    )
    circle = circle_problem(name, static.source, library) if static.ok else None
    if circle is not None:
        static.ok = False
        static.problems.append(circle)
    if not static.ok:
        return _give_up(
            library,
            tool,
            f"static gate: {static.reason}",
            Rejection(name, "static", f"static gate: {static.reason}", reply.source),
            provenance,
        )
    all_tests, added = merge_tests(tool.tests, static.tests)
    problem = _unreproduced(failures, static.tests, name) or _dynamic_problem(
        tool, static.source, static.tests, all_tests, failures, sandbox, library, config
    )
    if problem:
        rejection = Rejection(name, "dynamic", problem, static.source)
        return _give_up(library, tool, problem, rejection, provenance)
    outcome = _admit(library, tool, static, all_tests, len(added), len(failures), provenance)
    if outcome.status == "versioned":
        callers = recheck_callers(name, library, sandbox, config)
        if callers.quarantined:
            outcome.reason += (
                f"; its caller(s) {', '.join(callers.quarantined)} fail their tests with it "
                "and are quarantined"
            )
    return outcome


def _admit(
    library: ForgeWrites,
    tool: ToolInfo,
    static: StaticReport,
    all_tests: str,
    n_added: int,
    n_failures: int,
    provenance: Provenance,
) -> ForgeOutcome:
    """The fix, through both gates, as the tool's next version."""
    name = tool.name
    log = [
        f"refinement of v{tool.version} after {n_failures} failed use(s)",
        "static gate: passed",
        f"dynamic gate: the {len(test_names(tool.tests))} old and {n_added} new test(s) "
        f"pass; one new test fails on v{tool.version}; same results on a second run",
        "perturbation check: passed",
    ]
    draft = ToolDraft(
        name=name,
        source=static.source,
        tests=all_tests,
        signature=static.signature,
        docstring=static.docstring,
        provenance=provenance,
        verification_log="\n".join(log),
    )
    try:
        info = library.add_version(name, draft)
    except LibraryError as exc:
        return ForgeOutcome(
            "rejected", tool=name, version=tool.version, reason=f"the library refused it: {exc}"
        )
    reason = (
        f"{name} v{info.version} fixes v{tool.version}: passes {len(test_names(tool.tests))} old "
        f"and {n_added} new test(s), one of which fails on v{tool.version}"
    )
    return ForgeOutcome(
        "versioned",
        tool=name,
        version=info.version,
        reason=reason,
        accepted=[AcceptedTool("versioned", name, info.version, reason)],
        n_candidates=1,
    )


def _proposal(
    tool: ToolInfo, failures: list[UsageEvent], model: StepModel, config: ForgeConfig
) -> Reply | Rejection | ForgeOutcome:
    """The model's proposed fix (step `refine`), a reply it could not get into the format,
    or the outcome of a call that failed."""
    try:
        reply, error, _ = ask(model, _prompt(tool, failures, config), "refine")
    except Exception as exc:
        reason = f"the model call failed ({exc})"
        return ForgeOutcome("skipped", tool=tool.name, version=tool.version, reason=reason)
    if reply is None:
        return Rejection(tool.name, "reply", f"the model's reply could not be parsed: {error}")
    return reply


def _dynamic_problem(
    tool: ToolInfo,
    source: str,
    tests: str,
    all_tests: str,
    failures: list[UsageEvent],
    sandbox: Sandbox,
    library: ForgeWrites,
    config: ForgeConfig,
) -> str:
    """Why the proposal fails the dynamic gate (the forge's rules: toolforge/judge.py), or
    "": it must pass the old tests and its own, survive mutated inputs, give the answer
    to reach on every failed use that has one, run deterministically, and one of its
    tests must fail on the current version (it reproduces the failure)."""
    name = tool.name
    rng = random.Random(secrets.randbits(64))
    new_job = Job("new", name, source)
    new_job.add_tests("old", tool.tests)
    new_job.add_tests("new", tests)
    for label, args, kwargs in perturbations(
        literal_calls(all_tests, name), config.max_perturbations, rng
    ):
        new_job.add_probe("perturb", label, args, kwargs)
    targets = _targets(failures)
    for n, (failed_args, failed_kwargs, _expected) in enumerate(targets):
        new_job.add_probe("failed", f"failed use {n + 1}", tuple(failed_args), failed_kwargs)
    old_job = Job("old", name, tool.source)
    old_job.add_tests("new", tests)
    first, second = Verifier(sandbox, config, library).run_each([[new_job, old_job], [new_job]])
    result, again, old = first["new"], second["new"], first["old"]
    return (
        tests_problem(result, "old", "the proposal fails the tool's existing tests")
        or tests_problem(result, "new", "the proposal fails its own tests")
        or perturbation_problem(name, result, config)
        or _missed_targets(result, targets)
        or determinism_problem(result, again)
        or (
            f"no new test reproduces the failure: every new test also passes on v{tool.version}"
            if old.error is None and old.passed("new")
            else ""
        )
    )


def _missed_targets(result: JobResult, targets: list[tuple[list[Any], dict[str, Any], Any]]) -> str:
    """Unless it now gives the answer to reach on every failed use that has one, where not."""
    for p, (_a, _k, expected) in zip(result.free("failed"), targets, strict=False):
        if not (p.status == "ok" and same_answer(p.value, expected)):
            return (
                f"on an input it failed in use it now gives {p.shown or p.status}, not "
                f"{expected!r}: it does not agree where it was checked"
            )
    return ""


#: failed uses that are evidence against the tool's answers (not a raise)
EVIDENCE_FAILURES = frozenset(["WrongAnswer", "Disagreement", "PropertyViolated", "OffForm"])


def _targets(failures: list[UsageEvent]) -> list[tuple[list[Any], dict[str, Any], Any]]:
    """(args, kwargs, the answer to reach) of the failed uses that have one (a label, or
    the independent route's answer), each input once."""
    out: dict[str, tuple[list[Any], dict[str, Any], Any]] = {}
    for event in failures:
        if event.expected is None or event.error_type not in EVIDENCE_FAILURES:
            continue
        args, kwargs = list(event.args or []), dict(event.kwargs or {})
        out.setdefault(_json_norm([args, kwargs]), (args, kwargs, event.expected))
    return list(out.values())[:5]


def _prompt(tool: ToolInfo, failures: list[UsageEvent], config: ForgeConfig) -> str:
    lines = []
    for event in failures[:5]:
        args = ", ".join(
            [_show(a) for a in (event.args or [])]
            + [f"{k}={_show(v)}" for k, v in (event.kwargs or {}).items()]
        )
        if event.error_type in EVIDENCE_FAILURES:
            lines.append(f"- {tool.name}({args}) {event.error_message}")
        else:
            lines.append(f"- {tool.name}({args}) raised {event.error_type}: {event.error_message}")
    return prompt(
        "refine",
        name=tool.name,
        version=tool.version,
        source=clip(tool.source, config.max_prompt_chars),
        tests=clip(tool.tests, config.max_prompt_chars),
        failures="\n".join(lines),
    )


def _show(value: object) -> str:
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 200 else text[:200] + "…"


def _unreproduced(failures: list[UsageEvent], tests: str, name: str) -> str:
    """Unless a new test calls the tool with a failing input, say so."""
    wanted = []
    for event in failures:
        if event.args is None and event.kwargs is None:
            continue
        wanted.append(_json_norm([list(event.args or []), dict(event.kwargs or {})]))
    if not wanted:
        return ""  # the failures did not record their arguments: the old/new check decides
    calls = [_json_norm([list(c.args), dict(c.kwargs)]) for c in literal_calls(tests, name)]
    if any(w in calls for w in wanted):
        return ""
    return (
        "no new test calls the tool with an input that failed in use: add one that reproduces "
        "the failure"
    )


def _json_norm(value: object) -> str:
    return json.dumps(value, sort_keys=True, default=repr)


def _give_up(
    library: ForgeWrites,
    tool: ToolInfo,
    reason: str,
    rejection: Rejection | None,
    provenance: Provenance | None = None,
) -> ForgeOutcome:
    """Record the failed proposal; quarantine the tool if memory's policy says so."""
    rejections = []
    if rejection is not None:
        rejections.append(rejection)
        with contextlib.suppress(LibraryError):  # a read-only library: the outcome keeps it
            library.record_rejection(
                tool.name, rejection.reason, rejection.source, provenance or Provenance(task=reason)
            )
    policy = library.config
    current = library.get_tool(tool.name) or tool
    refuted = [f for f in library.tool_failures(tool.name) if f.error_type in EVIDENCE_FAILURES]
    why = ""
    if current.status == "active" and refuted:
        why = (
            f"its answer did not hold up on {len(refuted)} real input(s) "
            f"({refuted[0].error_type}) and no fix that agrees there was found ({reason})"
        )
    elif (
        current.status == "active"
        and current.n_uses >= policy.quarantine_min_uses
        and current.n_fail / max(1, current.n_uses) >= policy.quarantine_fail_rate
    ):
        why = (
            f"failed {current.n_fail} of {current.n_uses} uses and no verified fix was found "
            f"({reason})"
        )
    if why:
        library.set_status(tool.name, "quarantined", why[:500])
    return ForgeOutcome(
        "rejected",
        tool=tool.name,
        version=tool.version,
        reason=f"quarantined: {why}" if why else f"not refined: {reason}",
        rejections=rejections,
        n_candidates=1 if why or rejection else 0,
    )
