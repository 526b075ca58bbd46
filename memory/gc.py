"""`evoagent memory gc`: bound what a library keeps, so weeks of streaming do not grow it
without end. Only records that nothing reads any more go (retention in `MemoryConfig`):

- per-call usage records older than `gc_usage_days` (each tool keeps its counts);
- rejected candidates older than `gc_rejection_days`, and beyond the newest
  `gc_max_rejections` (their sources are the bulk);
- change-log entries older than `gc_log_hours`, replaced by one `gc` marker: a process
  whose replay position is older compares its whole index with SQL instead;
- forge marks older than the change-log horizon's batch ends need (`gc_rejection_days`);
- cached embeddings no record refers to (old versions' descriptions, merged tips).

Tools, versions, tips, failures and episodes are never deleted here: pruning archives,
and `restore` brings back.
"""

from __future__ import annotations

import time

from memory.config import MemoryConfig
from memory.store import Store

DAY = 86400.0

# (what, count query, delete query); `?` are (cutoff,) or as noted.
_REFERENCED = (
    "SELECT v.desc_hash FROM tool t JOIN tool_version v "
    "ON v.tool_name = t.name AND v.version = t.current_version "
    "UNION SELECT text_hash FROM tool_task "
    "UNION SELECT text_hash FROM tip WHERE status = 'active' "
    "UNION SELECT text_hash FROM failure"
)


def collect(
    store: Store, cfg: MemoryConfig, *, dry_run: bool = True, vacuum: bool = False
) -> dict[str, int]:
    """Rows to drop (dry run) or dropped, per kind; `vacuum` also compacts the file."""
    now = time.time()
    usage_cut = now - cfg.gc_usage_days * DAY
    rejection_cut = now - cfg.gc_rejection_days * DAY
    log_cut = now - cfg.gc_log_hours * 3600
    plan = {
        "usage_events": ("SELECT count(*) FROM usage_event WHERE created_at < ?", (usage_cut,)),
        "rejections": (
            "SELECT count(*) FROM rejection WHERE created_at < ? OR id NOT IN "
            "(SELECT id FROM rejection ORDER BY id DESC LIMIT ?)",
            (rejection_cut, cfg.gc_max_rejections),
        ),
        "forge_marks": ("SELECT count(*) FROM forge_mark WHERE created_at < ?", (rejection_cut,)),
        "change_log": (
            "SELECT count(*) FROM change WHERE created_at < ? AND kind != 'gc'",
            (log_cut,),
        ),
        "embeddings": (
            f"SELECT count(*) FROM embedding WHERE text_hash NOT IN ({_REFERENCED})",
            (),
        ),
    }
    counts: dict[str, int] = {}
    with store.read_engine.connect() as c:
        for kind, (sql, args) in plan.items():
            counts[kind] = int(c.exec_driver_sql(sql, args).scalar_one())
    if dry_run or not any(counts.values()):
        return counts
    store.check_writable()
    with store.write() as (s, _changes):
        conn = s.connection()
        horizon = conn.exec_driver_sql(
            "SELECT coalesce(max(seq), 0) FROM change WHERE created_at < ?", (log_cut,)
        ).scalar_one()
        for kind, (sql, args) in plan.items():
            if counts[kind]:
                conn.exec_driver_sql(sql.replace("SELECT count(*) FROM", "DELETE FROM", 1), args)
        if counts["change_log"]:
            # The marker says "entries up to here are gone": see IndexSync.sync.
            conn.exec_driver_sql(
                "INSERT INTO change (kind, ref, created_at) VALUES ('gc', ?, ?)",
                (str(horizon), now),
            )
    if vacuum:
        # VACUUM cannot run in a transaction: on the raw (autocommit) connection.
        raw = store.write_engine.raw_connection()
        try:
            raw.cursor().execute("VACUUM")
        finally:
            raw.close()
    return counts
