"""`LocalSandbox`: the same runner as a host subprocess, limited by rlimits. NOT isolation.

For machines without Docker, chosen explicitly (`-c sandbox.backend=local`). What it does:
a fresh process per run in its own session and a private temp dir, an environment with
nothing from the host, rlimits on the code (address space, processes, file size, CPU
time, no core dumps), a kill of the whole process group at the deadline, and the
runner as a child subreaper, so a process that leaves its group (setsid) is still
found and killed. As root, the code runs as `nobody` and each tool as a user of its own
(RLIMIT_NPROC does not bind root, and root could write anywhere). What it does not do:
hide the file system or block the network; and when not root, the code runs as the same
user as the runner that reports on it, so its results are only as honest as the code.
Use it only for code you would run anyway.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
import selectors
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sandbox import jobs
from sandbox.base import ExecResult, HostTool, SandboxError
from sandbox.config import SandboxConfig
from sandbox.hostcalls import HostBroker, host_docs

NOBODY = 65534
#: as root, tool n of a run runs as TOOL_UID_BASE + n (users nothing else on the host has)
TOOL_UID_BASE = 61000
#: most bytes read from the runner's stdout (its one result line) and stderr
STDOUT_LIMIT = 64 * 1024 * 1024
STDERR_LIMIT = 64 * 1024
log = logging.getLogger("evoagent.sandbox")


class LocalSandbox:
    """Runs code in a subprocess with rlimits; see the module docstring for its limits."""

    kind = "local"

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig(backend="local")

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
        drop = os.geteuid() == 0 and _nobody_can_run_python()
        uid = NOBODY if drop else os.geteuid()
        secret = jobs.new_secret()
        line = jobs.job_line(
            code,
            tools,
            timeout,
            self.config.output_limit_bytes,
            secret=secret,
            rlimits=self.rlimits(timeout, uid),
            ids={"code": NOBODY, "tools": TOOL_UID_BASE} if drop else None,
            tool_timeout_s=tool_timeout_s,
            inputs=inputs,
            host_tools=host_docs(host_tools),
        )
        broker = HostBroker(secret, host_tools, tool_timeout_s) if host_tools else None
        workdir = tempfile.mkdtemp(prefix="evoagent-local-")
        if drop:
            os.chown(workdir, NOBODY, NOBODY)
        started = time.monotonic()
        proc = _start_runner(workdir)
        deadline = started + timeout + jobs.HOST_GRACE_S
        try:
            out, err, complete = _exchange(proc, line, deadline, jobs.result_prefix(secret), broker)
        finally:
            _killpg(proc.pid)
            with contextlib.suppress(OSError):
                proc.stdin.close()  # type: ignore[union-attr]
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=1.0)
            shutil.rmtree(workdir, ignore_errors=True)
        elapsed = time.monotonic() - started
        stderr = err.decode("utf-8", "replace")[-4000:]
        if not complete:
            if time.monotonic() >= deadline:
                return jobs.timed_out(elapsed, stderr)
            code_ = proc.returncode if proc.returncode is not None else 137
            return jobs.runner_died(code_ if code_ >= 0 else 128 - code_, stderr, elapsed)
        names = [*(tools or {}), *(host_tools or {})]
        return self._result(out, secret, stderr, elapsed, names, broker)

    def _result(
        self,
        out: bytes,
        secret: str,
        stderr: str,
        elapsed: float,
        tools: list[str],
        broker: HostBroker | None,
    ) -> ExecResult:
        """The run's result, checked on this side (jobs.py), with the host's records of
        its host-tool calls in place of the runner's."""
        try:
            data = jobs.find_result(out, secret)
        except jobs.InvalidResult as exc:
            return ExecResult.discarded(str(exc), elapsed)
        if data is None:
            return jobs.runner_died(1, stderr, elapsed)
        result = jobs.to_exec_result(
            data, elapsed, tools=tools, output_limit=self.config.output_limit_bytes
        )
        if broker is not None:
            result = broker.merge(result)
        # RLIMIT_AS makes an allocation fail instead of summoning the OOM killer.
        if result.error_type == "MemoryError":
            result.oom_killed = True
        return result

    def rlimits(self, timeout: float, uid: int) -> dict[str, int]:
        mb = 1024 * 1024
        return {
            "AS": self.config.memory_mb * mb,
            # RLIMIT_NPROC counts every task of the user, not just this run's.
            "NPROC": _tasks_of(uid) + self.config.pids_limit,
            "FSIZE": self.config.tmpfs_mb * mb,
            "CPU": math.ceil(timeout) + 1,
            "CORE": 0,
            "NOFILE": 1024,
        }

    def close(self) -> None:
        """Nothing is kept between runs."""

    def __enter__(self) -> LocalSandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@functools.cache
