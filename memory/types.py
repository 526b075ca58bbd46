"""The records the library hands out: plain dataclasses, independent of the database."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from memory.episode import ToolUse

TOOL_STATUSES = ("active", "quarantined", "archived")

#: Evidence that a tool is right: its answer matched a label, an independent route that
#: saw neither its code nor its answer reached the same answer, or a person said so.
EVIDENCE_FOR = ("label_match", "agreement", "user_right")
#: Evidence that it is wrong on a real input.
EVIDENCE_AGAINST = (
    "label_mismatch",
    "disagreement",
    "property_violated",
    "raised",
    "off_form",
    "user_wrong",
)
#: Recorded and shown, but moving no trust: a form check held (a wrong answer of the right
#: form passes it too).
EVIDENCE_NEUTRAL = ("property_held",)
EVIDENCE_KINDS = EVIDENCE_FOR + EVIDENCE_AGAINST + EVIDENCE_NEUTRAL

#: What a tool's evidence allows: `pinned` (a person vouches), `trusted` (enough evidence
#: for, none against: it may answer with no model call), `probation` (too little evidence:
#: every use is checked), `doubted` (evidence against its current version: off the fast path).
TRUST_LEVELS = ("pinned", "trusted", "probation", "doubted")


def trust_level(pinned: bool, n_support: int, n_against: int, need: int) -> str:
    """The trust a tool version's evidence earns (see TRUST_LEVELS)."""
    if pinned:
        return "pinned"
    if n_against:
        return "doubted"
    return "trusted" if n_support >= need else "probation"


@dataclass(frozen=True)
class Provenance:
    """Where a tool (version) came from: the task it was forged from and its parent."""

    task: str
    task_id: str | None = None
    episode_id: str | None = None
    parent_version: int | None = None


@dataclass(frozen=True)
class ToolDraft:
    """A candidate tool, verified by toolforge, ready to be stored."""

    name: str
    source: str
    tests: str
    signature: str
    docstring: str
    provenance: Provenance
    verification_log: str = ""
    #: checks of the tool's output the forge derived from its task's form (see
    #: toolforge/properties.py), run on the trusted side on every real use
    properties: tuple[dict[str, Any], ...] = ()
    #: evidence the version starts with (the agreement or label match of its own task)
    evidence: tuple[Evidence, ...] = ()


@dataclass(frozen=True)
class Evidence:
    """One comparison made on the trusted side that speaks for or against a tool version
    (the kinds: EVIDENCE_FOR, EVIDENCE_AGAINST, EVIDENCE_NEUTRAL). Never a value the
    sandboxed code reported about itself: the tool's answer comes from the supervisor's
    record of its call, the other side from a label, another route or a person."""

    tool: str
    kind: str
    task: str = ""
    task_id: str | None = None
    episode_id: str | None = None
    #: what the tool answered
    answer: Any = None
    #: what it was compared with: the label, the independent answer, the property
    other: Any = None
    detail: str = ""
    #: the version it speaks about (None: the tool's current version when written)
    version: int | None = None
    created_at: float = 0.0


@dataclass(frozen=True)
class ToolInfo:
    """One version of a tool with its usage statistics (counts are for this version)."""

    name: str
    version: int
    status: str
    source: str
    tests: str
    signature: str
    docstring: str
    provenance: list[Provenance]
    created_at: float
    n_uses: int
    n_success: int
    n_fail: int
    reliability: float
    # Additions beyond the seam (defaults keep the seam's constructor valid).
    current_version: int = 0
    status_reason: str = ""
    last_used_at: float | None = None
    total_uses: int = 0
    verification_log: str = ""
    #: distinct tasks with evidence for / against this version (see `Evidence`)
    n_support: int = 0
    n_against: int = 0
    #: a person vouches for the tool (`evoagent tools pin`)
    pinned: bool = False
    #: pinned | trusted | probation | doubted (see TRUST_LEVELS)
    trust: str = "probation"
    properties: tuple[dict[str, Any], ...] = ()

    @property
    def description(self) -> str:
        """The text the description view embeds: name, signature and docstring."""
        return tool_description(self.name, self.signature, self.docstring)


