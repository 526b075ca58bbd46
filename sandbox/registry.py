"""Sandbox backends: `[sandbox] backend` (or `--sandbox`) names the one that runs code.

Built in: `docker` (isolated: the default) and `local` (a subprocess with rlimits: NOT
isolation). Other packages add backends through entry points in the group
`evoagent.sandboxes`, each named for its backend and loading a `SandboxKind`:

```toml
[project.entry-points."evoagent.sandboxes"]
firecracker = "evoagent_fc:KIND"      # KIND = SandboxKind("firecracker", "...", build)
```
A backend must keep the contract of `sandbox.base.Sandbox`: records and verdicts are
made by the runner's supervisor and checked by the host (`sandbox/jobs.py`). A package
may not replace a built-in backend, and one that fails to load is reported.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points

from sandbox.base import Sandbox
from sandbox.config import SandboxConfig

log = logging.getLogger("evoagent.sandbox")

GROUP = "evoagent.sandboxes"


@dataclass(frozen=True)
class SandboxKind:
    """A backend: its name, one line about it, how it is built from the settings, and
    where it was registered."""

    name: str
    about: str
    build: Callable[[SandboxConfig], Sandbox]
    origin: str = "built-in"


def _docker(config: SandboxConfig) -> Sandbox:
    from sandbox.docker_backend import DockerSandbox

    return DockerSandbox(config)


def _local(config: SandboxConfig) -> Sandbox:
    from sandbox.local import LocalSandbox

    log.warning(
        "sandbox backend 'local': code runs in a subprocess on this machine with rlimits "
        "only. It is NOT isolation (it can read your files and use the network); "
        "use it only for code you trust, or install Docker."
    )
    return LocalSandbox(config)


BUILT_IN = (
    SandboxKind("docker", "a container per run: no network, read-only, no capabilities", _docker),
    SandboxKind("local", "a subprocess with rlimits: NOT isolation (trusted code only)", _local),
)


@dataclass(frozen=True)
class Registered:
    """The backends found, and the entry points that could not be used (with why)."""

    kinds: dict[str, SandboxKind]
    problems: list[str]


def registered() -> Registered:
    """The built-in backends and those of installed packages (entry points of `GROUP`)."""
    kinds = {k.name: k for k in BUILT_IN}
    problems: list[str] = []
    for point in entry_points(group=GROUP):
        origin = point.dist.name if point.dist is not None else point.value
        if point.name in kinds:
            problems.append(f"{origin}: backend {point.name!r} is built in; not replaced")
            continue
        try:
            kind = point.load()
        except Exception as exc:  # a broken plugin must not take the others down
            problems.append(f"{origin}: backend {point.name!r} failed to load: {exc}")
            continue
        if not isinstance(kind, SandboxKind) or kind.name != point.name:
            problems.append(
                f"{origin}: entry point {point.name!r} is not a SandboxKind named {point.name!r}"
            )
            continue
        kinds[point.name] = SandboxKind(kind.name, kind.about, kind.build, origin)
    for problem in problems:
        log.warning("sandbox backends: %s", problem)
    return Registered(kinds, problems)
