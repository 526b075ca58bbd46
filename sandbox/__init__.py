"""evoagent sandbox: run untrusted Python (front door documented in its README.md).

    from sandbox import get_sandbox
    sb = get_sandbox(settings.sandbox)          # DockerSandbox or LocalSandbox
    res = sb.run(code, tools={"sort_words": src}, timeout_s=5)

Importing this package is cheap: docker is imported only when a backend is built.
"""

from __future__ import annotations

import logging

from sandbox.base import (
    ExecResult,
    ImageMissing,
    Sandbox,
    SandboxError,
    SandboxUnavailable,
    ToolCall,
)
from sandbox.config import SandboxConfig
from sandbox.engine import docker_status

__all__ = [
    "BACKENDS",
    "ExecResult",
    "ImageMissing",
    "Sandbox",
    "SandboxConfig",
    "SandboxError",
    "SandboxUnavailable",
    "ToolCall",
    "docker_status",
    "get_sandbox",
]

BACKENDS = ("docker", "local")
log = logging.getLogger("evoagent.sandbox")


def get_sandbox(config: SandboxConfig | None = None) -> Sandbox:
    """The sandbox `config.backend` names: `docker` (isolated) or `local` (NOT isolation)."""
    config = config or SandboxConfig()
    if config.backend == "docker":
        from sandbox.docker_backend import DockerSandbox

        return DockerSandbox(config)
    if config.backend == "local":
        from sandbox.local import LocalSandbox

        log.warning(
            "sandbox backend 'local': code runs in a subprocess on this machine with rlimits "
            "only. It is NOT isolation (it can read your files and use the network); "
            "use it only for code you trust, or install Docker."
        )
        return LocalSandbox(config)
    raise SandboxError(
        f"unknown sandbox backend {config.backend!r}: choose one of {', '.join(BACKENDS)}"
    )
