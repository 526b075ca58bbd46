"""How a run is set up: its options (`RunOptions`), the settings and deps it runs with
(a resumed run keeps the model it started with), and what it reports while it runs
(`Progress`) and at its end (`RunOutcome`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.config import Settings
from agent.stream.errors import StreamError
from agent.types import Feedback

if TYPE_CHECKING:
    from agent.solve import AgentDeps


@dataclass(frozen=True)
class RunOptions:
    """How a stream is run. Everything but `workers` and the Ray address is fixed for a
    run's lifetime."""

    workers: int = 1
    batch: int = 8
    feedback: Feedback = "none"
    learn: bool = True
    consolidate_every: int = 50
    max_consecutive_errors: int = 5
    #: where tasks run: "threads" (this process) or "ray" (actors on a Ray cluster)
    executor: str = "threads"
    #: the Ray cluster ("auto": the one running here; "local": a private one; or host:port)
    ray_address: str = "auto"

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise StreamError("--workers must be at least 1")
        if self.batch < 1:
            raise StreamError("--batch must be at least 1")
        if self.feedback not in ("none", "labels"):
            raise StreamError(f"--feedback must be none or labels, not {self.feedback!r}")
        if self.consolidate_every < 0:
            raise StreamError("--consolidate-every must be 0 (never) or more")
        if self.executor not in ("threads", "ray"):
            raise StreamError(f"--executor must be threads or ray, not {self.executor!r}")
        if self.max_consecutive_errors < 0:
            raise StreamError("--max-consecutive-errors must be 0 (never stop) or more")


@dataclass
class Progress:
    """What the live display shows; updated after every task and batch."""

    run_id: str
    n_tasks: int
    n_done: int
    last: dict[str, Any] | None
    figures: dict[str, Any]
    library_size: int
    batch: int
    n_batches: int
    phase: str  # "task" | "forge" | "batch" | "done"


@dataclass
class RunOutcome:
    run_id: str
    status: str  # finished | stopped | interrupted
    message: str
    summary: dict[str, Any]
    dir: Path
    results: list[dict[str, Any]] = field(default_factory=list)


def saved_model(
    run_id: str, meta: dict[str, Any], settings: Settings, model: str | None, base_url: str | None
) -> Settings:
    """`settings` with the run's model and base URL; an explicit other one is an error."""
    kept = meta.get("model")
    if model and kept and model != kept:
        raise StreamError(
            f"run {run_id} was started with model {kept}, not {model}: "
            "resume it without --model (or start a new run with that model)"
        )
    saved_url = meta.get("base_url")
    if base_url and kept and base_url != saved_url:
        raise StreamError(
            f"run {run_id} was started with base URL {saved_url or '(the provider default)'}, "
            f"not {base_url}: resume it without --base-url (or start a new run)"
        )
    if not kept:
        # A run started without a model (none configured then): nothing to keep.
        update = {"model": model, "base_url": base_url}
        return settings.model_copy(update={k: v for k, v in update.items() if v})
    # The saved base URL is kept even when empty: the run used the provider's endpoint.
    return settings.model_copy(update={"model": kept, "base_url": saved_url})


def with_options(settings: Settings, options: RunOptions) -> Settings:
    agent = settings.agent.model_copy(update={"feedback": options.feedback, "learn": options.learn})
    return settings.model_copy(update={"agent": agent})


def deps_for(settings: Settings, deps: AgentDeps | None) -> tuple[AgentDeps, bool]:
    """The deps to run with and whether the runner owns (and closes) them."""
    if deps is None:
        from agent.solve import AgentDeps

        return AgentDeps.from_settings(settings), True
    # Injected deps (tests, bench) must carry this run's feedback and learn mode.
    deps.settings = deps.settings.model_copy(
        update={"agent": settings.agent, "model": settings.model, "base_url": settings.base_url}
    )
    return deps, False
