"""The schema's numbered migrations, and the check that a file is an evoagent library.

Each migration runs once, in order, recorded in `schema_migrations`; the SQLModel rows
of memory/db.py match the migrated schema (a test compares them).
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from sqlalchemy.exc import DatabaseError

from memory.db import make_engine
from memory.errors import LibraryError

# PRAGMA application_id of an evoagent library ("EVOA"): tells ours from a foreign SQLite file.
APPLICATION_ID = 0x45564F41

# Numbered migrations: each runs once, in order, recorded in `schema_migrations`.
# Never edit a released one; add the next number.
MIGRATIONS: list[tuple[int, str, str]] = [
    (
        1,
        "initial schema",
        """
CREATE TABLE tool (
  name TEXT PRIMARY KEY, status TEXT NOT NULL DEFAULT 'active', status_reason TEXT NOT NULL DEFAULT '',
  current_version INTEGER NOT NULL DEFAULT 1, created_at REAL NOT NULL, updated_at REAL NOT NULL,
  last_used_at REAL, n_uses INTEGER NOT NULL DEFAULT 0, n_success INTEGER NOT NULL DEFAULT 0,
  n_fail INTEGER NOT NULL DEFAULT 0);
CREATE TABLE tool_version (
  id INTEGER PRIMARY KEY AUTOINCREMENT, tool_name TEXT NOT NULL REFERENCES tool(name),
  version INTEGER NOT NULL, source TEXT NOT NULL, tests TEXT NOT NULL, signature TEXT NOT NULL,
  docstring TEXT NOT NULL, verification_log TEXT NOT NULL DEFAULT '', parent_version INTEGER,
  desc_hash TEXT NOT NULL DEFAULT '', created_at REAL NOT NULL,
  n_uses INTEGER NOT NULL DEFAULT 0, n_success INTEGER NOT NULL DEFAULT 0,
  n_fail INTEGER NOT NULL DEFAULT 0, UNIQUE (tool_name, version));
CREATE INDEX ix_tool_version_tool_name ON tool_version (tool_name);
CREATE TABLE tool_provenance (
  id INTEGER PRIMARY KEY AUTOINCREMENT, tool_name TEXT NOT NULL REFERENCES tool(name),
  version INTEGER NOT NULL, kind TEXT NOT NULL, task TEXT NOT NULL, task_id TEXT, episode_id TEXT,
  parent_version INTEGER, created_at REAL NOT NULL);
CREATE INDEX ix_tool_provenance_tool_name ON tool_provenance (tool_name);
CREATE TABLE tool_task (
  id TEXT PRIMARY KEY, tool_name TEXT NOT NULL REFERENCES tool(name), task TEXT NOT NULL,
  text_hash TEXT NOT NULL, created_at REAL NOT NULL);
CREATE INDEX ix_tool_task_tool_name ON tool_task (tool_name);
CREATE TABLE tool_event (
  id INTEGER PRIMARY KEY AUTOINCREMENT, tool_name TEXT NOT NULL, kind TEXT NOT NULL,
  version INTEGER, detail TEXT NOT NULL DEFAULT '', created_at REAL NOT NULL);
CREATE INDEX ix_tool_event_tool_name ON tool_event (tool_name);
CREATE TABLE usage_event (
  id INTEGER PRIMARY KEY AUTOINCREMENT, tool_name TEXT NOT NULL REFERENCES tool(name),
  tool_version INTEGER NOT NULL, episode_id TEXT, ok BOOLEAN NOT NULL, args_json TEXT,
  kwargs_json TEXT, result_json TEXT, error_type TEXT, error_message TEXT,
  seconds REAL NOT NULL DEFAULT 0, created_at REAL NOT NULL);
