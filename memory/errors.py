"""User-facing errors of the library: each message says what is wrong and what to do."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class LibraryError(Exception):
    """A mistake a person can fix (unknown name, bad database, read-only library, ...)."""


class ReadOnlyLibrary(LibraryError):
    """A write to a library opened read-only (a guest that may only read)."""


class UnknownToolError(LibraryError):
    """No tool has this name; the message suggests close names."""

    def __init__(self, name: str, known: Iterable[str]) -> None:
        self.name = name
        names = list(known)
        if len(names) > 1000:
            # difflib compares with every name (50 ms at 10,000): first keep the names
            # that share a three-letter piece with this one.
            pieces = {name[i : i + 3] for i in range(max(1, len(name) - 2))}
            names = [n for n in names if any(p in n for p in pieces)]
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        super().__init__(
            f"no tool named {name!r} in the library.{hint} "
            "(`evoagent tools list --status all` lists every tool)"
        )
