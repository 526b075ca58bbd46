"""The in-sandbox runner: one job in, one JSON result out. Standard library only.

It runs inside the container (as /opt/evoagent/runner.py) and, for `LocalSandbox`, as a
host subprocess. Protocol:

- stdin: ONE line of JSON, the job: `{"code", "tools": {name: source}, "timeout_s",
  "output_limit", "rlimits": {name: value} | null}`.
- stdout: ONE line `EVOAGENT-RESULT <json>` (see `_report`). Nothing else is ever written
  to the runner's stdout: the code's own stdout/stderr go through pipes that this
  process reads and caps.

The code runs in a forked child (its own process group) so that this parent survives
whatever the code does: it kills the group at the deadline (`timed_out`), notices a
SIGKILL from the kernel's OOM killer through the memory cgroup's `oom_kill` counter
(`oom_killed`), and keeps only the first `output_limit` bytes of each stream
(`truncated`) while draining the rest so the child never blocks on a full pipe.
The child records every call of a library tool and its final state on a third pipe.

The child can lie about its own result (same user): that only affects its own run,
and the host treats the whole line as untrusted data.
"""

from __future__ import annotations

import builtins
import contextlib
import functools
import json
import linecache
import os
import selectors
import signal
import sys
import time
import traceback
import types
from typing import Any

MARKER = "EVOAGENT-RESULT "
#: cap of one recorded value (argument, result, answer) as JSON text
VALUE_LIMIT = 64 * 1024
ANSWER_LIMIT = 1024 * 1024
MAX_TOOL_CALLS = 1000
#: cap of the child's result channel (tool calls + final state)
CHANNEL_LIMIT = 16 * 1024 * 1024
RUNNER_FILE = os.path.abspath(__file__)
CGROUP_OOM_FILES = (
    "/sys/fs/cgroup/memory/memory.oom_control",  # cgroup v1
    "/sys/fs/cgroup/memory.events",  # cgroup v2
)


def main() -> int:
    line = sys.stdin.buffer.readline()
    if not line.strip():
        return 0  # no job: a pooled container being discarded
    try:
        job = json.loads(line)
        code = str(job["code"])
        tools = {str(k): str(v) for k, v in (job.get("tools") or {}).items()}
        timeout_s = float(job.get("timeout_s") or 10.0)
        output_limit = int(job.get("output_limit") or 256 * 1024)
        rlimits = job.get("rlimits") or None
        uid = job.get("uid")
        uid = int(uid) if uid is not None else None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        _report({"exit_code": 2, "error_type": "JobError", "error_message": f"bad job: {exc}"})
        return 2
    _report(supervise(code, tools, timeout_s, output_limit, rlimits, uid))
    return 0


# --------------------------------------------------------------------------- parent


