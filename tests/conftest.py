"""Fixtures shared by every test package.

- `home` (autouse): every test gets its own data home and user home in a temp dir,
  and no EVOAGENT_* setting leaks in from the developer's shell.
- `sandbox_image` / `docker_sandbox`: the real Docker sandbox, for tests marked
  `docker`. They fail (not skip) when Docker is not there: CI starts the engine.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    data_home = tmp_path / "evoagent-home"
    data_home.mkdir()
    for name in list(os.environ):
        if name.startswith("EVOAGENT_") or name == "OPENAI_BASE_URL":
            monkeypatch.delenv(name)
    monkeypatch.setenv("EVOAGENT_HOME", str(data_home))
    monkeypatch.setenv("HOME", str(tmp_path / "user-home"))
    # Nothing in the tests may reach a model hub.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setenv("ANONYMIZED_TELEMETRY", "False")
    return data_home


@pytest.fixture(scope="session")
def sandbox_image() -> str:
    """The sandbox image's tag, built first if it is missing."""
    from sandbox.image import ensure_image

    return ensure_image()


@pytest.fixture(scope="session")
def docker_sandbox(sandbox_image: str) -> Iterator[object]:
    """One warm-pooled DockerSandbox for the whole session."""
    from sandbox import get_sandbox
    from sandbox.config import SandboxConfig

    sandbox = get_sandbox(SandboxConfig(image=sandbox_image, pool_size=2))
    try:
        yield sandbox
    finally:
        sandbox.close()
