"""The `tool` role: one library tool module, in its own interpreter under a uid of its own.

Before it loads the module it confines itself (confine.py: read-only access to the
system's files, nothing of another process's /proc): a tool sees the arguments of each
call and nothing about who called it, so it cannot tell a test from real use. Then it
serves `load`, then `call`s, until its pipe closes. Its results leave as plain data.
"""

from __future__ import annotations

import sys
import types
from typing import Any

from . import confine, procs
from .bridge import Bridge, format_traceback, remember_source, tools_module
from .codec import VALUE_LIMIT, Unplain, from_plain, to_plain
from .wire import LineReader, send


def tool_main(args: list[str]) -> int:
    """Serve one tool module: `load`, then `call`s, until the pipe closes."""
    import traceback

    down, up = int(args[0]), int(args[1])
    procs.oom_first()
    reader = LineReader(down)
    bridge = Bridge(reader, up)
    fn: Any = None
    confined = ""
    while True:
        try:
            message = reader.read()
        except (OSError, ValueError):
            return 1
        if message is None:
            return 0
        op = message.get("op")
        if op == "load":
            if message.get("rlimits"):
                procs.apply_rlimits(message["rlimits"])
            if message.get("confine") and not confined:
                confined = confine.restrict_reads()
            name = str(message.get("tool"))
            reply = _load_tool(name, str(message.get("source") or ""), message, bridge, traceback)
            reply["confined"] = confined
            fn = reply.pop("fn", None)
        elif op == "call" and fn is not None:
            reply = _call_tool(fn, message, traceback)
        else:
            reply = {"ok": False, "error_type": "RuntimeError", "error_message": "tool not loaded"}
        _flush_std()
        try:
            send(up, {"op": "reply", **reply})
        except OSError:
            return 1


def _load_tool(
    name: str, source: str, message: dict[str, Any], bridge: Bridge, traceback: Any
) -> dict[str, Any]:
    filename = f"tools/{name}.py"
    remember_source(filename, source)
    # A tool may import other tools of the job: they run in their own processes too.
    sys.modules["tools"] = tools_module(list(message.get("tools") or []), bridge)
    module = types.ModuleType(f"tools.{name}")
    module.__file__ = filename
    sys.modules[f"tools.{name}"] = module
    try:
        exec(compile(source, filename, "exec"), module.__dict__)
    except BaseException as exc:
        return _error_reply(exc, traceback, prefix=f"tool module {name!r} failed to import: ")
    fn = getattr(module, name, None)
    if not callable(fn):
        return {
            "ok": False,
            "error_type": "ImportError",
            "error_message": f"tool module {name!r} defines no function named {name!r}",
        }
    doc = fn.__doc__ if isinstance(fn.__doc__, str) else ""
    return {"ok": True, "doc": doc[:VALUE_LIMIT], "fn": fn}


def _call_tool(fn: Any, message: dict[str, Any], traceback: Any) -> dict[str, Any]:
    try:
        args = from_plain(message.get("args"))
        kwargs = from_plain(message.get("kwargs"))
    except ValueError as exc:
        return {"ok": False, "error_type": "TypeError", "error_message": str(exc)}
    try:
        result = fn(*args, **kwargs)
    except BaseException as exc:
        return _error_reply(exc, traceback)
    try:
        return {"ok": True, "result": to_plain(result)}
    except Unplain as exc:
        return {
            "ok": False,
            "error_type": "TypeError",
            "error_message": f"the tool returned a value that cannot leave its process: {exc}",
        }


def _error_reply(exc: BaseException, traceback: Any, prefix: str = "") -> dict[str, Any]:
    try:
        message = str(exc)
    except Exception:
        message = f"<{type(exc).__name__} with an unprintable message>"
    return {
        "ok": False,
        "error_type": type(exc).__name__,
        "error_message": (prefix + message)[:VALUE_LIMIT],
        "traceback": format_traceback(exc, traceback)[-8000:],
    }


def _flush_std() -> None:
    import contextlib

    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
