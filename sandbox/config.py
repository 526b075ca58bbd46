"""Settings of the sandbox (section `[sandbox]` of config.toml, env `EVOAGENT_SANDBOX__*`)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class SandboxConfig(BaseModel):
    """How untrusted code is run."""

    backend: str = "docker"
    """`docker` (isolated, the default), `local` (a subprocess with rlimits: NOT
    isolation), or a backend an installed package registers (sandbox/registry.py)."""

    image: str | None = None
    """Image to run; default: `evoagent-sandbox:<hash of runner + package list>`."""

    timeout_s: float = Field(default=10.0, gt=0)
    """Wall-clock limit of one run; the container or process is killed when it passes."""

    memory_mb: int = Field(default=512, ge=32)
    """Memory limit (swap included: no swap beyond it)."""

    cpus: float = Field(default=1.0, gt=0)
    """CPU quota, in cores."""

    pids_limit: int = Field(default=64, ge=8)
    """Most processes/threads inside one sandbox (contains fork bombs)."""

    tmpfs_mb: int = Field(default=64, ge=1)
    """Size of the writable work dir (everything else is read-only)."""

    output_limit_bytes: int = Field(default=256 * 1024, ge=1024)
    """stdout and stderr are each cut at this size and the result flagged `truncated`."""

    pool_size: int = Field(default=2, ge=0)
    """Containers kept warm ahead of need (0: create one per run)."""

    extra_packages: list[str] = Field(default_factory=list)
    """Debian packages added to the image beyond python3, python3-numpy, python3-sympy."""

    debian_mirror: str | None = None
    """Debian mirror for the offline image build; default: the host's apt source, else deb.debian.org."""

    build_cache_dir: str | None = None
    """Where the debootstrap root filesystem tarball is cached; default /var/cache/evoagent
    (as root) or ~/.cache/evoagent."""

    base_image: str = "debian:bookworm-slim"
    """Image the sandbox image is built FROM (with apt-get) when it is present or can be
    pulled; otherwise the build makes its own base offline with debootstrap."""
