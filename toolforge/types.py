"""The forge's records: what comes out (`ForgeOutcome`), the candidate that travels
between the stages, and the chat model it calls. What goes in, `Trace`, is part of the
episode (memory/episode.py) and re-exported here."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from memory.episode import Trace

if TYPE_CHECKING:
    pass

__all__ = ["AcceptedTool", "Candidate", "ForgeOutcome", "Rejection", "StepModel", "Trace"]

Status = Literal["admitted", "merged", "versioned", "rejected", "skipped"]


class StepModel(Protocol):
    """What the forge uses of a model: one call of a named step (`distill`, `refine`) on
    role/content messages, and the reply's text. `grammar` is the reply's format (GBNF: a
    local model decodes under it) and `max_tokens` its cap; a model that cannot use them
    ignores them. The agent hands one in (`agent.models.StepCaller`), which names,
    counts and routes the call as it does its own steps."""

    def ask(
        self,
        step: str,
        messages: list[dict[str, str]],
        *,
        grammar: str | None = None,
        max_tokens: int | None = None,
    ) -> str: ...


@dataclass(frozen=True)
class Rejection:
    """One candidate turned away, and why (also stored with `Library.record_rejection`)."""

    name: str
    stage: str  # reply | extract | static | dynamic | dedup | admission
    reason: str
    source: str = ""


@dataclass(frozen=True)
class AcceptedTool:
    """A candidate that got into the library (as a new tool, a merge or a version)."""

    status: Status
    tool: str
    version: int | None
    reason: str


@dataclass
class ForgeOutcome:
    """What forging one trace did. `tool`/`version` name the main accepted tool;
    `accepted` lists every one when a trace yielded several."""

    status: Status
    tool: str | None = None
    version: int | None = None
    reason: str = ""
    rejections: list[Rejection] = field(default_factory=list)
    accepted: list[AcceptedTool] = field(default_factory=list)
    n_candidates: int = 0

    @property
    def created(self) -> list[str]:
        """The tools this trace created: new tools and new versions (a merge only grew an
        existing tool's tests), the main one first."""
        accepted = self.accepted or (
            [AcceptedTool(self.status, self.tool, self.version, self.reason)] if self.tool else []
        )
        names = [a.tool for a in accepted if a.status in ("admitted", "versioned")]
        return list(dict.fromkeys(names))

    def to_mark(self) -> dict[str, Any]:
        """The outcome as stored with `Library.mark_forged` (rejected sources left out;
        `created` lets the library fill in its episode's tools_created)."""
        data = asdict(self)
        for rejection in data["rejections"]:
            rejection["source"] = ""
        data["created"] = self.created
        return data

    @classmethod
    def from_mark(cls, data: dict[str, Any]) -> ForgeOutcome:
        return cls(
            status=data["status"],
            tool=data.get("tool"),
            version=data.get("version"),
            reason=str(data.get("reason") or ""),
            rejections=[Rejection(**r) for r in data.get("rejections") or []],
            accepted=[AcceptedTool(**a) for a in data.get("accepted") or []],
            n_candidates=int(data.get("n_candidates") or 0),
        )


@dataclass
class Candidate:
    """A tool proposal from one trace, on its way through the gates."""

    name: str
    source: str
    tests: str
    origin: str  # observed | distill | refine | human
    trace_index: int
    task: str = ""
    task_id: str | None = None
    episode_id: str | None = None
    answer: Any = None
    #: the candidate is the one its trace's top-level code called (not a helper)
    primary: bool = True
    signature: str = ""
    docstring: str = ""
    log: list[str] = field(default_factory=list)
    #: what backs `answer` on `task` (the trace's `verified_by`): the evidence the tool
    #: starts with when it is admitted
    verified_by: str = ""
    #: checks of its output from its task's form (toolforge/properties.py), derived once
    #: it passed the static gate
    properties: list[dict[str, Any]] = field(default_factory=list)
    #: other tasks of its kind (its batch's, the stream's recent ones): real inputs it
    #: must handle cleanly before it is admitted
    siblings: list[str] = field(default_factory=list)

    @classmethod
    def of_trace(
        cls, trace: Trace, index: int, name: str, source: str, tests: str, origin: str, **more: Any
    ) -> Candidate:
        """A candidate from the `index`-th trace of a batch: its task, answer and ids."""
        return cls(
            name=name,
            source=source,
            tests=tests,
            origin=origin,
            trace_index=index,
            task=trace.task,
            task_id=trace.task_id,
            episode_id=trace.episode_id,
            answer=trace.answer,
            **more,
        )

    @property
    def takes_task(self) -> bool:
        """The tool is a function of a whole task's text (`name(task: str) -> str`)."""
        return bool(re.fullmatch(r"\w+\(task: str\) -> str", self.signature))
