"""Records <-> rows: usage, tips, failures and episodes built from SQL rows and back, plus
the text keys rows are stored under (content hashes, failure signatures, task refs) and
the JSON they are kept in. Tools: memory/tool_rows.py.

Plain functions without state: the callers hold the sessions and engines.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from pathlib import Path
from typing import Any

from memory import db
from memory.episode import STATUSES, Episode, Trace
from memory.types import (
    FailureInfo,
    TipInfo,
    UsageEvent,
)

JSON_CAP = 4000  # characters kept of a recorded argument or result

# -------------------------------------------------------------------- keys


def content_hash(text_: str) -> str:
    return hashlib.sha1(text_.encode("utf-8")).hexdigest()


def failure_text(task: str, error_type: str, message: str, lesson: str) -> str:
    return f"{task}\n{error_type}: {message}\n{lesson}"


_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_NUMBER = re.compile(r"\b0x[0-9a-f]+\b|\b\d+(\.\d+)?\b")


def failure_signature(error_type: str, message: str, tool: str | None) -> str:
    """Failures with equal signature are one cluster: literals and numbers do not count."""
    norm = _NUMBER.sub("<n>", _QUOTED.sub("<s>", message.lower()))
    norm = " ".join(norm.split())[:200]
    return content_hash(f"{error_type}|{norm}|{tool or ''}")[:16]


def task_ref(tool: str, task: str) -> str:
    return f"{tool}:{content_hash(task)[:16]}"


# -------------------------------------------------------------------- JSON columns


def dumps(value: object, cap: int | None = JSON_CAP) -> str | None:
    if value is None:
        return None
    out = json.dumps(value, default=_jsonable, ensure_ascii=False)
    return out if cap is None or len(out) <= cap else json.dumps(out[:cap] + "...")


def _jsonable(value: object) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    return repr(value)


def loads(raw: str | None) -> Any:
    return None if raw is None else json.loads(raw)


def usage_row(e: UsageEvent, version: int, now: float) -> db.UsageRow:
    return db.UsageRow(
        tool_name=e.tool,
        tool_version=version,
        episode_id=e.episode_id,
        ok=bool(e.ok),
        args_json=dumps(e.args),
        kwargs_json=dumps(e.kwargs),
        result_json=dumps(e.result),
        error_type=e.error_type,
        error_message=(e.error_message or None) and e.error_message[:JSON_CAP],
        seconds=float(e.seconds),
        created_at=now,
        source=e.source,
        expected_json=dumps(e.expected),
    )


def usage_event(r: db.UsageRow) -> UsageEvent:
    return UsageEvent(
        tool=r.tool_name,
        ok=r.ok,
        episode_id=r.episode_id,
        args=loads(r.args_json),
        kwargs=loads(r.kwargs_json),
        result=loads(r.result_json),
        error_type=r.error_type,
        error_message=r.error_message,
        seconds=r.seconds,
        source=r.source,
        expected=loads(r.expected_json),
    )


# -------------------------------------------------------------------- notes, episodes


def tip_info(t: db.Tip) -> TipInfo:
    return TipInfo(
        id=t.id,
        text=t.text,
        task=t.task,
        episode_id=t.episode_id,
        status=t.status,
        support=t.support,
        n_shown=t.n_shown,
        n_helped=t.n_helped,
        created_at=t.created_at,
        merged_into=t.merged_into,
    )


def failure_info(f: db.Failure) -> FailureInfo:
    return FailureInfo(
        id=f.id,
        task=f.task,
        error_type=f.error_type,
        message=f.message,
        lesson=f.lesson,
        tool=f.tool,
        episode_id=f.episode_id,
        signature=f.signature,
        status=f.status,
        count=f.count,
        created_at=f.created_at,
        merged_into=f.merged_into,
    )


#: caps of what one episode keeps, so the library does not grow with long answers or
#: long histories (a stream runs for weeks)
EPISODE_ANSWER_CAP = 16 * 1024
EPISODE_TRACE_CAP = 256 * 1024


def _trace_json(trace: object) -> str | None:
    """The episode's trace, its history shortened from the front until it fits: the
    reason and the deferred forge traces (which a resumed batch still needs) are kept."""
    text = dumps(trace, cap=None)
    if text is None or len(text) <= EPISODE_TRACE_CAP or not isinstance(trace, dict):
        return text
    history = list(trace.get("history") or [])
    while history and text is not None and len(text) > EPISODE_TRACE_CAP:
        history = history[len(history) // 2 + 1 :]
        text = dumps({**trace, "history": history, "history_cut": True}, cap=None)
    return (
        text
        if text is None or len(text) <= EPISODE_TRACE_CAP * 2
        else dumps(trace, cap=EPISODE_TRACE_CAP)
    )


def episode_row(ep: Episode, ep_id: str, created_at: float) -> db.Episode:
    """The episode as its row: the figures in columns, the rest (history, reason, traces,
    what backs the answer, usage per step, deferred evidence) in the trace JSON."""
    trace = {
        "history": ep.history,
        "reason": ep.reason,
        "traces": [t.to_dict() for t in ep.traces],
        "verified_by": ep.verified_by,
        "answer_tool": ep.answer_tool,
        "usage_by_step": ep.usage_by_step,
        "evidence": ep.evidence,
    }
    return db.Episode(
        id=ep_id,
        task_id=ep.task_id,
        task=ep.task,
        status=ep.status,
        answer_json=dumps(ep.answer, cap=EPISODE_ANSWER_CAP),
        correct=ep.correct,
        attempts=ep.attempts,
        n_calls=ep.n_calls,
        tokens_in=ep.tokens_in,
        tokens_out=ep.tokens_out,
        seconds=ep.seconds,
        tools_used_json=json.dumps(list(ep.tools_used)),
        tools_created_json=json.dumps(list(ep.tools_created)),
        feedback=ep.feedback,
        run_id=ep.run_id,
        trace_json=_trace_json(trace),
        created_at=created_at,
    )


def episode_of(row: db.Episode) -> Episode:
    """The episode a row holds (rows of older versions carry less in their trace JSON)."""
    trace = loads(row.trace_json)
    trace = trace if isinstance(trace, dict) else {}
    status = row.status if row.status in STATUSES else "error"
    return Episode(
        task_id=row.task_id,
        task=row.task,
        status=status,  # type: ignore[arg-type]
        answer=loads(row.answer_json),
        correct=row.correct,
        feedback=row.feedback,
        attempts=row.attempts,
        n_calls=row.n_calls,
        tokens_in=row.tokens_in,
        tokens_out=row.tokens_out,
        seconds=row.seconds,
        usage_by_step=dict(trace.get("usage_by_step") or {}),
        tools_used=json.loads(row.tools_used_json),
        tools_created=json.loads(row.tools_created_json),
        reason=str(trace.get("reason") or ""),
        verified_by=str(trace.get("verified_by") or ""),
        answer_tool=trace.get("answer_tool"),
        run_id=row.run_id,
        id=row.id,
        history=list(trace.get("history") or []),
        traces=[Trace.from_dict(t) for t in trace.get("traces") or []],
        evidence=list(trace.get("evidence") or []),
    )
