"""Messages between the supervisor and the processes it started: one JSON line each."""

from __future__ import annotations

import json
import os
from typing import Any

from .codec import MESSAGE_LIMIT


def send(fd: int, message: dict[str, Any]) -> None:
    """One JSON line on a pipe (blocking; for the code and tool processes)."""
    data = (json.dumps(message, default=repr) + "\n").encode("utf-8")
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


class LineReader:
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
