"""Process utilities of the supervisor: starting a role under another user, finding and
killing what is left, reading exit statuses and the memory cgroup's OOM count."""

from __future__ import annotations

import contextlib
import os
import signal
from typing import Any

from . import confine

CGROUP_OOM_FILES = (
    "/sys/fs/cgroup/memory/memory.oom_control",  # cgroup v1
    "/sys/fs/cgroup/memory.events",  # cgroup v2
)


class Drop:
    """In the new process, before it executes anything: empty the capability bounding set
    (so not even a setuid binary could give one back), then become `uid` with no groups."""

    def __init__(self, uid: int) -> None:
        self.uid = uid
        self.prctl = confine.libc_prctl()

    def __call__(self) -> None:
        if self.prctl is not None:
            for cap in range(64):
                self.prctl(24, cap, 0, 0, 0)  # PR_CAPBSET_DROP; EINVAL past the last cap
        os.setgroups([])
        os.setresgid(self.uid, self.uid, self.uid)
        os.setresuid(self.uid, self.uid, self.uid)


def become_subreaper() -> None:
    """Orphans of the code (a grandchild that called setsid) become our children, so they
    can be found and killed when the job ends, whatever session or group they moved to."""
    prctl = confine.libc_prctl()
    if prctl is not None:
        prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


def children() -> list[int]:
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


def reap_descendants() -> None:
    """Kill and reap every process left under us (orphans come to us: see above)."""
    for _ in range(50):
        found = children()
        if not found:
            return
        for pid in found:
            kill(pid, group=False)
        for pid in found:
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(pid, 0)


def kill(pid: int, *, group: bool) -> None:
    if group:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL)  # in case it moved itself to another group


def wait_status(popen: Any) -> int | None:
    """The wait status of a `subprocess.Popen`, waiting for it (None if it cannot say)."""
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


def exit_code(status: int) -> int:
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1


def oom_kills() -> int:
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


def oom_first() -> None:
    """Make this process, not the supervisor, the OOM killer's first choice."""
    with (
        contextlib.suppress(OSError),
        open("/proc/self/oom_score_adj", "w", encoding="ascii") as fh,
    ):
        fh.write("1000")


def apply_rlimits(rlimits: dict[str, int]) -> None:
    import resource

    for name, value in rlimits.items():
        which = getattr(resource, "RLIMIT_" + str(name))
        _, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY:
            value = min(int(value), hard)
        resource.setrlimit(which, (int(value), int(value)))
