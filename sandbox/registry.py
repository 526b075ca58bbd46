"""Sandbox backends: `[sandbox] backend` (or `--sandbox`) names the one that runs code.

Built in: `docker` (isolated: the default) and `local` (a subprocess with rlimits: NOT
isolation). Other packages add backends through entry points in the group
`evoagent.sandboxes`, each named for its backend and loading a `SandboxKind`:

```toml
[project.entry-points."evoagent.sandboxes"]
firecracker = "evoagent_fc:KIND"      # KIND = SandboxKind("firecracker", "...", build)
```
`discover` is the one way kinds are found: `agent.models.registry` finds model kinds
with it too. A backend must keep the contract of `sandbox.base.Sandbox`: records and verdicts are
made by the runner's supervisor and checked by the host (`sandbox/jobs.py`). A package
may not replace a built-in backend, and one that fails to load is reported.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from importlib.metadata import entry_points
from typing import Generic, Protocol, TypeVar

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


K = TypeVar("K", bound="Named")


class Named(Protocol):
    """A registered kind: its name (what a spec or setting says) and where it comes from."""

    @property
    def name(self) -> str: ...


@dataclass(frozen=True)
class Registered(Generic[K]):
    """The kinds found, and the entry points that could not be used (with why)."""

    kinds: dict[str, K]
    problems: list[str]


def discover(group: str, built_in: tuple[K, ...], kind_type: type[K], what: str) -> Registered[K]:
    """The built-in kinds and those installed packages register in entry-point `group`:
    each entry point named for its kind and loading an instance of `kind_type` of that
    name, stamped with the package it came from. A package may not replace a built-in
    kind; one that fails to load is reported (`what`: "kind", "backend"), never fatal."""
    kinds: dict[str, K] = {k.name: k for k in built_in}
    problems: list[str] = []
    for point in entry_points(group=group):
        origin = point.dist.name if point.dist is not None else point.value
        if point.name in kinds:
            problems.append(f"{origin}: {what} {point.name!r} is built in; not replaced")
            continue
        try:
            kind = point.load()
        except Exception as exc:  # a broken plugin must not take the others down
            problems.append(f"{origin}: {what} {point.name!r} failed to load: {exc}")
            continue
        if not isinstance(kind, kind_type) or kind.name != point.name:
            problems.append(
                f"{origin}: entry point {point.name!r} is not a {kind_type.__name__} named "
                f"{point.name!r}"
            )
            continue
        kinds[point.name] = replace(kind, origin=origin)  # type: ignore[type-var]
    for problem in problems:
        log.warning("%s: %s", group, problem)
    return Registered(kinds, problems)


def registered() -> Registered[SandboxKind]:
    """The built-in backends and those of installed packages (entry points of `GROUP`)."""
    return discover(GROUP, BUILT_IN, SandboxKind, "backend")
