"""Parsing Python source from several threads at once (stream workers check tool code in
parallel): CPython 3.11 shares the AST conversion's recursion depth between threads, and a
collision fails a good parse with a SystemError. `memory.pyparse.parse` must never."""

from __future__ import annotations

import gc
import sys
import threading
from collections.abc import Iterator

import pytest

from memory import pyparse

SOURCE = "\n".join(
    f"def f{i}(x):\n    return [[(a, {{b: c}}) for a in x] for b, c in x]\n" for i in range(40)
)


class _Finalized:
    """Garbage whose finalizer runs Python code, so the collector can hand the GIL to another
    thread in the middle of a parse (which is how the collision happens in a real run)."""

    def __del__(self) -> None:
        sum(range(50))


@pytest.fixture
def eager_switching() -> Iterator[None]:
    interval, thresholds = sys.getswitchinterval(), gc.get_threshold()
    sys.setswitchinterval(1e-6)
    gc.set_threshold(50)
    try:
        yield
    finally:
        sys.setswitchinterval(interval)
        gc.set_threshold(*thresholds)


def test_threads_parsing_at_once_never_see_a_recursion_depth_mismatch(
    eager_switching: None,
) -> None:
    errors: list[BaseException] = []

    def worker(depth: int) -> None:
        if depth:  # threads sit at different stack depths, as stream workers do
            worker(depth - 1)
            return
        for _ in range(150):
            a, b = _Finalized(), _Finalized()
            a.other, b.other = b, a  # type: ignore[attr-defined]
            try:
                tree = pyparse.parse(SOURCE)
            except BaseException as exc:
                errors.append(exc)
            else:
                assert len(tree.body) == 40

    threads = [threading.Thread(target=worker, args=(7 * i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_bad_source_still_raises_syntax_error() -> None:
    with pytest.raises(SyntaxError):
        pyparse.parse("def f(:\n")
    assert len(pyparse.parse("x = 1 + 2").body) == 1
