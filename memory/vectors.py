"""`VectorCache`: embeddings cached in SQL by (embedder id, content hash), and recent queries.

Nothing is embedded twice, and any process can rank (or rebuild the index) from the cache
alone, without Chroma.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
from sqlalchemy import Engine

from memory.embed import Embedder, embedder_id
from memory.errors import LibraryError
from memory.rows import content_hash

_QUERY_CACHE = 64  # recent query vectors kept (recall asks tools, tips, failures for one task)


class VectorCache:
    def __init__(
        self,
        embedder: Embedder,
        read_engine: Engine,
        write_engine: Engine,
        *,
        read_only: bool,
        lock: threading.RLock,
    ) -> None:
        self.embedder = embedder
        self.model_key = embedder_id(embedder)
        self._read_engine = read_engine
        self._write_engine = write_engine
        self._read_only = read_only
        self._lock = lock
        self._queries: OrderedDict[str, np.ndarray] = OrderedDict()

    def cache(self, texts: Sequence[str]) -> None:
        """Embed texts not yet cached for this embedder and store their vectors (own
        transaction, before the record's: a failing embedder leaves nothing half-written)."""
        self.vectors({content_hash(t): t for t in texts})

    def vectors(
        self, texts_by_hash: dict[str, str | None], compute: bool = True
    ) -> dict[str, np.ndarray]:
        """Vectors by content hash: from the SQL cache, else (if compute) embedded and cached."""
        out: dict[str, np.ndarray] = {}
        hashes = list(texts_by_hash)
        with self._read_engine.connect() as c:
            if len(hashes) > 5000:  # a full load: one scan beats thousands of IN lookups
                rows = c.exec_driver_sql(
                    "SELECT text_hash, vector FROM embedding WHERE model = ?", (self.model_key,)
                ).all()
                wanted = set(hashes)
                rows = [r for r in rows if r[0] in wanted]
            else:
                rows = []
                for start in range(0, len(hashes), 500):
                    chunk = hashes[start : start + 500]
                    marks = ",".join("?" * len(chunk))
                    rows += c.exec_driver_sql(
                        f"SELECT text_hash, vector FROM embedding WHERE model = ? AND text_hash IN ({marks})",
                        (self.model_key, *chunk),
                    ).all()
        for h, blob in rows:
            out[h] = np.frombuffer(blob, dtype=np.float32)
        missing = [h for h in hashes if h not in out]
        if not missing or not compute:
            return out
        texts = [texts_by_hash[h] for h in missing]
        if any(t is None for t in texts):
            raise LibraryError(
                "an index entry has no cached embedding and no text: run `evoagent memory reindex`"
            )
        vecs = np.asarray(self.embedder.embed([t or "" for t in texts]), dtype=np.float32)
        if vecs.ndim != 2 or vecs.shape[0] != len(missing):
            raise LibraryError(
                f"the embedder {self.model_key} returned {vecs.shape} for {len(missing)} texts"
            )
        for h, v in zip(missing, vecs, strict=True):
            out[h] = v
        if not self._read_only:
            with self._write_engine.begin() as c:
                c.exec_driver_sql(
                    "INSERT OR IGNORE INTO embedding (model, text_hash, dim, vector) VALUES (?, ?, ?, ?)",
                    [
                        (self.model_key, h, int(v.shape[0]), v.astype(np.float32).tobytes())
                        for h, v in zip(missing, vecs, strict=True)
                    ],
                )
        return out

    def query(self, query: str) -> np.ndarray:
        """The query's vector, from a small in-memory LRU (queries are not cached in SQL)."""
        with self._lock:
            cached = self._queries.get(query)
            if cached is not None:
                self._queries.move_to_end(query)
                return cached
        vec = np.asarray(self.embedder.embed([query])[0], dtype=np.float32)
        with self._lock:
            self._queries[query] = vec
            while len(self._queries) > _QUERY_CACHE:
                self._queries.popitem(last=False)
        return vec
