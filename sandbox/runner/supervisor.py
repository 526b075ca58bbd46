"""The `supervise` role: the trusted side inside the sandbox.

It reads ONE job line, starts the code's process (and a process per library tool it
imports), brokers every tool call between them, writes every tool-call record itself
from what it brokered, and writes ONE result line `EVOAGENT-RESULT <secret> <json>`.

Nothing the code does may kill it or void its records:
- requests are served from bounded queues by one loop that never recurses (a flood of
  queued calls behind a slow import is served one by one, or dropped past the bound);
- every note is counted by kind (a flood of malformed lines is one note with a count),
  and notes travel in their own field, apart from what the code printed;
- a process it cannot start (the container's pids limit, memory) fails that call, on
  record; anything unexpected is caught at the top and the result is still written with
  the records made so far;
- it holds the result to the host's own limits (codec.py): an answer nested too deep or
  too long is refused, with the records kept; values recorded past the records' budget
  are kept cut; so the host never has to discard a whole result.

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

import contextlib
import json
import math
import os
import sys
import time
from collections import Counter, deque
from typing import Any

from . import confine, procs
from .codec import (
    ANSWER_LIMIT,
    CALL_MARKER,
    JOB_LIMIT,
    MARKER,
    MAX_NOTES,
    MAX_TOOL_CALLS,
    MESSAGE_LIMIT,
    NOTE_LIMIT,
    RECORDS_LIMIT,
    TRACEBACK_LIMIT,
    VALUE_LIMIT,
    Unplain,
    from_plain,
    json_problem,
    to_plain,
)

RUNNER_MAIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "__main__.py")
#: seconds granted to a tool process to start and import its module, beyond the call's own
LOAD_GRACE_S = 5.0
#: requests one process may have waiting: the bridge sends one at a time, so more is a
#: process that does not follow the protocol (its extra requests are dropped, counted)
MAX_QUEUED = 8
#: characters of a value kept in a record once the records' budget is spent
CUT_VALUE = 256


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
    # Inherited by every process started from here on: no socket but AF_UNIX.
    seccomp = confine.install_socket_filter()
    sup = Supervisor(ids)
    if seccomp != "on":
        sup.note(f"socket filter {seccomp}")
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
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        sup.discard()
        _report("", _failure(2, "JobError", f"bad job: {exc}"))
        return 2
    sup.secret = secret
    sup.host_in = bytearray(rest)
    try:
        result = sup.run(job)
    except (ValueError, KeyError, TypeError) as exc:
        sup.discard()
        result = _failure(2, "JobError", f"bad job: {exc}")
    except BaseException as exc:  # whatever the code did to us: the records still go out
        result = sup.salvage(exc)
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
    try:
        text = json.dumps(result)
    except (TypeError, ValueError, RecursionError) as exc:
        text = json.dumps(
            _failure(1, "SandboxSupervisorError", f"the result did not encode: {exc}")
        )
    sys.stdout.write(MARKER + secret + " " + text + "\n")
    sys.stdout.flush()


def _failure(exit_code: int, error_type: str, message: str) -> dict[str, Any]:
    return {
        "exit_code": exit_code,
        "stdout": "",
        "stderr": "",
        "truncated": False,
        "timed_out": False,
        "oom_killed": False,
        "duration_s": 0.0,
        "answer": None,
        "has_answer": False,
        "error_type": error_type,
        "error_message": message[:VALUE_LIMIT],
        "traceback": None,
        "tool_calls": [],
        "notes": [],
    }


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
    `__main__` in a subprocess). Returns the result before validation."""
    job = {
        "code": code,
        "tools": tools,
        "inputs": {k: to_plain(v) for k, v in (inputs or {}).items()},
        "timeout_s": timeout_s,
        "output_limit": output_limit,
        "rlimits": rlimits,
        "tool_timeout_s": tool_timeout_s,
    }
    sup = Supervisor(ids)
    try:
        return sup.run(job)
    except BaseException as exc:
        return sup.salvage(exc)


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
        self.requests: deque[dict[str, Any]] = deque()
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
        self.records_size = 0
        self.n_calls = 0
        self.final: dict[str, Any] | None = None
        self.notes: Counter[str] = Counter()
        self.rlimits: dict[str, int] | None = None
        self.tool_timeout: float | None = None
        self.deadline = 0.0
        self.started = time.monotonic()
        self.cwd: str | None = None
        #: processes whose next request may be served (the loop drains it: no recursion)
        self.ready: deque[_Proc] = deque()
        # host tools: forwarded on stdout, answered on stdin (see the module docstring)
        self.host_tools: dict[str, str] = {}
        self.host_calls: dict[int, _Call] = {}
        self.host_in = bytearray()
        self.host_open = False
        self.secret = ""
        procs.become_subreaper()

    # ----------------------------------------------------------------- notes

    def note(self, text: str) -> None:
        """A note for the result's `notes` (counted by kind, bounded)."""
        text = text[:NOTE_LIMIT]
        if text in self.notes or len(self.notes) < MAX_NOTES:
            self.notes[text] += 1
        else:
            self.notes["more notes were dropped"] += 1

    def _notes(self) -> list[str]:
        return [f"{text} (x{n})" if n > 1 else text for text, n in self.notes.items()]

    # ----------------------------------------------------------------- processes

    def warm_up(self) -> None:
        self.code = self._spawn("code", self.ids.get("code"))
        with contextlib.suppress(OSError):
            self.spare_tool = self._spawn("tool", self._tool_uid())

    def _tool_uid(self) -> int | None:
        base = self.ids.get("tools")
        if base is None:
            return None
        uid = base + self.next_tool_uid
        self.next_tool_uid += 1
        return uid

    def _spawn(self, kind: str, uid: int | None) -> _Proc:
        """Start a role's interpreter. Raises OSError when the system will not (the pids
        or memory limit reached by the code): the caller turns it into a failed call."""
        import subprocess

        down_r, down_w = os.pipe()
        try:
            up_r, up_w = os.pipe()
        except OSError:
            os.close(down_r)
            os.close(down_w)
            raise
        cwd = self.cwd if kind == "code" else "/"
        if kind == "code" and cwd is None:
            cwd = os.getcwd()
        extra: dict[str, Any] = {}
        if uid is not None and uid != os.geteuid():
            extra = {"preexec_fn": procs.Drop(uid)}
        try:
            popen = subprocess.Popen(
                [sys.executable, "-I", RUNNER_MAIN, kind, str(down_r), str(up_w)],
                stdin=subprocess.DEVNULL,
                stdout=self.out_w,
                stderr=self.err_w,
                pass_fds=(down_r, up_w),
                close_fds=True,
                cwd=cwd,
                start_new_session=True,  # its own group: one kill reaches what it starts
                **extra,
            )
        except BaseException:
            for fd in (down_w, up_r):
                os.close(fd)
            raise
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
        oom_before = procs.oom_kills()
        self.started = time.monotonic()
        if self.code is None:
            try:
                self.code = self._spawn("code", self.ids.get("code"))
            except OSError as exc:
                self.discard()
                return _failure(
                    1, "SandboxSupervisorError", f"the code's process could not be started: {exc}"
                )
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
        self.deadline = self.started + timeout_s
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
        duration = time.monotonic() - self.started
        status = self._end(timed_out)
        exit_code = procs.exit_code(status) if status is not None else 137
        oom_killed = not timed_out and exit_code == 137 and procs.oom_kills() > oom_before
        result = self._result(exit_code, timed_out, oom_killed, duration)
        final = self.final
        if final is None and not timed_out and not oom_killed and exit_code != 0:
            result["error_type"] = "Killed" if exit_code > 128 else "Exited"
            result["error_message"] = (
                f"the code's process ended with exit code {exit_code} before it finished"
            )
        return result

    def _result(
        self, exit_code: int, timed_out: bool, oom_killed: bool, duration: float
    ) -> dict[str, Any]:
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
        result["notes"] = self._notes()
        return result

    def salvage(self, exc: BaseException) -> dict[str, Any]:
        """The result after an unexpected failure of our own: every process stopped, the
        records made so far kept, the failure named."""
        with contextlib.suppress(BaseException):
            self._end(True)
        self.note(f"the supervisor failed: {type(exc).__name__}: {str(exc)[:200]}")
        try:
            result = self._result(137, False, False, time.monotonic() - self.started)
        except BaseException:
            result = _failure(137, "SandboxSupervisorError", "")
            result["tool_calls"] = []
            result["notes"] = self._notes()
        result["answer"], result["has_answer"] = None, False
        result["error_type"] = "SandboxSupervisorError"
        result["error_message"] = (
            f"the sandbox's supervisor failed ({type(exc).__name__}); the tool calls made so far are on record"
        )
        result["traceback"] = None
        return result

    def _loop(self) -> bool:
        """Serve the processes until the code ends (False) or the deadline passes (True)."""
        assert self.code is not None
        while True:
            now = time.monotonic()
            if now >= self.deadline:
                return True
            self._expire_calls(now)
            self._serve_ready()
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
                self._serve_ready()
            if self.code.popen.poll() is not None:
                # Messages the code sent just before it ended are still in its pipe.
                self._read_up(self.code)
                return False

    def _end(self, timed_out: bool) -> int | None:
        """Stop every process; return the code's wait status (None: killed at the deadline)."""
        code = self.code
        status = None
        if code is not None:
            if timed_out:
                procs.kill(code.pid, group=True)
            status = procs.wait_status(code.popen)
        # Descendants the code left behind may hold the output pipes: read what is there.
        self._drain(time.monotonic() + 0.2)
        for proc in [
            *([code] if code else []),
            *self.tool_procs.values(),
            *([self.spare_tool] if self.spare_tool else []),
        ]:
            procs.kill(proc.pid, group=True)
        procs.reap_descendants()
        for proc in self.procs.values():
            for fd in (proc.up, proc.down, proc.pidfd):
                if fd is not None and fd >= 0:
                    with contextlib.suppress(OSError):
                        os.close(fd)
        for fd in (self.out_r, self.err_r):
            with contextlib.suppress(OSError):
                os.close(fd)
        with contextlib.suppress(Exception):
            self.sel.close()
        return None if timed_out else status

    def discard(self) -> None:
        for proc in (self.code, self.spare_tool):
            if proc is not None:
                procs.kill(proc.pid, group=True)
        procs.reap_descendants()

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
        self._keep(fd, chunk)
        return True

    def _keep(self, fd: int, chunk: bytes) -> None:
        buf = self.streams[fd]
        room = self.output_limit - len(buf)
        if room > 0:
            buf += chunk[:room]
        if len(chunk) > room:
            self.overflow[fd] = True

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
                self._keep(fd, chunk)
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
                self.note(f"the {proc.kind} process sent a message over the size limit")
                self._close_up(proc)
                proc.inbuf.clear()
                if proc.kind == "tool":
                    self._tool_failed(
                        proc, "RuntimeError", "the tool's reply was over the size limit"
                    )
                return
        while proc.inbuf:
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
                self.note(f"the {proc.kind} process sent a malformed message")
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
            self.final = _checked_final(message, self)
        elif op in ("import", "call"):
            if len(proc.requests) >= MAX_QUEUED:
                self.note(
                    f"the {proc.kind} process sent more than {MAX_QUEUED} requests at once: the extra ones were dropped"
                )
                return
            proc.requests.append(message)
            self.ready.append(proc)
        elif op == "reply" and proc.kind == "tool":
            self._tool_replied(proc, message)
        else:
            self.note(f"the {proc.kind} process sent an unexpected message")

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
        self.ready.append(requester)  # its next request, if any, is served by the loop

    # ----------------------------------------------------------------- tool calls

    def _serve_ready(self) -> None:
        """Serve the next request of each process that may have one. Iterative: a request
        answered at once queues its process again instead of recursing."""
        while self.ready:
            proc = self.ready.popleft()
            if proc.busy or not proc.requests:
                continue
            self._serve(proc, proc.requests.popleft())

    def _serve(self, proc: _Proc, message: dict[str, Any]) -> None:
        """Serve one request (an import or a call) of `proc`."""
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
        call = None
        if message["op"] == "call":
            call = self._new_call(proc, tool, message)
            if call is None:
                return
        try:
            server = self._server(tool)
        except OSError as exc:
            reply = _err(
                "RuntimeError",
                f"the process of tool {tool} could not be started ({exc.strerror or exc})",
            )
            self.note(f"a tool's process could not be started: {exc.strerror or exc}")
            if call is not None:
                self._record(call, reply)
            self._reply(proc, reply)
            return
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
            self.note(f"tool calls past the limit of {MAX_TOOL_CALLS} were refused")
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
                self.note("the host sent a reply over the size limit")
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
                self.note("a reply of the host came after its call had ended (dropped)")
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
        """The process serving `tool`: the warm spare, or a new one under a uid of its own.
        Raises OSError when no process can be started."""
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
                    "confine": True,
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
            if len(server.waiting) >= MAX_TOOL_CALLS:
                self._reply(
                    requester, _err("RuntimeError", f"too many calls wait for tool {server.tool}")
                )
                return
            server.waiting.append((requester, call))
        elif server.state == "failed":
            reply = dict(server.load_error or _err("ImportError", "the tool failed to load"))
            if call is not None:
                self._record(call, reply)
            self._reply(requester, reply)
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
                confined = message.get("confined")
                if isinstance(confined, str) and confined != "on":
                    self.note(f"a tool's file access was not confined: {confined[:200]}")
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
            self.note(f"tool {server.tool} sent a reply nobody asked for")
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
        `tool_calls`. Past the records' budget, values are kept cut (`cut`: their JSON's
        first characters, as a str): the host must never refuse a result for its size."""
        record = {
            "seq": call.seq,
            "tool": call.tool,
            "args": call.args,
            "kwargs": call.kwargs,
            "result": reply.get("result") if reply["ok"] else None,
            "error_type": None if reply["ok"] else reply["error_type"],
            "error_message": None if reply["ok"] else reply["error_message"],
            "seconds": time.monotonic() - call.started,
            "cut": False,
        }
        size = sum(len(json.dumps(record[k])) for k in ("args", "kwargs", "result"))
        limit = min(VALUE_LIMIT * 3, max(0, RECORDS_LIMIT - self.records_size))
        if size > limit:
            for key, empty in (("args", []), ("kwargs", {}), ("result", None)):
                text = json.dumps(record[key])
                if len(text) > CUT_VALUE:
                    record[key] = ["<cut>", text[:CUT_VALUE]] if key == "args" else empty
            record["cut"] = True
            size = sum(len(json.dumps(record[k])) for k in ("args", "kwargs", "result"))
            self.note("tool-call values past the records' size budget were kept cut")
        self.records_size += size
        self.records.append(record)

    def _tool_failed(self, server: _Proc, error_type: str, message: str) -> None:
        """The tool's process is unusable: fail what waits on it, kill it; the next call
        of the tool starts a fresh process."""
        call, server.call = server.call, None
        waiting, server.waiting = server.waiting, []
        server.state = "dead"
        server.alive = False
        procs.kill(server.pid, group=True)
        self._close_up(server)
        for fd in (server.pidfd, server.down):
            with contextlib.suppress(KeyError, ValueError):
                if fd is not None:
                    self.sel.unregister(fd)
        reply = _err(error_type, message)
        if call is not None:
            self._record(call, reply)
            self._reply(call.requester, reply)
        for requester, waiting_call in waiting:
            if waiting_call is not None:
                self._record(waiting_call, reply)
            self._reply(requester, reply)

    def _tool_died(self, server: _Proc) -> None:
        if server is self.spare_tool:
            self.spare_tool = None
        if server.state == "dead":
            return
        self._read_up(server)  # a reply written just before it ended
        if server.state == "dead":
            return
        status = procs.wait_status(server.popen)
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


def _checked_final(message: dict[str, Any], sup: Supervisor) -> dict[str, Any]:
    """The code's final state, field by field, held to the host's limits: an answer the
    host would refuse (too long, nested too deep) is refused here, with everything else
    of the result kept."""
    answer = message.get("answer")
    has_answer = message.get("has_answer") is True
    cut = bool(message.get("answer_truncated") is True)
    error_type = message.get("error_type")
    error_message = _short_text(message.get("error_message"), VALUE_LIMIT) or None
    traceback = _short_text(message.get("traceback"), TRACEBACK_LIMIT) or None
    problem = json_problem(answer, ANSWER_LIMIT + 64)
    if problem is not None:
        sup.note(f"the answer was refused: {problem}")
        answer, has_answer, cut = None, False, True
        if error_type is None:
            error_type = "AnswerRefused"
            error_message = f"the answer was refused: {problem}"
    return {
        "has_answer": has_answer,
        "answer": answer if has_answer else None,
        "answer_truncated": cut,
        "error_type": _identifier(error_type) if error_type is not None else None,
        "error_message": error_message,
        "traceback": traceback,
    }


def _text(data: bytearray, cut: bool) -> str:
    raw = bytes(data)
    return (without_partial_tail(raw) if cut else raw).decode("utf-8", "replace")


def without_partial_tail(raw: bytes) -> bytes:
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