def supervise(
    code: str,
    tools: dict[str, str],
    timeout_s: float,
    output_limit: int,
    rlimits: dict[str, int] | None,
    uid: int | None = None,
) -> dict[str, Any]:
    """Fork the child that runs `code`, watch it until it ends or the deadline passes."""
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    res_r, res_w = os.pipe()
    oom_before = _oom_kills()
    sys.stdout.flush()
    sys.stderr.flush()
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:  # child: never returns
        os.close(out_r)
        os.close(err_r)
        os.close(res_r)
        _child(code, tools, out_w, err_w, res_w, rlimits, uid)
    for fd in (out_w, err_w, res_w):
        os.close(fd)
    with contextlib.suppress(OSError):
        os.setpgid(pid, pid)  # also here: no window where a kill of the group misses it

    streams = {out_r: bytearray(), err_r: bytearray(), res_r: bytearray()}
    limits = {out_r: output_limit, err_r: output_limit, res_r: CHANNEL_LIMIT}
    overflow = {out_r: False, err_r: False, res_r: False}
    sel = selectors.DefaultSelector()
    for fd in streams:
        os.set_blocking(fd, False)
        sel.register(fd, selectors.EVENT_READ)
    pidfd = _pidfd(pid)
    if pidfd is not None:
        sel.register(pidfd, selectors.EVENT_READ)

    deadline = started + timeout_s
    status: int | None = None
    timed_out = False
    while status is None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            timed_out = True
            _kill_group(pid)
            status = os.waitpid(pid, 0)[1]
            break
        # Without a pidfd, poll the child every 10 ms (older kernels only).
        wait = remaining if pidfd is not None else min(remaining, 0.01)
        for key, _ in sel.select(wait):
            if key.fd == pidfd:
                continue
            if not _read_into(key.fd, streams, limits, overflow):
                sel.unregister(key.fd)
        done, st = os.waitpid(pid, os.WNOHANG)
        if done:
            status = st
    duration = time.monotonic() - started
    # What the child wrote just before it ended is still in the pipes; descendants
    # it left behind may keep the pipes open, so read what is there, then kill them.
    _drain(streams, limits, overflow, until=time.monotonic() + 0.2)
    _kill_group(pid)
    sel.close()
    for fd in streams:
        os.close(fd)
    if pidfd is not None:
        os.close(pidfd)

    exit_code = _exit_code(status)
    oom_killed = not timed_out and _oom_kills() > oom_before
    result: dict[str, Any] = {
        "exit_code": exit_code,
        "stdout": _text(streams[out_r], overflow[out_r]),
        "stderr": _text(streams[err_r], overflow[err_r]),
        "truncated": overflow[out_r] or overflow[err_r],
        "timed_out": timed_out,
        "oom_killed": oom_killed,
        "duration_s": duration,
        "answer": None,
        "has_answer": False,
        "error_type": None,
        "error_message": None,
        "traceback": None,
        "tool_calls": [],
    }
    calls, final = _parse_channel(bytes(streams[res_r]))
    result["tool_calls"] = calls
    if final is not None:
        for name in ("answer", "has_answer", "error_type", "error_message", "traceback"):
            result[name] = final.get(name)
        if final.get("answer_truncated"):
            result["truncated"] = True
    if overflow[res_r] or len(calls) >= MAX_TOOL_CALLS:
        result["stderr"] += f"\n[sandbox: only the first {len(calls)} tool calls were recorded]"
    if final is None and not timed_out and not oom_killed and exit_code != 0:
        result["error_type"] = "Killed" if exit_code > 128 else "Exited"
        result["error_message"] = (
            f"the code's process ended with exit code {exit_code} before it finished"
        )
    return result


def _read_into(
    fd: int, streams: dict[int, bytearray], limits: dict[int, int], overflow: dict[int, bool]
) -> bool:
    """Read what is available; False at EOF. Bytes past the limit are dropped."""
    try:
        chunk = os.read(fd, 65536)
    except BlockingIOError:
        return True
    if not chunk:
        return False
    buf = streams[fd]
    room = limits[fd] - len(buf)
    if room > 0:
        buf += chunk[:room]
    if len(chunk) > room:
        overflow[fd] = True
    return True


def _drain(
    streams: dict[int, bytearray],
    limits: dict[int, int],
    overflow: dict[int, bool],
    until: float,
) -> None:
    open_fds = set(streams)
    while open_fds and time.monotonic() < until:
        progressed = False
        for fd in list(open_fds):
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                open_fds.discard(fd)  # nothing more right now: the writer is gone or idle
                continue
            if not chunk:
                open_fds.discard(fd)
                continue
            progressed = True
            room = limits[fd] - len(streams[fd])
            if room > 0:
                streams[fd] += chunk[:room]
            if len(chunk) > room:
                overflow[fd] = True
        if not progressed:
            break


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


def _pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL)  # in case the code moved itself to another group


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


def _parse_channel(data: bytes) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    calls: list[dict[str, Any]] = []
    final: dict[str, Any] | None = None
    for raw in data.split(b"\n"):
        kind, _, payload = raw.partition(b" ")
        try:
            value = json.loads(payload) if payload else None
        except ValueError:
            continue  # a line cut at the channel cap
        if not isinstance(value, dict):
            continue
        if kind == b"C" and len(calls) < MAX_TOOL_CALLS:
            calls.append(value)
        elif kind == b"R":
            final = value
    calls.sort(key=lambda c: c.get("seq", 0))
    for c in calls:
        c.pop("seq", None)
    return calls, final


