"""The sandbox jobs that compare a batch's candidates with each other and the library.

Job ids name what ran and suite labels whose tests: `g<k>` candidate k on its own tests
(suite `own`) and perturbations; `x<k>` candidate k on the tests of similar candidates
(`b<j>`); `i:<name>` a library tool on the tests of the candidates near it (`c<k>`);
`y<k>` candidate k on its library neighbours' tests (`i:<name>`). Which candidates are
worth comparing at all is `similar` (cheap: the same name, or word overlap).
"""

from __future__ import annotations

import math
import re
from collections import Counter

from memory import ToolInfo
from toolforge.config import ForgeConfig
from toolforge.harness import Job, Suite
from toolforge.perturb import perturbations
from toolforge.policy import COMPARISON_STOP_WORDS
from toolforge.source import literal_calls, rename_identifier
from toolforge.types import Candidate


def gate_job(k: int, c: Candidate, max_perturbations: int) -> Job:
    """Job `g<k>`: the candidate's own tests and the calls mutated from them."""
    calls = literal_calls(c.tests, c.name)
    return Job(
        id=f"g{k}",
        tool=c.name,
        source=c.source,
        suites=[Suite("own", c.tests)],
        perturb=perturbations(calls, max_perturbations),
    )


def cross_jobs(
    cands: list[Candidate],
    partners: dict[int, list[int]],
    nb: dict[int, dict[str, ToolInfo]],
) -> list[Job]:
    """Job `x<k>`: candidate k runs the tests of the similar candidates of its batch
    (suites `b<j>`); then the library jobs of each candidate alone."""
    jobs: list[Job] = []
    for k, c in enumerate(cands):
        suites = [
            Suite(f"b{j}", rename_identifier(cands[j].tests, cands[j].name, c.name))
            for j in partners[k]
        ]
        if suites:
            jobs.append(Job(id=f"x{k}", tool=c.name, source=c.source, suites=suites))
    jobs.extend(library_jobs(cands, {k: [k] for k in range(len(cands))}, nb))
    return jobs


def library_jobs(
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


def _words(c: Candidate) -> Counter[str]:
    text = f"{c.name.replace('_', ' ')} {c.signature} {c.docstring}".lower()
    return Counter(
        w for w in re.findall(r"[a-z]+", text) if w not in COMPARISON_STOP_WORDS and len(w) > 1
    )


def similar(a: Candidate, b: Candidate, config: ForgeConfig) -> bool:
    """Worth comparing by behaviour within a batch (cheap: word overlap, or the same name)."""
    if a.name == b.name:
        return True
    wa, wb = _words(a), _words(b)
    dot = sum(wa[w] * wb[w] for w in wa)
    norm = math.sqrt(sum(v * v for v in wa.values()) * sum(v * v for v in wb.values()))
    return norm > 0 and dot / norm >= config.batch_min_similarity
