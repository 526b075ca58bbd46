"""Settings of the forge (section `[forge]` of config.toml, env `EVOAGENT_FORGE__*`)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ForgeConfig(BaseModel):
    """How candidate tools are gated before admission."""

    test_timeout_s: float = Field(default=5.0, gt=0)
    """Limit for one verification run of a candidate's tests in the sandbox."""

    use_model: bool = True
    """Ask the model (step `distill`) to generalise a solution when one is configured."""

    candidates: str = Field("auto", pattern="^(auto|extract|distill|extract-then-distill)$")
    """Where candidates come from: `extract` the functions a solution defined and called
    (no model call), `distill` (one model call per trace), or `extract-then-distill`: a
    model call only for a trace whose solution gave no candidate. `auto`: the agent picks
    `extract-then-distill` for a local model (a call costs about a minute there, and its
    solutions are written as functions of the task's text) and `distill` for others."""

    max_repairs_per_batch: int = Field(2, ge=0)
    """Tools that failed in use refined at each batch end of a stream (a model call each;
    0 turns repair off)."""

    per_test_timeout_s: float = Field(default=2.0, gt=0)
    """Limit for one test function (and one perturbed call) inside a verification run."""

    run_overhead_s: float = Field(default=10.0, gt=0)
    """Added to a sandbox run's time limit for container start and the harness itself."""

    max_run_timeout_s: float = Field(default=120.0, gt=0)
    """Cap of one sandbox run's wall-clock limit (one candidate check or trace re-run)."""

    parallel_runs: int = Field(default=2, ge=1)
    """Sandbox runs in flight at once (the verification and its determinism re-run)."""

    parallel_distill: int = Field(default=4, ge=1)
    """Model calls (step `distill`) in flight at once within one batch."""

    accept_verdicts: list[str] = Field(default_factory=lambda: ["correct"])
    """Trace verdicts that count as success; other traces are skipped."""

    min_tests: int = Field(default=1, ge=1)
    """Fewest tests a candidate needs (observed calls, people's tools)."""

    min_model_tests: int = Field(default=3, ge=1)
    """Fewest tests a model-distilled candidate needs."""

    max_tests: int = Field(default=40, ge=1)
    max_source_chars: int = Field(default=8000, ge=200)
    max_tests_chars: int = Field(default=30000, ge=200)
    max_function_lines: int = Field(default=150, ge=5)
    """Size bounds: a tool is small; bigger proposals are rejected by the static gate."""

    max_observed_tests: int = Field(default=5, ge=1)
    """Observed calls of a function turned into its tests (distinct arguments, outer calls first)."""

    max_perturbations: int = Field(default=6, ge=0)
    """Mutated inputs tried per candidate by the perturbation check."""

    perturbation_seed: int | None = None
    """Seed of the inputs mutated from a candidate's tests. None (the default): drawn
    afresh for each batch, so that no tool can know them in advance; set it only to
    replay a run exactly (the tests that compare runs do)."""

    perturbation_tolerated_errors: list[str] = Field(default_factory=lambda: ["ValueError"])
    """Exception types a tool may raise on a mutated input: a mutation can make an input
    malformed (reordered words of a boolean expression), and rejecting it with ValueError is
    correct. At least one mutated input must still run without error."""

    task_literal_min_chars: int = Field(default=24, ge=4)
    """A string literal this long that appears in the task text counts as hard-coded task data."""

    extra_imports: list[str] = Field(default_factory=lambda: ["numpy", "sympy", "mpmath"])
    """Modules beyond the standard library that tools may import (the sandbox image's
    packages: python3-numpy, python3-sympy and its mpmath)."""

    neighbours: int = Field(default=3, ge=0)
    """Similar active tools (by embedding) whose behaviour is compared with a candidate."""

    neighbour_min_similarity: float = Field(default=0.3, ge=-1, le=1)
    """Embedding similarity below which a library tool is not compared (same name always is)."""

    batch_min_similarity: float = Field(default=0.2, ge=0, le=1)
    """Word-overlap similarity above which two candidates of one batch are compared."""

    max_prompt_chars: int = Field(default=6000, ge=500)
    """Longest code or test text put into a distill/refine prompt (the rest is cut)."""
