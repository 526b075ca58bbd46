"""The home's writer lock: the process that holds it owns the Chroma index.

Chroma's PersistentClient is not safe across processes, so exactly one process may open it;
every other process is a guest that ranks with numpy over the vectors cached in SQL.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO


class WriterLock:
    """An advisory fcntl lock on `<home>/library.lock`: its holder owns the Chroma index.

    The kernel releases it when the process dies, so a killed stream never leaves a
    stale lock behind.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: IO[str] | None = None

    def try_acquire(self) -> bool:
        fh = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held open while locked
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            return False
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        self._fh = fh
        return True

    def holder(self) -> str:
        try:
            return self.path.read_text(encoding="utf-8").strip() or "?"
        except OSError:
            return "?"

    def release(self) -> None:
        if self._fh is not None:
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None
