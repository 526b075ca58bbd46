"""How a run is set up: its options (`RunOptions`), what a resume may change (`Resume`),
and the settings it runs with (a resumed run keeps the model it started with)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agent.config import Settings
from agent.stream.errors import StreamError
from agent.types import Feedback


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


@dataclass(frozen=True)
class Resume:
    """What a person may name when resuming a run: more or fewer workers, another Ray
    address; a model and base URL only to confirm the run's own (a run's figures come
    from one model)."""

    workers: int | None = None
    model: str | None = None
    base_url: str | None = None
    ray_address: str | None = None


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
