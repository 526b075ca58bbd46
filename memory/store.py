"""`Store`: one library's SQL side: its two engines, the write guard and logged writes.

Every write is one transaction (BEGIN IMMEDIATE, see db.py) that also appends the ids it
changed to the `change` log; the index and the ranking caches catch up from that log
(sync.py), so SQL stays the only source of truth.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlmodel import Session

from memory import db
from memory.errors import LibraryError, ReadOnlyLibrary

# Records with a status: stats counts them per status.
_STATUS_TABLES = ("tool", "tip", "failure")
_COUNTED_TABLES = (
    "tool_version",
    "tool_task",
    "usage_event",
    "rejection",
    "episode",
    "run",
    "embedding",
)


class Store:
    def __init__(self, path: Path, busy_timeout_s: float, *, read_only: bool) -> None:
        self.read_only = read_only
        self.closed = False
        self.read_engine = db.make_engine(path, busy_timeout_s, immediate=False)
        self.write_engine = db.make_engine(path, busy_timeout_s, immediate=True)

    def check_writable(self) -> None:
        if self.closed:
            raise LibraryError("the library is closed: open it again")
        if self.read_only:
            raise ReadOnlyLibrary(
                "the library was opened read-only: open it without read_only to change it"
            )

    @contextlib.contextmanager
    def write(self) -> Iterator[tuple[Session, list[tuple[str, str]]]]:
        """One write transaction (BEGIN IMMEDIATE) that also logs its changes.

        The index catches up from the log before the next search (or at close): SQL
        first, then index, and one batched upsert instead of one per write (a Chroma
        upsert costs 5-50 ms, most of it flushing to disk).
        """
        changes: list[tuple[str, str]] = []
        with Session(self.write_engine, expire_on_commit=False) as s, s.begin():
            yield s, changes
            now = time.time()
            for kind, ref in dict.fromkeys(changes):
                s.add(db.ChangeRow(kind=kind, ref=ref, created_at=now))

    def rows(self, model: type[Any], ids: list[str]) -> dict[str, Any]:
        with Session(self.read_engine) as s:
            return {i: row for i in ids if (row := s.get(model, i)) is not None}

    def counts(self) -> dict[str, Any]:
        """Rows per table (per status where records have one) and the schema version."""
        out: dict[str, Any] = {}
        with self.read_engine.connect() as c:
            for table in _STATUS_TABLES:
                rows = c.exec_driver_sql(
                    f"SELECT status, count(*) FROM {table} GROUP BY status"
                ).all()
                out[f"{table}s"] = {str(st): int(n) for st, n in rows}
            for table in _COUNTED_TABLES:
                out[f"{table}s"] = int(
                    c.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar_one()
                )
            out["schema_version"] = int(
                c.exec_driver_sql("SELECT max(version) FROM schema_migrations").scalar_one()
            )
        return out

    def dispose(self) -> None:
        self.read_engine.dispose()
        self.write_engine.dispose()