CREATE INDEX ix_usage_event_tool_name ON usage_event (tool_name);
CREATE TABLE rejection (
  id INTEGER PRIMARY KEY AUTOINCREMENT, tool_name TEXT NOT NULL, reason TEXT NOT NULL,
  source TEXT NOT NULL, task TEXT NOT NULL, task_id TEXT, episode_id TEXT, created_at REAL NOT NULL);
CREATE INDEX ix_rejection_tool_name ON rejection (tool_name);
CREATE TABLE tip (
  id TEXT PRIMARY KEY, text TEXT NOT NULL, task TEXT NOT NULL, episode_id TEXT,
  status TEXT NOT NULL DEFAULT 'active', merged_into TEXT, support INTEGER NOT NULL DEFAULT 1,
  n_shown INTEGER NOT NULL DEFAULT 0, n_helped INTEGER NOT NULL DEFAULT 0,
  text_hash TEXT NOT NULL, created_at REAL NOT NULL, updated_at REAL NOT NULL);
CREATE TABLE failure (
  id TEXT PRIMARY KEY, task TEXT NOT NULL, error_type TEXT NOT NULL, message TEXT NOT NULL,
  lesson TEXT NOT NULL, tool TEXT, episode_id TEXT, signature TEXT NOT NULL,
  status TEXT NOT NULL DEFAULT 'active', merged_into TEXT, count INTEGER NOT NULL DEFAULT 1,
  text_hash TEXT NOT NULL, created_at REAL NOT NULL);
CREATE INDEX ix_failure_signature ON failure (signature);
CREATE TABLE episode (
  id TEXT PRIMARY KEY, task_id TEXT NOT NULL, task TEXT NOT NULL, status TEXT NOT NULL,
  answer_json TEXT, correct BOOLEAN, attempts INTEGER NOT NULL DEFAULT 0,
  n_calls INTEGER NOT NULL DEFAULT 0, tokens_in INTEGER NOT NULL DEFAULT 0,
  tokens_out INTEGER NOT NULL DEFAULT 0, seconds REAL NOT NULL DEFAULT 0,
  tools_used_json TEXT NOT NULL DEFAULT '[]', tools_created_json TEXT NOT NULL DEFAULT '[]',
  feedback TEXT NOT NULL DEFAULT '', run_id TEXT, trace_json TEXT, created_at REAL NOT NULL);
CREATE INDEX ix_episode_task_id ON episode (task_id);
CREATE INDEX ix_episode_run_id ON episode (run_id);
CREATE INDEX ix_episode_created_at ON episode (created_at);
CREATE TABLE run (
  id TEXT PRIMARY KEY, meta_json TEXT NOT NULL DEFAULT '{}', summary_json TEXT,
  started_at REAL NOT NULL, finished_at REAL);
CREATE TABLE embedding (
  model TEXT NOT NULL, text_hash TEXT NOT NULL, dim INTEGER NOT NULL, vector BLOB NOT NULL,
  PRIMARY KEY (model, text_hash));
CREATE TABLE change (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, ref TEXT NOT NULL,
  created_at REAL NOT NULL);
""",
    ),
    (
        2,
        "forge marks; indexes for garbage collection and idempotent batch ends",
        """
CREATE TABLE forge_mark (
  episode_id TEXT PRIMARY KEY, outcome_json TEXT NOT NULL, created_at REAL NOT NULL);
CREATE INDEX ix_usage_event_created_at ON usage_event (created_at);
CREATE INDEX ix_rejection_created_at ON rejection (created_at);
CREATE INDEX ix_rejection_episode_id ON rejection (episode_id);
CREATE INDEX ix_tool_provenance_episode_id ON tool_provenance (episode_id);
CREATE INDEX ix_change_created_at ON change (created_at);
""",
    ),
    (
        3,
        "verified successes per tool and version",
        """
ALTER TABLE tool ADD COLUMN n_verified INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tool_version ADD COLUMN n_verified INTEGER NOT NULL DEFAULT 0;
""",
    ),
    (
        4,
        "who called a tool: the agent or an outside caller (MCP, LangChain)",
        """
