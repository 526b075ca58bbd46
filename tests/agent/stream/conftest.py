"""Fixtures of the stream tests: the real `evoagent` app, and the environment of runs."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import typer


@pytest.fixture
def cli() -> typer.Typer:
    from agent.cli import app

    return app


@contextmanager
def run_env(
    sandbox_image: str | None, extra: dict[str, str] | None = None, drop: tuple[str, ...] = ()
) -> Iterator[dict[str, str]]:
    """Offline embeddings, the test's sandbox image (None: the local backend's run), one perturbation seed, no EVOAGENT_*
    (nor `drop`) variables
    of the caller's shell; for fixtures wider than the per-test `home` one, which set it
    themselves. Yields the variables set, for subprocesses."""
    env = {
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "ANONYMIZED_TELEMETRY": "False",
        **({"EVOAGENT_SANDBOX__IMAGE": sandbox_image} if sandbox_image else {}),
        # Runs compared with each other draw the same mutated inputs (else each batch
        # draws its own, unknown to the tools, as it does for users).
        "EVOAGENT_FORGE__PERTURBATION_SEED": "7",
        **(extra or {}),
    }
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith(("EVOAGENT_", *drop)):
                mp.delenv(name)
        for name, value in env.items():
            mp.setenv(name, value)
        yield env
