"""evoagent toolforge: verified, deduplicated tools from successful traces.

Front door (ARCHITECTURE.md section 5): `forge`, `forge_batch`, `refine`, `Trace`,
`ForgeOutcome`, `Rejection`. User-facing errors: `toolforge.errors.ForgeError`.
"""

from toolforge.config import ForgeConfig
from toolforge.pipeline import forge, forge_batch
from toolforge.refine import refine
from toolforge.types import AcceptedTool, ForgeOutcome, Rejection, Trace

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