ALTER TABLE usage_event ADD COLUMN source TEXT NOT NULL DEFAULT 'agent';
""",
    ),
    (
        5,
        "trust is evidence: evidence per tool version, properties, pins",
        """
CREATE TABLE tool_evidence (
  id INTEGER PRIMARY KEY AUTOINCREMENT, tool_name TEXT NOT NULL REFERENCES tool(name),
  version INTEGER NOT NULL, kind TEXT NOT NULL, task TEXT NOT NULL DEFAULT '',
  task_hash TEXT NOT NULL DEFAULT '', task_id TEXT, episode_id TEXT, answer_json TEXT,
  other_json TEXT, detail TEXT NOT NULL DEFAULT '', created_at REAL NOT NULL);
CREATE INDEX ix_tool_evidence_tool_name ON tool_evidence (tool_name, version);
ALTER TABLE tool ADD COLUMN pinned BOOLEAN NOT NULL DEFAULT 0;
ALTER TABLE tool_version ADD COLUMN n_support INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tool_version ADD COLUMN n_against INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tool_version ADD COLUMN properties_json TEXT NOT NULL DEFAULT '[]';
ALTER TABLE usage_event ADD COLUMN expected_json TEXT;
UPDATE tool_version SET n_support = n_verified;
ALTER TABLE tool_version DROP COLUMN n_verified;
ALTER TABLE tool DROP COLUMN n_verified;
""",
    ),
]


def migrate(path: Path, busy_timeout_s: float, *, read_only: bool = False) -> int:
    """Check `path` is an evoagent library (or new) and apply missing migrations.

    Returns the schema version. Raises LibraryError for a corrupt, foreign or newer file.
    """
    exists = path.exists() and path.stat().st_size > 0
    if read_only and not exists:
        raise LibraryError(
            f"no library at {path}: run a task or `evoagent tools import DIR` to create one"
        )
    try:
        conn = sqlite3.connect(str(path), timeout=busy_timeout_s, isolation_level=None)
    except sqlite3.Error as exc:
        raise LibraryError(f"cannot open the library database {path}: {exc}") from exc
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
        try:
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            n_tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise LibraryError(
                f"{path} is not a readable SQLite database ({exc}): it is corrupt or not a "
                "library; move it aside (the index under chroma/ can be rebuilt, the records "
                "cannot) or point --home elsewhere"
            ) from exc
        if app_id != APPLICATION_ID and n_tables > 0:
            raise LibraryError(
                f"{path} is a SQLite database but not an evoagent library "
                f"(application_id {app_id:#x}): point --home at another folder"
            )
        if read_only:
            version = _schema_version(conn)
            if version > len(MIGRATIONS):
                raise _newer(path, version)
            return version
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("BEGIN IMMEDIATE")  # one process migrates; the others wait, then see it done
        try:
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
            )
            version = _schema_version(conn)
            if version > len(MIGRATIONS):
                raise _newer(path, version)
            for number, name, sql in MIGRATIONS:
                if number <= version:
                    continue
                for statement in sql.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (number, name, time.time()),
                )
                version = number
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return version
    except sqlite3.DatabaseError as exc:
        raise LibraryError(
            f"the library database {path} is damaged ({exc}): restore a backup"
        ) from exc
    finally:
        conn.close()


def _schema_version(conn: sqlite3.Connection) -> int:
    try:
        row = conn.execute("SELECT max(version) FROM schema_migrations").fetchone()
    except sqlite3.OperationalError:
        return 0
    return int(row[0] or 0)


def _newer(path: Path, version: int) -> LibraryError:
    return LibraryError(
        f"{path} has schema version {version}, newer than this evoagent knows "
        f"({len(MIGRATIONS)}): upgrade evoagent"
    )


__all__ = ["APPLICATION_ID", "MIGRATIONS", "DatabaseError", "make_engine", "migrate"]