def tool_description(name: str, signature: str, docstring: str) -> str:
    sig = signature.strip()
    head = sig if sig.startswith(name) or sig.startswith("def ") else f"{name}{sig}"
    return f"{name.replace('_', ' ')}: {head}\n{docstring.strip()}"


@dataclass(frozen=True)
class ToolHit:
    tool: ToolInfo
    score: float
    similarity: float
    view: str  # "description" or "tasks": the view that matched best


@dataclass(frozen=True)
class TipInfo:
    id: str
    text: str
    task: str
    episode_id: str | None
    status: str
    support: int
    n_shown: int
    n_helped: int
    created_at: float
    merged_into: str | None = None


@dataclass(frozen=True)
class TipHit:
    tip: TipInfo
    score: float
    similarity: float


@dataclass(frozen=True)
class FailureInfo:
    id: str
    task: str
    error_type: str
    message: str
    lesson: str
    tool: str | None
    episode_id: str | None
    signature: str
    status: str
    count: int
    created_at: float
    merged_into: str | None = None


@dataclass(frozen=True)
class FailureHit:
    failure: FailureInfo
    score: float
    similarity: float


@dataclass(frozen=True)
class UsageEvent:
    tool: str
    ok: bool
    episode_id: str | None = None
    args: Any = None
    kwargs: Any = None
    result: Any = None
    error_type: str | None = None
    error_message: str | None = None
    seconds: float = 0.0
    #: who called: "agent" (an episode of ours) or an outside caller ("mcp", "langchain");
    #: outside calls are on record but move no count (see `ToolUsage.usage_in`)
    source: str = "agent"
    #: for a use whose answer did not hold up: the answer it should have given (the
    #: label, or the independent route's), which a repair must reach
    expected: Any = None

    @classmethod
    def of(cls, use: ToolUse, episode_id: str | None, source: str = "agent") -> UsageEvent:
        """An episode's use of a tool, as the library records it."""
        return cls(
            tool=use.tool,
            ok=use.ok,
            episode_id=episode_id,
            args=use.args,
            kwargs=use.kwargs,
            result=use.result,
            error_type=use.error_type,
            error_message=use.error_message,
            seconds=use.seconds,
            source=source,
            expected=use.expected,
        )


@dataclass(frozen=True)
class FailureNote:
    """A failure to remember: what went wrong and the lesson drawn from it."""

    error_type: str
    message: str
    lesson: str
    tool: str | None = None


@dataclass
class Learned:
    """What one episode taught, stored with it in one transaction (`record_episode`)."""

    #: every library tool call of the episode's final run
    usage: list[UsageEvent] = field(default_factory=list)
    #: the episode's outcome for the usage counts (None: no outcome, as for a person's use)
    solved: bool | None = None
    #: evidence about tools the episode's answers gave (host-side comparisons only)
    evidence: list[Evidence] = field(default_factory=list)
    #: tools whose "past tasks" view gains this episode's task
    links: list[str] = field(default_factory=list)
    #: tips shown to the task, and whether the task then went well (None: not counted)
    tip_ids: list[str] = field(default_factory=list)
    helped: bool | None = None
    tip: str | None = None
    failure: FailureNote | None = None


@dataclass(frozen=True)
class Change:
    """One change consolidation or pruning makes (or would make, with --dry-run)."""

    kind: str  # tool | tip | failure
    ref: str
    action: str  # quarantine | archive | merge | demote ...
    reason: str
    into: str | None = None


@dataclass(frozen=True)
class ToolEvent:
    """A line of a tool's history (added, versioned, merged, status changes)."""

    tool: str
    kind: str
    version: int | None
    detail: str
    at: float


#: how a tool's tests grow when an equivalent candidate is merged into it: given its
#: current test file, the merged file and the names of the tests added (the rule is the
#: forge's, toolforge/testfiles.py; the library applies it inside its write)
TestsGrowth = Callable[[str], tuple[str, list[str]]]
