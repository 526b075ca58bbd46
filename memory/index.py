"""Vector indexes over the library's embeddings: Chroma (the index owner) and numpy (guests).

Both answer the same unfiltered nearest-neighbour query; status filtering and ranking
happen afterwards in Python (a metadata-filtered Chroma query is 25-45x slower).
Every entry remembers the content hash it was built from, which is how drift between
SQL and the index is found.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from memory.errors import LibraryError

KINDS = ("tools", "tasks", "tips", "failures")


class VectorIndex(Protocol):
    def entries(self, kind: str) -> dict[str, str]:
        """Every id in the index with the content hash it was built from."""
        ...

    def upsert(
        self, kind: str, ids: Sequence[str], vectors: np.ndarray, hashes: Sequence[str]
    ) -> None: ...

    def delete(self, kind: str, ids: Sequence[str]) -> None: ...

    def query(self, kind: str, vector: np.ndarray, n: int) -> list[tuple[str, float]]:
        """Up to n (id, cosine similarity) pairs, best first."""
        ...

    def count(self, kind: str) -> int: ...

    def reset(self, kind: str) -> None: ...

    def close(self) -> None: ...


class NumpyIndex:
    """Brute-force cosine search over a float32 matrix (vectors are unit length)."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self._lock = threading.RLock()
        self._ids: dict[str, list[str]] = {k: [] for k in KINDS}
        self._rows: dict[str, dict[str, int]] = {k: {} for k in KINDS}
        self._hashes: dict[str, list[str]] = {k: [] for k in KINDS}
        self._mat: dict[str, np.ndarray] = {k: np.zeros((0, dim), np.float32) for k in KINDS}

    def entries(self, kind: str) -> dict[str, str]:
        with self._lock:
            return dict(zip(self._ids[kind], self._hashes[kind], strict=True))

    def upsert(
        self, kind: str, ids: Sequence[str], vectors: np.ndarray, hashes: Sequence[str]
    ) -> None:
        with self._lock:
            rows, mat = self._rows[kind], self._mat[kind]
            new = [i for i, id_ in enumerate(ids) if id_ not in rows]
            n = len(self._ids[kind])
            if len(new) + n > mat.shape[0]:
                grown = np.zeros((max(2 * mat.shape[0], n + len(new), 64), self.dim), np.float32)
                grown[:n] = mat[:n]
                mat = self._mat[kind] = grown
            for i, id_ in enumerate(ids):
                row = rows.get(id_)
                if row is None:
                    row = rows[id_] = len(self._ids[kind])
                    self._ids[kind].append(id_)
                    self._hashes[kind].append(hashes[i])
                else:
                    self._hashes[kind][row] = hashes[i]
                mat[row] = vectors[i]

    def delete(self, kind: str, ids: Sequence[str]) -> None:
        with self._lock:
            rows, mat = self._rows[kind], self._mat[kind]
            for id_ in ids:
                row = rows.pop(id_, None)
                if row is None:
                    continue
                last = len(self._ids[kind]) - 1
                if row != last:  # move the last row into the hole
                    moved = self._ids[kind][last]
                    self._ids[kind][row] = moved
                    self._hashes[kind][row] = self._hashes[kind][last]
                    mat[row] = mat[last]
                    rows[moved] = row
                self._ids[kind].pop()
                self._hashes[kind].pop()

    def query(self, kind: str, vector: np.ndarray, n: int) -> list[tuple[str, float]]:
        with self._lock:
            size = len(self._ids[kind])
            if size == 0 or n <= 0:
                return []
            sims = self._mat[kind][:size] @ vector.astype(np.float32)
            n = min(n, size)
            top = np.argpartition(-sims, n - 1)[:n] if n < size else np.arange(size)
            top = top[np.argsort(-sims[top], kind="stable")]
            ids = self._ids[kind]
            return [(ids[i], float(sims[i])) for i in top]

    def vector(self, kind: str, id_: str) -> np.ndarray | None:
        with self._lock:
            row = self._rows[kind].get(id_)
            return None if row is None else self._mat[kind][row].copy()

    def count(self, kind: str) -> int:
        return len(self._ids[kind])

    def reset(self, kind: str) -> None:
        with self._lock:
            self._ids[kind], self._rows[kind], self._hashes[kind] = [], {}, []
            self._mat[kind] = np.zeros((0, self.dim), np.float32)

    def close(self) -> None:
        pass


