"""The tool bridge as the code (and a tool calling another tool) sees it: `from tools
import name` gives a stub that sends the call to the supervisor and rebuilds its reply."""

from __future__ import annotations

import builtins
import os
import types
from typing import Any

from .codec import Unplain, from_plain, to_plain
from .wire import LineReader, send

#: Exception types a tool's error may be rebuilt as on the caller's side. Not the ones
#: that steer control flow: a StopIteration rebuilt in the caller would end the caller's
#: loop (`all(map(tool, ...))` would pass on a tool that only raises).
_CONTROL_FLOW = frozenset(["StopIteration", "StopAsyncIteration"])
REBUILT_ERRORS = frozenset(
    name
    for name in dir(builtins)
    if isinstance(getattr(builtins, name), type)
    and issubclass(getattr(builtins, name), Exception)
    and not name.startswith("_")
    and name not in _CONTROL_FLOW
)


class ToolError(Exception):
    """A library tool raised an exception that is not rebuilt as a builtin one (its type
    name is kept as the class name)."""


class ToolTraceback(Exception):
    """Where a tool's exception came from, in the tool's own process."""

    def __str__(self) -> str:
        return "\n" + str(self.args[0]) if self.args else ""


_error_classes: dict[str, type] = {}


def rebuild_error(reply: dict[str, Any]) -> BaseException:
    name = str(reply.get("error_type") or "ToolError")
    message = str(reply.get("error_message") or "")
    cls: type
    if name in REBUILT_ERRORS:
        cls = getattr(builtins, name)
    else:
        if not name.isidentifier():
            name = "ToolError"
        cls = _error_classes.setdefault(name, type(name, (ToolError,), {}))
    try:
        exc = cls(message)
    except Exception:
        exc = ToolError(f"{name}: {message}")
    remote = reply.get("traceback")
    if remote:
        exc.__cause__ = ToolTraceback(str(remote))
    return exc


class Bridge:
    """The code's (or a tool's) side of the tool bridge: one request at a time."""

    def __init__(self, reader: LineReader, up: int) -> None:
        import threading

        self.reader = reader
        self.up = up
        self.pid = os.getpid()
        self.lock = threading.Lock()
        self.owed = 0

    def request(self, message: dict[str, Any]) -> dict[str, Any]:
        if os.getpid() != self.pid:
            raise RuntimeError("library tools cannot be called from a process the code forked")
        with self.lock:
            # A signal handler that raised while we waited (a test's alarm) left a reply
            # owed: the supervisor always sends it (it stops a slow call itself), so read
            # it first, or every later call would get the reply meant for the one before.
            while self.owed:
                if self.reader.read() is None:
                    raise RuntimeError("the sandbox's tool bridge is closed")
                self.owed -= 1
            send(self.up, message)
            self.owed += 1
            reply = self.reader.read()
            self.owed -= 1
        if reply is None:
            raise RuntimeError("the sandbox's tool bridge is closed")
        return reply


def tools_module(names: list[str], bridge: Bridge) -> Any:
    """`tools`: `from tools import name` gives a function that calls the tool through the
    supervisor, in the tool's own process."""
    module = types.ModuleType("tools", "Library tools of this run.")
    loaded: dict[str, Any] = {}

    def load(name: str) -> Any:
        if name in loaded:
            return loaded[name]
        if name.startswith("__"):
            raise AttributeError(name)  # the import machinery probing dunders
        if name not in names:
            available = ", ".join(sorted(names)) or "none"
            # ImportError, not AttributeError: `from tools import x` would replace an
            # AttributeError by a vaguer "cannot import name" message.
            raise ImportError(
                f"no tool module named {name!r} was given to this run (available: {available})",
                name=f"tools.{name}",
            )
        reply = bridge.request({"op": "import", "tool": name})
        if not reply.get("ok"):
            raise ImportError(str(reply.get("error_message") or f"tool {name!r} failed to load"))
        fn = _stub(name, bridge, str(reply.get("doc") or ""))
        loaded[name] = fn
        module.__dict__[name] = fn
        return fn

    module.__getattr__ = load  # type: ignore[method-assign]
    module.__all__ = sorted(names)  # type: ignore[attr-defined]
    return module


def _stub(name: str, bridge: Bridge, doc: str) -> Any:
    def tool(*args: Any, **kwargs: Any) -> Any:
        try:
            message = {
                "op": "call",
                "tool": name,
                "args": to_plain(list(args)),
                "kwargs": to_plain(kwargs),
            }
        except Unplain as exc:
            raise TypeError(
                f"the arguments of library tool {name} must be plain data: {exc}"
            ) from None
        reply = bridge.request(message)
        if not reply.get("ok"):
            raise rebuild_error(reply)
        return from_plain(reply.get("result"))

    tool.__name__ = tool.__qualname__ = name
    tool.__doc__ = doc or None
    return tool


def remember_source(filename: str, source: str) -> None:
    import linecache

    # Tracebacks show the code's lines without writing it anywhere (mtime None: kept).
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)


RUNNER_DIR = os.path.dirname(os.path.abspath(__file__))


def format_traceback(exc: BaseException, traceback: Any) -> str:
    te = traceback.TracebackException(type(exc), exc, exc.__traceback__)
    seen: set[int] = set()
    stack = [te]
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        # The runner's own frames are noise to whoever reads the traceback.
        kept = [f for f in item.stack if not f.filename.startswith(RUNNER_DIR + os.sep)]
        item.stack = traceback.StackSummary.from_list(kept)
        stack.extend(x for x in (item.__cause__, item.__context__) if x is not None)
    return "".join(te.format())
