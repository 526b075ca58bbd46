"""Reading a task stream: JSONL (one task per line) or BIG-Bench Hard JSON files.

Every problem is found before the run starts and reported with the file and line (or
example index) and what is wrong, so a bad line never surfaces as a traceback an hour
into a run. With `skip_bad=True` the bad entries are left out and returned instead.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from agent.checkers import parse_checker
from agent.errors import AgentError
from agent.stream.errors import StreamError
from agent.task import Task

Format = Literal["auto", "jsonl", "bbh"]
FIELDS = ("id", "task", "expected", "checker", "tags")


@dataclass(frozen=True)
class BadEntry:
    """One entry of the input that could not be read as a task."""

    where: str  # "path:line" or "path:examples[i]"
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


@dataclass
class LoadedStream:
    tasks: list[Task]
    skipped: list[BadEntry] = field(default_factory=list)


def load_stream(path: str | Path, fmt: Format = "auto", *, skip_bad: bool = False) -> LoadedStream:
    """Read every task of `path`; raise `StreamError` listing the bad entries.

    `fmt="auto"` reads a `.json` file or a folder as BBH and anything else as JSONL.
    """
    path = Path(path)
    if not path.exists():
        raise StreamError(f"{path}: no such file or folder: give a JSONL stream or BBH .json files")
    if fmt == "auto":
        fmt = "bbh" if path.is_dir() or path.suffix == ".json" else "jsonl"
    if fmt == "jsonl":
        if path.is_dir():
            raise StreamError(f"{path} is a folder: give a .jsonl file (or --format bbh)")
        tasks, bad = _read_jsonl(path)
    elif fmt == "bbh":
        tasks, bad = _read_bbh(path)
    else:
        raise StreamError(f"unknown stream format {fmt!r}: use jsonl or bbh")
    tasks, dup = _drop_duplicates(tasks)
    bad.extend(dup)
    if bad and not skip_bad:
        shown = "\n  ".join(str(b) for b in bad[:10])
        more = f"\n  ... and {len(bad) - 10} more" if len(bad) > 10 else ""
        raise StreamError(
            f"{len(bad)} bad entr{'y' if len(bad) == 1 else 'ies'} in {path} "
            f"(fix them, or pass --skip-bad to leave them out):\n  {shown}{more}"
        )
    if not tasks:
        if bad:  # --skip-bad left every entry out: say why, not only that nothing is left
            shown = "\n  ".join(str(b) for b in bad[:10])
            raise StreamError(f"{path} holds no good task; every entry is bad:\n  {shown}")
        raise StreamError(
            f"{path} holds no tasks: write one JSON object per line, e.g. "
            '{"id": "t1", "task": "...", "expected": "..."}'
        )
    return LoadedStream([t for t, _ in tasks], bad)


def task_to_dict(task: Task) -> dict[str, Any]:
    """The JSONL form of a task (what `load_stream` reads back)."""
    out: dict[str, Any] = {"id": task.id, "task": task.task}
    if task.expected is not None:
        out["expected"] = task.expected
    if task.checker is not None:
        out["checker"] = task.checker
    if task.tags:
        out["tags"] = list(task.tags)
    return out


def family_of(task_id: str, tags: list[str] | None = None) -> str:
    """A task's family: its first tag, else its id up to the last `-`."""
    if tags:
        return tags[0]
    head, sep, _ = task_id.rpartition("-")
    return head if sep and head else "-"


def _read_jsonl(path: Path) -> tuple[list[tuple[Task, str]], list[BadEntry]]:
    tasks: list[tuple[Task, str]] = []
    bad: list[BadEntry] = []
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise StreamError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    for lineno, line in enumerate(text.splitlines(), start=1):
        where = f"{path}:{lineno}"
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            bad.append(BadEntry(where, f"not valid JSON ({exc.msg} at column {exc.colno})"))
            continue
        try:
            tasks.append((_task_from_dict(data), where))
        except ValueError as exc:
            bad.append(BadEntry(where, str(exc)))
    return tasks, bad


def _task_from_dict(data: object) -> Task:
    if not isinstance(data, dict):
        raise ValueError(
            f"expected a JSON object with {', '.join(FIELDS)}, got {type(data).__name__}"
        )
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(unknown)} (allowed: {', '.join(FIELDS)})")
    task_id = data.get("id")
    if isinstance(task_id, int) and not isinstance(task_id, bool):
        task_id = str(task_id)
    if not isinstance(task_id, str) or not task_id.strip():
        raise ValueError('"id" is missing or not a non-empty string')
    if any(ch in task_id for ch in "/\\\n\r\t"):
        raise ValueError(f'"id" {task_id!r} contains a slash or a control character')
    text = data.get("task")
    if not isinstance(text, str) or not text.strip():
        raise ValueError('"task" is missing or not a non-empty string')
    expected = data.get("expected")  # any JSON value: the task's checker compares it
    checker = data.get("checker")
    if checker is not None:
        if not isinstance(checker, str):
            raise ValueError('"checker" must be a string')
        try:
            spec = parse_checker(checker)
        except AgentError as exc:
            raise ValueError(str(exc)) from None
        if spec.needs_expected and expected is None:
            # (parse_checker's own message names --expect, a flag of `solve`, not a field)
            raise ValueError(f'checker {checker!r} compares with an answer: add "expected"')
        if problem := spec.expected_problem(expected):
            raise ValueError(f"checker {checker!r}: {problem}: give a number or another checker")
    tags = data.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise ValueError('"tags" must be a list of strings')
    return Task(id=task_id.strip(), task=text, expected=expected, checker=checker, tags=tags)


def _read_bbh(path: Path) -> tuple[list[tuple[Task, str]], list[BadEntry]]:
    files = sorted(path.glob("*.json")) if path.is_dir() else [path]
    if not files:
        raise StreamError(f"{path} holds no .json files")
    tasks: list[tuple[Task, str]] = []
    bad: list[BadEntry] = []
    for file in files:
        family = file.stem
        try:
            doc = json.loads(file.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            bad.append(BadEntry(str(file), f"not a valid JSON file ({exc})"))
            continue
        examples = doc.get("examples") if isinstance(doc, dict) else None
        if not isinstance(examples, list):
            bad.append(BadEntry(str(file), 'no "examples" list: not a BIG-Bench Hard file'))
            continue
        for index, example in enumerate(examples):
            where = f"{file}:examples[{index}]"
            if not isinstance(example, dict) or not isinstance(example.get("input"), str):
                bad.append(BadEntry(where, 'expected an object with a string "input"'))
                continue
            target = example.get("target")
            if target is not None and not isinstance(target, str):
                bad.append(BadEntry(where, '"target" must be a string'))
                continue
            task = Task(
                id=f"{family}-{index:04d}",
                task=example["input"],
                expected=target,
                checker=None,
                tags=[family],
            )
            tasks.append((task, where))
    return tasks, bad


def _drop_duplicates(
    tasks: list[tuple[Task, str]],
) -> tuple[list[tuple[Task, str]], list[BadEntry]]:
    seen: dict[str, str] = {}
    kept: list[tuple[Task, str]] = []
    bad: list[BadEntry] = []
    for task, where in tasks:
        if task.id in seen:
            bad.append(BadEntry(where, f"duplicate id {task.id!r} (first at {seen[task.id]})"))
            continue
        seen[task.id] = where
        kept.append((task, where))
    return kept, bad