def _report(result: dict[str, Any]) -> None:
    sys.stdout.write(MARKER + json.dumps(result, default=repr) + "\n")
    sys.stdout.flush()


# --------------------------------------------------------------------------- child


def _child(
    code: str,
    tools: dict[str, str],
    out_w: int,
    err_w: int,
    res_w: int,
    rlimits: dict[str, int] | None,
    uid: int | None,
) -> None:
    exit_code = 1
    try:
        os.setpgid(0, 0)  # its own group: the parent kills the whole group at the deadline
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        for fd in (null, out_w, err_w):
            os.close(fd)
        os.set_inheritable(res_w, False)
        # Make the code, not this runner, the OOM killer's first choice.
        try:
            with open("/proc/self/oom_score_adj", "w", encoding="ascii") as fh:
                fh.write("1000")
        except OSError:
            pass
        if rlimits:
            _apply_rlimits(rlimits)
        if uid is not None and os.geteuid() == 0:
            # Local runs as root: become an unprivileged user, so RLIMIT_NPROC binds and
            # the code cannot write where only root can.
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
        # Fresh stream objects on fds 0-2: whatever sys.stdout was in the parent (a
        # test runner's capture, say), the code's prints must reach the pipes. Line
        # buffering keeps what was printed before a kill at the deadline.
        sys.stdin = _stream(0, "r")
        sys.stdout = _stream(1, "w")
        sys.stderr = _stream(2, "w")
        exit_code = _execute(code, tools, os.fdopen(res_w, "w", encoding="utf-8"))
    except BaseException:  # the runner itself failed: say so on stderr, never hang
        with contextlib.suppress(OSError):
            os.write(2, traceback.format_exc().encode("utf-8", "replace"))
    finally:
        os._exit(exit_code)


def _stream(fd: int, mode: str) -> Any:
    # buffering=1: line buffered, so what was printed before a kill is not lost.
    return open(fd, mode, buffering=1, encoding="utf-8", errors="backslashreplace", closefd=False)


def _apply_rlimits(rlimits: dict[str, int]) -> None:
    import resource

    for name, value in rlimits.items():
        which = getattr(resource, "RLIMIT_" + name)
        _, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(which, (value, value))


def _execute(code: str, tools: dict[str, str], channel: Any) -> int:
    main_pid = os.getpid()
    recorder = _Recorder(channel, main_pid)
    sys.modules["tools"] = _tools_module(tools, recorder)
    filename = "<code>"
    _remember_source(filename, code)
    namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins}
    final: dict[str, Any] = {
        "has_answer": False,
        "answer": None,
        "error_type": None,
        "error_message": None,
        "traceback": None,
    }
    exit_code = 0
    try:
        compiled = compile(code, filename, "exec")
        exec(compiled, namespace)
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            exit_code = exc.code or 0
        else:
            print(exc.code, file=sys.stderr)
            exit_code = 1
    except BaseException as exc:
        exit_code = 1
        final["error_type"] = type(exc).__name__
        final["error_message"] = str(exc)
        final["traceback"] = _format_traceback(exc)[-20_000:]
    if os.getpid() != main_pid:
        # A process the code forked reached the end: it must not report a result.
        _flush_std()
        os._exit(exit_code)
    if "answer" in namespace:
        final["has_answer"] = True
        final["answer"], cut = _jsonable(namespace["answer"], ANSWER_LIMIT)
        final["answer_truncated"] = cut
    _flush_std()
    recorder.send("R", final)
    channel.flush()
    return exit_code


def _flush_std() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()


def _remember_source(filename: str, source: str) -> None:
    # Tracebacks show the code's lines without writing it anywhere (mtime None: kept).
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)


def _format_traceback(exc: BaseException) -> str:
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


