"""Cassettes: `--record PATH` writes every call of any model; `replay:PATH` plays them back.

A cassette is JSON Lines, one finished call per line, appended and flushed as each call
ends (a killed run keeps every call it finished):

    {"v": 1, "key": "<sha256>", "step": "act", "model": "openai:gpt-4o-mini",
     "messages": [{"role": "system", "content": "..."}, {"role": "human", "content": "..."}],
     "reply": {"content": "...", "usage_metadata": {...}}, "seconds": 1.2, "at": "<iso time>"}

A failed call has `"error": {"type": ..., "message": ...}` instead of `reply`, and replays
as the same ModelCallError, so an episode that ended in a model error replays too.

The key hashes the step and every message's role and content (`request_key`). Replay
answers a request with the recordings of its key in the order they were recorded (a
per-key queue: asking the same thing twice gets the first and then the second answer).

Recording is a callback handler put on the model itself (`attach_recorder`), so it works
for any chat model without wrapping it and sees exactly the step the model sees.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import deque
from collections.abc import Sequence
from datetime import UTC, datetime
from hashlib import sha256
from pathlib import Path
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult, LLMResult
from pydantic import PrivateAttr

from agent.errors import ModelError
from agent.models.errors import ModelCallError
from agent.models.steps import estimated_usage, preview, prompt_text, step_from, step_of_run

CASSETTE_VERSION = 1


def _message_record(message: BaseMessage) -> dict[str, Any]:
    return {"role": message.type, "content": message.content}


def request_key(messages: Sequence[BaseMessage], step: str | None) -> str:
    """The hash a request is recorded and replayed under: its step, roles and contents."""
    payload = {"step": step, "messages": [_message_record(m) for m in messages]}
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return sha256(blob.encode("utf-8")).hexdigest()


class CassetteRecorder(BaseCallbackHandler):
    """Appends one JSON line per finished (or failed) call to `path`. Thread-safe."""

    # A cassette that silently misses calls would replay wrongly later: fail loudly.
    raise_error = True

    def __init__(self, path: str | Path, model_name: str = "") -> None:
        super().__init__()
        self.path = Path(path).expanduser()
        self.model_name = model_name
        self._lock = threading.Lock()
        self._pending: dict[UUID, tuple[str | None, list[BaseMessage], float]] = {}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.touch()
        except OSError as exc:
            raise ModelError(
                f"cannot write the cassette {self.path} ({exc}): pick a writable --record path"
            ) from exc

    def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[BaseMessage]],
        *,
        run_id: UUID,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: object,
    ) -> None:
        step = step_from(tags, metadata)
        with self._lock:
            self._pending.setdefault(run_id, (step, list(messages[0]), time.perf_counter()))

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: object) -> None:
        with self._lock:
            pending = self._pending.pop(run_id, None)
        if pending is None:
            return
        generation = response.generations[0][0] if response.generations else None
        reply: dict[str, Any] = {"content": generation.text if generation else ""}
        if isinstance(generation, ChatGeneration):
            message = generation.message
            reply["content"] = message.content
            if getattr(message, "usage_metadata", None):
                reply["usage_metadata"] = dict(message.usage_metadata)  # type: ignore[attr-defined]
            if getattr(message, "tool_calls", None):
                reply["tool_calls"] = message.tool_calls  # type: ignore[attr-defined]
        self._write(pending, {"reply": reply})

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: object) -> None:
        with self._lock:
            pending = self._pending.pop(run_id, None)
        if pending is None:
            return
        self._write(pending, {"error": {"type": type(error).__name__, "message": str(error)}})

    def _write(
        self, pending: tuple[str | None, list[BaseMessage], float], outcome: dict[str, Any]
    ) -> None:
        step, messages, started = pending
        record = {
            "v": CASSETTE_VERSION,
            "key": request_key(messages, step),
            "step": step,
            "model": self.model_name,
            "messages": [_message_record(m) for m in messages],
            **outcome,
            "seconds": round(time.perf_counter() - started, 6),
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        line = (json.dumps(record, ensure_ascii=False, default=str) + "\n").encode("utf-8")
        with self._lock:
            # One O_APPEND write per line: lines from threads (or processes) never interleave.
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                try:
                    os.write(fd, line)
                finally:
                    os.close(fd)
            except OSError as exc:
                raise ModelError(
                    f"cannot append to the cassette {self.path} ({exc}): free space or pick "
                    "another --record path; this run's recording is incomplete"
                ) from exc


def attach_recorder(model: BaseChatModel, path: str | Path, model_name: str = "") -> BaseChatModel:
    """Make `model` record every call to the cassette at `path`; returns the same model."""
    recorder = CassetteRecorder(path, model_name=model_name)
    callbacks = model.callbacks
    if callbacks is None:
        model.callbacks = [recorder]
    elif isinstance(callbacks, list):
        model.callbacks = [*callbacks, recorder]
    else:  # a callback manager
        callbacks.add_handler(recorder, inherit=False)
    return model


def load_cassette(path: str | Path) -> list[dict[str, Any]]:
    """The records of a cassette, in order; a broken file is a ModelError."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise ModelError(
            f"cassette {file} does not exist: record one first with --record {file} "
            "(on a run with a real or scripted model)"
        )
    try:
        lines = file.read_text(encoding="utf-8").split("\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelError(f"cassette {file} cannot be read ({exc})") from exc
    records = []
    last = len(lines) - 1
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict) or "key" not in record:
                raise ValueError("not a cassette record (no `key`)")
            if "reply" not in record and "error" not in record:
                raise ValueError("a record needs `reply` or `error`")
        except ValueError as exc:
            if number - 1 == last:
                # The last line without its newline: a write torn by a kill. Every
                # finished call before it is intact, so replay them.
                continue
            raise ModelError(
                f"cassette {file} line {number} is not a valid record ({exc}): "
                "re-record it with --record"
            ) from exc
        records.append(record)
    return records


