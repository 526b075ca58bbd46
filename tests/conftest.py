"""Fixtures shared by every test package.

- `home` (autouse): every test gets its own data home and user home in a temp dir,
  and no EVOAGENT_* setting leaks in from the developer's shell.
- `sandbox_image` / `docker_sandbox`: the real Docker sandbox, for tests marked
  `docker`. They fail (not skip) when Docker is not there: CI starts the engine.
- `any_sandbox`: each backend in turn, for tests of what runs on a sandbox rather than
  of the sandbox itself (the graph, the stream): `local` in `make test-fast`, `docker`
  marked as such.
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
    # No test loads the real local model by accident (it takes seconds and gigabytes):
    # the ones that need it are marked `model` and ask for the `local_models` fixture.
    empty_models = tmp_path / "no-models"
    empty_models.mkdir()
    monkeypatch.setenv("EVOAGENT_LOCAL__MODELS_DIR", str(empty_models))
    monkeypatch.setenv("HOME", str(tmp_path / "user-home"))
    # Nothing in the tests may reach a model hub.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setenv("ANONYMIZED_TELEMETRY", "False")
    return data_home


# Where `evoagent models pull` put the weights, read before any test changes HOME.
def _real_models_dir() -> Path:
    from agent.models.weights import models_dir

    return models_dir(os.environ.get("EVOAGENT_LOCAL__MODELS_DIR") or None)


_REAL_MODELS = _real_models_dir()


@pytest.fixture
def local_models(monkeypatch: pytest.MonkeyPatch) -> Path:
    """The real models folder, for tests marked `model`; it fails (not skips) when the
    default model is not there: CI pulls it (`make setup`)."""
    from agent.models.weights import DEFAULT, status

    found = status(DEFAULT, _REAL_MODELS)
    assert found.present, f"{found.path} is missing: run `evoagent models pull`"
    monkeypatch.setenv("EVOAGENT_LOCAL__MODELS_DIR", str(_REAL_MODELS))
    return _REAL_MODELS


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


@pytest.fixture(scope="session")
def local_sandbox() -> Iterator[object]:
    """The local backend (a subprocess with rlimits: not isolation, but the same runner)."""
    from sandbox.config import SandboxConfig
    from sandbox.local import LocalSandbox

    sandbox = LocalSandbox(SandboxConfig(backend="local"))
    try:
        yield sandbox
    finally:
        sandbox.close()


@pytest.fixture(scope="session", params=["local", pytest.param("docker", marks=pytest.mark.docker)])
def any_sandbox(request: pytest.FixtureRequest) -> object:
    return request.getfixturevalue(f"{request.param}_sandbox")
