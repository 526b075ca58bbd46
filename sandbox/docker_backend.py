"""`DockerSandbox`: every run in a fresh, locked-down, single-use container.

How a job gets in: each container's main process is the runner itself (under Docker's
init), started with stdin open and waiting for one line. A run attaches to the
container, writes the job line, half-closes, and reads the runner's one result line
from the attach stream. No `exec` (about 60 ms each), no copy into the container, no
host mount: the warm pool pays the container start and the Python start-up ahead of
need. After one job the container is removed.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
import uuid
import weakref
from collections.abc import Mapping
from typing import Any

from sandbox import jobs
from sandbox.base import ExecResult, HostTool, ImageMissing, SandboxError
from sandbox.config import SandboxConfig
from sandbox.engine import connect
from sandbox.hostcalls import HostBroker, host_docs
from sandbox.owners import owner_labels, reap_orphans
from sandbox.pool import WarmPool

log = logging.getLogger("evoagent.sandbox")

INSTANCE = "evoagent.sandbox_id"
#: the environment of the code: what Python needs and nothing from the host
CONTAINER_ENV = {
    "LANG": "C.UTF-8",
    "PYTHONDONTWRITEBYTECODE": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "TMPDIR": "/work",
}
#: all the supervisor may do beyond an ordinary user: run processes as other users (with an
#: empty capability bounding set: SETPCAP), kill them
SUPERVISOR_CAPS = ("SETUID", "SETGID", "SETPCAP", "KILL")
#: most bytes accepted from the runner (its result line carries capped outputs)
MAX_RESULT_BYTES = 64 * 1024 * 1024


class DockerSandbox:
    """Runs code in Docker containers from a warm pool; see the module docstring."""

    kind = "docker"

    def __init__(self, config: SandboxConfig | None = None) -> None:
        from sandbox.image import _present, image_tag

        self.config = config or SandboxConfig()
        self.client = connect()
        self.api = self.client.api
        self.image = image_tag(self.config)
        if not _present(self.client, self.image):
            self.client.close()
            raise ImageMissing(
                f"the sandbox image {self.image} is not built: run `evoagent sandbox build` "
                "(about 2 minutes the first time, offline)"
            )
        self.id = uuid.uuid4().hex[:12]
        self.labels = {**owner_labels(), INSTANCE: self.id}
        reaped = reap_orphans(self.client)
        if reaped:
            log.info("sandbox: removed %d containers left by dead processes", reaped)
        self._live: set[str] = set()
        self._lock = threading.Lock()
        self.pool = WarmPool(self._create, self._destroy, size=self.config.pool_size)
        self._finalizer = weakref.finalize(self, _shutdown, self.pool, self.client)

    # ----------------------------------------------------------------- Sandbox

    def run(
        self,
        code: str,
        *,
        tools: Mapping[str, str] | None = None,
        timeout_s: float | None = None,
        tool_timeout_s: float | None = None,
        inputs: Mapping[str, Any] | None = None,
        host_tools: Mapping[str, HostTool] | None = None,
    ) -> ExecResult:
        timeout = float(self.config.timeout_s if timeout_s is None else timeout_s)
        secret = jobs.new_secret()
        line = jobs.job_line(
            code,
            tools,
            timeout,
            self.config.output_limit_bytes,
            secret=secret,
            tool_timeout_s=tool_timeout_s,
            inputs=inputs,
            host_tools=host_docs(host_tools),
        )
        broker = HostBroker(secret, host_tools, tool_timeout_s) if host_tools else None
        started = time.monotonic()
        container = self.pool.take()
        try:
            result = self._converse(
                container,
                line,
                timeout,
                started,
                secret,
                [*(tools or {}), *(host_tools or {})],
                broker,
            )
        finally:
            self.pool.discard(container)
        return broker.merge(result) if broker is not None else result

    def close(self) -> None:
        self._finalizer()

    def __enter__(self) -> DockerSandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- internals

    def _converse(
        self,
        container: str,
        line: bytes,
        timeout: float,
        started: float,
        secret: str,
        tools: list[str],
        broker: HostBroker | None = None,
    ) -> ExecResult:
        # From now, not from `started`: creating a container inline under load must not
        # eat into the code's time. The runner enforces `timeout` itself; this deadline
        # only catches a runner that died or hung.
        deadline = time.monotonic() + timeout + jobs.HOST_GRACE_S
        try:
            response = self.api.attach_socket(
                container, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1}
            )
        except Exception as exc:
            raise SandboxError(
                f"could not attach to sandbox container {container[:12]}: {exc}"
            ) from exc
        sock = getattr(response, "_sock", response)
        try:
            out, err, complete = converse(
                sock, line, deadline, MAX_RESULT_BYTES, jobs.result_prefix(secret), broker
            )
        finally:
            _close_quietly(sock, response)
        elapsed = time.monotonic() - started
        if complete:
            try:
                data = jobs.find_result(out, secret)
            except jobs.InvalidResult as exc:
                return ExecResult.discarded(str(exc), elapsed)
            if data is not None:
                return jobs.to_exec_result(
                    data, elapsed, tools=tools, output_limit=self.config.output_limit_bytes
                )
        if time.monotonic() >= deadline:
            self._kill(container)
            return jobs.timed_out(elapsed, err.decode("utf-8", "replace"))
        if out.strip():
            return ExecResult.discarded(
                "the runner's stdout holds bytes but no whole result line", elapsed
            )
        # The runner ended without a result: the code killed it, or the OOM killer did.
        exit_code, oom = self._exit_state(container)
        return jobs.runner_died(exit_code, err.decode("utf-8", "replace")[-4000:], elapsed, oom=oom)

    def _exit_state(self, container: str) -> tuple[int, bool]:
        try:
            status = self.api.wait(container, timeout=5)
            state = self.api.inspect_container(container)["State"]
        except Exception:
            return 137, False
        exit_code = int(status.get("StatusCode", state.get("ExitCode", 1)))
        return exit_code, bool(state.get("OOMKilled")) or _host_oom_count(container) > 0

    def _kill(self, container: str) -> None:
        with contextlib.suppress(Exception):  # already dead; removal follows anyway
            self.api.kill(container)

    def _create(self) -> str:
        spec = container_spec(self.api, self.config, self.image, self.labels)
        try:
            created = self.api.create_container(**spec)
            container = created["Id"]
        except Exception as exc:
            raise SandboxError(f"could not create a sandbox container: {exc}") from exc
        with self._lock:
            self._live.add(container)
        try:
            self.api.start(container)
        except Exception as exc:
            self._destroy(container)
            raise SandboxError(f"could not start a sandbox container: {exc}") from exc
        return container

    def _destroy(self, container: str) -> None:
        from docker.errors import NotFound

        with contextlib.suppress(NotFound):
            self.api.remove_container(container, force=True)
        with self._lock:
            self._live.discard(container)

    def live_containers(self) -> int:
        """Containers of this sandbox not yet removed (ready, running or being removed)."""
        with self._lock:
            return len(self._live)


def _shutdown(pool: WarmPool, client: Any) -> None:
    try:
        pool.close()
    finally:
        client.close()


def container_spec(
    api: Any, config: SandboxConfig, image: str, labels: Mapping[str, str]
) -> dict[str, Any]:
    """`APIClient.create_container` arguments of one locked-down sandbox container."""
    from docker.types import LogConfig, Ulimit

    from sandbox.image import SANDBOX_UID, TOOL_UID_BASE

    memory = f"{config.memory_mb}m"
    host_config = api.create_host_config(
        network_mode="none",
        read_only=True,
        # The only writable place; TMPDIR points here. No /tmp, no /dev/shm (ipc none).
        # Owned by the sandbox user: Docker copies the image dir's root-owned mode onto
        # the tmpfs, so a `mode=` option would be lost.
        tmpfs={
            "/work": f"rw,nosuid,nodev,size={config.tmpfs_mb}m,uid={SANDBOX_UID},gid={SANDBOX_UID}"
        },
        ipc_mode="none",
        mem_limit=memory,
        memswap_limit=memory,  # equal: no swap beyond the limit
        nano_cpus=int(config.cpus * 1e9),
        pids_limit=config.pids_limit,
        cap_drop=["ALL"],
        cap_add=list(SUPERVISOR_CAPS),
        security_opt=["no-new-privileges:true"],
        init=True,
        privileged=False,
        ulimits=[Ulimit(name="core", soft=0, hard=0), Ulimit(name="nofile", soft=1024, hard=1024)],
        # The result travels on the attach stream: nothing needs to be logged to disk.
        log_config=LogConfig(type="none"),
    )
    return {
        "image": image,
        # The supervisor is root with three capabilities (start processes as other users,
        # kill them); the code runs as SANDBOX_UID and each tool as TOOL_UID_BASE + n.
        "command": [
            "python3",
            "-I",
            jobs.RUNNER_IN_IMAGE,
            "supervise",
            "--code-uid",
            str(SANDBOX_UID),
            "--tool-uid",
            str(TOOL_UID_BASE),
            "--warm",
        ],
        "user": "0:0",
        "working_dir": "/work",
        "environment": dict(CONTAINER_ENV),
        "hostname": "sandbox",
        "labels": dict(labels),
        "stdin_open": True,
        "detach": False,  # with stdin_open: StdinOnce, so our half-close is the runner's EOF
        "tty": False,
        "network_disabled": True,
        "host_config": host_config,
    }


# --------------------------------------------------------------------------- streams


def converse(
    sock: Any,
    line: bytes,
    deadline: float,
    limit: int,
    marker: bytes,
    broker: HostBroker | None = None,
) -> tuple[bytes, bytes, bool]:
    """Send `line`, half-close, read Docker's multiplexed stream until the result line
    (a line that starts with `marker`). With a `broker` (host tools), stdin stays open:
    each call line on stdout is answered on stdin and left out of the stdout returned.

    Returns (stdout, stderr, complete): complete when stdout holds a whole result line.
    Stops at EOF, at `deadline`, or past `limit` bytes.
    """
    out = bytearray()
    err = bytearray()
    buf = bytearray()
    try:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        sock.sendall(line)
        if broker is None:
            sock.shutdown(socket.SHUT_WR)
    except OSError:
        return bytes(out), bytes(err), False
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return bytes(out), bytes(err), False
        try:
            sock.settimeout(remaining)
            chunk = sock.recv(262144)
        except (TimeoutError, OSError):
            return bytes(out), bytes(err), False
        if not chunk:
            return bytes(out), bytes(err), _complete(out, marker)
        buf += chunk
        # Frames: 1 byte stream (1 stdout, 2 stderr), 3 zero bytes, 4 bytes big-endian size.
        while len(buf) >= 8:
            size = int.from_bytes(buf[4:8], "big")
            if len(buf) < 8 + size:
                break
            payload = bytes(buf[8 : 8 + size])
            if buf[0] == 2:
                if len(err) < 65536:
                    err += payload
            else:
                out += payload
            del buf[: 8 + size]
        if broker is not None:
            try:
                for reply in broker.take(out):
                    sock.settimeout(max(0.01, deadline - time.monotonic()))
                    sock.sendall(reply)
            except OSError:
                return bytes(out), bytes(err), False
        if _complete(out, marker):
            return bytes(out), bytes(err), True
        if len(out) > limit:
            return bytes(out), bytes(err), False


def _complete(out: bytearray, marker: bytes) -> bool:
    start = out.find(marker)
    return start >= 0 and out.find(b"\n", start) >= 0


def _close_quietly(*things: Any) -> None:
    for thing in things:
        with contextlib.suppress(Exception):
            thing.close()


def _host_oom_count(container: str) -> int:
    """OOM kills in the container's memory cgroup, read on the host (cgroup v1 layout)."""
    path = f"/sys/fs/cgroup/memory/docker/{container}/memory.oom_control"
    try:
        with open(path, encoding="ascii") as fh:
            for row in fh:
                if row.startswith("oom_kill "):
                    return int(row.split()[1])
    except (OSError, ValueError):
        pass
    return 0
