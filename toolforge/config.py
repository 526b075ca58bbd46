"""Settings of the forge (section `[forge]` of config.toml, env `EVOAGENT_FORGE__*`)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ForgeConfig(BaseModel):
    """How candidate tools are gated before admission."""

    test_timeout_s: float = Field(5.0, gt=0)
    """Limit for one verification run of a candidate's tests in the sandbox."""

    use_model: bool = True
    """Ask the model (step `distill`) to generalise a solution when one is configured."""
