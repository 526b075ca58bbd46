"""Settings of the sandbox (section `[sandbox]` of config.toml, env `EVOAGENT_SANDBOX__*`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class SandboxConfig(BaseModel):
    """How untrusted code is run."""

    backend: Literal["docker", "local"] = "docker"
    """`docker` (isolated, the default) or `local` (a subprocess with rlimits: NOT isolation)."""

    image: str | None = None
    """Image to run; default: `evoagent-sandbox:<hash of runner + package list>`."""

    timeout_s: float = Field(10.0, gt=0)
    """Wall-clock limit of one run; the container or process is killed when it passes."""

    memory_mb: int = Field(512, ge=32)
    """Memory limit (swap included: no swap beyond it)."""

    cpus: float = Field(1.0, gt=0)
    """CPU quota, in cores."""

    pids_limit: int = Field(64, ge=8)
    """Most processes/threads inside one sandbox (contains fork bombs)."""

    tmpfs_mb: int = Field(64, ge=1)
    """Size of the writable work dir (everything else is read-only)."""

    output_limit_bytes: int = Field(256 * 1024, ge=1024)
    """stdout and stderr are each cut at this size and the result flagged `truncated`."""

    pool_size: int = Field(2, ge=0)
    """Containers kept warm ahead of need (0: create one per run)."""
