"""The in-sandbox runner: one job in, one result line out. Standard library only.

It is copied alone into the image (/opt/evoagent/runner.py) and, for `LocalSandbox`, runs
as a host subprocess. The same file has three roles, chosen by its first argument:

- `supervise` (the default): the trusted supervisor. Reads ONE job line on stdin, runs
  the code, brokers every library tool call, and writes ONE line
  `EVOAGENT-RESULT <secret> <json>` on stdout. In a container it is root with only the
  SETUID, SETGID, SETPCAP and KILL capabilities: it can start processes under other
  users with no capability at all, and kill them, nothing more.
- `code`: the job's code, in a freshly executed interpreter under another user (uid
  1000 in the container). It never sees the job line nor the secret: it is started
  before the job is read (warm) or forked and executed anew, so nothing of the
  supervisor's memory is in it, and it holds no descriptor of the supervisor's but its
  own two message pipes and the two capture pipes of its output.
- `tool`: one library tool module, in its own interpreter under a uid of its own (2001,
  2002... in the container). The code calls it through the supervisor; values cross
  as plain data (see `to_plain`), so what a tool returns cannot run code on the other
  side, and an object whose `__eq__` always says True never leaves the tool's process.

Who vouches for what: the supervisor measures exit status, time, memory kills and the
output caps itself, and it writes every tool-call record from the requests and replies
it brokers (a call it did not broker cannot be recorded; a record cannot be altered or
dropped by the code). The code reports only its own `answer` and exception, which are
its to choose. The host accepts exactly one result line carrying the per-job secret and
validates every field again (`sandbox/jobs.py`).

Job (stdin, one JSON line): `{"code", "tools": {name: source}, "inputs": {name: plain},
"timeout_s", "output_limit", "secret", "rlimits": {NAME: value} | null, "ids": {"code":
uid, "tools": uid_base} | null, "tool_timeout_s": float | null, "host_tools": {name: doc}}`.

Host tools (tools the host answers, such as an external MCP server's): the code imports
them like library tools, and the supervisor forwards each call as one line
`EVOAGENT-CALL <secret> {"id", "tool", "args", "kwargs"}` on its stdout; the host sends
one reply line `{"id", "ok", "result" | "error_type", "error_message"}` on its stdin.
The code never holds either stream. The host keeps its own record of these calls and
trusts it over the supervisor's (`sandbox/hostcalls.py`).
"""

from __future__ import annotations

import base64
import builtins
import contextlib
import json
import math
import os
import sys
import time
from typing import Any

MARKER = "EVOAGENT-RESULT "
CALL_MARKER = "EVOAGENT-CALL "
RUNNER_FILE = os.path.abspath(__file__)
#: cap of one recorded value (argument, result) as JSON text
VALUE_LIMIT = 64 * 1024
#: cap of the answer as JSON text
ANSWER_LIMIT = 1024 * 1024
MAX_TOOL_CALLS = 1000
#: the longest message a process may send the supervisor (a call, a reply, the final state)
MESSAGE_LIMIT = 4 * 1024 * 1024
#: plain data: deepest nesting, most containers+scalars in one value, most digits of an int
MAX_DEPTH = 64
MAX_NODES = 100_000
MAX_INT_DIGITS = 4000
#: the job line
JOB_LIMIT = 64 * 1024 * 1024
#: seconds granted to a tool process to start and import its module, beyond the call's own
LOAD_GRACE_S = 5.0
CGROUP_OOM_FILES = (
    "/sys/fs/cgroup/memory/memory.oom_control",  # cgroup v1
    "/sys/fs/cgroup/memory.events",  # cgroup v2
)
#: exception types a tool's error may be rebuilt as on the caller's side
_REBUILT_ERRORS = frozenset(
    name
    for name in dir(builtins)
    if isinstance(getattr(builtins, name), type)
    and issubclass(getattr(builtins, name), Exception)
    and not name.startswith("_")
)


def main(argv: list[str]) -> int:
    role = argv[1] if len(argv) > 1 else "supervise"
    if role == "code":
        return code_main(int(argv[2]), int(argv[3]))
    if role == "tool":
        return tool_main(int(argv[2]), int(argv[3]))
    if role == "supervise":
        return supervise_main(argv[2:])
    sys.stderr.write(f"runner: unknown role {role!r}\n")
    return 2


# =========================================================================== plain data


class Unplain(TypeError):
    """A value that cannot cross a process boundary as plain data."""


def to_plain(value: Any) -> Any:
    """`value` as JSON-able data that `from_plain` turns back into an equal value.

    JSON scalars and lists stand for themselves; every other container is a tagged
    object (`{"t": "tuple", "v": [...]}`; dicts as key/value pairs, so keys keep their
    type). Sets are sorted by their encoding, so the same set always encodes the same.
    numpy values become Python values. Anything else raises `Unplain`.
    """
    budget = [MAX_NODES]
    return _enc(value, 0, budget)


def _enc(value: Any, depth: int, budget: list[int]) -> Any:
    budget[0] -= 1
    if budget[0] < 0:
        raise Unplain(f"more than {MAX_NODES} items")
    if depth > MAX_DEPTH:
        raise Unplain(f"nested deeper than {MAX_DEPTH}")
    kind = type(value)
    if value is None or kind is bool or kind is str:
        return value
    if kind is int:
        if value.bit_length() > MAX_INT_DIGITS * 3.33:
            raise Unplain(f"an integer of more than {MAX_INT_DIGITS} digits")
        return value
    if kind is float:
        if math.isfinite(value):
            return value
        return {"t": "float", "v": repr(value)}
    if kind is list:
        return [_enc(v, depth + 1, budget) for v in value]
    if kind is tuple:
        return {"t": "tuple", "v": [_enc(v, depth + 1, budget) for v in value]}
    if kind is dict:
        return {
            "t": "dict",
            "v": [
                [_enc(k, depth + 1, budget), _enc(v, depth + 1, budget)] for k, v in value.items()
            ],
        }
    if kind is set or kind is frozenset:
        items = [_enc(v, depth + 1, budget) for v in value]
        items.sort(key=lambda item: json.dumps(item, sort_keys=True))
        return {"t": kind.__name__, "v": items}
    if kind is bytes:
        return {"t": "bytes", "v": base64.b64encode(value).decode("ascii")}
    if kind is complex:
        return {
            "t": "complex",
            "v": [_enc(value.real, depth + 1, budget), _enc(value.imag, depth + 1, budget)],
        }
    # Convenience for values whose meaning is plain: numpy scalars and arrays, and
    # subclasses of the builtins (a namedtuple, an IntEnum) as their base type.
    if kind.__module__ == "numpy" and hasattr(value, "tolist"):
        try:
            converted = value.tolist()
        except Exception as exc:
            raise Unplain(f"a numpy {kind.__name__} that tolist() refused ({exc})") from None
        return _enc(converted, depth, budget)
    bases: tuple[Any, ...] = (bool, int, float, str, bytes, tuple, list, dict, frozenset, set)
    for base in bases:
        if isinstance(value, base):
            try:
                converted = base(value)
            except Exception as exc:
                raise Unplain(f"a {kind.__name__} that {base.__name__}() refused ({exc})") from None
            if type(converted) is base:
                return _enc(converted, depth, budget)
    raise Unplain(
        f"a {kind.__module__}.{kind.__qualname__} is not plain data (None, bool, int, float, "
        "str, bytes, complex, list, tuple, set, frozenset, dict)"
    )


