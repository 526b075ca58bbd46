"""evoagent sandbox: run untrusted Python (front door documented in its README.md).

    from sandbox import get_sandbox
    sb = get_sandbox(settings.sandbox)          # the backend the settings name
    res = sb.run(code, tools={"sort_words": src}, timeout_s=5)

Importing this package is cheap: docker is imported only when a backend is built.
"""

from __future__ import annotations

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
from sandbox.registry import BUILT_IN, SandboxKind, registered

__all__ = [
    "BACKENDS",
    "ExecResult",
    "ImageMissing",
    "Sandbox",
    "SandboxConfig",
    "SandboxError",
    "SandboxKind",
    "SandboxUnavailable",
    "ToolCall",
    "docker_status",
    "get_sandbox",
]

#: the built-in backends (packages add more: sandbox/registry.py)
BACKENDS = tuple(k.name for k in BUILT_IN)


def get_sandbox(config: SandboxConfig | None = None) -> Sandbox:
    """The sandbox `config.backend` names: `docker` (isolated), `local` (NOT isolation),
    or a backend an installed package registered."""
    config = config or SandboxConfig()
    kinds = registered().kinds if config.backend not in BACKENDS else {k.name: k for k in BUILT_IN}
    kind = kinds.get(config.backend)
    if kind is None:
        raise SandboxError(
            f"unknown sandbox backend {config.backend!r}: choose one of {', '.join(kinds)}"
        )
    return kind.build(config)