class ChromaIndex:
    """One Chroma collection per kind in `<home>/chroma/`, cosine space, our own vectors.

    Only the process holding the library's writer lock opens it: Chroma's persistent
    client is not safe across processes.
    """

    def __init__(self, path: Path, model_key: str) -> None:
        # Imported here: chromadb takes a second to import and the CLI must start fast.
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        self.path = path
        self.model_key = model_key
        self._lock = threading.RLock()
        try:
            self._client = chromadb.PersistentClient(
                path=str(path),
                settings=ChromaSettings(anonymized_telemetry=False, allow_reset=True),
            )
        except Exception as exc:  # chroma raises assorted types for a damaged folder
            raise LibraryError(
                f"cannot open the vector index at {path} ({exc}): it is derived data; "
                "move the folder aside and run `evoagent memory reindex`"
            ) from exc
        self._batch = max(1, min(5000, int(self._client.get_max_batch_size())))
        self._cols: dict[str, Any] = {}
        for kind in KINDS:
            self._cols[kind] = self._open(kind)

    def _open(self, kind: str) -> Any:
        col = self._client.get_or_create_collection(
            name=kind,
            configuration={"hnsw": {"space": "cosine"}},
            metadata={"embedder": self.model_key},
            # Our vectors on every call: Chroma's default function would download a model.
            embedding_function=None,
        )
        if (col.metadata or {}).get("embedder") != self.model_key:
            # Built with another embedder: its vectors are not comparable; rebuild.
            self._client.delete_collection(kind)
            col = self._open(kind)
        return col

    def entries(self, kind: str) -> dict[str, str]:
        with self._lock:
            col = self._cols[kind]
            out: dict[str, str] = {}
            total = col.count()
            for offset in range(0, total, self._batch):
                got = col.get(include=["metadatas"], limit=self._batch, offset=offset)
                for id_, meta in zip(got["ids"], got["metadatas"] or [], strict=False):
                    out[id_] = str((meta or {}).get("h", ""))
            return out

    def upsert(
        self, kind: str, ids: Sequence[str], vectors: np.ndarray, hashes: Sequence[str]
    ) -> None:
        with self._lock:
            col = self._cols[kind]
            for start in range(0, len(ids), self._batch):
                end = start + self._batch
                col.upsert(
                    ids=list(ids[start:end]),
                    embeddings=np.asarray(vectors[start:end], dtype=np.float32),
                    metadatas=[{"h": h} for h in hashes[start:end]],
                )

    def delete(self, kind: str, ids: Sequence[str]) -> None:
        with self._lock:
            for start in range(0, len(ids), self._batch):
                self._cols[kind].delete(ids=list(ids[start : start + self._batch]))

    def query(self, kind: str, vector: np.ndarray, n: int) -> list[tuple[str, float]]:
        with self._lock:
            if n <= 0:
                return []
            # No count() to cap n: it costs as much as the query, and chroma returns
            # fewer results when asked for more than it holds.
            got = self._cols[kind].query(
                query_embeddings=[np.asarray(vector, dtype=np.float32)],
                n_results=n,
                include=["distances"],
            )
            ids = got["ids"][0]
            dists = (got["distances"] or [[]])[0]
            return [(id_, 1.0 - float(d)) for id_, d in zip(ids, dists, strict=True)]

    def count(self, kind: str) -> int:
        with self._lock:
            return int(self._cols[kind].count())

    def reset(self, kind: str) -> None:
        with self._lock:
            self._client.delete_collection(kind)
            self._cols[kind] = self._open(kind)

    def close(self) -> None:
        # Stops chroma's per-path system when this was its last client. Without it the
        # process would keep the in-memory HNSW and, reopening later, search a stale
        # copy of an index another process has changed since.
        with self._lock:
            self._cols.clear()
            self._client.close()  # type: ignore[attr-defined]  # chromadb >= 1.1
