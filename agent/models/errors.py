"""Model failures. `ModelError` (agent.errors) is raised when a model cannot be built;
`ModelCallError`, its subclass, when one call fails (endpoint down or answering an
error, no scripted rule, no recording). Both are user-facing: the graph turns a call
failure into the task status `error` (see `is_model_failure`), the CLI into one line."""

from __future__ import annotations

from agent.errors import ModelError


class ModelCallError(ModelError):
    """One model call failed; `step` is the step that made it (None if it named none)."""

    def __init__(self, message: str, *, step: str | None = None) -> None:
        super().__init__(message)
        self.step = step
