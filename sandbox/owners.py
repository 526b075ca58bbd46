"""Who owns a sandbox container: labels naming the creating process (pid, its start
time, the host), and the reaping of containers whose owner died (SIGKILL leaves them).

A container of another host sharing the engine is never judged; a reused pid is told
from the owner by its start time.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping
from typing import Any

log = logging.getLogger("evoagent.sandbox")

LABEL = "evoagent.sandbox"
OWNER_PID = "evoagent.owner_pid"
OWNER_START = "evoagent.owner_start"
OWNER_HOST = "evoagent.owner_host"


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks: tells a live owner from a reused pid."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            stat = fh.read()
    except OSError:
        return ""
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else ""


def owner_labels() -> dict[str, str]:
    pid = os.getpid()
    return {
        LABEL: "1",
        OWNER_PID: str(pid),
        OWNER_START: _start_time(pid),
        OWNER_HOST: socket.gethostname(),
    }


def owner_alive(labels: Mapping[str, str]) -> bool:
    """Is the process that created a container still running? Unknown hosts count as alive."""
    if labels.get(OWNER_HOST) != socket.gethostname():
        return True  # another machine sharing this engine: not ours to judge
    try:
        pid = int(labels.get(OWNER_PID, ""))
    except ValueError:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    start = labels.get(OWNER_START, "")
    return not start or _start_time(pid) in ("", start)


def sandbox_containers(client: Any) -> list[dict[str, Any]]:
    """Every evoagent sandbox container on the engine (running or not)."""
    return list(client.api.containers(all=True, filters={"label": f"{LABEL}=1"}))


def reap_orphans(client: Any) -> int:
    """Remove containers whose owning process is dead (killed with SIGKILL, say)."""
    from docker.errors import NotFound

    reaped = 0
    for info in sandbox_containers(client):
        if owner_alive(info.get("Labels") or {}):
            continue
        try:
            client.api.remove_container(info["Id"], force=True)
            reaped += 1
        except NotFound:
            pass
        except Exception as exc:
            log.warning("sandbox: could not remove orphan %s (%s)", info["Id"][:12], exc)
    return reaped
