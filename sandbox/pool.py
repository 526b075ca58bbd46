"""A warm pool of single-use resources (container ids), refilled in the background.

`take()` never waits for the refill: when the pool is empty (a burst of runs), it
creates inline, so a burst costs what no pool would cost and never more.
Each taken item is used once and then handed to `discard` (removed in the background).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable

log = logging.getLogger("evoagent.sandbox")


class WarmPool:
    def __init__(
        self,
        create: Callable[[], str],
        destroy: Callable[[str], None],
        size: int,
        name: str = "sandbox-pool",
    ) -> None:
        self._create = create
        self._destroy = destroy
        self.size = size
        self._ready: deque[str] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._failures = 0
        self._trash: queue.Queue[str | None] = queue.Queue()
        self._remover = threading.Thread(
            target=self._remove_loop, name=f"{name}-remove", daemon=True
        )
        self._remover.start()
        self._filler: threading.Thread | None = None
        if size > 0:
            self._filler = threading.Thread(
                target=self._fill_loop, name=f"{name}-fill", daemon=True
            )
            self._filler.start()

    # ----------------------------------------------------------------- public

    def take(self) -> str:
        """A ready item, or a new one made now when none is ready."""
        with self._cond:
            if self._closed:
                raise RuntimeError("the sandbox is closed")
            if self._ready:
                item = self._ready.popleft()
                self._cond.notify_all()  # wake the filler
                return item
        return self._create()

    def discard(self, item: str) -> None:
        """Destroy a used item in the background (at once if the pool is closed)."""
        with self._cond:
            closed = self._closed
        if not closed:
            self._trash.put(item)
            return
        try:
            self._destroy(item)
        except Exception as exc:
            log.warning("sandbox pool: could not remove %s (%s)", item[:12], exc)

    def ready(self) -> int:
        with self._cond:
            return len(self._ready)

    def wait_ready(self, timeout: float = 30.0) -> bool:
        """Block until the pool is full (benchmarks and tests measure a warm pool)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._ready) < self.size and not self._closed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return not self._closed

    def close(self) -> None:
        """Stop the refill, destroy the ready items and everything discarded. Idempotent."""
        with self._cond:
            if self._closed and not self._remover.is_alive():
                return
            self._closed = True
            leftovers = list(self._ready)
            self._ready.clear()
            self._cond.notify_all()
        if self._filler is not None:
            self._filler.join(timeout=60)
        for item in leftovers:
            self._trash.put(item)
        self._trash.put(None)
        self._remover.join(timeout=120)

    # ----------------------------------------------------------------- threads

    def _fill_loop(self) -> None:
        while True:
            with self._cond:
                while not self._closed and len(self._ready) >= self.size:
                    self._cond.wait()
                if self._closed:
                    return
            try:
                item = self._create()
            except Exception as exc:
                # Docker hiccup: back off instead of spinning; run() creates inline meanwhile.
                self._failures += 1
                log.warning("sandbox pool: could not create a container (%s)", exc)
                with self._cond:
                    self._cond.wait(min(30.0, 0.5 * 2 ** min(self._failures, 6)))
                continue
            self._failures = 0
            with self._cond:
                if self._closed:
                    self._trash.put(item)
                    return
                self._ready.append(item)
                self._cond.notify_all()

    def _remove_loop(self) -> None:
        while True:
            item = self._trash.get()
            if item is None:
                return
            try:
                self._destroy(item)
            except Exception as exc:  # already gone, or the engine is down: the reaper will see it
                log.warning("sandbox pool: could not remove %s (%s)", item[:12], exc)
