"""`evoagent serve`: a warm process that `evoagent solve` hands its task to.

A `solve` process pays about 3 s before its first step: importing langchain-core, langgraph,
sqlmodel and the rest (2.9 s measured on 2 cores), opening the library, the embedder and
the sandbox pool; with the local model another 1.3 s to map the weights, and the prompt
cache starts cold. `evoagent serve` pays all of it once and keeps it: while it runs,
`evoagent solve` in the same home sends its task over `<home>/serve.sock` and prints what
comes back, so a task costs the CLI's own start (about 0.6 s) beyond the episode.

The protocol is JSON lines over a Unix socket, one task per connection, one task at a time
(the model is one engine; a second client waits its turn):

    client → {"v": 1, "settings": {...}, "task": {...}, "forge": "now"}
    server → {"started": TASK_ID}, then {"event": {...}} per progress event,
             then {"result": {...}} (the episode) or {"error": MESSAGE, "code": N}

The client sends its whole effective settings; the server solves with them when the parts
that shape what it holds open (home, model, base URL, local engine, sandbox, memory) are
its own, and answers `{"mismatch": REASON}` otherwise: the client then solves in its own
process, as it does when no server listens or the socket is stale. The socket is created
0600 and the server refuses a peer of another uid.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.errors import USER_ERRORS

if TYPE_CHECKING:
    from agent.config import Settings
    from agent.deps import AgentDeps

SOCKET_NAME = "serve.sock"
PROTOCOL = 1
#: the largest request line the server reads (a task and the settings)
MAX_REQUEST_BYTES = 1 << 20
#: the settings that shape what a server holds open: a request must match them
HELD = ("home", "model", "base_url", "server_grammar", "local", "sandbox", "memory")


def socket_path(home: Path) -> Path:
    return Path(home) / SOCKET_NAME


def held_part(settings: Settings) -> dict[str, Any]:
    """The part of `settings` a server's open dependencies were built from (as JSON)."""
    dumped = settings.model_dump(mode="json")
    held = {key: dumped.get(key) for key in HELD}
    held["model"] = held["model"] or "local"  # no model named: the local default (DEFAULT_MODEL)
    return held


# -- client ----------------------------------------------------------------------------


class NotServed(Exception):
    """No server took the task (none listens, a stale socket, other settings): solve here."""


def request_lines(
    home: Path, request: dict[str, Any], connect_timeout_s: float = 2.0
) -> Iterator[dict[str, Any]]:
    """Send `request` to the server of `home`; yield each reply line as a dict.

    Raises NotServed before any line when no server takes the task; a server that dies
    mid-task ends the iteration with an `{"error": ...}` line.
    """
    path = socket_path(home)
    if not path.exists():
        raise NotServed("no server")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(connect_timeout_s)
        try:
            sock.connect(str(path))
        except OSError as exc:
            raise NotServed(f"stale socket ({exc.strerror or exc})") from exc
        sock.settimeout(None)  # a task takes as long as its budget allows
        sock.sendall(json.dumps(request).encode() + b"\n")
        reader = sock.makefile("rb")
        first = True
        for raw in reader:
            try:
                line = json.loads(raw)
            except ValueError:
                line = {"error": "the server sent a line that is not JSON", "code": 5}
            if not isinstance(line, dict):
                line = {"error": "the server sent a line that is not an object", "code": 5}
            if first and "mismatch" in line:
                raise NotServed(str(line["mismatch"]))
            first = False
            yield line
            if "result" in line or "error" in line:
                return
        if first:
            raise NotServed("the server closed the connection before answering")
        yield {"error": "the server ended before the task did (see its log)", "code": 5}
    finally:
        sock.close()


# -- server ----------------------------------------------------------------------------