class _Recorder:
    """Writes one line per tool call (and the final state) on the result channel."""

    def __init__(self, channel: Any, main_pid: int) -> None:
        self.channel = channel
        self.main_pid = main_pid
        self.seq = 0
        self.n = 0

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def send(self, kind: str, payload: dict[str, Any]) -> None:
        if os.getpid() != self.main_pid:
            return
        try:
            self.channel.write(kind + " " + json.dumps(payload, default=repr) + "\n")
            if kind == "C":
                self.channel.flush()  # survives a kill of the code at the deadline
        except (OSError, ValueError):
            pass

    def record(self, call: dict[str, Any]) -> None:
        if self.n >= MAX_TOOL_CALLS:
            return
        self.n += 1
        self.send("C", call)


def _tools_module(sources: dict[str, str], recorder: _Recorder) -> types.ModuleType:
    """`tools`: `from tools import name` loads module `name` and gives its function `name`."""
    module = types.ModuleType("tools", "Library tools of this run.")
    loaded: dict[str, Any] = {}

    def load(name: str) -> Any:
        if name in loaded:
            return loaded[name]
        if name.startswith("__"):
            raise AttributeError(name)  # the import machinery probing dunders
        if name not in sources:
            available = ", ".join(sorted(sources)) or "none"
            # ImportError, not AttributeError: `from tools import x` would replace an
            # AttributeError by a vaguer "cannot import name" message.
            raise ImportError(
                f"no tool module named {name!r} was given to this run (available: {available})",
                name=f"tools.{name}",
            )
        filename = f"tools/{name}.py"
        _remember_source(filename, sources[name])
        tool_module = types.ModuleType(f"tools.{name}")
        tool_module.__file__ = filename
        sys.modules[f"tools.{name}"] = tool_module
        exec(compile(sources[name], filename, "exec"), tool_module.__dict__)
        fn = getattr(tool_module, name, None)
        if not callable(fn):
            raise ImportError(f"tool module {name!r} defines no function named {name!r}")
        wrapped = _wrap(name, fn, recorder)
        loaded[name] = wrapped
        module.__dict__[name] = wrapped
        return wrapped

    module.__getattr__ = load  # type: ignore[method-assign]
    module.__all__ = sorted(sources)  # type: ignore[attr-defined]
    return module


def _wrap(name: str, fn: Any, recorder: _Recorder) -> Any:
    @functools.wraps(fn)
    def tool(*args: Any, **kwargs: Any) -> Any:
        seq = recorder.next_seq()
        # Arguments are captured before the call: a tool that mutates them (sorts a list
        # in place) must not rewrite what it was called with.
        call: dict[str, Any] = {
            "seq": seq,
            "tool": name,
            "args": [_jsonable(a, VALUE_LIMIT)[0] for a in args],
            "kwargs": {k: _jsonable(v, VALUE_LIMIT)[0] for k, v in kwargs.items()},
            "result": None,
            "error_type": None,
            "error_message": None,
        }
        started = time.perf_counter()
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            call["seconds"] = time.perf_counter() - started
            call["error_type"] = type(exc).__name__
            call["error_message"] = str(exc)[:VALUE_LIMIT]
            recorder.record(call)
            raise
        call["seconds"] = time.perf_counter() - started
        call["result"] = _jsonable(result, VALUE_LIMIT)[0]
        recorder.record(call)
        return result

    return tool


def _jsonable(value: Any, limit: int) -> tuple[Any, bool]:
    """(value as JSON data, cut?): JSON values as they are, numpy via tolist(), else repr."""
    if type(value).__module__ == "numpy" and hasattr(value, "tolist"):
        with contextlib.suppress(Exception):
            value = value.tolist()
    try:
        text = json.dumps(value, allow_nan=True)
    except (TypeError, ValueError, RecursionError):
        try:
            text = repr(value)
        except Exception as exc:
            text = f"<unrepresentable {type(value).__name__}: {exc}>"
        return (text[:limit], True) if len(text) > limit else (text, False)
    if len(text) > limit:
        return text[:limit], True
    return json.loads(text), False


if __name__ == "__main__":
    sys.exit(main())
