"""`forge_batch`: traces -> candidates -> static gate -> dynamic gate -> dedup -> admission.

One batch makes few sandbox runs, whatever its size: (instrumentation, without a model)
then run A (every candidate's tests and perturbations, the candidates' tests against each
other, and against similar library tools) in parallel with run B (the determinism re-run
of the candidates' own checks). `forge(trace)` is a batch of one.
"""

from __future__ import annotations

import contextlib
import random
import secrets
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from memory import Provenance, ToolInfo, shape_similarity
from memory.errors import LibraryError
from memory.protocol import ForgeWrites
from memory.tools import imported_tools
from sandbox.base import Sandbox
from toolforge.comparisons import cross_jobs, gate_job, library_jobs, similar
from toolforge.composition import callable_tools, circle_problem, recheck_callers
from toolforge.config import ForgeConfig
from toolforge.distill import distill_candidate, distill_task_candidate
from toolforge.extract import Extraction, extract_candidates
from toolforge.judge import judge
from toolforge.placement import Ledger, Placement
from toolforge.properties import derive_properties
from toolforge.safe_eval import rewrite_eval
from toolforge.static_gate import check_static
from toolforge.types import Candidate, ForgeOutcome, StepModel, Trace
from toolforge.verify import Verifier

MAX_ROUNDS = 3
#: how alike two task texts must be in form to be tasks of one kind (memory.shape_similarity)
SAME_KIND = 0.45
#: other tasks of its kind a candidate is held to (run cleanly, keep its properties)
MAX_SIBLINGS = 5


def forge(
    trace: Trace,
    library: ForgeWrites,
    sandbox: Sandbox,
    model: StepModel | None = None,
    config: ForgeConfig | None = None,
) -> ForgeOutcome:
    """Forge one trace into (at most a few) library tools; see `forge_batch`."""
    return forge_batch([trace], library, sandbox, model=model, config=config)[0]


def forge_batch(
    traces: Sequence[Trace],
    library: ForgeWrites,
    sandbox: Sandbox,
    model: StepModel | None = None,
    config: ForgeConfig | None = None,
) -> list[ForgeOutcome]:
    """One outcome per trace, in order. Candidates of the batch are deduplicated among
    themselves before they meet the library, so parallel tasks of one family add one tool."""
    batch = _Batch(library, sandbox, model, config or ForgeConfig(), n_traces=len(traces))
    return batch.run(list(traces))


def forge_candidate(
    candidate: Candidate, library: ForgeWrites, sandbox: Sandbox, config: ForgeConfig
) -> ForgeOutcome:
    """A ready-made candidate (a person's tool: no trace, no model) through the same
    static gate, dynamic gate, dedup and admission as forged ones."""
    batch = _Batch(library, sandbox, None, config, n_traces=1)
    batch.ledger.states[0].n_candidates = 1
    if batch._static(candidate):
        batch._dynamic_and_place([candidate])
        batch.recheck_callers()
    return batch.ledger.outcome(0)