def from_plain(data: Any) -> Any:
    """The value `to_plain` encoded, from untrusted data. Raises ValueError when `data` is
    not exactly that shape or passes the size, depth or digit limits."""
    budget = [MAX_NODES]
    try:
        return _dec(data, 0, budget)
    except (RecursionError, OverflowError, TypeError, ValueError, KeyError) as exc:
        raise ValueError(f"not plain data: {type(exc).__name__}: {str(exc)[:200]}") from None


def _dec(data: Any, depth: int, budget: list[int]) -> Any:
    budget[0] -= 1
    if budget[0] < 0:
        raise ValueError(f"more than {MAX_NODES} items")
    if depth > MAX_DEPTH:
        raise ValueError(f"nested deeper than {MAX_DEPTH}")
    kind = type(data)
    if data is None or kind is bool or kind is str:
        return data
    if kind is int:
        if data.bit_length() > MAX_INT_DIGITS * 3.33:
            raise ValueError(f"an integer of more than {MAX_INT_DIGITS} digits")
        return data
    if kind is float:
        if not math.isfinite(data):
            raise ValueError("a non-finite float outside a float tag")
        return data
    if kind is list:
        return [_dec(v, depth + 1, budget) for v in data]
    if kind is not dict or set(data) != {"t", "v"}:
        raise ValueError(f"unexpected {kind.__name__}")
    tag, items = data["t"], data["v"]
    if tag == "float":
        if items not in ("nan", "inf", "-inf"):
            raise ValueError("bad float tag")
        return float(items)
    if tag == "bytes":
        if type(items) is not str:
            raise ValueError("bad bytes tag")
        return base64.b64decode(items.encode("ascii"), validate=True)
    if type(items) is not list:
        raise ValueError(f"bad {tag} tag")
    if tag == "tuple":
        return tuple(_dec(v, depth + 1, budget) for v in items)
    if tag in ("set", "frozenset"):
        values = [_dec(v, depth + 1, budget) for v in items]
        return set(values) if tag == "set" else frozenset(values)
    if tag == "dict":
        out = {}
        for pair in items:
            if type(pair) is not list or len(pair) != 2:
                raise ValueError("bad dict item")
            out[_dec(pair[0], depth + 1, budget)] = _dec(pair[1], depth + 1, budget)
        return out
    if tag == "complex":
        if len(items) != 2:
            raise ValueError("bad complex tag")
        real, imag = (_dec(v, depth + 1, budget) for v in items)
        if not all(type(x) in (int, float) for x in (real, imag)):
            raise ValueError("bad complex tag")
        return complex(real, imag)
    raise ValueError(f"unknown tag {str(tag)[:20]!r}")


def jsonish(value: Any, limit: int) -> tuple[Any, bool]:
    """(value as JSON data, cut?) for records and answers: JSON values as they are (tuples
    as lists), numpy via tolist(), anything else its repr; sets are shown sorted so the
    same value always reads the same. Cut to `limit` characters of JSON text."""
    if type(value).__module__ == "numpy" and hasattr(value, "tolist"):
        with contextlib.suppress(Exception):
            value = value.tolist()
    try:
        text = json.dumps(value, allow_nan=True)
    except (TypeError, ValueError, RecursionError):
        try:
            text = _stable_repr(value, 0)
        except Exception as exc:
            text = f"<unrepresentable {type(value).__name__}: {str(exc)[:100]}>"
        return (text[:limit], True) if len(text) > limit else (text, False)
    if len(text) > limit:
        return text[:limit], True
    return json.loads(text), False


def _stable_repr(value: Any, depth: int) -> str:
    if depth > MAX_DEPTH:
        return "..."
    if type(value) in (set, frozenset):
        inner = ", ".join(sorted(_stable_repr(v, depth + 1) for v in value))
        if type(value) is frozenset:
            return f"frozenset({{{inner}}})"
        return "{" + inner + "}" if inner else "set()"
    if type(value) is list:
        return "[" + ", ".join(_stable_repr(v, depth + 1) for v in value) + "]"
    if type(value) is tuple:
        inner = ", ".join(_stable_repr(v, depth + 1) for v in value)
        return "(" + inner + ("," if len(value) == 1 else "") + ")"
    if type(value) is dict:
        return (
            "{"
            + ", ".join(
                _stable_repr(k, depth + 1) + ": " + _stable_repr(v, depth + 1)
                for k, v in value.items()
            )
            + "}"
        )
    return repr(value)


# =========================================================================== messages


def _send(fd: int, message: dict[str, Any]) -> None:
    """One JSON line on a pipe (blocking; for the code and tool processes)."""
    data = (json.dumps(message, default=repr) + "\n").encode("utf-8")
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


