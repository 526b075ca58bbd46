"""The `code` role: the job's code, in a fresh interpreter under its own user.

It reads one `run` message (the code, the tools it may import, its inputs), executes
the code with `from tools import name` served by the bridge, and sends back its final
state: its `answer` and the exception that ended it, which are its to choose. It never
sees the job line nor the secret, and holds no descriptor of the supervisor's but its
two message pipes and its output's capture pipes.
"""

from __future__ import annotations

import builtins
import contextlib
import os
import sys
from typing import Any

from . import procs
from .bridge import Bridge, format_traceback, remember_source, tools_module
from .codec import ANSWER_LIMIT, TRACEBACK_LIMIT, VALUE_LIMIT, from_plain, jsonish
from .wire import LineReader, send


def code_main(args: list[str]) -> int:
    """Run the job's code (sent by the supervisor) and send its final state."""
    down, up = int(args[0]), int(args[1])
    reader = LineReader(down)
    try:
        job = reader.read()
    except (OSError, ValueError):
        job = None
    if not job or job.get("op") != "run":
        return 0  # a warm process whose container is being discarded
    procs.oom_first()
    if job.get("rlimits"):
        procs.apply_rlimits(job["rlimits"])
    # Line buffering: what was printed before a kill at the deadline is not lost.
    sys.stdout.reconfigure(line_buffering=True, errors="backslashreplace")  # type: ignore[union-attr]
    sys.stderr.reconfigure(line_buffering=True, errors="backslashreplace")  # type: ignore[union-attr]
    bridge = Bridge(reader, up)
    sys.modules["tools"] = tools_module(list(job.get("tools") or []), bridge)
    try:
        inputs = from_plain(job.get("inputs") or [])
    except ValueError:
        inputs = []
    final = _execute(str(job.get("code") or ""), {str(k): v for k, v in inputs})
    _flush_std()
    if os.getpid() == bridge.pid:
        with contextlib.suppress(OSError):
            send(up, {"op": "final", **final})
    return int(final.pop("exit_code", 0))


def _execute(code: str, inputs: dict[str, Any]) -> dict[str, Any]:
    import traceback

    filename = "<code>"
    remember_source(filename, code)
    namespace: dict[str, Any] = {**inputs, "__name__": "__main__", "__builtins__": builtins}
    final: dict[str, Any] = {
        "has_answer": False,
        "answer": None,
        "answer_truncated": False,
        "error_type": None,
        "error_message": None,
        "traceback": None,
        "exit_code": 0,
    }
    main_pid = os.getpid()
    try:
        exec(compile(code, filename, "exec"), namespace)
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            final["exit_code"] = exc.code or 0
        else:
            print(exc.code, file=sys.stderr)
            final["exit_code"] = 1
    except BaseException as exc:
        final["exit_code"] = 1
        final["error_type"] = type(exc).__name__
        final["error_message"] = _text(exc)[:VALUE_LIMIT]
        final["traceback"] = format_traceback(exc, traceback)[-TRACEBACK_LIMIT:]
    if os.getpid() != main_pid:
        # A process the code forked reached the end: it does not report a result.
        _flush_std()
        os._exit(int(final["exit_code"]))
    if "answer" in namespace:
        final["has_answer"] = True
        final["answer"], final["answer_truncated"] = jsonish(namespace["answer"], ANSWER_LIMIT)
    return final


def _text(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:
        return f"<{type(exc).__name__} with an unprintable message>"


def _flush_std() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
