"""evoagent toolforge: verified, deduplicated tools from successful traces.

Front door (ARCHITECTURE.md section 5): `forge`, `forge_batch`, `refine`, `Trace`,
`ForgeOutcome`, `Rejection`. User-facing errors: `toolforge.errors.ForgeError`.

The names load on first use: importing `toolforge.errors` (as the command line does for
its error handling) does not load the pipeline and its dependencies.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from toolforge.config import ForgeConfig
    from toolforge.pipeline import forge, forge_batch
    from toolforge.refine import refine
    from toolforge.types import AcceptedTool, ForgeOutcome, Rejection, Trace

_WHERE = {
    "AcceptedTool": "toolforge.types",
    "ForgeConfig": "toolforge.config",
    "ForgeOutcome": "toolforge.types",
    "Rejection": "toolforge.types",
    "Trace": "toolforge.types",
    "forge": "toolforge.pipeline",
    "forge_batch": "toolforge.pipeline",
    "refine": "toolforge.refine",
}
__all__ = [
    "AcceptedTool",
    "ForgeConfig",
    "ForgeOutcome",
    "Rejection",
    "Trace",
    "forge",
    "forge_batch",
    "refine",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'toolforge' has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value
    return value
