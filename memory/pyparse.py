"""`ast.parse` that is safe to call from several threads at once.

CPython 3.11 keeps the recursion depth of its AST-to-object conversion in state shared by all
threads of the interpreter and resets it at the start of every `ast.parse`. When two threads
parse at the same time (a stream run with `--workers 4` checks tool code in each worker), one
thread's reset lands in the middle of the other's conversion and that call fails with
`SystemError: AST constructor recursion depth mismatch (before=33, after=30)` on perfectly good
source: CI saw it end a whole run. Every parse of evoagent goes through `parse` below, which
holds one process-wide lock; a parse started by third-party code in another thread can still
collide, so the mismatch error is retried, never reported as a fault of the source.
"""

from __future__ import annotations

import ast
import threading

_LOCK = threading.Lock()
_MISMATCH = "AST constructor recursion depth mismatch"
_TRIES = 5


def parse(source: str) -> ast.Module:
    """`ast.parse(source)`, one at a time in this process.

    Raises `SyntaxError` (and `RecursionError`/`MemoryError`/`ValueError` for pathological
    input) exactly as `ast.parse` does; a recursion-depth mismatch caused by another thread's
    parse is retried.
    """
    for attempt in range(_TRIES):
        try:
            with _LOCK:
                return ast.parse(source)
        except SystemError as exc:
            if _MISMATCH not in str(exc) or attempt == _TRIES - 1:
                raise
    raise AssertionError("unreachable")  # pragma: no cover
