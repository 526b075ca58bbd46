"""Fixtures of the stream tests: the real `evoagent` app."""

from __future__ import annotations

import pytest
import typer


@pytest.fixture
def cli() -> typer.Typer:
    from agent.cli import app

    return app
