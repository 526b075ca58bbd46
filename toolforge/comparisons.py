"""The sandbox jobs that compare a batch's candidates with each other and the library.

Job ids name what ran and test groups whose tests: `g<k>` candidate k on its own tests
(group `own`), inputs mutated from them (`perturb`), its own task (`origin`) and other
tasks of its kind (`sibling`); `x<k>` candidate k on the tests of similar candidates
(`b<j>`); `i:<name>` a library tool on the tests of the candidates near it (`c<k>`);
`y<k>` candidate k on its library neighbours' tests (`i:<name>`). Which candidates are
worth comparing at all is `similar` (cheap: the same name, or word overlap).
"""

from __future__ import annotations

import math
import random
import re
from collections import Counter

from memory import ToolInfo
from toolforge.config import ForgeConfig
from toolforge.harness import Job
from toolforge.perturb import perturbations
from toolforge.policy import COMPARISON_STOP_WORDS
from toolforge.source import literal_calls, rename_identifier
from toolforge.types import Candidate

#: other tasks of its kind a candidate is run on before it is admitted
MAX_SIBLINGS = 5


def gate_job(k: int, c: Candidate, config: ForgeConfig, rng: random.Random) -> Job:
    """Job `g<k>`: the candidate's own tests, calls mutated from them at random, and, for
    a tool of a task's text, its own task and other tasks of its kind."""
    job = Job(id=f"g{k}", tool=c.name, source=c.source)
    job.add_tests("own", c.tests)
    for label, args, kwargs in perturbations(
        literal_calls(c.tests, c.name), config.max_perturbations, rng
    ):
        job.add_probe("perturb", label, args, kwargs)
    if c.takes_task and c.task:
        if c.answer is not None:
            job.add_probe("origin", "its own task", (c.task,))
        for n, task in enumerate(c.siblings[:MAX_SIBLINGS]):
            job.add_probe("sibling", f"task {n + 1}", (task,))
    return job


def cross_jobs(
    cands: list[Candidate],
    partners: dict[int, list[int]],
    nb: dict[int, dict[str, ToolInfo]],
) -> list[Job]:
    """Job `x<k>`: candidate k runs the tests of the similar candidates of its batch
    (suites `b<j>`); then the library jobs of each candidate alone."""
    jobs: list[Job] = []
    for k, c in enumerate(cands):
        if not partners[k]:
            continue
        job = Job(id=f"x{k}", tool=c.name, source=c.source)
        for j in partners[k]:
            job.add_tests(f"b{j}", rename_identifier(cands[j].tests, cands[j].name, c.name))
        jobs.append(job)
    jobs.extend(library_jobs(cands, {k: [k] for k in range(len(cands))}, nb))
    return jobs


def library_jobs(
    cands: list[Candidate],
    clusters: dict[int, list[int]],
    nb: dict[int, dict[str, ToolInfo]],
) -> list[Job]:
    """Each neighbour runs the tests of the candidates near it; each candidate runs its
    neighbours' tests (job `x<k>`, suites `i:<name>`)."""
    inc_jobs: dict[str, Job] = {}
    cand_jobs: dict[int, Job] = {}
    for rep, cluster in clusters.items():
        for name, inc in nb[rep].items():
            inc_job = inc_jobs.setdefault(name, Job(id=f"i:{name}", tool=name, source=inc.source))
            for k in cluster:
                c = cands[k]
                inc_job.add_tests(f"c{k}", rename_identifier(c.tests, c.name, name))
                cand_job = cand_jobs.setdefault(k, Job(id=f"y{k}", tool=c.name, source=c.source))
                cand_job.add_tests(f"i:{name}", rename_identifier(inc.tests, name, c.name))
    return [*inc_jobs.values(), *cand_jobs.values()]


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
