"""`LocalSandbox`: the same runner as a host subprocess, limited by rlimits. NOT isolation.

For machines without Docker, chosen explicitly (`-c sandbox.backend=local`). What it does:
a fresh process per run in its own session and a private temp dir, an environment with
nothing from the host, rlimits on the code (address space, processes, file size, CPU
time, no core dumps) and a kill of the whole process group at the deadline. As root,
the code runs as `nobody` (RLIMIT_NPROC does not bind root, and root could write
anywhere). What it does not do: hide the file system, block the network, or stop a
process that leaves its process group. Use it only for code you would run anyway.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from sandbox import jobs
from sandbox.base import ExecResult, SandboxError
from sandbox.config import SandboxConfig

NOBODY = 65534
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
    ) -> ExecResult:
        timeout = float(self.config.timeout_s if timeout_s is None else timeout_s)
        drop = os.geteuid() == 0 and _nobody_can_run_python()
        uid = NOBODY if drop else os.geteuid()
        line = jobs.job_line(
            code,
            tools,
            timeout,
            self.config.output_limit_bytes,
            self.rlimits(timeout, uid),
            uid=NOBODY if drop else None,
        )
        workdir = tempfile.mkdtemp(prefix="evoagent-local-")
        if drop:
            os.chown(workdir, NOBODY, NOBODY)
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1",
            "OPENBLAS_NUM_THREADS": "1",
            "HOME": workdir,
            "TMPDIR": workdir,
        }
        started = time.monotonic()
        try:
            proc = subprocess.Popen(
                [sys.executable, "-I", str(jobs.RUNNER_PATH)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=workdir,
                env=env,
                start_new_session=True,  # one kill reaches the runner and everything it started
            )
        except OSError as exc:
            shutil.rmtree(workdir, ignore_errors=True)
            raise SandboxError(f"could not start the local runner ({exc})") from exc
        try:
            try:
                out, err = proc.communicate(line, timeout=timeout + jobs.HOST_GRACE_S)
            except subprocess.TimeoutExpired:
                _killpg(proc.pid)
                out, err = proc.communicate()
                return jobs.timed_out(time.monotonic() - started, err.decode("utf-8", "replace"))
        finally:
            _killpg(proc.pid)
            shutil.rmtree(workdir, ignore_errors=True)
        elapsed = time.monotonic() - started
        data = jobs.find_result(out)
        if data is None:
            return jobs.runner_died(
                proc.returncode if proc.returncode >= 0 else 128 - proc.returncode,
                err.decode("utf-8", "replace")[-4000:],
                elapsed,
            )
        result = jobs.to_exec_result(data, elapsed)
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
