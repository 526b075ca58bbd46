"""The records (SQLModel rows in `<home>/library.db`) and the schema's numbered migrations.

SQLite is opened in WAL mode with a busy timeout, so a reader never blocks a writer and
two writers (a task stream and a person's `tools prune`) wait for each other instead of
failing. Write transactions start with BEGIN IMMEDIATE: a deferred transaction that
upgrades from read to write in WAL mode can fail at once with SQLITE_BUSY_SNAPSHOT,
without waiting for the busy timeout.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DatabaseError
from sqlmodel import Field, SQLModel

from memory.errors import LibraryError

# PRAGMA application_id of an evoagent library ("EVOA"): tells ours from a foreign SQLite file.
APPLICATION_ID = 0x45564F41


class Tool(SQLModel, table=True):
    name: str = Field(primary_key=True)
    status: str = "active"
    status_reason: str = ""
    current_version: int = 1
    created_at: float
    updated_at: float
    last_used_at: float | None = None
    n_uses: int = 0
    n_success: int = 0
    n_fail: int = 0
    n_verified: int = 0


class ToolVersion(SQLModel, table=True):
    __tablename__ = "tool_version"
    id: int | None = Field(default=None, primary_key=True)
    tool_name: str = Field(index=True)
    version: int
    source: str
    tests: str
    signature: str
    docstring: str
    verification_log: str = ""
    parent_version: int | None = None
    desc_hash: str = ""
    created_at: float
    n_uses: int = 0
    n_success: int = 0
    n_fail: int = 0
    #: successes checked against a label (feedback labels): trust is earned with these
    n_verified: int = 0


class ToolProvenance(SQLModel, table=True):
    __tablename__ = "tool_provenance"
    id: int | None = Field(default=None, primary_key=True)
    tool_name: str = Field(index=True)
    version: int
    kind: str  # added | versioned | merged | imported
    task: str
    task_id: str | None = None
    episode_id: str | None = None
    parent_version: int | None = None
    created_at: float


class ToolTask(SQLModel, table=True):
    """A task a tool solved: the "past tasks" retrieval view."""

    __tablename__ = "tool_task"
    id: str = Field(primary_key=True)  # f"{tool}:{hash(task)[:16]}"
    tool_name: str = Field(index=True)
    task: str
    text_hash: str
    created_at: float


class ToolEventRow(SQLModel, table=True):
    __tablename__ = "tool_event"
    id: int | None = Field(default=None, primary_key=True)
    tool_name: str = Field(index=True)
    kind: str
    version: int | None = None
    detail: str = ""
    created_at: float


class UsageRow(SQLModel, table=True):
    __tablename__ = "usage_event"
    id: int | None = Field(default=None, primary_key=True)
    tool_name: str = Field(index=True)
    tool_version: int
    episode_id: str | None = None
    ok: bool
    args_json: str | None = None
    kwargs_json: str | None = None
    result_json: str | None = None
    error_type: str | None = None
    error_message: str | None = None
    seconds: float = 0.0
    created_at: float


class Rejection(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    tool_name: str = Field(index=True)
    reason: str
    source: str
    task: str
    task_id: str | None = None
    episode_id: str | None = None
    created_at: float


class Tip(SQLModel, table=True):
    id: str = Field(primary_key=True)
    text: str
    task: str
    episode_id: str | None = None
    status: str = "active"  # active | merged | archived
    merged_into: str | None = None
    support: int = 1
    n_shown: int = 0
    n_helped: int = 0
    text_hash: str
    created_at: float
    updated_at: float


class Failure(SQLModel, table=True):
    id: str = Field(primary_key=True)
    task: str
    error_type: str
    message: str
    lesson: str
    tool: str | None = None
    episode_id: str | None = None
    signature: str = Field(index=True)
    status: str = "active"  # active | merged
    merged_into: str | None = None
    count: int = 1
    text_hash: str
    created_at: float


class Episode(SQLModel, table=True):
    id: str = Field(primary_key=True)
    task_id: str = Field(index=True)
    task: str
    status: str
    answer_json: str | None = None
    correct: bool | None = None
    attempts: int = 0
    n_calls: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    seconds: float = 0.0
    tools_used_json: str = "[]"
    tools_created_json: str = "[]"
    feedback: str = ""
    run_id: str | None = Field(default=None, index=True)
    trace_json: str | None = None
    created_at: float


class Run(SQLModel, table=True):
    id: str = Field(primary_key=True)
    meta_json: str = "{}"
    summary_json: str | None = None
    started_at: float
    finished_at: float | None = None


class Embedding(SQLModel, table=True):
    """Embedding cache keyed by model and content hash: nothing is embedded twice, and a
    process that does not own the Chroma index ranks from these vectors."""

    model: str = Field(primary_key=True)
    text_hash: str = Field(primary_key=True)
    dim: int
    vector: bytes


class ForgeMark(SQLModel, table=True):
    """A trace the forge has dealt with (by its episode), and the outcome: a batch end
    resumed after a kill replays it instead of forging the trace again."""

    __tablename__ = "forge_mark"
    episode_id: str = Field(primary_key=True)
    outcome_json: str
    created_at: float


class ChangeRow(SQLModel, table=True):
    """Append-only log of changed records; the index owner replays it to stay in sync with
    writes made by other processes."""

    __tablename__ = "change"
    seq: int | None = Field(default=None, primary_key=True)
    kind: str  # tool | task | tip | failure
    ref: str
    created_at: float


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
]


def _on_connect(busy_timeout_s: float) -> Any:
    def configure(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
        # We issue BEGIN ourselves (see module docstring); pysqlite's implicit one is off.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
        cur.execute("PRAGMA journal_mode = WAL")
        cur.execute("PRAGMA synchronous = NORMAL")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.close()

    return configure


def make_engine(path: Path, busy_timeout_s: float, *, immediate: bool) -> Engine:
    """An engine whose transactions begin DEFERRED (reads) or IMMEDIATE (writes)."""
    engine = create_engine(
        f"sqlite:///{path}",
        connect_args={"timeout": busy_timeout_s, "check_same_thread": False},
    )
    event.listen(engine, "connect", _on_connect(busy_timeout_s))
    begin = "BEGIN IMMEDIATE" if immediate else "BEGIN"

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql(begin)

    return engine


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