class ReplayModel(BaseChatModel):
    """Answers from a cassette by request hash; an unrecorded request is a ModelCallError.

    Usage: the recorded `usage_metadata` when the cassette has it (so a replay makes the
    same token-budget decisions as the recorded run), else the text estimate.
    """

    path: str
    _queues: dict[str, deque[dict[str, Any]]] = PrivateAttr(default_factory=dict)
    _counts: dict[str, int] = PrivateAttr(default_factory=dict)
    _steps: dict[str | None, int] = PrivateAttr(default_factory=dict)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @classmethod
    def from_file(cls, path: str | Path, **kwargs: object) -> ReplayModel:
        model = cls(path=str(Path(path).expanduser()), **kwargs)
        for record in load_cassette(path):
            model._queues.setdefault(record["key"], deque()).append(record)
            model._counts[record["key"]] = model._counts.get(record["key"], 0) + 1
            step = record.get("step")
            model._steps[step] = model._steps.get(step, 0) + 1
        return model

    @property
    def _llm_type(self) -> str:
        return "evoagent-replay"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"path": self.path}

    @property
    def remaining(self) -> int:
        """Recordings not played yet."""
        with self._lock:
            return sum(len(queue) for queue in self._queues.values())

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: object,
    ) -> ChatResult:
        step = step_of_run(run_manager)
        key = request_key(messages, step)
        with self._lock:
            queue = self._queues.get(key)
            record = queue.popleft() if queue else None
        if record is None:
            raise ModelCallError(self._missing(key, step, prompt_text(messages)), step=step)
        if "error" in record:
            error = record["error"]
            raise ModelCallError(
                f"(replayed from {self.path}) {error.get('message', 'the recorded call failed')}",
                step=step,
            )
        reply = record["reply"]
        content = reply.get("content", "")
        usage = reply.get("usage_metadata") or estimated_usage(
            prompt_text(messages), prompt_text([AIMessage(content=content)])
        )
        message = AIMessage(
            content=content,
            usage_metadata=usage,
            tool_calls=reply.get("tool_calls") or [],
            response_metadata={"replayed_from": self.path},
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _missing(self, key: str, step: str | None, prompt: str) -> str:
        played = self._counts.get(key, 0)
        if played:
            why = f"this request was recorded {played} time(s) and all were already replayed"
        else:
            n_step = self._steps.get(step, 0)
            why = f"no recording of this request ({n_step} recording(s) for step {step!r})"
        return (
            f"replay {self.path}: {why}. Step {step!r}, request {key[:12]}, prompt starts: "
            f"{preview(prompt)!r}. The run diverged from the recorded one: re-record with "
            f"--record {self.path} on the real model."
        )
