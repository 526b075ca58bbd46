"""The dynamic gate's verdict, from two sandbox runs: one set of rules for a new tool
(`judge`) and for a repaired version (`toolforge.refine`): tests judged on this side
(`tests_problem`), mutated inputs (`perturbation_problem`), real inputs, determinism
(`determinism_problem`).

Run A carries the candidate's own tests, inputs mutated from them at random (drawn on
this side for this admission: a tool cannot know them in advance), its own task and
other real tasks of its kind; run B repeats them (determinism). Everything judged here
was read from the supervisor's records and checked on this side (`toolforge.verify`):
the candidate never reports on itself, and no test code decides its own verdict.
"""

from __future__ import annotations

from toolforge.config import ForgeConfig
from toolforge.perturb import keeps_shape
from toolforge.properties import same_answer, violations
from toolforge.types import Candidate
from toolforge.verify import JobResult

#: the share of mutated inputs a tool may reject (a mutation can make an input malformed)
MAX_REJECTED_SHARE = 0.5


def judge(c: Candidate, first: JobResult, second: JobResult, config: ForgeConfig) -> str:
    """Why the candidate fails the dynamic gate, or "" when it passes (then `c.log` says
    what passed)."""
    failures = first.failures("own")
    if first.error is None and first.n_tests("own") == 0 and not failures:
        failures = ["no test function was found in the tests"]
    if failures:
        return tests_problem(first, "own", "dynamic gate") or f"dynamic gate: {failures[0]}"
    need = config.min_model_tests if c.origin == "distill" else config.min_tests
    confirmed = first.n_confirmed("own")
    if confirmed < need:
        return (
            f"dynamic gate: {confirmed} test(s) were judged on this side (need {need}): write "
            f"tests as literal calls, `assert {c.name}(<literal args>) == <literal>`, each with "
            "a call that returns (a test's own report of passing is not believed)"
        )
    # Real inputs first: what it does on tasks it will meet says more than mutations do.
    if problem := _real_inputs(c, first):
        return problem
    if problem := perturbation_problem(c.name, first, config):
        return problem
    if problem := determinism_problem(first, second):
        return problem
    n_ran = sum(p.status == "ok" for p in first.perturb)
    c.log.append(
        f"dynamic gate: {confirmed} test(s) judged here from the records of {c.name}'s calls "
        f"(run of {first.seconds:.2f}s, the tool in a process of its own); same results on a "
        "second run"
    )
    c.log.append(
        f"perturbation check: {n_ran} of {len(first.perturb)} inputs mutated at random ran "
        f"({', '.join(p.label for p in first.perturb) or 'none derivable from the tests'})"
    )
    if first.free("origin") or first.free("sibling"):
        c.log.append(
            f"real inputs: its own task gave its confirmed answer; {len(first.free('sibling'))} "
            "other task(s) of its kind ran cleanly, in the task's form"
        )
    return ""


def tests_problem(result: JobResult, label: str, what: str) -> str:
    """The first failure of the `label` suite (`what: failure (+n more)`), or ""."""
    failures = result.failures(label)
    if not failures:
        return ""
    more = f" (+{len(failures) - 1} more)" if len(failures) > 1 else ""
    return f"{what}: {failures[0]}{more}"


def determinism_problem(first: JobResult, second: JobResult) -> str:
    """Unless the second run gave the same results as the first, what differed."""
    if not second.error and first.fingerprint() == second.fingerprint():
        return ""
    diff = next(
        (a for a, b in zip(first.fingerprint(), second.fingerprint(), strict=False) if a != b),
        None,
    )
    where = f" ({diff[0]} {diff[1]})" if diff else ""
    return f"determinism: a second run gave different results{where}" + (
        f": {second.error}" if second.error else ""
    )


def perturbation_problem(name: str, first: JobResult, config: ForgeConfig) -> str:
    """Inputs mutated from the tests' at random: the tool may reject a malformed one (an
    error the config tolerates) but not most well-formed ones, may not crash otherwise,
    and may not give the same answer for all of them as for its examples."""
    perturb = first.perturb
    if not perturb:
        return ""
    tolerated = set(config.perturbation_tolerated_errors)
    for p in perturb:
        if p.status in ("ok", "skipped") or (p.status == "error" and p.error_type in tolerated):
            continue
        what = f"raised {p.error_type}" if p.status == "error" else p.status
        return (
            f"perturbation check: {name} {what} on an input mutated from the tests' "
            f"({p.label}): {p.message} - it may only work for its examples"
        )
    tried = [p for p in perturb if p.status != "skipped"]
    ran = [p for p in tried if p.status == "ok"]
    kept = [p for p in tried if keeps_shape(p.label)]
    refused = [p for p in kept if p.status != "ok"]
    if kept and len(refused) > MAX_REJECTED_SHARE * len(kept):
        # Rejecting a malformed input is fine; rejecting most well-formed variants of the
        # examples is what a tool that only knows its examples does.
        return (
            f"perturbation check: {name} rejected {len(refused)} of {len(kept)} well-formed "
            "inputs mutated from the tests' - it may only work for its examples"
        )
    real = [p for p in first.free("sibling") if p.status == "ok"]
    if tried and not ran and not real:
        # With no other task of its kind to try, at least one variant must run.
        return (
            f"perturbation check: {name} rejected all {len(tried)} inputs mutated from the "
            "tests' - it may only work for its examples"
        )
    seen = {t.digest for s in first.suites if s.label == "own" for t in s.tests}
    if len(ran) >= 2 and len({p.digest for p in ran}) == 1 and ran[0].digest in seen:
        # Every changed input gave back exactly what the example did: the tool ignores
        # its input (a hard-coded answer the gate's literal checks did not catch).
        return (
            f"perturbation check: {name} returned the same result for all {len(ran)} "
            "inputs mutated from the tests' as for the tests themselves: it ignores its input"
        )
    return ""


def _real_inputs(c: Candidate, first: JobResult) -> str:
    """Its own task must give the answer that was confirmed there; other tasks of its kind
    must run cleanly and give an answer of the task's form."""
    for p in first.free("origin"):
        if p.status != "ok":
            return (
                f"its own task: {c.name} {p.status} ({p.error_type or ''}: {p.message}) where "
                f"the solution it came from answered {c.answer!r}"
            )
        if not same_answer(p.value, c.answer):
            return (
                f"its own task: {c.name} answers {p.shown}, but the answer confirmed there is "
                f"{c.answer!r}"
            )
    for p in first.free("sibling"):
        task = str(p.args[0]) if p.args else ""
        short = task[:80] + ("..." if len(task) > 80 else "")
        if p.status == "skipped":
            continue
        if p.status != "ok":
            return (
                f"generality: on another task of its kind ({short!r}) {c.name} "
                f"{'raised ' + str(p.error_type) if p.status == 'error' else p.status}: {p.message}"
            )
        if p.value is None or (isinstance(p.value, str) and not p.value.strip()):
            return f"generality: on another task of its kind ({short!r}) {c.name} answered nothing"
        broken = violations(c.properties, task, p.value)
        if broken:
            return (
                f"generality: on another task of its kind ({short!r}) {c.name} answered "
                f"{p.shown}, which breaks what the task states: {broken[0]}"
            )
    return ""
