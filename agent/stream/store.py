"""The files of one run: `<home>/runs/<run-id>/`.

    meta.json       how the run was started (stream, options, model), its status
    tasks.jsonl     the stream as read at the start: resume never re-reads the input
    results.jsonl   one line per finished task, appended and fsync'd as it finishes;
                    its batch's end writes in the tools the task created (the batch's
                    lines are the file's last: they are rewritten through results.amend,
                    a redo record, so a kill mid-rewrite loses no line)
    traces.jsonl    the successful traces of each finished task, kept until its batch
                    is forged, so a kill between a task's end and its batch's end loses
                    nothing
    batches.jsonl   one line per forged batch: outcomes (tools admitted per task) and
                    the library size after it
    summary.json    the figures of the run (rewritten at each batch end)
    tools.json      the library's tools at the end of the run (for the report)

    lock            held (flock) by the one process running the run: a second `--resume`
                    of the same run is refused at once

Append-only JSONL with fsync per line (and of the folder when a file is created) is what
makes SIGKILL safe: a line is either whole on disk or was never written. When the run is
reopened, a torn last line (the kill came mid-write) is cut off and a line that does not
parse anywhere in a file (a full disk) is dropped, with a note; a reader skips such a line
rather than failing. traces.jsonl only holds the traces of the batch in flight: it is
emptied once that batch's record is on disk.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.stream.errors import StreamError
from agent.stream.inputs import family_of
from agent.task import Task
from memory.episode import Episode

log = logging.getLogger(__name__)
RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)


def runs_dir(home: Path) -> Path:
    return Path(home) / "runs"


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    status: str
    started_at: str
    stream: str
    n_tasks: int
    n_done: int
    feedback: str
    learn: bool
    model: str | None


class RunStore:
    """Reads and appends the files of one run. Thread-safe appends."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.run_id = directory.name
        self._lock = threading.Lock()

    # -- creating and opening -------------------------------------------------

    @classmethod
    def create(
        cls, home: Path, run_id: str, meta: dict[str, Any], tasks: Iterable[dict]
    ) -> RunStore:
        if not RUN_ID_RE.match(run_id):
            raise StreamError(
                f"run id {run_id!r} is not valid: use letters, digits, '.', '_' or '-' (at most 100)"
            )
        directory = runs_dir(home) / run_id
        if directory.exists():
            raise StreamError(
                f"run {run_id!r} already exists in {directory.parent}: "
                f"resume it with --resume {run_id} or pick another --run-id"
            )
        directory.mkdir(parents=True)
        _fsync_dir(directory.parent)
        store = cls(directory)
        _write_atomic(directory / "tasks.jsonl", "".join(json.dumps(t) + "\n" for t in tasks))
        store.write_meta(meta)
        for name in ("results.jsonl", "traces.jsonl", "batches.jsonl"):
            (directory / name).touch()
        _fsync_dir(directory)
        return store

    @classmethod
    def open(cls, home: Path, run_id: str) -> RunStore:
        directory = runs_dir(home) / run_id
        if not RUN_ID_RE.match(run_id) or not (directory / "meta.json").is_file():
            known = [r.run_id for r in list_runs(home)][-5:]
            hint = f" (recent runs: {', '.join(known)})" if known else " (no runs yet in this home)"
            raise StreamError(
                f"no run {run_id!r} in {runs_dir(home)}{hint}: see `evoagent runs list`"
            )
        return cls(directory)

    def lock(self) -> None:
        """Hold the run's lock until `unlock` (or this process ends): one runner per run."""
        if getattr(self, "_lock_fd", None) is not None:
            return
        fd = os.open(self.dir / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            pid = (self.dir / "meta.json").is_file() and self.meta().get("pid")
            raise StreamError(
                f"run {self.run_id} is being run by another process"
                + (f" (pid {pid})" if pid else "")
                + ": wait for it to end, or stop it first"
            ) from None
        self._lock_fd: int | None = fd

    def unlock(self) -> None:
        fd = getattr(self, "_lock_fd", None)
        if fd is not None:
            self._lock_fd = None
            os.close(fd)

    def repair(self) -> None:
        """Make each JSONL file whole again: cut a torn last line (a kill mid-write) and
        drop any line that does not parse (a full disk can leave one mid-file); finish an
        amendment of results.jsonl a kill interrupted."""
        _redo_amend(self.dir)
        for name in ("results.jsonl", "traces.jsonl", "batches.jsonl"):
            path = self.dir / name
            if not path.exists():
                path.touch()
                continue
            data = path.read_bytes()
            lines = data.split(b"\n")
            torn = lines.pop()  # b"" when the file ends with a newline
            good = [line for line in lines if _parses(line)]
            if torn or len(good) != len(lines):
                dropped = len(lines) - len(good) + (1 if torn else 0)
                log.warning("run %s: %s had %d broken line(s); dropped", self.run_id, name, dropped)
                _write_atomic(path, "".join(line.decode("utf-8") + "\n" for line in good))

    # -- meta and summary -----------------------------------------------------

    def meta(self) -> dict[str, Any]:
        return _read_json(self.dir / "meta.json")

    def write_meta(self, meta: dict[str, Any]) -> None:
        _write_atomic(self.dir / "meta.json", json.dumps(meta, indent=2, default=str))

    def update_meta(self, **changes: object) -> dict[str, Any]:
        with self._lock:
            meta = self.meta()
            meta.update(changes)
            self.write_meta(meta)
            return meta

    def summary(self) -> dict[str, Any] | None:
        path = self.dir / "summary.json"
        return _read_json(path) if path.is_file() else None

    def write_summary(self, summary: dict[str, Any]) -> None:
        _write_atomic(self.dir / "summary.json", json.dumps(summary, indent=2, default=str))

    def write_tools(self, tools: list[dict[str, Any]]) -> None:
        _write_atomic(self.dir / "tools.json", json.dumps(tools, indent=2, default=str))

    def tools(self) -> list[dict[str, Any]]:
        path = self.dir / "tools.json"
        return list(_read_json(path)) if path.is_file() else []

    def write_health(self, health: dict[str, Any]) -> None:
        _write_atomic(self.dir / "health.json", json.dumps(health, indent=2, default=str))

    def health(self) -> dict[str, Any]:
        """The library's health at the run's end (memory/health.py); {} before it ends."""
        path = self.dir / "health.json"
        data = _read_json(path) if path.is_file() else {}
        return dict(data) if isinstance(data, dict) else {}

    # -- the stream -----------------------------------------------------------

    def task_dicts(self) -> list[dict[str, Any]]:
        return _read_jsonl(self.dir / "tasks.jsonl")

    # -- appends (one fsync'd line each) --------------------------------------

    def append_result(self, row: dict[str, Any]) -> None:
        self._append("results.jsonl", row)

    def append_traces(
        self,
        task_id: str,
        batch: int,
        traces: list[dict[str, Any]],
        evidence: list[dict[str, Any]] | None = None,
    ) -> None:
        """What a finished task leaves for its batch's end: its traces to forge, and the
        evidence about library tools its answers gave (recorded at the batch end, so every
        task of a batch sees the tools' trust as it was at the batch start)."""
        row = {"id": task_id, "batch": batch, "traces": traces, "evidence": evidence or []}
        self._append("traces.jsonl", row)

    def append_batch(self, record: dict[str, Any]) -> None:
        self._append("batches.jsonl", record)

    def amend_results(self, batch: int, created: dict[str, list[str]]) -> None:
        """Write the tools a batch's end created into its tasks' result lines (written
        before the forge ran). Idempotent: a batch end run again amends again."""
        if not created:
            return
        with self._lock:
            path = self.dir / "results.jsonl"
            offset, tail = _batch_tail(path, batch)
            lines = []
            for row in tail:
                names = created.get(str(row.get("id"))) if row.get("batch") == batch else None
                if names:
                    row = {**row, "tools_created": sorted({*row.get("tools_created", []), *names})}
                lines.append(json.dumps(row, default=str) + "\n")
            redo = {"offset": offset, "text": "".join(lines)}
            _write_atomic(self.dir / AMEND_FILE, json.dumps(redo))
            _redo_amend(self.dir)

    def clear_traces(self) -> None:
        """Forget forged traces: called once their batch's record is on disk."""
        with self._lock:
            _write_atomic(self.dir / "traces.jsonl", "")

    def _append(self, name: str, row: dict[str, Any]) -> None:
        line = json.dumps(row, default=str) + "\n"
        with self._lock, (self.dir / name).open("a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())

    # -- reads ------------------------------------------------------------------

    def raw_results(self) -> list[dict[str, Any]]:
        """Result lines as written, the last line per id winning."""
        by_id: dict[str, dict[str, Any]] = {}
        for row in _read_jsonl(self.dir / "results.jsonl"):
            by_id[row["id"]] = row
        return list(by_id.values())

    def batches(self) -> list[dict[str, Any]]:
        return _read_jsonl(self.dir / "batches.jsonl")

    def traces(self, task_ids: Iterable[str]) -> dict[str, dict[str, list[dict[str, Any]]]]:
        """What `append_traces` kept for these finished tasks: {id: {"traces", "evidence"}}."""
        wanted = set(task_ids)
        out: dict[str, dict[str, list[dict[str, Any]]]] = {}
        for row in _read_jsonl(self.dir / "traces.jsonl"):
            if row["id"] in wanted:
                out[row["id"]] = {
                    "traces": list(row.get("traces") or []),
                    "evidence": list(row.get("evidence") or []),
                }
        return out

    def results(self) -> list[dict[str, Any]]:
        """Finished tasks in stream order, with the tools each one created (its line has
        them once its batch ended; batches.jsonl is read too, for runs written before
        lines were amended)."""
        order = {t["id"]: i for i, t in enumerate(self.task_dicts())}
        created: dict[str, list[str]] = {}
        for batch in self.batches():
            for task_id, names in (batch.get("created") or {}).items():
                created.setdefault(task_id, []).extend(names)
        rows = []
        for row in self.raw_results():
            row = dict(row)
            row["tools_created"] = sorted(
                set(row.get("tools_created") or []) | set(created.get(row["id"], []))
            )
            rows.append(row)
        rows.sort(key=lambda r: order.get(r["id"], len(order)))
        return rows

    def status(self, meta: dict[str, Any] | None = None) -> str:
        """The run's status, `interrupted` when its runner died without finishing."""
        meta = self.meta() if meta is None else meta
        status = str(meta.get("status", "?"))
        pid = meta.get("pid")
        if status == "running" and isinstance(pid, int) and not _alive(pid):
            status = "interrupted"  # the runner died without finishing: resume it
        return status

    def info(self) -> RunInfo:
        meta = self.meta()
        status = self.status(meta)
        n_done = sum(1 for _ in _read_jsonl(self.dir / "results.jsonl"))
        return RunInfo(
            run_id=self.run_id,
            status=status,
            started_at=str(meta.get("started_at", "")),
            stream=str(meta.get("stream", "")),
            n_tasks=int(meta.get("n_tasks", 0)),
            n_done=n_done,
            feedback=str(meta.get("feedback", "")),
            learn=bool(meta.get("learn", True)),
            model=meta.get("model"),
        )


def result_line(task: Task, batch: int, episode: Episode, library_size: int) -> dict[str, Any]:
    """A finished task's results line: its episode's summary and where it stood in the
    run (its batch, the library's size when the batch started)."""
    return {
        **_line_head(task, batch, library_size),
        **episode.summary(),
        "traceback": None,
    }


def error_line(
    task: Task, batch: int, library_size: int, reason: str, traceback: str | None
) -> dict[str, Any]:
    """The results line of a task whose solving raised: it ended in error and spent nothing
    on record; the traceback is kept for the bug report."""
    empty = Episode(task_id=task.id, task=task.task, status="error", reason=reason)
    line = result_line(task, batch, empty, library_size)
    line.update(correct=False if task.expected is not None else None, traceback=traceback)
    return line


def _line_head(task: Task, batch: int, library_size: int) -> dict[str, Any]:
    return {
        "id": task.id,
        "family": family_of(task.id, task.tags),
        "tags": list(task.tags),
        "batch": batch,
        "expected": task.expected,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "library_size_before": library_size,
    }


def list_runs(home: Path) -> list[RunInfo]:
    """Every run in the home, oldest first."""
    root = runs_dir(home)
    if not root.is_dir():
        return []
    infos = []
    for directory in root.iterdir():
        if (directory / "meta.json").is_file():
            try:
                infos.append(RunStore(directory).info())
            except (OSError, ValueError):
                continue  # a half-created run folder: not a run
    return sorted(infos, key=lambda r: (r.started_at, r.run_id))


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (killed, not yet reaped by its parent) is not running either.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


AMEND_FILE = "results.amend"


def _batch_tail(path: Path, batch: int) -> tuple[int, list[dict[str, Any]]]:
    """(offset, rows) of the file's last lines from the first of `batch` on: read from
    the end in growing chunks, so a batch end costs its own lines, not the run's."""
    size = path.stat().st_size
    chunk = 1 << 16
    with path.open("rb") as fh:
        while True:
            start = max(0, size - chunk)
            fh.seek(start)
            data = fh.read(size - start)
            skip = 0 if start == 0 else data.find(b"\n") + 1  # a partial first line
            if start > 0 and skip == 0:
                chunk *= 4
                continue
            lines = data[skip:].split(b"\n")[:-1]
            rows = [json.loads(line) if _parses(line) else {} for line in lines]
            first = len(rows)
            while first > 0 and rows[first - 1].get("batch", batch) >= batch:
                first -= 1
            if first > 0 or start == 0:
                offset = start + skip + sum(len(line) + 1 for line in lines[:first])
                return offset, [r for r in rows[first:] if r]
            chunk *= 4


def _redo_amend(directory: Path) -> None:
    """Apply a written amendment of results.jsonl: cut the file at its offset and append
    its lines (repeatable: the amendment is removed only once it is on disk)."""
    redo_path = directory / AMEND_FILE
    if not redo_path.is_file():
        return
    try:
        redo = json.loads(redo_path.read_text(encoding="utf-8"))
        offset, text = int(redo["offset"]), str(redo["text"])
    except (ValueError, KeyError, TypeError):
        redo_path.unlink()  # unreadable: applying starts only after reading, so none began
        return
    with (directory / "results.jsonl").open("r+b") as fh:
        fh.truncate(offset)
        fh.seek(offset)
        fh.write(text.encode("utf-8"))
        fh.flush()
        os.fsync(fh.fileno())
    redo_path.unlink()
    _fsync_dir(directory)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise StreamError(f"{path} is corrupt ({exc}): restore it or start a new run") from exc


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    rows = []
    with path.open(encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if not line.endswith("\n"):
                break  # torn by a kill mid-write: that line was never finished
            if line.strip():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line a full disk cut short: `repair` drops it
                if isinstance(row, dict):
                    rows.append(row)
    return rows


def _parses(line: bytes) -> bool:
    if not line.strip():
        return False
    try:
        return isinstance(json.loads(line), dict)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    """Make a file's creation or rename durable (the entry lives in the folder)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
