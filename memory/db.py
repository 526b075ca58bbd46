"""The records (SQLModel rows in `<home>/library.db`) and how the file is opened.

The schema's numbered migrations and the check that a file is ours: memory/migrations.py.

SQLite is opened in WAL mode with a busy timeout, so a reader never blocks a writer and
two writers (a task stream and a person's `tools prune`) wait for each other instead of
failing. Write transactions start with BEGIN IMMEDIATE: a deferred transaction that
upgrades from read to write in WAL mode can fail at once with SQLITE_BUSY_SNAPSHOT,
without waiting for the busy timeout.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlmodel import Field, SQLModel


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
    #: a person vouches for the tool: it is trusted whatever its evidence says
    pinned: bool = False


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
    #: distinct tasks with evidence for / against this version (tool_evidence keeps each)
    n_support: int = 0
    n_against: int = 0
    #: the checks of the tool's output derived from its task's form (JSON list)
    properties_json: str = "[]"


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
    source: str = "agent"
    expected_json: str | None = None


class ToolEvidence(SQLModel, table=True):
    """One comparison, made on the trusted side, for or against a tool version."""

    __tablename__ = "tool_evidence"
    id: int | None = Field(default=None, primary_key=True)
    tool_name: str = Field(index=True)
    version: int
    kind: str
    task: str = ""
    task_hash: str = ""
    task_id: str | None = None
    episode_id: str | None = None
    answer_json: str | None = None
    other_json: str | None = None
    detail: str = ""
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


def _on_connect(busy_timeout_s: float) -> Any:
    def configure(dbapi_conn: sqlite3.Connection, _record: object) -> None:
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
