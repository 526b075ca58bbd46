"""`forge_batch`: traces -> candidates -> static gate -> dynamic gate -> dedup -> admission.

One batch makes few sandbox runs, whatever its size: (instrumentation, without a model)
then run A (every candidate's tests and perturbations, the candidates' tests against each
other, and against similar library tools) in parallel with run B (the determinism re-run
of the candidates' own checks). `forge(trace)` is a batch of one.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from memory import Provenance, ToolDraft, ToolInfo, shape_similarity
from memory.errors import LibraryError
from memory.protocol import ToolLibrary
from memory.testfiles import merge_tests
from sandbox.base import Sandbox
from toolforge.config import ForgeConfig
from toolforge.distill import distill_candidate, distill_task_candidate
from toolforge.extract import Extraction, extract_candidates
from toolforge.harness import Job, Suite
from toolforge.perturb import perturbations
from toolforge.safe_eval import rewrite_eval
from toolforge.source import (
    literal_calls,
    rename_identifier,
    test_names,
)
from toolforge.static_gate import check_static
from toolforge.types import AcceptedTool, Candidate, ForgeOutcome, Rejection, Trace
from toolforge.verify import JobResult, Verifier

MAX_ROUNDS = 3


@dataclass
class _TraceState:
    skip: str = ""
    rejections: list[Rejection] = field(default_factory=list)
    accepted: list[AcceptedTool] = field(default_factory=list)
    n_candidates: int = 0


def forge(
    trace: Trace,
    library: ToolLibrary,
    sandbox: Sandbox,
    model: Any = None,
    config: ForgeConfig | None = None,
) -> ForgeOutcome:
    """Forge one trace into (at most a few) library tools; see `forge_batch`."""
    return forge_batch([trace], library, sandbox, model=model, config=config)[0]


def forge_batch(
    traces: Sequence[Trace],
    library: ToolLibrary,
    sandbox: Sandbox,
    model: Any = None,
    config: ForgeConfig | None = None,
) -> list[ForgeOutcome]:
    """One outcome per trace, in order. Candidates of the batch are deduplicated among
    themselves before they meet the library, so parallel tasks of one family add one tool."""
    return _Batch(library, sandbox, model, config or ForgeConfig()).run(list(traces))


def forge_candidate(
    candidate: Candidate, library: ToolLibrary, sandbox: Sandbox, config: ForgeConfig
) -> ForgeOutcome:
    """A ready-made candidate (a person's tool: no trace, no model) through the same
    static gate, dynamic gate, dedup and admission as forged ones."""
    batch = _Batch(library, sandbox, None, config)
    batch.states = [_TraceState(n_candidates=1)]
    if batch._static(candidate):
        batch._dynamic_and_place([candidate])
    return batch._outcome(batch.states[0])


class _Batch:
    def __init__(
        self, library: ToolLibrary, sandbox: Sandbox, model: Any, config: ForgeConfig
    ) -> None:
        self.library = library
        self.model = model
        self.config = config
        self.verifier = Verifier(sandbox, config)
        self.states: list[_TraceState] = []
        #: tools merged into or versioned in the current placement round
        self._touched: set[str] = set()

    # --- the pipeline -----------------------------------------------------------------

    def run(self, traces: list[Trace]) -> list[ForgeOutcome]:
        self.states = [_TraceState() for _ in traces]
        # A batch end run again (the process was killed after the forge wrote to the
        # library, before the batch was on record) must not forge a trace twice.
        episodes = [t.episode_id for t in traces if isinstance(t, Trace) and t.episode_id]
        marks = self.library.forge_marks(episodes) if episodes else {}
        seen = self.library.episodes_with_tools(set(episodes) - set(marks)) if episodes else set()
        valid: dict[int, Trace] = {}
        replayed: dict[int, ForgeOutcome] = {}
        for i, trace in enumerate(traces):
            episode = trace.episode_id if isinstance(trace, Trace) else None
            if episode in marks:
                replayed[i] = ForgeOutcome.from_mark(marks[episode])
            elif episode in seen:
                self.states[
                    i
                ].skip = "already forged (before an interruption): its tools are in the library"
            elif problem := _trace_problem(trace, self.config):
                self.states[i].skip = problem
            else:
                valid[i] = trace
        candidates = self._candidates(valid)
        gated = [c for c in candidates if self._static(c)]
        if gated:
            self._dynamic_and_place(gated)
        outcomes = [replayed.get(i) or self._outcome(state) for i, state in enumerate(self.states)]
        fresh = {
            episode: outcome.to_mark()
            for i, outcome in enumerate(outcomes)
            if i not in replayed
            and isinstance(traces[i], Trace)
            and (episode := traces[i].episode_id)
        }
        # A read-only library (a guest) keeps no marks: its outcomes still come back.
        with contextlib.suppress(LibraryError):
            self.library.mark_forged(fresh)
        return outcomes

    def _candidates(self, valid: dict[int, Trace]) -> list[Candidate]:
        if not valid:
            return []
        mode = "distill" if self.config.candidates == "auto" else self.config.candidates
        with_model = self.model is not None and self.config.use_model
        extractions: dict[int, Extraction] = {}
        if mode != "distill" or not with_model:
            names = sorted({n for t in valid.values() for n in t.tools_used})
            extractions = extract_candidates(
                valid, self.verifier, self._tool_sources(names), self.config
            )
        if with_model and mode != "extract":
            # Only the traces extraction gave nothing admissible (all of them in `distill`).
            todo = [
                (i, t)
                for i, t in valid.items()
                if not (
                    i in extractions and any(self._admissible(c) for c in extractions[i].candidates)
                )
            ]
            if todo:
                # Model calls wait on the network: a batch asks for its traces' tools at once.
                workers = max(1, min(self.config.parallel_distill, len(todo)))
                with ThreadPoolExecutor(max_workers=workers) as pool:
                    done = pool.map(lambda it: self._distill(it[0], it[1], valid), todo)
                    for (i, _), ex in zip(todo, done, strict=True):
                        earlier = extractions.get(i)
                        if earlier is not None:
                            ex.rejections[:0] = earlier.rejections
                        extractions[i] = ex
        out: list[Candidate] = []
        for i, ex in extractions.items():
            state = self.states[i]
            state.skip = ex.skip_reason
            for rejection in ex.rejections:
                self._reject_raw(
                    i, rejection, Provenance(valid[i].task, valid[i].task_id, valid[i].episode_id)
                )
            state.n_candidates += len(ex.candidates)
            out.extend(ex.candidates)
        return out

    def _admissible(self, c: Candidate) -> bool:
        """Would the static gate pass it? (Asked before paying for a distill call.)"""
        return check_static(
            rewrite_eval(c.source), c.tests, self.config, task=c.task, answer=c.answer
        ).ok

    def _distill(self, i: int, trace: Trace, valid: dict[int, Trace]) -> Extraction:
        """A solution written as a function of the task's text gets the short prompt with
        other tasks of its kind (from this batch, then from the library's solved
        episodes), which a small model needs to see what to read from the text."""
        if "(TASK)" not in trace.code:
            return distill_candidate(i, trace, self.model, self.config)
        siblings = [
            (t.task, t.answer)
            for j, t in valid.items()
            if j != i and shape_similarity(t.task, trace.task) >= 0.45
        ]
        if len(siblings) < 2:
            with contextlib.suppress(LibraryError):
                siblings += self.library.solved_examples(
                    trace.task, k=2 - len(siblings), exclude=[t for t, _ in siblings]
                )
        return distill_task_candidate(i, trace, siblings[:3], self.model, self.config)

    def _tool_sources(self, names: list[str]) -> dict[str, str]:
        if not names:
            return {}
        try:
            return dict(self.library.tool_sources(names))
        except LibraryError:
            # A tool the trace used may have been archived since: give what exists.
            known = set(self.library.tool_names())
            return dict(self.library.tool_sources([n for n in names if n in known]))

    def _static(self, c: Candidate) -> bool:
        c.source = rewrite_eval(c.source)
        min_tests = self.config.min_model_tests if c.origin == "distill" else self.config.min_tests
        report = check_static(
            c.source, c.tests, self.config, task=c.task, answer=c.answer, min_tests=min_tests
        )
        c.name = report.name or c.name or "(unnamed)"
        if not report.ok:
            if c.origin == "human":
                # A person fixes the file once: name every problem, not only the first.
                reason = "static gate: " + "; ".join(report.problems)
            else:
                more = (
                    f" (and {len(report.problems) - 1} more problem(s))"
                    if len(report.problems) > 1
                    else ""
                )
                reason = f"static gate: {report.reason}{more}"
            self._reject(c, "static", reason)
            return False
        c.source, c.tests = report.source, report.tests
        c.signature, c.docstring = report.signature, report.docstring
        c.log.append(
            "static gate: passed (one annotated, documented function; allowed imports; "
            "no import-time effects; no hard-coded answer)"
        )
        return True

    def _dynamic_and_place(self, cands: list[Candidate]) -> None:
        cfg = self.config
        ids = range(len(cands))
        partners = {
            k: [j for j in ids if j != k and _similar(cands[j], cands[k], cfg)] for k in ids
        }
        own_nb = {k: self._neighbours(cands[k]) for k in ids}
        nb: dict[int, dict[str, ToolInfo]] = {}
        for k in ids:
            merged = dict(own_nb[k])
            for j in partners[k]:
                merged.update(own_nb[j])
            nb[k] = merged

        gate_jobs = [self._gate_job(k, c) for k, c in enumerate(cands)]
        cross_jobs = self._cross_jobs(cands, partners, nb)
        results_a, results_b = self.verifier.run_each([gate_jobs + cross_jobs, gate_jobs])

        verified = [k for k in ids if self._judge(cands[k], results_a[f"g{k}"], results_b[f"g{k}"])]
        reps = self._cluster(cands, verified, results_a)
        pending = [(r, members) for r, members in reps.items()]
        results = results_a
        for round_no in range(MAX_ROUNDS):
            deferred: list[tuple[int, list[int]]] = []
            self._touched = set()
            for rep, members in pending:
                if not self._place(cands, rep, members, nb[rep], results):
                    deferred.append((rep, members))
            if not deferred:
                return
            if round_no == MAX_ROUNDS - 1:
                break
            # The library changed under these candidates (a tool admitted or versioned by
            # another one of this batch): compare them again with the current library.
            pending = deferred
            for rep, _members in pending:
                names = {**nb[rep], **self._neighbours(cands[rep])}
                fresh = {n: self.library.get_tool(n) for n in names}
                nb[rep] = {n: t for n, t in fresh.items() if t is not None and t.status == "active"}
            jobs = self._library_jobs(cands, {rep: [rep, *members] for rep, members in pending}, nb)
            results = self.verifier.run_jobs(jobs)
        for rep, members in deferred:
            for k in [rep, *members]:
                self._reject(
                    cands[k],
                    "admission",
                    "the library kept changing during this batch: forge it again",
                )

    # --- jobs -------------------------------------------------------------------------

    def _gate_job(self, k: int, c: Candidate) -> Job:
        calls = literal_calls(c.tests, c.name)
        return Job(
            id=f"g{k}",
            tool=c.name,
            source=c.source,
            suites=[Suite("own", c.tests)],
            perturb=perturbations(calls, self.config.max_perturbations),
        )

    def _cross_jobs(
        self,
        cands: list[Candidate],
        partners: dict[int, list[int]],
        nb: dict[int, dict[str, ToolInfo]],
    ) -> list[Job]:
        jobs: list[Job] = []
        for k, c in enumerate(cands):
            suites = [
                Suite(f"b{j}", rename_identifier(cands[j].tests, cands[j].name, c.name))
                for j in partners[k]
            ]
            if suites:
                jobs.append(Job(id=f"x{k}", tool=c.name, source=c.source, suites=suites))
        jobs.extend(self._library_jobs(cands, {k: [k] for k in range(len(cands))}, nb))
        return jobs

    def _library_jobs(
        self,
        cands: list[Candidate],
        clusters: dict[int, list[int]],
        nb: dict[int, dict[str, ToolInfo]],
    ) -> list[Job]:
        """Each neighbour runs the tests of the candidates near it; each candidate runs its
        neighbours' tests (job `x<k>`, suites `i:<name>`)."""
        inc_suites: dict[str, list[Suite]] = {}
        inc_info: dict[str, ToolInfo] = {}
        cand_suites: dict[int, list[Suite]] = {}
        for rep, cluster in clusters.items():
            for name, inc in nb[rep].items():
                inc_info[name] = inc
                for k in cluster:
                    c = cands[k]
                    inc_suites.setdefault(name, []).append(
                        Suite(f"c{k}", rename_identifier(c.tests, c.name, name))
                    )
                    cand_suites.setdefault(k, []).append(
                        Suite(f"i:{name}", rename_identifier(inc.tests, name, c.name))
                    )
        jobs = [
            Job(id=f"i:{name}", tool=name, source=inc_info[name].source, suites=suites)
            for name, suites in inc_suites.items()
        ]
        jobs += [
            Job(id=f"y{k}", tool=cands[k].name, source=cands[k].source, suites=suites)
            for k, suites in cand_suites.items()
        ]
        return jobs

    def _neighbours(self, c: Candidate) -> dict[str, ToolInfo]:
        out: dict[str, ToolInfo] = {}
        same = self.library.get_tool(c.name)
        if same is not None and same.status == "active":
            out[c.name] = same
        if self.config.neighbours > 0:
            query = f"{c.name.replace('_', ' ')}: {c.signature}\n{c.docstring}"
            for hit in self.library.search_tools(query, k=self.config.neighbours):
                if hit.similarity >= self.config.neighbour_min_similarity:
                    out.setdefault(hit.tool.name, hit.tool)
        return out

    # --- judging ------------------------------------------------------------------------

    def _judge(self, c: Candidate, first: JobResult, second: JobResult) -> bool:
        failures = first.failures("own")
        if first.error is None and first.n_tests("own") == 0 and not failures:
            failures = ["no test function was found in the tests"]
        if failures:
            more = f" (+{len(failures) - 1} more)" if len(failures) > 1 else ""
            self._reject(c, "dynamic", f"dynamic gate: {failures[0]}{more}")
            return False
        tolerated = set(self.config.perturbation_tolerated_errors)
        n_ran = 0
        for p in first.perturb:
            if p["status"] == "ok":
                n_ran += 1
                continue
            if p["status"] == "error" and p.get("error_type") in tolerated:
                continue
            what = f"raised {p.get('error_type')}" if p["status"] == "error" else p["status"]
            self._reject(
                c,
                "dynamic",
                f"perturbation check: {c.name} {what} on an input mutated from the tests' "
                f"({p['label']}): {p.get('message', '')} - it may only work for its examples",
            )
            return False
        if first.perturb and n_ran == 0:
            # Rejecting a malformed input is fine; rejecting every variant of the examples
            # is what a tool that only knows its examples does.
            self._reject(
                c,
                "dynamic",
                f"perturbation check: {c.name} rejected all {len(first.perturb)} input(s) "
                "mutated from the tests' - it may only work for its examples",
            )
            return False
        ran = [p for p in first.perturb if p["status"] == "ok"]
        seen = {t.digest for s in first.suites if s.label == "own" for t in s.tests}
        if len(ran) >= 2 and len({p["digest"] for p in ran}) == 1 and ran[0]["digest"] in seen:
            # Every changed input gave back exactly what the example did: the tool ignores
            # its input (a hard-coded answer the gate's literal checks did not catch).
            self._reject(
                c,
                "dynamic",
                f"perturbation check: {c.name} returned the same result for all {len(ran)} "
                "inputs mutated from the tests' as for the tests themselves: it ignores its input",
            )
            return False
        if second.error or first.fingerprint() != second.fingerprint():
            diff = next(
                (
                    a
                    for a, b in zip(first.fingerprint(), second.fingerprint(), strict=False)
                    if a != b
                ),
                None,
            )
            where = f" ({diff[0]} {diff[1]})" if diff else ""
            self._reject(
                c,
                "dynamic",
                f"determinism: a second run gave different results{where}"
                + (f": {second.error}" if second.error else ""),
            )
            return False
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
        return True

    def _cluster(
        self, cands: list[Candidate], verified: list[int], results: dict[str, JobResult]
    ) -> dict[int, list[int]]:
        """Representatives and the candidates they cover (they pass those tests)."""

        def covers(t: int, c: int) -> bool:
            job = results.get(f"x{t}")
            return t != c and job is not None and job.passed(f"b{c}")

        order = sorted(
            verified,
            key=lambda k: (
                -sum(covers(k, j) for j in verified),
                -len(test_names(cands[k].tests)),
                k,
            ),
        )
        reps: dict[int, list[int]] = {}
        for k in order:
            rep = next((r for r in reps if covers(r, k)), None)
            if rep is None:
                reps[k] = []
            else:
                reps[rep].append(k)
                cands[k].log.append(
                    f"batch dedup: covered by the candidate {cands[rep].name} of this batch"
                )
        return reps

    def _place(
        self,
        cands: list[Candidate],
        rep: int,
        members: list[int],
        neighbours: dict[str, ToolInfo],
        results: dict[str, JobResult],
    ) -> bool:
        """Merge, version or admit one cluster; False: compare again next round."""
        c = cands[rep]
        cluster = [rep, *members]
        ordered = sorted(neighbours.values(), key=lambda t: t.name != c.name)
        for inc in ordered:
            inc_job = results.get(f"i:{inc.name}")
            if inc_job is None:
                continue
            current = self.library.get_tool(inc.name)
            if inc.name in self._touched or current is None or current.version != inc.version:
                return False
            if all(inc_job.passed(f"c{k}") for k in cluster):
                for k in cluster:
                    self._merge(
                        cands[k],
                        inc,
                        f"equivalent to {inc.name} v{inc.version}: it passes the candidate's tests",
                    )
                return True
            y = results.get(f"y{rep}")
            if y is not None and y.passed(f"i:{inc.name}"):
                self._version(c, inc)
                info = self.library.get_tool(inc.name)
                for k in members:
                    if info is not None:
                        self._merge(cands[k], info, f"covered by {inc.name} v{info.version}")
                return True
        clash = self.library.get_tool(c.name)
        if clash is not None and clash.status == "active":
            if c.name not in neighbours:
                return False  # admitted by another candidate of this batch: compare first
            for k in cluster:
                self._reject(
                    cands[k],
                    "dedup",
                    f"name clash: a different active tool is named {c.name} (it fails this "
                    "candidate's tests and this candidate fails its tests): choose another name",
                )
            return True
        if clash is not None and clash.status == "quarantined":
            # Quarantine means "do not use" (by a person or by the failure policy); a new trace
            # must not quietly undo it. `tools restore` or a verified `refine` fix can.
            for k in cluster:
                self._reject(
                    cands[k],
                    "dedup",
                    f"{c.name} is quarantined ({clash.status_reason or 'no reason given'}): "
                    f"the forge does not bring it back; `evoagent tools restore {c.name}` does",
                )
            return True
        try:
            info = self.library.add_tool(self._draft(c, c.name, c.source, c.tests, None))
        except LibraryError as exc:
            self._reject(c, "admission", f"the library refused it: {exc}")
            return True
        self._accept(
            c, AcceptedTool("admitted", info.name, info.version, self._summary(c, "admitted"))
        )
        self._touched.add(info.name)
        for k in members:
            self._merge(cands[k], info, f"covered by {info.name}, admitted from this batch")
        return True

    # --- admission ----------------------------------------------------------------------

    def _draft(
        self, c: Candidate, name: str, source: str, tests: str, parent: int | None
    ) -> ToolDraft:
        return ToolDraft(
            name=name,
            source=source,
            tests=tests,
            signature=c.signature.replace(c.name, name, 1),
            docstring=c.docstring,
            provenance=Provenance(c.task, c.task_id, c.episode_id, parent),
            verification_log="\n".join(c.log),
        )

    def _merge(self, c: Candidate, inc: ToolInfo, why: str) -> None:
        # The library merges them (memory.testfiles: a clashing name is kept, suffixed).
        tests = rename_identifier(c.tests, c.name, inc.name)
        try:
            info = self.library.merge_into(
                inc.name, tests, Provenance(c.task, c.task_id, c.episode_id)
            )
        except LibraryError as exc:
            self._reject(c, "admission", f"merging into {inc.name} failed: {exc}")
            return
        self._touched.add(inc.name)
        self._accept(
            c, AcceptedTool("merged", info.name, info.version, f"merged into {info.name}: {why}")
        )

    def _version(self, c: Candidate, inc: ToolInfo) -> None:
        source = rename_identifier(c.source, c.name, inc.name)
        own = rename_identifier(c.tests, c.name, inc.name)
        try:
            tests, added = merge_tests(inc.tests, own)
            c.log.append(
                f"dedup: passes all tests of {inc.name} v{inc.version}, which fails some of "
                f"this candidate's: a better version (+{len(added)} tests)"
            )
            info = self.library.add_version(
                inc.name, self._draft(c, inc.name, source, tests, inc.version)
            )
        except LibraryError as exc:
            self._reject(c, "admission", f"adding a version of {inc.name} failed: {exc}")
            return
        self._touched.add(inc.name)
        self._accept(
            c,
            AcceptedTool(
                "versioned",
                info.name,
                info.version,
                f"{info.name} v{info.version} replaces v{inc.version}: it passes all its tests "
                f"and {len(added)} new one(s) v{inc.version} fails",
            ),
        )

    def _summary(self, c: Candidate, status: str) -> str:
        n = len(test_names(c.tests))
        return f"{status} {c.name}: {n} test(s) pass, deterministic, perturbation check passed"

    # --- bookkeeping --------------------------------------------------------------------

    def _accept(self, c: Candidate, accepted: AcceptedTool) -> None:
        # The function the trace's own code called leads its outcome; helpers follow.
        accepted_list = self.states[c.trace_index].accepted
        if c.primary:
            accepted_list.insert(0, accepted)
        else:
            accepted_list.append(accepted)

    def _reject(self, c: Candidate, stage: str, reason: str) -> None:
        self._reject_raw(
            c.trace_index,
            Rejection(c.name or "(unnamed)", stage, reason, c.source),
            Provenance(c.task, c.task_id, c.episode_id),
        )

    def _reject_raw(self, i: int, rejection: Rejection, provenance: Provenance) -> None:
        self.states[i].rejections.append(rejection)
        # A read-only library cannot store it: the outcome still carries the rejection.
        with contextlib.suppress(LibraryError):
            self.library.record_rejection(
                rejection.name, rejection.reason, rejection.source, provenance
            )

    def _outcome(self, state: _TraceState) -> ForgeOutcome:
        rank = {"admitted": 0, "versioned": 1, "merged": 2}
        if state.accepted:
            main = min(state.accepted, key=lambda a: rank[a.status])
            return ForgeOutcome(
                status=main.status,
                tool=main.tool,
                version=main.version,
                reason=main.reason,
                rejections=state.rejections,
                accepted=state.accepted,
                n_candidates=state.n_candidates,
            )
        if state.rejections:
            return ForgeOutcome(
                status="rejected",
                reason=state.rejections[0].reason,
                rejections=state.rejections,
                n_candidates=state.n_candidates,
            )
        return ForgeOutcome(
            status="skipped",
            reason=state.skip or "no candidate tool was found",
            n_candidates=state.n_candidates,
        )


def _trace_problem(trace: Any, config: ForgeConfig) -> str:
    if not isinstance(trace, Trace):
        return f"not a Trace but {type(trace).__name__}: nothing to forge"
    if not (trace.task or "").strip() and not (trace.code or "").strip():
        return "empty trace: no task and no code"
    if not (trace.code or "").strip():
        return "the trace has no code: nothing to turn into a tool"
    if trace.verdict not in config.accept_verdicts:
        return f"the trace's verdict is {trace.verdict!r}: only successful traces are forged"
    return ""


_STOP = frozenset(
    [
        "a",
        "an",
        "the",
        "of",
        "to",
        "and",
        "or",
        "in",
        "on",
        "for",
        "is",
        "are",
        "be",
        "by",
        "with",
        "from",
        "it",
        "its",
        "this",
        "that",
        "as",
    ]
)


def _words(c: Candidate) -> Counter[str]:
    text = f"{c.name.replace('_', ' ')} {c.signature} {c.docstring}".lower()
    return Counter(w for w in re.findall(r"[a-z]+", text) if w not in _STOP and len(w) > 1)


def _similar(a: Candidate, b: Candidate, config: ForgeConfig) -> bool:
    """Worth comparing by behaviour within a batch (cheap: word overlap, or the same name)."""
    if a.name == b.name:
        return True
    wa, wb = _words(a), _words(b)
    dot = sum(wa[w] * wb[w] for w in wa)
    norm = math.sqrt(sum(v * v for v in wa.values()) * sum(v * v for v in wb.values()))
    return norm > 0 and dot / norm >= config.batch_min_similarity
