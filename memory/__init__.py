"""evoagent memory: the persistent library of tools, tips, failures and episodes.

Front door: `Library` (see README.md and ARCHITECTURE.md section 2).
"""

from typing import TYPE_CHECKING, Any

from memory.config import MemoryConfig
from memory.embed import Embedder, HashEmbedder, MiniLMEmbedder, get_embedder
from memory.episode import Episode, ToolUse, Trace
from memory.errors import LibraryError, UnknownToolError
from memory.shapes import shape_similarity
from memory.types import (
    Change,
    Evidence,
    FailureHit,
    FailureInfo,
    FailureNote,
    Learned,
    Provenance,
    TipHit,
    TipInfo,
    ToolDraft,
    ToolEvent,
    ToolHit,
    ToolInfo,
    UsageEvent,
)

if TYPE_CHECKING:
    from memory.library import Library


def __getattr__(name: str) -> Any:
    # `Library` pulls in SQLAlchemy and numpy (~1 s): loaded on first use so that
    # `evoagent --help` (which imports memory.errors) stays fast.
    if name == "Library":
        from memory.library import Library

        return Library
    raise AttributeError(f"module 'memory' has no attribute {name!r}")


__all__ = [
    "Change",
    "Embedder",
    "Episode",
    "Evidence",
    "FailureHit",
    "FailureInfo",
    "FailureNote",
    "HashEmbedder",
    "Learned",
    "Library",
    "LibraryError",
    "MemoryConfig",
    "MiniLMEmbedder",
    "Provenance",
    "TipHit",
    "TipInfo",
    "ToolDraft",
    "ToolEvent",
    "ToolHit",
    "ToolInfo",
    "ToolUse",
    "Trace",
    "UnknownToolError",
    "UsageEvent",
    "get_embedder",
    "shape_similarity",
]
