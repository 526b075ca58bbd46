"""Where a batch's verified candidates go, and what each trace came to.

`Placement` decides, against the library as it is now, whether a cluster of equivalent
candidates is merged into a tool (its tests join the tool's), becomes a new version of
one (it passes all the tool's tests and the tool fails some of its own), is refused
(a name clash, a quarantined name) or is admitted. `Ledger` keeps, per trace, the tools
accepted and the rejections (also stored in the library), and turns them into its
`ForgeOutcome`.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

from memory import Evidence, Provenance, ToolDraft, ToolInfo
from memory.errors import LibraryError
from memory.protocol import ForgeWrites
from memory.tools import imported_tools
from toolforge.source import literal_calls, rename_identifier, test_names
from toolforge.testfiles import BadTestFile, merge_tests
from toolforge.types import AcceptedTool, Candidate, ForgeOutcome, Rejection
from toolforge.verify import JobResult

#: what backs a trace's answer -> the evidence the tool forged from it starts with
_ADMISSION_EVIDENCE = {"checker": "label_match", "agreement": "agreement"}


def admission_evidence(
    c: Candidate, name: str, detail: str = "its own task, at admission"
) -> list[Evidence]:
    """The evidence a tool of a task's text starts with: its own task, on which its answer
    (checked in the dynamic gate to be the trace's) was confirmed by a label or by an
    independent route. Nothing for a helper, or for an answer nothing confirmed."""
    kind = _ADMISSION_EVIDENCE.get(c.verified_by)
    if kind is None or not c.takes_task or not c.task or c.answer is None:
        return []
    return [
        Evidence(
            tool=name,
            kind=kind,
            task=c.task,
            task_id=c.task_id,
            episode_id=c.episode_id,
            answer=c.answer,
            other=c.answer,
            detail=detail,
        )
    ]


@dataclass
class TraceState:
    skip: str = ""
    rejections: list[Rejection] = field(default_factory=list)
    accepted: list[AcceptedTool] = field(default_factory=list)
    n_candidates: int = 0


class Ledger:
    """What each trace of a batch came to, in trace order."""

    def __init__(self, library: ForgeWrites, n_traces: int) -> None:
        self.library = library
        self.states = [TraceState() for _ in range(n_traces)]

    def accept(self, c: Candidate, accepted: AcceptedTool) -> None:
        # The function the trace's own code called leads its outcome; helpers follow.
        accepted_list = self.states[c.trace_index].accepted
        if c.primary:
            accepted_list.insert(0, accepted)
        else:
            accepted_list.append(accepted)

    def reject(self, c: Candidate, stage: str, reason: str) -> None:
        self.reject_raw(
            c.trace_index,
            Rejection(c.name or "(unnamed)", stage, reason, c.source),
            Provenance(c.task, c.task_id, c.episode_id),
        )

    def reject_raw(self, i: int, rejection: Rejection, provenance: Provenance) -> None:
        self.states[i].rejections.append(rejection)
        # A read-only library cannot store it: the outcome still carries the rejection.
        with contextlib.suppress(LibraryError):
            self.library.record_rejection(
                rejection.name, rejection.reason, rejection.source, provenance
            )

    def outcome(self, i: int) -> ForgeOutcome:
        state = self.states[i]
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


class Placement:
    """Merge, version, refuse or admit clusters of verified candidates."""

    def __init__(self, library: ForgeWrites, ledger: Ledger) -> None:
        self.library = library
        self.ledger = ledger
        #: tools merged into or versioned in the current placement round
        self.touched: set[str] = set()

    def cluster(
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

    def place(
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
            if inc.name in self.touched or current is None or current.version != inc.version:
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
            if y is not None and y.passed(f"i:{inc.name}") and not self._calls(c, inc.name):
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
                self.ledger.reject(
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
                self.ledger.reject(
                    cands[k],
                    "dedup",
                    f"{c.name} is quarantined ({clash.status_reason or 'no reason given'}): "
                    f"the forge does not bring it back; `evoagent tools restore {c.name}` does",
                )
            return True
        try:
            info = self.library.add_tool(self._draft(c, c.name, c.source, c.tests, None))
        except LibraryError as exc:
            self.ledger.reject(c, "admission", f"the library refused it: {exc}")
            return True
        self.ledger.accept(
            c, AcceptedTool("admitted", info.name, info.version, self._summary(c, "admitted"))
        )
        self.touched.add(info.name)
        for k in members:
            self._merge(cands[k], info, f"covered by {info.name}, admitted from this batch")
        return True

    def _calls(self, c: Candidate, name: str) -> bool:
        """Does the candidate call `name`, directly or through other tools? (Then it cannot
        become `name`'s next version: the tool would call itself.)"""
        callees = imported_tools(c.source)
        with contextlib.suppress(LibraryError):
            return name in self.library.tool_sources(callees)  # the callees and theirs
        return name in callees

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
            properties=tuple(c.properties),
            evidence=tuple(admission_evidence(c, name)),
        )

    def _merge(self, c: Candidate, inc: ToolInfo, why: str) -> None:
        # Its tests join the incumbent's (toolforge/testfiles.py: a clashing name is kept,
        # suffixed), merged inside the library's write.
        tests = rename_identifier(c.tests, c.name, inc.name)
        try:
            info = self.library.merge_into(
                inc.name,
                Provenance(c.task, c.task_id, c.episode_id),
                grow=lambda old: merge_tests(old, tests),
            )
        except (LibraryError, BadTestFile) as exc:
            self.ledger.reject(c, "admission", f"merging into {inc.name} failed: {exc}")
            return
        self.touched.add(inc.name)
        # The incumbent passed the candidate's tests, its own task's call among them: it
        # answers that task as was confirmed there, which is evidence for it too.
        if any(call.args == (c.task,) for call in literal_calls(c.tests, c.name)):
            with contextlib.suppress(LibraryError):
                self.library.add_evidence(
                    admission_evidence(
                        c, inc.name, f"the task of a candidate merged into it ({c.name})"
                    )
                )
        self.ledger.accept(
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
            self.ledger.reject(c, "admission", f"adding a version of {inc.name} failed: {exc}")
            return
        self.touched.add(inc.name)
        self.ledger.accept(
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