class _LineReader:
    """Blocking line reader over a pipe, with a cap on one line (code and tool side)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buf = bytearray()

    def read(self) -> dict[str, Any] | None:
        while True:
            end = self.buf.find(b"\n")
            if end >= 0:
                line = bytes(self.buf[:end])
                del self.buf[: end + 1]
                value = json.loads(line)
                return value if isinstance(value, dict) else None
            if len(self.buf) > MESSAGE_LIMIT:
                raise ValueError("message over the size limit")
            chunk = os.read(self.fd, 1 << 16)
            if not chunk:
                return None
            self.buf += chunk


# =========================================================================== code role


def code_main(down: int, up: int) -> int:
    """Run the job's code (sent by the supervisor) and send its final state."""
    reader = _LineReader(down)
    try:
        job = reader.read()
    except (OSError, ValueError):
        job = None
    if not job or job.get("op") != "run":
        return 0  # a warm process whose container is being discarded
    _oom_first()
    if job.get("rlimits"):
        _apply_rlimits(job["rlimits"])
    # Line buffering: what was printed before a kill at the deadline is not lost.
    sys.stdout.reconfigure(line_buffering=True, errors="backslashreplace")  # type: ignore[union-attr]
    sys.stderr.reconfigure(line_buffering=True, errors="backslashreplace")  # type: ignore[union-attr]
    bridge = _Bridge(reader, up)
    sys.modules["tools"] = _tools_module(list(job.get("tools") or []), bridge)
    try:
        inputs = from_plain(job.get("inputs") or [])
    except ValueError:
        inputs = []
    final = _execute(str(job.get("code") or ""), {str(k): v for k, v in inputs})
    _flush_std()
    if os.getpid() == bridge.pid:
        with contextlib.suppress(OSError):
            _send(up, {"op": "final", **final})
    return int(final.pop("exit_code", 0))


def _execute(code: str, inputs: dict[str, Any]) -> dict[str, Any]:
    import traceback

    filename = "<code>"
    _remember_source(filename, code)
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
        final["error_message"] = str(exc)[:VALUE_LIMIT]
        final["traceback"] = _format_traceback(exc, traceback)[-20_000:]
    if os.getpid() != main_pid:
        # A process the code forked reached the end: it does not report a result.
        _flush_std()
        os._exit(int(final["exit_code"]))
    if "answer" in namespace:
        final["has_answer"] = True
        final["answer"], final["answer_truncated"] = jsonish(namespace["answer"], ANSWER_LIMIT)
    return final


def _oom_first() -> None:
    # Make this process, not the supervisor, the OOM killer's first choice.
    with (
        contextlib.suppress(OSError),
        open("/proc/self/oom_score_adj", "w", encoding="ascii") as fh,
    ):
        fh.write("1000")


def _apply_rlimits(rlimits: dict[str, int]) -> None:
    import resource

    for name, value in rlimits.items():
        which = getattr(resource, "RLIMIT_" + str(name))
        _, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY:
            value = min(int(value), hard)
        resource.setrlimit(which, (int(value), int(value)))


def _flush_std() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()


def _remember_source(filename: str, source: str) -> None:
    import linecache

    # Tracebacks show the code's lines without writing it anywhere (mtime None: kept).
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)


def _format_traceback(exc: BaseException, traceback: Any) -> str:
    te = traceback.TracebackException(type(exc), exc, exc.__traceback__)
    seen: set[int] = set()
    stack = [te]
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        # The runner's own frames are noise to whoever reads the traceback.
        kept = [f for f in item.stack if f.filename != RUNNER_FILE]
        item.stack = traceback.StackSummary.from_list(kept)
        stack.extend(x for x in (item.__cause__, item.__context__) if x is not None)
    return "".join(te.format())


class ToolError(Exception):
    """A library tool raised an exception that is not a builtin one (its type name kept)."""


class ToolTraceback(Exception):
    """Where a tool's exception came from, in the tool's own process."""

    def __str__(self) -> str:
        return "\n" + str(self.args[0]) if self.args else ""


_error_classes: dict[str, type] = {}


def _rebuild_error(reply: dict[str, Any]) -> BaseException:
    name = str(reply.get("error_type") or "ToolError")
    message = str(reply.get("error_message") or "")
    cls: type
    if name in _REBUILT_ERRORS:
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


class _Bridge:
    """The code's (or a tool's) side of the tool bridge: one request at a time."""

    def __init__(self, reader: _LineReader, up: int) -> None:
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
            _send(self.up, message)
            self.owed += 1
            reply = self.reader.read()
            self.owed -= 1
        if reply is None:
            raise RuntimeError("the sandbox's tool bridge is closed")
        return reply


def _tools_module(names: list[str], bridge: _Bridge) -> Any:
    """`tools`: `from tools import name` gives a function that calls the tool through the
    supervisor, in the tool's own process."""
    import types

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


def _stub(name: str, bridge: _Bridge, doc: str) -> Any:
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
            raise _rebuild_error(reply)
        return from_plain(reply.get("result"))

    tool.__name__ = tool.__qualname__ = name
    tool.__doc__ = doc or None
    return tool


# =========================================================================== tool role


def tool_main(down: int, up: int) -> int:
    """Serve one tool module: `load`, then `call`s, until the pipe closes."""
    import traceback

    _oom_first()
    reader = _LineReader(down)
    bridge = _Bridge(reader, up)
    fn: Any = None
    name = ""
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
                _apply_rlimits(message["rlimits"])
            name = str(message.get("tool"))
            reply = _load_tool(name, str(message.get("source") or ""), message, bridge, traceback)
            fn = reply.pop("fn", None)
        elif op == "call" and fn is not None:
            reply = _call_tool(fn, message, traceback)
        else:
            reply = {"ok": False, "error_type": "RuntimeError", "error_message": "tool not loaded"}
        _flush_std()
        try:
            _send(up, {"op": "reply", **reply})
        except OSError:
            return 1


def _load_tool(
    name: str, source: str, message: dict[str, Any], bridge: _Bridge, traceback: Any
) -> dict[str, Any]:
    import types

    filename = f"tools/{name}.py"
    _remember_source(filename, source)
    # A tool may import other tools of the job: they run in their own processes too.
    sys.modules["tools"] = _tools_module(list(message.get("tools") or []), bridge)
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
        "traceback": _format_traceback(exc, traceback)[-8000:],
    }


# =========================================================================== supervisor


def supervise_main(args: list[str]) -> int:
    """`supervise [--code-uid N --tool-uid N] [--warm]`: read one job, run it, report."""
    opts: dict[str, str | bool] = {}
    i = 0
    while i < len(args):
        if args[i] == "--warm":
            opts["warm"] = True
            i += 1
        else:
            opts[args[i].lstrip("-")] = args[i + 1]
            i += 2
    ids = None
    if "code-uid" in opts:
        ids = {"code": int(opts["code-uid"]), "tools": int(opts.get("tool-uid") or 0) or None}
    sup = Supervisor(ids)
    if opts.get("warm"):
        sup.warm_up()  # the interpreters start while the container waits for its job
    line, rest = _read_job(0)
    if not line.strip():
        sup.discard()
        return 0  # no job: a pooled container being discarded
    try:
        job = json.loads(line)
        secret = str(job["secret"])
        if not secret.isalnum():
            raise ValueError("the secret must be alphanumeric")
    except (ValueError, KeyError, TypeError) as exc:
        sup.discard()
        _report("", {"exit_code": 2, "error_type": "JobError", "error_message": f"bad job: {exc}"})
        return 2
    sup.secret = secret
    sup.host_in = bytearray(rest)
    try:
        result = sup.run(job)
    except (ValueError, KeyError, TypeError) as exc:
        sup.discard()
        result = {"exit_code": 2, "error_type": "JobError", "error_message": f"bad job: {exc}"}
    _report(secret, result)
    return 0


