"""Reaching the Docker engine: one client factory, one status line, one clear error."""

from __future__ import annotations

import os
from typing import Any

from sandbox.base import SandboxUnavailable

#: seconds for ordinary API calls; an image build or import uses its own, longer client
API_TIMEOUT_S = 30


def docker_host() -> str:
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def unreachable_message(detail: str) -> str:
    return (
        f"Docker is not reachable at {docker_host()} ({detail}): start the daemon "
        "(as root on Debian/Ubuntu: `bash scripts/docker-bootstrap.sh`) or fix DOCKER_HOST, "
        "then run `evoagent doctor`; without Docker, `-c sandbox.backend=local` runs code in a "
        "subprocess (NOT isolation)"
    )


def connect(timeout: int | None = API_TIMEOUT_S) -> Any:
    """A pinged `docker.DockerClient`, or SandboxUnavailable saying what to do."""
    try:
        import docker
        from docker.errors import DockerException
    except ImportError as exc:  # pragma: no cover - docker is a dependency
        raise SandboxUnavailable(
            "the `docker` Python package is missing: reinstall evoagent (`make setup`)"
        ) from exc
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except DockerException as exc:
        raise SandboxUnavailable(unreachable_message(_short(exc))) from exc
    except Exception as exc:  # requests' connection errors, OSError
        raise SandboxUnavailable(unreachable_message(_short(exc))) from exc
    return client


def docker_status() -> tuple[bool, str]:
    """(reachable?, a message that says what it is or what to do)."""
    try:
        client = connect(timeout=10)
    except SandboxUnavailable as exc:
        return False, str(exc)
    try:
        version = client.version().get("Version", "?")
    finally:
        client.close()
    return True, f"Docker engine {version} reachable at {docker_host()}"


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = text[0] if text else type(exc).__name__
    return first[:200]