def _start_runner(workdir: str) -> subprocess.Popen[bytes]:
    """The runner's supervisor in a session of its own (one kill reaches everything it
    starts), in `workdir`, with a minimal environment."""
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "HOME": workdir,
        "TMPDIR": workdir,
    }
    try:
        return subprocess.Popen(
            [sys.executable, "-I", str(jobs.RUNNER_PATH), "supervise"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=workdir,
            env=env,
            start_new_session=True,
        )
    except OSError as exc:
        shutil.rmtree(workdir, ignore_errors=True)
        raise SandboxError(f"could not start the local runner ({exc})") from exc


def _nobody_can_run_python() -> bool:
    """Can `nobody` read this interpreter and its packages? (Not when they live under a
    private home such as /root/.pyenv: then the code stays root, and only the timeout,
    not RLIMIT_NPROC, stops a fork bomb.)"""
    ok = all(_world_readable(Path(p)) for p in {sys.base_prefix, sys.prefix})
    if not ok:
        log.warning(
            "local sandbox: running as root and %s is not readable by other users, so the "
            "code runs as root: RLIMIT_NPROC does not bind root (a fork bomb is stopped only "
            "by the timeout)",
            sys.base_prefix,
        )
    return ok


def _world_readable(path: Path) -> bool:
    path = path.resolve()
    for part in [path, *path.parents]:
        try:
            mode = part.stat().st_mode
        except OSError:
            return False
        if not mode & stat.S_IXOTH or (part == path and not mode & stat.S_IROTH):
            return False
    return True


def _exchange(
    proc: subprocess.Popen[bytes],
    line: bytes,
    deadline: float,
    prefix: bytes,
    broker: HostBroker | None = None,
) -> tuple[bytes, bytes, bool]:
    """Write the job, read stdout and stderr until the result line (complete) or the deadline,
    with caps. Never waits for EOF: a process the code left behind may hold the pipes.
    With a `broker`, stdin stays open for the replies to host-tool calls."""
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    try:
        proc.stdin.write(line)
        if broker is None:
            proc.stdin.close()
        else:
            proc.stdin.flush()
    except OSError:
        pass  # the runner died at once: its stderr says why
    out, err = bytearray(), bytearray()
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ, out)
    sel.register(proc.stderr, selectors.EVENT_READ, err)
    try:
        while sel.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return bytes(out), bytes(err), False
            for key, _ in sel.select(remaining):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    sel.unregister(key.fileobj)
                    continue
                buf = key.data
                limit = STDOUT_LIMIT if buf is out else STDERR_LIMIT
                buf += chunk[: max(0, limit - len(buf))]
                if buf is out and len(out) >= STDOUT_LIMIT:
                    return bytes(out), bytes(err), False
            if broker is not None and not _answer(proc, broker, out):
                return bytes(out), bytes(err), False
            if out.startswith(prefix) and out.endswith(b"\n"):
                return bytes(out), bytes(err), True
        return bytes(out), bytes(err), out.startswith(prefix) and out.endswith(b"\n")
    finally:
        sel.close()


def _answer(proc: subprocess.Popen[bytes], broker: HostBroker, out: bytearray) -> bool:
    """Answer the host-tool calls at the start of `out`; False when the runner is gone."""
    assert proc.stdin is not None
    try:
        for reply in broker.take(out):
            proc.stdin.write(reply)
            proc.stdin.flush()
    except OSError:
        return False
    return True


def _killpg(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _tasks_of(uid: int) -> int:
    """Tasks (threads included) the user runs now, from /proc (0 where there is none)."""
    total = 0
    try:
        entries = os.listdir("/proc")
    except OSError:
        return 0
    for name in entries:
        if not name.isdigit():
            continue
        try:
            if os.stat(f"/proc/{name}").st_uid != uid:
                continue
            with open(f"/proc/{name}/status", encoding="ascii", errors="replace") as fh:
                for row in fh:
                    if row.startswith("Threads:"):
                        total += int(row.split()[1])
                        break
        except (OSError, ValueError):
            continue
    return total