def _read_job(fd: int) -> tuple[bytes, bytes]:
    """The job line from `fd`, and what came after it (host replies, later)."""
    buf = bytearray()
    while b"\n" not in buf and len(buf) <= JOB_LIMIT:
        try:
            chunk = os.read(fd, 1 << 20)
        except OSError:
            break
        if not chunk:
            break
        buf += chunk
    line, _, rest = bytes(buf).partition(b"\n")
    return line, rest


def _report(secret: str, result: dict[str, Any]) -> None:
    sys.stdout.write(MARKER + secret + " " + json.dumps(result, default=repr) + "\n")
    sys.stdout.flush()


def supervise(
    code: str,
    tools: dict[str, str],
    timeout_s: float,
    output_limit: int,
    rlimits: dict[str, int] | None = None,
    ids: dict[str, int | None] | None = None,
    tool_timeout_s: float | None = None,
    inputs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run one job in this process as the supervisor (tests; `LocalSandbox` goes through
    `main` in a subprocess). Returns the result before validation."""
    job = {
        "code": code,
        "tools": tools,
        "inputs": {k: to_plain(v) for k, v in (inputs or {}).items()},
        "timeout_s": timeout_s,
        "output_limit": output_limit,
        "rlimits": rlimits,
        "tool_timeout_s": tool_timeout_s,
    }
    return Supervisor(ids).run(job)


class _Proc:
    """A process the supervisor started: the code, or one tool's server."""

    def __init__(self, kind: str, popen: Any, down: int, up: int, uid: int | None) -> None:
        self.kind = kind
        self.popen = popen
        self.pid = popen.pid
        self.down = down  # we write its requests / replies here
        self.up = up  # it writes its messages here
        self.uid = uid
        self.inbuf = bytearray()
        self.outbuf = bytearray()
        self.pidfd: int | None = None
        self.alive = True
        self.up_open = True
        # tool processes
        self.tool = ""
        self.state = "idle"  # idle | loading | ready | failed | dead
        self.doc = ""
        self.load_error: dict[str, Any] | None = None
        self.load_deadline = math.inf
        self.call: _Call | None = None
        self.waiting: list[tuple[_Proc, _Call | None]] = []
        # requests from this process waiting for their turn (one at a time)
        self.requests: list[dict[str, Any]] = []
        self.busy = False


class _Call:
    def __init__(
        self, requester: _Proc, tool: str, args: Any, kwargs: Any, deadline: float
    ) -> None:
        self.requester = requester
        self.tool = tool
        self.args = args
        self.kwargs = kwargs
        self.created = self.started = time.monotonic()
        self.deadline = deadline
        self.seq = 0


class Supervisor:
    """Runs one job: the code's process, the tools' processes, the bridge between them."""

    def __init__(self, ids: dict[str, int | None] | None) -> None:
        import selectors

        self.ids = ids or {}
        self.sel = selectors.DefaultSelector()
        self.out_r, self.out_w = os.pipe()
        self.err_r, self.err_w = os.pipe()
        self.streams = {self.out_r: bytearray(), self.err_r: bytearray()}
        self.overflow = {self.out_r: False, self.err_r: False}
        self.output_limit = 256 * 1024
        self.procs: dict[int, _Proc] = {}  # by their `up` fd
        self.code: _Proc | None = None
        self.spare_tool: _Proc | None = None
        self.tools: dict[str, str] = {}
        self.tool_procs: dict[str, _Proc] = {}
        self.next_tool_uid = 1
        self.records: list[dict[str, Any]] = []
        self.n_calls = 0
        self.refused = 0
        self.final: dict[str, Any] | None = None
        self.notes: list[str] = []
        self.rlimits: dict[str, int] | None = None
        self.tool_timeout: float | None = None
        self.deadline = 0.0
        self.cwd: str | None = None
        # host tools: forwarded on stdout, answered on stdin (see the module docstring)
        self.host_tools: dict[str, str] = {}
        self.host_calls: dict[int, _Call] = {}
        self.host_in = bytearray()
        self.host_open = False
        self.secret = ""
        _become_subreaper()

    # ----------------------------------------------------------------- processes

    def warm_up(self) -> None:
        self.code = self._spawn("code", self.ids.get("code"))
        self.spare_tool = self._spawn("tool", self._tool_uid())

    def _tool_uid(self) -> int | None:
        base = self.ids.get("tools")
        if base is None:
            return None
        uid = base + self.next_tool_uid
        self.next_tool_uid += 1
        return uid

    def _spawn(self, kind: str, uid: int | None) -> _Proc:
        import subprocess

        down_r, down_w = os.pipe()
        up_r, up_w = os.pipe()
        cwd = self.cwd if kind == "code" else "/"
        if kind == "code" and cwd is None:
            cwd = os.getcwd()
        extra: dict[str, Any] = {}
        if uid is not None and uid != os.geteuid():
            extra = {"preexec_fn": _Drop(uid)}
        try:
            popen = subprocess.Popen(
                [sys.executable, "-I", RUNNER_FILE, kind, str(down_r), str(up_w)],
                stdin=subprocess.DEVNULL,
                stdout=self.out_w,
                stderr=self.err_w,
                pass_fds=(down_r, up_w),
                close_fds=True,
                cwd=cwd,
                start_new_session=True,  # its own group: one kill reaches what it starts
                **extra,
            )
        finally:
            os.close(down_r)
            os.close(up_w)
        proc = _Proc(kind, popen, down_w, up_r, uid)
        os.set_blocking(up_r, False)
        os.set_blocking(down_w, False)
        with contextlib.suppress(AttributeError, OSError):
            proc.pidfd = os.pidfd_open(popen.pid)
        return proc

    def _watch(self, proc: _Proc) -> None:
        import selectors

        self.procs[proc.up] = proc
        self.sel.register(proc.up, selectors.EVENT_READ, ("up", proc))
        if proc.pidfd is not None:
            self.sel.register(proc.pidfd, selectors.EVENT_READ, ("exit", proc))

    # ----------------------------------------------------------------- the job

    def run(self, job: dict[str, Any]) -> dict[str, Any]:
        import selectors

        code = str(job["code"])
        self.tools = {str(k): str(v) for k, v in (job.get("tools") or {}).items()}
        self.host_tools = {
            str(k): _short_text(v, VALUE_LIMIT)
            for k, v in (job.get("host_tools") or {}).items()
            if str(k) not in self.tools
        }
        timeout_s = float(job.get("timeout_s") or 10.0)
        self.output_limit = int(job.get("output_limit") or 256 * 1024)
        self.rlimits = job.get("rlimits") or None
        tool_timeout = job.get("tool_timeout_s")
        self.tool_timeout = float(tool_timeout) if tool_timeout else None
        if job.get("ids") and not self.ids:
            self.ids = {k: (int(v) if v is not None else None) for k, v in job["ids"].items()}
        oom_before = _oom_kills()
        if self.code is None:
            self.code = self._spawn("code", self.ids.get("code"))
        for fd in (self.out_w, self.err_w):
            os.close(fd)
        self.out_w = self.err_w = -1
        for fd in (self.out_r, self.err_r):
            os.set_blocking(fd, False)
            self.sel.register(fd, selectors.EVENT_READ, ("stream", None))
        self._watch(self.code)
        if self.spare_tool is not None:
            self._watch(self.spare_tool)
        if self.host_tools:
            os.set_blocking(0, False)
            self.sel.register(0, selectors.EVENT_READ, ("host", None))
            self.host_open = True
        started = time.monotonic()
        self.deadline = started + timeout_s
        inputs = job.get("inputs") or {}
        run = {
            "op": "run",
            "code": code,
            "tools": sorted([*self.tools, *self.host_tools]),
            "rlimits": self.rlimits,
            # Plain data for the code's globals (the task's text as TASK, say).
            "inputs": to_plain([[str(k), from_plain(v)] for k, v in inputs.items()]),
        }
        self._write(self.code, run)
        timed_out = self._loop()
        duration = time.monotonic() - started
        status = self._end(timed_out)
        exit_code = _exit_code(status) if status is not None else 137
        oom_killed = not timed_out and exit_code == 137 and _oom_kills() > oom_before
        result: dict[str, Any] = {
            "exit_code": exit_code,
            "stdout": _text(self.streams[self.out_r], self.overflow[self.out_r]),
            "stderr": _text(self.streams[self.err_r], self.overflow[self.err_r]),
            "truncated": self.overflow[self.out_r] or self.overflow[self.err_r],
            "timed_out": timed_out,
            "oom_killed": oom_killed,
            "duration_s": duration,
            "answer": None,
            "has_answer": False,
            "error_type": None,
            "error_message": None,
            "traceback": None,
            "tool_calls": [
                {k: v for k, v in r.items() if k != "seq"}
                for r in sorted(self.records, key=lambda r: r["seq"])
            ],
        }
        final = self.final
        if final is not None:
            for name in ("answer", "has_answer", "error_type", "error_message", "traceback"):
                result[name] = final.get(name)
            if final.get("answer_truncated"):
                result["truncated"] = True
        if self.refused:
            self.notes.append(
                f"{self.refused} tool call(s) past the limit of {MAX_TOOL_CALLS} were refused"
            )
        if self.notes:
            result["stderr"] += "".join(f"\n[sandbox: {note}]" for note in self.notes)
        if final is None and not timed_out and not oom_killed and exit_code != 0:
            result["error_type"] = "Killed" if exit_code > 128 else "Exited"
            result["error_message"] = (
                f"the code's process ended with exit code {exit_code} before it finished"
            )
        return result

    def _loop(self) -> bool:
        """Serve the processes until the code ends (False) or the deadline passes (True)."""
        assert self.code is not None
        while True:
            now = time.monotonic()
            if now >= self.deadline:
                return True
            self._expire_calls(now)
            wait = min(self.deadline, self._next_call_deadline()) - now
            if self.code.pidfd is None:
                wait = min(wait, 0.01)  # no pidfd (old kernel): poll the code's process
            for key, _ in self.sel.select(max(0.0, wait)):
                what, proc = key.data
                if what == "stream":
                    if not self._read_stream(key.fd):
                        self.sel.unregister(key.fd)
                elif what == "up":
                    self._read_up(proc)
                elif what == "down":
                    self._flush(proc)
                elif what == "exit" and proc is not self.code:
                    self._tool_died(proc)
                elif what == "host":
                    self._read_host()
            if self.code.popen.poll() is not None:
                # Messages the code sent just before it ended are still in its pipe.
                self._read_up(self.code)
                return False

    def _end(self, timed_out: bool) -> int | None:
        """Stop every process; return the code's wait status (None: killed at the deadline)."""
        assert self.code is not None
        code = self.code
        if timed_out:
            _kill(code.pid, group=True)
        status = _wait_status(code)
        # Descendants the code left behind may hold the output pipes: read what is there.
        self._drain(time.monotonic() + 0.2)
        for proc in [
            code,
            *self.tool_procs.values(),
            *([self.spare_tool] if self.spare_tool else []),
        ]:
            _kill(proc.pid, group=True)
        _reap_descendants()
        for proc in self.procs.values():
            for fd in (proc.up, proc.down, proc.pidfd):
                if fd is not None and fd >= 0:
                    with contextlib.suppress(OSError):
                        os.close(fd)
        for fd in (self.out_r, self.err_r):
            with contextlib.suppress(OSError):
                os.close(fd)
        self.sel.close()
        return None if timed_out else status

    def discard(self) -> None:
        for proc in (self.code, self.spare_tool):
            if proc is not None:
                _kill(proc.pid, group=True)
        _reap_descendants()

    # ----------------------------------------------------------------- streams

    def _read_stream(self, fd: int) -> bool:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            return True
        except OSError:
            return False
        if not chunk:
            return False
        buf = self.streams[fd]
        room = self.output_limit - len(buf)
        if room > 0:
            buf += chunk[:room]
        if len(chunk) > room:
            self.overflow[fd] = True
        return True

    def _drain(self, until: float) -> None:
        open_fds = {self.out_r, self.err_r}
        while open_fds and time.monotonic() < until:
            progressed = False
            for fd in list(open_fds):
                try:
                    chunk = os.read(fd, 65536)
                except (BlockingIOError, OSError):
                    open_fds.discard(fd)  # nothing more right now: the writer is gone or idle
                    continue
                if not chunk:
                    open_fds.discard(fd)
                    continue
                progressed = True
                room = self.output_limit - len(self.streams[fd])
                if room > 0:
                    self.streams[fd] += chunk[:room]
                if len(chunk) > room:
                    self.overflow[fd] = True
            if not progressed:
                break

    # ----------------------------------------------------------------- messages

    def _read_up(self, proc: _Proc) -> None:
        if not proc.up_open:
            return
        while True:
            try:
                chunk = os.read(proc.up, 1 << 16)
            except BlockingIOError:
                break
            except OSError:
                chunk = b""
            if not chunk:
                self._close_up(proc)
                break
            proc.inbuf += chunk
            if len(proc.inbuf) > MESSAGE_LIMIT and b"\n" not in proc.inbuf:
                self.notes.append(f"the {proc.kind} process sent a message over the size limit")
                self._close_up(proc)
                if proc.kind == "tool":
                    self._tool_failed(
                        proc, "RuntimeError", "the tool's reply was over the size limit"
                    )
                return
        while proc.up_open or proc.inbuf:
            end = proc.inbuf.find(b"\n")
            if end < 0:
                break
            line = bytes(proc.inbuf[:end])
            del proc.inbuf[: end + 1]
            try:
                message = json.loads(line)
            except (ValueError, RecursionError):
                message = None
            if not isinstance(message, dict):
                self.notes.append(f"the {proc.kind} process sent a malformed message")
                if proc.kind == "tool":
                    self._tool_failed(
                        proc, "RuntimeError", "the tool's process sent a malformed reply"
                    )
                continue
            self._handle(proc, message)

    def _close_up(self, proc: _Proc) -> None:
        if proc.up_open:
            proc.up_open = False
            with contextlib.suppress(KeyError, ValueError):
                self.sel.unregister(proc.up)

    def _handle(self, proc: _Proc, message: dict[str, Any]) -> None:
        op = message.get("op")
        if op == "final" and proc is self.code:
            self.final = _checked_final(message)
        elif op in ("import", "call"):
            proc.requests.append(message)
            self._next_request(proc)
        elif op == "reply" and proc.kind == "tool":
            self._tool_replied(proc, message)
        else:
            self.notes.append(f"the {proc.kind} process sent an unexpected message")

    def _write(self, proc: _Proc, message: dict[str, Any]) -> None:
        if not proc.alive:
            return
        proc.outbuf += (json.dumps(message) + "\n").encode("utf-8")
        self._flush(proc)

    def _flush(self, proc: _Proc) -> None:
        import selectors

        while proc.outbuf:
            try:
                written = os.write(proc.down, proc.outbuf)
            except BlockingIOError:
                break
            except OSError:
                proc.outbuf.clear()  # the reader is gone
                break
            del proc.outbuf[:written]
        key = ("down", proc)
        registered = proc.down in self.sel.get_map()
        if proc.outbuf and not registered:
            self.sel.register(proc.down, selectors.EVENT_WRITE, key)
        elif not proc.outbuf and registered:
            self.sel.unregister(proc.down)

    def _reply(self, requester: _Proc, reply: dict[str, Any]) -> None:
        self._write(requester, {"op": "reply", **reply})
        requester.busy = False
        self._next_request(requester)

    # ----------------------------------------------------------------- tool calls

    def _next_request(self, proc: _Proc) -> None:
        """Serve `proc`'s oldest request (an import or a call): one at a time per process."""
        if proc.busy or not proc.requests:
            return
        message = proc.requests.pop(0)
        proc.busy = True
        tool = message.get("tool")
        if isinstance(tool, str) and tool in self.host_tools:
            self._host_request(proc, tool, message)
            return
        if not isinstance(tool, str) or tool not in self.tools:
            self._reply(
                proc,
                _err(
                    "ImportError", f"no tool module named {str(tool)[:80]!r} was given to this run"
                ),
            )
            return
        server = self._server(tool)
        if message["op"] == "import":
            self._when_loaded(server, proc, None)
            return
        call = self._new_call(proc, tool, message)
        if call is not None:
            self._when_loaded(server, proc, call)

    def _new_call(self, proc: _Proc, tool: str, message: dict[str, Any]) -> _Call | None:
        """The call `message` asks for, or None when it was refused (and answered)."""
        try:
            args = from_plain(message.get("args"))
            kwargs = from_plain(message.get("kwargs"))
            if (
                type(args) is not list
                or type(kwargs) is not dict
                or not all(type(k) is str for k in kwargs)
            ):
                raise ValueError("args must be a list and kwargs a dict with str keys")
        except ValueError as exc:
            self._reply(proc, _err("TypeError", f"the call of {tool} could not be read: {exc}"))
            return None
        if self.n_calls >= MAX_TOOL_CALLS:
            self.refused += 1
            self._reply(
                proc, _err("RuntimeError", f"more than {MAX_TOOL_CALLS} tool calls in one run")
            )
            return None
        limit = self.tool_timeout if self.tool_timeout is not None else math.inf
        call = _Call(proc, tool, to_plain(args), to_plain(kwargs), time.monotonic() + limit)
        self.n_calls += 1
        call.seq = self.n_calls  # records keep the order calls started in (nested ones after)
        return call

    def _host_request(self, proc: _Proc, tool: str, message: dict[str, Any]) -> None:
        """An import or a call of a host tool: imports are answered here, calls go up."""
        if message["op"] == "import":
            self._reply(proc, {"ok": True, "doc": self.host_tools[tool]})
            return
        call = self._new_call(proc, tool, message)
        if call is None:
            return
        if not self.host_open:
            self._record(call, _err("RuntimeError", "the host's channel is closed"))
            self._reply(proc, _err("RuntimeError", "the host's channel is closed"))
            return
        self.host_calls[call.seq] = call
        line = {"id": call.seq, "tool": tool, "args": call.args, "kwargs": call.kwargs}
        try:
            sys.stdout.write(CALL_MARKER + self.secret + " " + json.dumps(line) + "\n")
            sys.stdout.flush()
        except (OSError, ValueError):
            self.host_calls.pop(call.seq, None)
            self._record(call, _err("RuntimeError", "the host's channel is closed"))
            self._reply(proc, _err("RuntimeError", "the host's channel is closed"))

    def _read_host(self) -> None:
        """Replies of the host to host-tool calls, one JSON line each."""
        closed = False
        while True:
            try:
                chunk = os.read(0, 1 << 16)
            except BlockingIOError:
                break
            except OSError:
                chunk = b""
            if not chunk:
                closed = True
                break
            self.host_in += chunk
            if len(self.host_in) > MESSAGE_LIMIT and b"\n" not in self.host_in:
                self.notes.append("the host sent a reply over the size limit")
                closed = True
                break
        while b"\n" in self.host_in:
            line, _, rest = bytes(self.host_in).partition(b"\n")
            self.host_in = bytearray(rest)
            try:
                message = json.loads(line)
            except (ValueError, RecursionError):
                message = None
            call = None
            if isinstance(message, dict) and type(message.get("id")) is int:
                call = self.host_calls.pop(message["id"], None)
            if call is None:
                self.notes.append("a reply of the host came after its call had ended (dropped)")
                continue
            self._host_replied(call, message)
        if closed and self.host_open:
            self.host_open = False
            with contextlib.suppress(KeyError, ValueError):
                self.sel.unregister(0)
            for call in list(self.host_calls.values()):
                self._host_failed(call, "RuntimeError", "the host's channel closed during the call")

    def _host_replied(self, call: _Call, message: dict[str, Any]) -> None:
        if message.get("ok") is True:
            try:
                reply = {"ok": True, "result": to_plain(from_plain(message.get("result")))}
            except (ValueError, Unplain) as exc:
                reply = _err("TypeError", f"the host tool's result could not be read: {exc}")
        else:
            reply = _err(
                _identifier(message.get("error_type")),
                _short_text(message.get("error_message"), VALUE_LIMIT),
            )
        self._record(call, reply)
        self._reply(call.requester, reply)

    def _host_failed(self, call: _Call, error_type: str, message: str) -> None:
        self.host_calls.pop(call.seq, None)
        reply = _err(error_type, message)
        self._record(call, reply)
        self._reply(call.requester, reply)

    def _server(self, tool: str) -> _Proc:
        """The process serving `tool`: the warm spare, or a new one under a uid of its own."""
        server = self.tool_procs.get(tool)
        if server is None or server.state == "dead":
            if self.spare_tool is not None:
                server, self.spare_tool = self.spare_tool, None
            else:
                server = self._spawn("tool", self._tool_uid())
                self._watch(server)
            server.tool = tool
            self.tool_procs[tool] = server
        return server

    def _when_loaded(self, server: _Proc, requester: _Proc, call: _Call | None) -> None:
        """Answer an import, or start a call, once the tool's module is loaded."""
        if server.state == "idle":
            server.state = "loading"
            # Starting an interpreter and importing the module is not the call's time.
            server.load_deadline = time.monotonic() + LOAD_GRACE_S + (self.tool_timeout or 0)
            server.waiting = [(requester, call)]
            self._write(
                server,
                {
                    "op": "load",
                    "tool": server.tool,
                    "source": self.tools[server.tool],
                    "tools": sorted([*self.tools, *self.host_tools]),
                    "rlimits": self.rlimits,
                },
            )
        elif server.state == "loading" and requester.kind == "tool":
            # Only the code waits for a module to load: a tool that imports a loading tool
            # (itself, or in a circle) would wait for ever.
            self._reply(
                requester,
                _err(
                    "RecursionError",
                    f"tool {server.tool} is still loading: tools cannot import each other in a circle",
                ),
            )
        elif server.state == "loading":
            server.waiting.append((requester, call))
        elif server.state == "failed":
            self._reply(
                requester, dict(server.load_error or _err("ImportError", "the tool failed to load"))
            )
        elif call is None:
            self._reply(requester, {"ok": True, "doc": server.doc})
        elif server.call is not None:
            self._reply(
                requester,
                _err(
                    "RecursionError",
                    f"tool {server.tool} is already running: a tool cannot call itself, directly or through another",
                ),
            )
        else:
            call.started = time.monotonic()
            call.deadline = call.started + (call.deadline - call.created)
            server.call = call
            self._write(server, {"op": "call", "args": call.args, "kwargs": call.kwargs})

    def _tool_replied(self, server: _Proc, message: dict[str, Any]) -> None:
        if server.state == "loading":
            waiting, server.waiting = server.waiting, []
            if message.get("ok") is True:
                server.state = "ready"
                server.doc = _short_text(message.get("doc"), VALUE_LIMIT)
            else:
                server.state = "failed"
                server.load_error = _err(
                    "ImportError", _short_text(message.get("error_message"), VALUE_LIMIT)
                )
                tb = message.get("traceback")
                if isinstance(tb, str):
                    server.load_error["traceback"] = tb[-8000:]
            for requester, call in waiting:
                self._when_loaded(server, requester, call)
            return
        call, server.call = server.call, None
        if call is None:
            self.notes.append(f"tool {server.tool} sent a reply nobody asked for")
            return
        if message.get("ok") is True:
            try:
                result = to_plain(from_plain(message.get("result")))
            except (ValueError, Unplain) as exc:
                reply = _err("TypeError", f"the tool's result could not be read: {exc}")
            else:
                reply = {"ok": True, "result": result}
        else:
            reply = _err(
                _identifier(message.get("error_type")),
                _short_text(message.get("error_message"), VALUE_LIMIT),
            )
            tb = message.get("traceback")
            if isinstance(tb, str):
                reply["traceback"] = tb[-8000:]
        self._record(call, reply)
        self._reply(call.requester, reply)

    def _record(self, call: _Call, reply: dict[str, Any]) -> None:
        """The call's record, written here from what was brokered: the only source of
        `tool_calls`."""
        self.records.append(
            {
                "seq": call.seq,
                "tool": call.tool,
                "args": call.args,
                "kwargs": call.kwargs,
                "result": reply.get("result") if reply["ok"] else None,
                "error_type": None if reply["ok"] else reply["error_type"],
                "error_message": None if reply["ok"] else reply["error_message"],
                "seconds": time.monotonic() - call.started,
            }
        )

    def _tool_failed(self, server: _Proc, error_type: str, message: str) -> None:
        """The tool's process is unusable: fail what waits on it, kill it; the next call
        of the tool starts a fresh process."""
        call, server.call = server.call, None
        waiting, server.waiting = server.waiting, []
        server.state = "dead"
        server.alive = False
        _kill(server.pid, group=True)
        self._close_up(server)
        for fd in (server.pidfd, server.down):
            with contextlib.suppress(KeyError, ValueError):
                if fd is not None:
                    self.sel.unregister(fd)
        reply = _err(error_type, message)
        if call is not None:
            self._record(call, reply)
            self._reply(call.requester, reply)
        for requester, _ in waiting:
            self._reply(requester, reply)

    def _tool_died(self, server: _Proc) -> None:
        if server is self.spare_tool:
            self.spare_tool = None
        if server.state == "dead":
            return
        self._read_up(server)  # a reply written just before it ended
        if server.state == "dead":
            return
        status = _wait_status(server)
        if status is not None and os.WIFSIGNALED(status) and os.WTERMSIG(status) == 9:
            why = "MemoryError", f"the process of tool {server.tool} was killed (out of memory?)"
        else:
            why = "RuntimeError", f"the process of tool {server.tool} ended during the call"
        self._tool_failed(server, *why)

    def _expire_calls(self, now: float) -> None:
        for call in list(self.host_calls.values()):
            if now >= call.deadline:
                limit = self.tool_timeout or 0
                self._host_failed(
                    call, "TimeoutError", f"host tool {call.tool} took longer than {limit:g} s"
                )
        for server in list(self.tool_procs.values()):
            if server.state == "loading" and now >= server.load_deadline:
                self._tool_failed(server, "ImportError", f"tool {server.tool} did not load in time")
            elif server.call is not None and now >= server.call.deadline:
                limit = self.tool_timeout or 0
                self._tool_failed(
                    server, "TimeoutError", f"tool {server.tool} took longer than {limit:g} s"
                )

    def _next_call_deadline(self) -> float:
        deadlines = [p.call.deadline for p in self.tool_procs.values() if p.call is not None]
        deadlines += [call.deadline for call in self.host_calls.values()]
        deadlines += [p.load_deadline for p in self.tool_procs.values() if p.state == "loading"]
        return min(deadlines) if deadlines else math.inf


def _err(error_type: str, message: str) -> dict[str, Any]:
    return {"ok": False, "error_type": error_type, "error_message": message}


def _identifier(value: Any) -> str:
    text = str(value)[:200] if value is not None else "Error"
    return text if text.isidentifier() else "ToolError"


def _short_text(value: Any, limit: int) -> str:
    return value[:limit] if isinstance(value, str) else ""


def _checked_final(message: dict[str, Any]) -> dict[str, Any]:
    """The code's final state, field by field: anything else is dropped."""
    answer = message.get("answer")
    try:
        text = json.dumps(answer)
        if len(text) > ANSWER_LIMIT + 64:
            raise ValueError("too long")
    except (TypeError, ValueError, RecursionError):
        answer, cut = None, True
    else:
        cut = bool(message.get("answer_truncated") is True)
    error_type = message.get("error_type")
    return {
        "has_answer": message.get("has_answer") is True,
        "answer": answer,
        "answer_truncated": cut,
        "error_type": _identifier(error_type) if error_type is not None else None,
        "error_message": _short_text(message.get("error_message"), VALUE_LIMIT) or None,
        "traceback": _short_text(message.get("traceback"), 20_000) or None,
    }


# --------------------------------------------------------------------------- processes


class _Drop:
    """In the new process, before it executes anything: empty the capability bounding set
    (so not even a setuid binary could give one back), then become `uid` with no groups."""

    def __init__(self, uid: int) -> None:
        self.uid = uid
        self.prctl = _libc_prctl()

    def __call__(self) -> None:
        if self.prctl is not None:
            for cap in range(64):
                self.prctl(24, cap, 0, 0, 0)  # PR_CAPBSET_DROP; EINVAL past the last cap
        os.setgroups([])
        os.setresgid(self.uid, self.uid, self.uid)
        os.setresuid(self.uid, self.uid, self.uid)


def _libc_prctl() -> Any:
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def _become_subreaper() -> None:
    """Orphans of the code (a grandchild that called setsid) become our children, so they
    can be found and killed when the job ends, whatever session or group they moved to."""
    prctl = _libc_prctl()
    if prctl is not None:
        prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


def _children() -> list[int]:
    me = os.getpid()
    out: list[int] = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return out
    for name in entries:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        # After the command's closing parenthesis: state, ppid, pgrp, ...
        if len(fields) > 1 and int(fields[1]) == me:
            out.append(int(name))
    return out


def _reap_descendants() -> None:
    """Kill and reap every process left under us (orphans come to us: see above)."""
    for _ in range(50):
        children = _children()
        if not children:
            return
        for pid in children:
            _kill(pid, group=False)
        for pid in children:
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(pid, 0)


def _kill(pid: int, *, group: bool) -> None:
    import signal

    if group:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL)  # in case it moved itself to another group