class Server:
    """Serves `solve` requests for one home with dependencies opened once.

    `deps` is an open `AgentDeps` built from `settings` (the server's own, before any
    local-model defaults). `idle_timeout_s` (0: never) stops a server nobody uses.
    """

    def __init__(
        self,
        settings: Settings,
        deps: AgentDeps,
        *,
        idle_timeout_s: float = 0.0,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings
        self.deps = deps
        self.idle_timeout_s = idle_timeout_s
        self.log = log or (lambda message: None)
        self.path = socket_path(settings.home)
        self._held = held_part(settings)
        self._stop = threading.Event()
        self._sock: socket.socket | None = None
        self.served = 0

    # lifecycle

    def bind(self) -> None:
        """Listen on `<home>/serve.sock` (0600); a live server there is an error."""
        from agent.errors import AgentError

        if self.path.exists():
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.settimeout(1.0)
                probe.connect(str(self.path))
            except OSError:
                self.path.unlink(missing_ok=True)  # stale: its server was killed
            else:
                raise AgentError(
                    f"a server already serves {self.settings.home} ({self.path}): "
                    "stop it first (Ctrl-C or kill its process)"
                )
            finally:
                probe.close()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            sock.bind(str(self.path))
        finally:
            os.umask(old)
        sock.listen(8)
        sock.settimeout(0.5)  # wake to check stop and idle time
        self._sock = sock

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()

    def serve_forever(self) -> None:
        """Serve until `stop()`, SIGTERM/SIGINT (main thread) or the idle timeout."""
        if self._sock is None:
            self.bind()
        assert self._sock is not None
        last = time.monotonic()
        try:
            while not self._stop.is_set():
                if self.idle_timeout_s and time.monotonic() - last > self.idle_timeout_s:
                    self.log(f"idle for {self.idle_timeout_s:.0f} s: stopping")
                    break
                try:
                    conn, _ = self._sock.accept()
                except TimeoutError:
                    continue
                except OSError:
                    if self._stop.is_set():
                        break
                    raise
                with conn:
                    self.handle(conn)
                last = time.monotonic()
        finally:
            self.close()

    # one connection

    def handle(self, conn: socket.socket) -> None:
        conn.settimeout(10.0)  # for reading the request; answering has no deadline
        if not same_user(conn):
            self._send(conn, {"error": "refused: the client runs as another user", "code": 1})
            return
        try:
            request = self._read_request(conn)
        except ValueError as exc:
            self._send(conn, {"error": f"bad request: {exc}", "code": 1})
            return
        conn.settimeout(None)
        try:
            self._solve(conn, request)
        except Exception as exc:  # a failure of one task never ends the server
            code = 1 if isinstance(exc, USER_ERRORS) else 5
            self.log(f"task failed: {type(exc).__name__}: {exc}")
            self._send(conn, {"error": str(exc) or type(exc).__name__, "code": code})

    def _read_request(self, conn: socket.socket) -> dict[str, Any]:
        data = b""
        while not data.endswith(b"\n"):
            try:
                chunk = conn.recv(65536)
            except TimeoutError:
                raise ValueError("no complete request line within 10 s") from None
            if not chunk:
                break
            data += chunk
            if len(data) > MAX_REQUEST_BYTES:
                raise ValueError(f"the request is larger than {MAX_REQUEST_BYTES} bytes")
        try:
            request = json.loads(data)
        except (ValueError, RecursionError):
            raise ValueError("the request is not one JSON line") from None
        if not isinstance(request, dict) or request.get("v") != PROTOCOL:
            raise ValueError(f"not a protocol {PROTOCOL} request object")
        for key, kind in (("settings", dict), ("task", dict), ("forge", str)):
            if not isinstance(request.get(key), kind):
                raise ValueError(f"{key!r} must be a {kind.__name__}")
        if request["forge"] not in ("now", "off"):
            raise ValueError(f"forge must be 'now' or 'off', not {request['forge']!r}")
        from agent.config import Settings
        from agent.task import Task

        try:  # pydantic's ValidationError is a ValueError: the message names the field
            request["settings"] = Settings.model_validate(request["settings"])
            request["task"] = Task.from_dict(request["task"])
        except (KeyError, TypeError) as exc:
            raise ValueError(f"the task is not a task object ({exc})") from None
        if not isinstance(request["task"].task, str) or not request["task"].task.strip():
            raise ValueError("the task has no text")
        return request

    def _solve(self, conn: socket.socket, request: dict[str, Any]) -> None:
        from dataclasses import replace

        from agent.deps import local_defaults
        from agent.solve import solve_task

        settings, task, forge = request["settings"], request["task"], request["forge"]
        theirs = held_part(settings)
        differs = [key for key in HELD if theirs[key] != self._held[key]]
        if differs:
            self._send(conn, {"mismatch": "other " + ", ".join(differs) + " than the server's"})
            return
        if callable(getattr(self.deps.model, "engine", None)):
            settings = local_defaults(settings)
        deps = replace(self.deps, settings=settings, _owned=[])
        self.log(f"task {task.id}: {task.task[:80]!r}")
        alive = self._send(conn, {"started": task.id})

        def on_event(event: dict[str, Any]) -> None:
            nonlocal alive
            if alive:  # a client that went away does not stop the task: it is checkpointed
                alive = self._send(conn, {"event": event})

        result = solve_task(task, deps, forge=forge, on_event=on_event)
        self.served += 1
        self.log(f"task {task.id}: {result.status} in {result.seconds:.1f} s")
        self._send(conn, {"result": result.to_dict()})

    @staticmethod
    def _send(conn: socket.socket, line: dict[str, Any]) -> bool:
        try:
            conn.sendall(json.dumps(line, default=str, ensure_ascii=False).encode() + b"\n")
        except OSError:
            return False
        return True


def same_user(conn: socket.socket) -> bool:
    """Whether the peer of a Unix socket runs as this process's uid (SO_PEERCRED)."""
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return bool(uid == os.getuid())


def install_signal_handlers(server: Server) -> None:
    """SIGTERM and SIGINT stop the server after the task in flight (main thread only)."""

    def stop(signum: int, frame: object) -> None:
        server.log(f"signal {signum}: stopping after the task in flight")
        server.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
