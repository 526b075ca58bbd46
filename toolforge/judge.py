"""The dynamic gate's verdict on one candidate, from its two sandbox runs.

Run A carries the candidate's own tests and the calls mutated from them (perturbations);
run B repeats the tests (determinism). Everything judged here came back from the sandbox
as plain data the host validated (`toolforge.verify`); the candidate never reports on
itself.
"""

from __future__ import annotations

from toolforge.config import ForgeConfig
from toolforge.types import Candidate
from toolforge.verify import JobResult


def judge(c: Candidate, first: JobResult, second: JobResult, config: ForgeConfig) -> str:
    """Why the candidate fails the dynamic gate, or "" when it passes (then `c.log` says
    what passed)."""
    failures = first.failures("own")
    if first.error is None and first.n_tests("own") == 0 and not failures:
        failures = ["no test function was found in the tests"]
    if failures:
        more = f" (+{len(failures) - 1} more)" if len(failures) > 1 else ""
        return f"dynamic gate: {failures[0]}{more}"
    tolerated = set(config.perturbation_tolerated_errors)
    n_ran = 0
    for p in first.perturb:
        if p["status"] == "ok":
            n_ran += 1
            continue
        if p["status"] == "error" and p.get("error_type") in tolerated:
            continue
        what = f"raised {p.get('error_type')}" if p["status"] == "error" else p["status"]
        return (
            f"perturbation check: {c.name} {what} on an input mutated from the tests' "
            f"({p['label']}): {p.get('message', '')} - it may only work for its examples"
        )
    if first.perturb and n_ran == 0:
        # Rejecting a malformed input is fine; rejecting every variant of the examples
        # is what a tool that only knows its examples does.
        return (
            f"perturbation check: {c.name} rejected all {len(first.perturb)} input(s) "
            "mutated from the tests' - it may only work for its examples"
        )
    ran = [p for p in first.perturb if p["status"] == "ok"]
    seen = {t.digest for s in first.suites if s.label == "own" for t in s.tests}
    if len(ran) >= 2 and len({p["digest"] for p in ran}) == 1 and ran[0]["digest"] in seen:
        # Every changed input gave back exactly what the example did: the tool ignores
        # its input (a hard-coded answer the gate's literal checks did not catch).
        return (
            f"perturbation check: {c.name} returned the same result for all {len(ran)} "
            "inputs mutated from the tests' as for the tests themselves: it ignores its input"
        )
    if second.error or first.fingerprint() != second.fingerprint():
        diff = next(
            (a for a, b in zip(first.fingerprint(), second.fingerprint(), strict=False) if a != b),
            None,
        )
        where = f" ({diff[0]} {diff[1]})" if diff else ""
        return f"determinism: a second run gave different results{where}" + (
            f": {second.error}" if second.error else ""
        )
    n = first.n_tests("own")
    seconds = first.seconds
    labels = ", ".join(p["label"] for p in first.perturb) or "none derivable from the tests"
    c.log.append(
        f"dynamic gate: {n} test(s) passed (run of {seconds:.2f}s, the tool in a process of "
        "its own); same results on a second run"
    )
    c.log.append(
        f"perturbation check: {n_ran} of {len(first.perturb)} mutated call(s) ran, the others "
        f"were rejected with {'/'.join(sorted(tolerated)) or 'nothing'} ({labels})"
    )
    return ""