def _wait_status(proc: _Proc) -> int | None:
    popen = proc.popen
    if popen.returncode is None:
        try:
            popen.wait()
        except Exception:
            return None
    code = popen.returncode
    if code is None:
        return None
    # Back to a wait status, as os.waitpid would give it.
    return (-code) & 0x7F if code < 0 else (code & 0xFF) << 8


def _exit_code(status: int) -> int:
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1


def _oom_kills() -> int:
    """The memory cgroup's count of OOM kills (0 where there is no such file, e.g. locally)."""
    for path in CGROUP_OOM_FILES:
        try:
            with open(path, encoding="ascii") as fh:
                for row in fh:
                    name, _, value = row.partition(" ")
                    if name == "oom_kill":
                        return int(value)
        except (OSError, ValueError):
            continue
    return 0


def _text(data: bytearray, cut: bool) -> str:
    raw = bytes(data)
    return (_without_partial_tail(raw) if cut else raw).decode("utf-8", "replace")


def _without_partial_tail(raw: bytes) -> bytes:
    """The cap may split a UTF-8 character: drop its first bytes (no U+FFFD past the cap)."""
    for back in range(1, min(4, len(raw)) + 1):
        byte = raw[-back]
        if byte & 0xC0 == 0x80:
            continue  # a continuation byte: look further back for the lead byte
        if byte < 0x80:
            need = 1
        elif byte >> 5 == 0b110:
            need = 2
        elif byte >> 4 == 0b1110:
            need = 3
        elif byte >> 3 == 0b11110:
            need = 4
        else:
            need = 1
        return raw[:-back] if need > back else raw
    return raw


if __name__ == "__main__":
    sys.exit(main(sys.argv))
