"""The database file: migrations, pragmas, and clear errors for foreign or damaged files."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlmodel import SQLModel

from memory import HashEmbedder, Library, LibraryError, MemoryConfig, migrations

CFG = MemoryConfig(embedder="hash")


def test_migrations_are_numbered_and_recorded(home: Path) -> None:
    Library.open(home, CFG, HashEmbedder()).close()
    conn = sqlite3.connect(home / "library.db")
    rows = conn.execute("SELECT version, name FROM schema_migrations ORDER BY version").fetchall()
    assert rows == [(n, name) for n, name, _ in migrations.MIGRATIONS]
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA application_id").fetchone()[0] == migrations.APPLICATION_ID
    conn.close()
    # Opening again applies nothing twice.
    Library.open(home, CFG, HashEmbedder()).close()
    conn = sqlite3.connect(home / "library.db")
    assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone()[0] == len(
        migrations.MIGRATIONS
    )
    conn.close()


def test_sqlmodel_rows_match_the_migrated_schema(home: Path) -> None:
    Library.open(home, CFG, HashEmbedder()).close()
    conn = sqlite3.connect(home / "library.db")
    for table in SQLModel.metadata.sorted_tables:
        if table.name not in {
            t for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }:
            continue
        cols = {r[1] for r in conn.execute(f"PRAGMA table_info({table.name})")}
        assert cols == {c.name for c in table.columns}, table.name
    conn.close()


def test_connections_use_busy_timeout_and_wal(lib: Library) -> None:
    with lib._write_engine.connect() as c:
        assert c.exec_driver_sql("PRAGMA busy_timeout").scalar_one() == int(
            CFG.busy_timeout_s * 1000
        )
        assert c.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"
        assert c.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1


def test_corrupt_database_gives_a_clear_error(home: Path) -> None:
    (home / "library.db").write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(LibraryError, match="not a readable SQLite database"):
        Library.open(home, CFG, HashEmbedder())


def test_foreign_database_gives_a_clear_error(home: Path) -> None:
    conn = sqlite3.connect(home / "library.db")
    conn.execute("CREATE TABLE customers (id INTEGER)")
    conn.commit()
    conn.close()
    with pytest.raises(LibraryError, match="not an evoagent library"):
        Library.open(home, CFG, HashEmbedder())


def test_newer_schema_asks_for_an_upgrade(home: Path) -> None:
    Library.open(home, CFG, HashEmbedder()).close()
    conn = sqlite3.connect(home / "library.db")
    conn.execute("INSERT INTO schema_migrations VALUES (99, 'future', 0)")
    conn.commit()
    conn.close()
    with pytest.raises(LibraryError, match="upgrade evoagent"):
        Library.open(home, CFG, HashEmbedder())


def test_read_only_open_of_a_missing_library(tmp_path: Path) -> None:
    with pytest.raises(LibraryError, match="no data home"):
        Library.open(tmp_path / "nowhere", CFG, HashEmbedder(), read_only=True)
    (tmp_path / "empty").mkdir()
    with pytest.raises(LibraryError, match="no library at"):
        Library.open(tmp_path / "empty", CFG, HashEmbedder(), read_only=True)


def test_second_owner_is_refused_when_required(lib: Library, home: Path) -> None:
    assert lib.owns_index
    with pytest.raises(LibraryError, match="owns the index"):
        Library.open(home, CFG, HashEmbedder(), own_index=True)
    guest = Library.open(home, CFG, HashEmbedder())
    try:
        assert not guest.owns_index
        with pytest.raises(LibraryError, match="only the process that owns the index"):
            guest.reindex()
    finally:
        guest.close()