class _Batch:
    def __init__(
        self,
        library: ForgeWrites,
        sandbox: Sandbox,
        model: StepModel | None,
        config: ForgeConfig,
        *,
        n_traces: int,
    ) -> None:
        self.library = library
        self.model = model
        self.config = config
        self.sandbox = sandbox
        self.verifier = Verifier(sandbox, config, library)
        self.ledger = Ledger(library, n_traces)
        self.placement = Placement(library, self.ledger)
        # Drawn afresh for each batch on this side: the inputs a candidate is tried on
        # beyond its own tests cannot be known to it in advance.
        seed = config.perturbation_seed
        self.rng = random.Random(secrets.randbits(64) if seed is None else seed)

    # --- the pipeline -----------------------------------------------------------------

    def run(self, traces: list[Trace]) -> list[ForgeOutcome]:
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
                self.ledger.states[
                    i
                ].skip = "already forged (before an interruption): its tools are in the library"
            elif problem := _trace_problem(trace, self.config):
                self.ledger.states[i].skip = problem
            else:
                valid[i] = trace
        candidates = self._candidates(valid)
        gated = [c for c in candidates if self._static(c)]
        if gated:
            self._dynamic_and_place(gated)
            self.recheck_callers()
        outcomes = [replayed.get(i) or self.ledger.outcome(i) for i in range(len(traces))]
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
        siblings = {i: self._siblings(t, valid) for i, t in valid.items()}
        extractions: dict[int, Extraction] = {}
        if mode != "distill" or not with_model:
            names = sorted({n for t in valid.values() for n in t.tools_used})
            extractions = extract_candidates(
                valid, self.verifier, self._tool_sources(names), self.config
            )
            for i, ex in extractions.items():
                for c in ex.candidates:
                    c.siblings = siblings[i]
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
            state = self.ledger.states[i]
            state.skip = ex.skip_reason
            for rejection in ex.rejections:
                self.ledger.reject_raw(
                    i, rejection, Provenance(valid[i].task, valid[i].task_id, valid[i].episode_id)
                )
            state.n_candidates += len(ex.candidates)
            for c in ex.candidates:
                c.verified_by = valid[i].verified_by
                c.siblings = siblings[i]
            out.extend(ex.candidates)
        return out

    def _siblings(self, trace: Trace, valid: dict[int, Trace]) -> list[str]:
        """Other tasks of the trace's kind: its batch's, then the stream's recent ones."""
        out = [
            t.task
            for t in valid.values()
            if t.task != trace.task and shape_similarity(t.task, trace.task) >= SAME_KIND
        ]
        if len(out) < MAX_SIBLINGS:
            with contextlib.suppress(LibraryError):
                out += self.library.recent_tasks(
                    trace.task, k=MAX_SIBLINGS - len(out), exclude=[trace.task, *out]
                )
        return list(dict.fromkeys(out))[:MAX_SIBLINGS]

    def _admissible(self, c: Candidate) -> bool:
        """Would the static gate pass it? (Asked before paying for a distill call.)"""
        return check_static(
            rewrite_eval(c.source),
            c.tests,
            self.config,
            task=c.task,
            answer=c.answer,
            siblings=c.siblings,
            callable_tools=callable_tools(self.library, c.source),
        ).ok

    def recheck_callers(self) -> None:
        """Re-run the tests of the callers of every tool this batch gave a new version
        (`composition.recheck_callers`); a quarantined caller is noted in the log of the
        trace that made the version."""
        for state in self.ledger.states:
            for k, accepted in enumerate(state.accepted):
                if accepted.status != "versioned":
                    continue
                check = recheck_callers(accepted.tool, self.library, self.sandbox, self.config)
                if check.quarantined:
                    state.accepted[k] = replace(
                        accepted,
                        reason=f"{accepted.reason}; its caller(s) {', '.join(check.quarantined)} "
                        "fail their tests with it and are quarantined",
                    )

    def _distill(self, i: int, trace: Trace, valid: dict[int, Trace]) -> Extraction:
        """A solution written as a function of the task's text gets the short prompt with
        other tasks of its kind (from this batch, then from the library's solved
        episodes), which a small model needs to see what to read from the text."""
        if self.model is None:
            return Extraction([], [], "no model to distill with")
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
            c.source,
            c.tests,
            self.config,
            task=c.task,
            answer=c.answer,
            min_tests=min_tests,
            siblings=c.siblings,
            callable_tools=callable_tools(self.library, c.source),
        )
        c.name = report.name or c.name or "(unnamed)"
        if report.ok and (circle := circle_problem(c.name, report.source, self.library)):
            report.ok = False
            report.problems.append(circle)
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
            self.ledger.reject(c, "static", reason)
            return False
        c.source, c.tests = report.source, report.tests
        c.signature, c.docstring = report.signature, report.docstring
        c.log.append(
            "static gate: passed (one annotated, documented function; allowed imports; "
            "no import-time effects; no hard-coded answer; no data of its one task)"
        )
        if callees := [n for n in imported_tools(c.source) if n != c.name]:
            c.log.append(f"calls library tool(s) {', '.join(callees)} (kept as calls)")
        if c.takes_task and c.task and c.answer is not None:
            # Checks of its output that its task states, held on its own confirmed answer
            # and on the confirmed answers of others of its kind.
            examples = [(c.task, c.answer)]
            with contextlib.suppress(LibraryError):
                examples += self.library.solved_examples(c.task, k=MAX_SIBLINGS, exclude=[c.task])
            c.properties = derive_properties(examples)
        return True

    def _dynamic_and_place(self, cands: list[Candidate]) -> None:
        cfg = self.config
        ids = range(len(cands))
        partners = {k: [j for j in ids if j != k and similar(cands[j], cands[k], cfg)] for k in ids}
        own_nb = {k: self._neighbours(cands[k]) for k in ids}
        nb: dict[int, dict[str, ToolInfo]] = {}
        for k in ids:
            merged = dict(own_nb[k])
            for j in partners[k]:
                merged.update(own_nb[j])
            nb[k] = merged

        gate_jobs = [gate_job(k, c, cfg, self.rng) for k, c in enumerate(cands)]
        compare = cross_jobs(cands, partners, nb)
        results_a, results_b = self.verifier.run_each([gate_jobs + compare, gate_jobs])

        verified: list[int] = []
        for k in ids:
            if reason := judge(cands[k], results_a[f"g{k}"], results_b[f"g{k}"], cfg):
                self.ledger.reject(cands[k], "dynamic", reason)
            else:
                verified.append(k)
        reps = self.placement.cluster(cands, verified, results_a)
        pending = [(r, members) for r, members in reps.items()]
        results = results_a
        for round_no in range(MAX_ROUNDS):
            deferred: list[tuple[int, list[int]]] = []
            self.placement.touched = set()
            for rep, members in pending:
                if not self.placement.place(cands, rep, members, nb[rep], results):
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
            jobs = library_jobs(cands, {rep: [rep, *members] for rep, members in pending}, nb)
            results = self.verifier.run_jobs(jobs)
        for rep, members in deferred:
            for k in [rep, *members]:
                self.ledger.reject(
                    cands[k],
                    "admission",
                    "the library kept changing during this batch: forge it again",
                )

    # --- the library near a candidate ------------------------------------------------

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


def _trace_problem(trace: object, config: ForgeConfig) -> str:
    if not isinstance(trace, Trace):
        return f"not a Trace but {type(trace).__name__}: nothing to forge"
    if not (trace.task or "").strip() and not (trace.code or "").strip():
        return "empty trace: no task and no code"
    if not (trace.code or "").strip():
        return "the trace has no code: nothing to turn into a tool"
    if trace.verdict not in config.accept_verdicts:
        return f"the trace's verdict is {trace.verdict!r}: only successful traces are forged"
    return ""
